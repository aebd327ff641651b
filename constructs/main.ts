/**
 * The cdk8s app (`cdk8s synth`, see cdk8s.yaml): loads bots.config.ts, validates it, plans placement
 * and synthesizes one chart per pool group plus the platform chart into dist/.
 *
 *   ts-node constructs/main.ts           synthesize into $CDK8S_OUTDIR (dist/ under cdk8s synth)
 *   ts-node constructs/main.ts --check   validate and synthesize in memory only: writes nothing
 *
 * `cdk8s synth` deletes dist/ before it runs the app, so `npm run synth` runs `--check` first: a bad
 * catalog then stops before cdk8s touches dist/. Errors are printed as a list, never as a stack trace.
 * BOTSHARD_CONFIG points at another catalog file (tests); BOTSHARD_DEBUG=1 adds stacks.
 */
import * as path from 'node:path';
import { CatalogError, PlacementError, formatMemory, placementWarnings } from '@botshard/runtime';
import { readConfigInput } from '@botshard/runtime/catalog/config';
import { exitCodeOf } from '@botshard/runtime/commands/failure';
import { checkModelFiles, modelFileWarnings, modelRootOf } from '@botshard/runtime/catalog/model-files';
import { buildPlatformApp } from './app';

function fail(lines: string[], check: boolean, error?: unknown): never {
  process.stderr.write(`${lines.join('\n')}\n`);
  process.stderr.write(check ? 'synthesis stopped before writing anything: dist/ is unchanged.\n' : 'synthesis stopped.\n');
  if (process.env.BOTSHARD_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  process.exit(exitCodeOf(error));
}

function main(): void {
  const check = process.argv.includes('--check');
  const config = path.resolve(process.env.BOTSHARD_CONFIG ?? path.join(__dirname, '..', 'bots.config.ts'));
  const shown = path.relative(process.cwd(), config) || config;
  let input: unknown;
  try {
    input = readConfigInput(config);
  } catch (e) {
    // A syntax error with its file, line and column (as tsc prints it), or the line where the config threw.
    fail([e instanceof CatalogError ? e.message : `${shown}: cannot be loaded: ${(e as Error).message}`], check, e);
  }
  try {
    const { app, platform, catalog } = buildPlatformApp(input, {}, {}, shown);
    if (check) {
      app.synthYaml(); // runs every construct validation, in memory
      const warnings = [...placementWarnings(catalog, platform.topology), ...modelFileWarnings(checkModelFiles(catalog, modelRootOf(config, catalog)))];
      for (const line of warnings) process.stderr.write(`${shown}: ${line}\n`);
      const t = platform.topology;
      const budget = t.pools.reduce((n, p) => n + p.budget, 0);
      process.stdout.write(
        `${shown}: ${catalog.bots.length} bots in ${t.pools.length} pools (${catalog.groups.length} groups, strategy ${t.strategy}, ` +
          `${formatMemory(budget)} of pool memory), ${platform.catalogConfigMaps.parts.length} catalog ConfigMap(s), generation ${catalog.generation}: OK\n`,
      );
      return;
    }
    app.synth();
  } catch (e) {
    if (e instanceof CatalogError) fail([e.message], check, e);
    if (e instanceof PlacementError) fail([`${shown}: the catalog cannot be placed:`, `  - ${e.message}`], check, e);
    const message = e instanceof Error ? e.message : String(e);
    fail([`${shown}: the manifests cannot be synthesized:`, ...message.split('\n').map((l) => (l.startsWith('  ') ? l : `  - ${l}`))], check, e);
  }
}

main();
