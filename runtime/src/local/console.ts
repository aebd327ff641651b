/**
 * What `botshard up` prints: the table of pools with a request to try, the API keys generated for the
 * run, which demo models were written, and the summary of a stop. Each function returns the lines to
 * print; end-to-end tests parse them (test/e2e/support.ts), so their text is part of the contract.
 */
import { Catalog, formatMemory } from '../catalog';
import { table } from '../commands/output';
import { Topology } from '../placement';
import { WriteResult } from './models';
import { Child } from './supervisor';

/** Says which demo models were written and why; your own model files are never overwritten. */
export function demoModelLines(r: WriteResult, root: string): string[] {
  const list = (paths: string[]) => paths.slice(0, 5).join(', ') + (paths.length > 5 ? `, and ${paths.length - 5} more` : '');
  const lines: string[] = [];
  if (r.written.length > 0) lines.push(`wrote ${r.written.length} demo models to ${root}, because these model files were missing: ${list(r.written)} (demo models answer the config's example utterances; put your own files at these paths to use them)`);
  if (r.updated.length > 0) lines.push(`updated ${r.updated.length} demo models in ${root} to the config's intents: ${list(r.updated)}`);
  if (r.kept.length > 0) lines.push(`using your own model files (not demo models) for: ${list(r.kept)}`);
  return lines;
}

/** What the table of a running platform shows. */
export interface UpView {
  catalog: Catalog;
  topology: Topology;
  /** The running children, by name (each pool's and the router's). */
  children: ReadonlyMap<string, Child>;
  /** The router is HAProxy driven by `botshard haproxy`. */
  haproxy: boolean;
  /** Keys generated for this run: tenant -> key. */
  demoKeys: ReadonlyMap<string, string>;
  /** The router's keys folder, when the catalog requires keys. */
  keysDir?: string;
  logDir: string;
  config: string;
}

/** The table of pools and a request to try. */
export function upTable(v: UpView): string[] {
  const lines: string[] = [];
  const rows = v.topology.pools.map((p) => {
    const c = v.children.get(p.name)!;
    return [p.name, p.group, String(p.bots.length), `${formatMemory(p.used)} / ${formatMemory(p.budget)}`, String(c.port), String(c.grpcPort || '-'), String(c.proc?.pid ?? '-')];
  });
  const router = v.children.get('router')!;
  rows.push([v.haproxy ? 'router (HAProxy)' : 'router', '-', String(v.topology.assignment.size), '-', String(router.port), String(router.grpcPort), String(router.proc?.pid ?? '-')]);
  lines.push(`\nbotshard is up: catalog generation ${v.catalog.generation}, ${v.topology.assignment.size} bots in ${v.topology.pools.length} pools\n`);
  lines.push(table(['POOL', 'GROUP', 'BOTS', 'MEMORY', 'PORT', 'GRPC', 'PID'], rows, [false, false, true, true, true, true, true]));
  lines.push(...tryIt(v, router));
  if (v.demoKeys.size > 0) {
    lines.push(`\nAPI keys generated for this run (platform.auth is "tenant-keys"; pass --tenant-keys DIR to use your own):`);
    for (const [tenant, key] of v.demoKeys) lines.push(`  ${tenant}: ${key}`);
  }
  const status = router.metricsPort ? `\nstatus: npx botshard status --url http://127.0.0.1:${router.metricsPort}` : '';
  lines.push(`${status}\nlogs: ${v.logDir} (removed when up stops)\nedit ${v.config} to move bots live; Ctrl-C stops everything\n`);
  return lines;
}

/** A request to try: the first bot with an example utterance, with its tenant's key when the catalog requires keys. */
function tryIt(v: UpView, router: Child): string[] {
  const bot = v.catalog.bots.find((b) => b.intents[0]?.examples.length) ?? v.catalog.bots[0];
  if (!bot) return [];
  const text = bot.intents[0].examples[0] ?? 'hello';
  const demoKey = v.demoKeys.get(bot.tenant);
  const auth = demoKey ? ` -H 'authorization: Bearer ${demoKey}'` : v.keysDir ? ' -H "authorization: Bearer $BOTSHARD_API_KEY"' : '';
  const lines = [`\ntry it:\n  curl -s http://127.0.0.1:${router.port}/v1/bots/${bot.id}/predict${auth} -H 'content-type: application/json' -d '${JSON.stringify({ text }).replace(/'/g, "'\\''")}'`];
  if (v.keysDir && !demoKey) lines.push(`  (BOTSHARD_API_KEY: an API key of tenant "${bot.tenant}", whose SHA-256 is in ${v.keysDir}/${bot.tenant})`);
  lines.push(`gRPC (Open Inference Protocol, inference.GRPCInferenceService; README "gRPC and binary tensors"): 127.0.0.1:${router.grpcPort}`);
  return lines;
}

/**
 * What a stop did, from the children that were running: which drained, how many responses their drains
 * cut off, and how many requests the router says it never answered (when it says: the HAProxy mode does not).
 */
export function stopSummary(stopped: Child[]): string {
  const pools = stopped.filter((c) => c.kind === 'pool' && c.drained).length;
  const router = stopped.some((c) => c.kind === 'router' && c.drained);
  const cutOff = stopped.reduce((n, c) => n + (c.drained?.unfinished ?? 0), 0);
  const killed = stopped.filter((c) => !c.drained).map((c) => c.name);
  const aborted = stopped.find((c) => c.kind === 'router' && c.aborted !== undefined)?.aborted;
  const abortedText = aborted === undefined ? '' : `, ${aborted} request${aborted === 1 ? '' : 's'} aborted by the router`;
  return `${router ? 'router and ' : ''}${pools} pool${pools === 1 ? '' : 's'} drained, ${cutOff} response${cutOff === 1 ? '' : 's'} cut off${abortedText}${killed.length > 0 ? `; did not drain: ${killed.join(', ')}` : ''}`;
}
