/**
 * The aws-cdk app (`npx cdk synth`, `npx cdk deploy`, see cdk.json): loads bots.config.ts, validates it
 * and defines one BotShardingEksStack. Environment-agnostic and without context lookups, so
 * `npx cdk synth` works offline and without credentials.
 *
 * Context (`-c key=value`): `stackName` (default "BotShard"), `clusterName` (import this existing
 * cluster; with `kubectlRoleArn` and `openIdConnectProviderArn`), `identity` ("irsa" or
 * "pod-identity"), `gitops=true` (no manifests: Argo CD or Flux applies dist/). BOTSHARD_CONFIG points at
 * another catalog file.
 */
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { PlacementError, parseCatalog } from '@botshard/runtime';
import { readConfigInput } from '@botshard/runtime/catalog/config';
import { exitCodeOf } from '@botshard/runtime/commands/failure';
import { BotShardingEksStack, PoolIdentity } from './eks-stack';

function main(): void {
  const app = new App();
  const context = (key: string): string | undefined => {
    const v = app.node.tryGetContext(key);
    return v === undefined || v === null || v === '' ? undefined : String(v);
  };
  const config = path.resolve(process.env.BOTSHARD_CONFIG ?? path.join(__dirname, '..', '..', 'bots.config.ts'));
  const shown = path.relative(process.cwd(), config) || config;
  const catalog = parseCatalog(readConfigInput(config), shown);
  const gitops = context('gitops') === 'true';
  const clusterName = context('clusterName');
  new BotShardingEksStack(app, context('stackName') ?? 'BotShard', {
    catalog: catalog,
    description: `botshard: ${catalog.bots.length} bots on EKS, catalog generation ${catalog.generation}`,
    identity: (context('identity') as PoolIdentity | undefined) ?? (gitops ? 'pod-identity' : 'irsa'),
    deployManifests: !gitops,
    existingCluster: clusterName
      ? { clusterName, kubectlRoleArn: context('kubectlRoleArn'), openIdConnectProviderArn: context('openIdConnectProviderArn') }
      : undefined,
  });
  app.synth();
}

try {
  main();
} catch (e) {
  // A user's mistake is a message, not a stack trace (BOTSHARD_DEBUG=1 adds it).
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`${e instanceof PlacementError ? 'the catalog cannot be placed: ' : ''}${message}\n`);
  if (process.env.BOTSHARD_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exit(exitCodeOf(e));
}
