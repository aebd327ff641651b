/**
 * Building the cdk8s App from a catalog input: shared by `main.ts` (cdk8s synth), the tests and the
 * synth benchmark, so all three synthesize exactly the same way.
 */
import { App, AppProps, YamlOutputType } from 'cdk8s';
import { Catalog, CatalogError, normalizeCatalog } from '@botshard/runtime';
import { BotPlatform, BotPlatformProps } from './platform';

/** The App and what it was built from. */
export interface PlatformApp {
  readonly app: App;
  readonly platform: BotPlatform;
  readonly catalog: Catalog;
}

/**
 * Validates a catalog input (every problem at once, as a CatalogError) and builds the App: one
 * `platform` chart and one `pool-group-<name>` chart per group. Nothing is written until `app.synth()`.
 */
export function buildPlatformApp(input: unknown, props: Omit<BotPlatformProps, 'catalog'> = {}, appProps: AppProps = {}, source?: string): PlatformApp {
  const result = normalizeCatalog(input);
  if (!result.ok) throw new CatalogError(result.problems, source);
  const app = new App({ yamlOutputType: YamlOutputType.FILE_PER_CHART, ...appProps });
  const platform = new BotPlatform(app, 'botshard', { ...props, catalog: result.catalog });
  return { app, platform, catalog: result.catalog };
}
