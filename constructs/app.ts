/**
 * Building the cdk8s App from a catalog input: shared by `main.ts` (cdk8s synth), the tests and the
 * synth benchmark, so all three synthesize exactly the same way.
 */
import { App, AppProps, YamlOutputType } from 'cdk8s';
import { Catalog, parseCatalog } from '@botshard/runtime';
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
  const catalog = parseCatalog(input, source);
  const app = new App({ yamlOutputType: YamlOutputType.FILE_PER_CHART, ...appProps });
  const platform = new BotPlatform(app, 'botshard', { ...props, catalog });
  return { app, platform, catalog };
}
