/**
 * `botshard status`: a running platform's state, from its router's metrics port (a local `botshard up`, or
 * a `kubectl port-forward` to the router): one row per pool, then the failed bots and why, the models
 * measured more than 2x off their declared size, then the model rollouts; `--json` for scripts.
 */
import { formatMemory } from '../catalog';
import { PlatformStatus, STATUS_PATH, rolloutsOf } from '../status';
import { figuresOf } from '../status/figures';
import { OFF_FACTOR, measuredModels, offBy } from '../status/sizes';
import { SettingsError, exitWithFailure } from './failure';
import { table } from './output';

/** The table `botshard status` prints. */
export function formatStatus(s: PlatformStatus): string {
  // A COLD column only where some pool overcommits (has bots loaded on their first request).
  const cold = s.pools.some((p) => 'bots' in p && (p.bots.cold ?? 0) > 0);
  const size = (bytes: number | undefined) => (bytes === undefined ? '-' : formatMemory(bytes));
  const rows = s.pools.map((p) => {
    if ('unreachable' in p) return [p.pool, 'unreachable', '-', '-', '-', '-', ...(cold ? ['-'] : []), '-', '-', '-', '-', p.unreachable];
    const memory = `${formatMemory(p.memoryBytes)}${p.budgetBytes ? ` / ${formatMemory(p.budgetBytes)}` : ''}`;
    const queue = String(p.queue.reduce((a, b) => a + b, 0));
    return [p.pool, p.ready ? 'yes' : 'no', String(p.bots.ready), String(p.bots.loading), String(p.bots.failed), String(p.bots.leaving), ...(cold ? [String(p.bots.cold ?? 0)] : []), queue, p.generation ?? '-', size(p.sizes?.declared), size(p.sizes?.measured), memory];
  });
  const header = ['POOL', 'READY', 'BOTS', 'LOADING', 'FAILED', 'LEAVING', ...(cold ? ['COLD'] : []), 'QUEUE', 'GENERATION', 'DECLARED', 'MEASURED', 'MEMORY / BUDGET'];
  const lines = [
    `router: catalog generation ${s.router.generation}, data plane ${s.router.dataPlane}`,
    '',
    table(header, rows, header.map((h) => !['POOL', 'READY', 'GENERATION', 'MEMORY / BUDGET'].includes(h))),
    'DECLARED, MEASURED: the models a pool holds, as the catalog declares them (what its budget counts) and as it measured them loading',
  ];
  const failed = s.pools.flatMap((p) => ('failed' in p ? p.failed.map((f) => `  ${p.pool}  ${f.bot}: ${f.error}`) : []));
  if (failed.length > 0) lines.push('', 'failed bots:', ...failed);
  const versions = s.pools.flatMap((p) => ('versionsFailed' in p ? (p.versionsFailed ?? []).map((f) => `  ${p.pool}  ${f.bot}: ${f.head} (since ${f.since}, ${f.failures} failed load${f.failures === 1 ? '' : 's'}): ${f.error}`) : []));
  if (versions.length > 0) lines.push('', 'new versions that failed to load (the previous version serves):', ...versions);
  const off = formatOffSizes(s);
  if (off) lines.push('', off);
  const rollouts = formatRollouts(s);
  if (rollouts) lines.push('', rollouts);
  const behind = s.pools.filter((p) => 'generation' in p && p.generation !== s.router.generation).map((p) => p.pool);
  if (behind.length > 0) lines.push('', `not on the router's generation yet: ${behind.join(', ')}`);
  return lines.join('\n');
}

/** Models listed at most by `botshard status` (`botshard plan --sizes` lists every one). */
const OFF_LISTED = 20;

/** The models whose measured size is off their declared size by more than 2x, the furthest off first. */
export function formatOffSizes(s: PlatformStatus): string | undefined {
  const off = measuredModels(s).filter((m) => offBy(m) > OFF_FACTOR).sort((a, b) => offBy(b) - offBy(a));
  if (off.length === 0) return undefined;
  const rows = off.slice(0, OFF_LISTED).map((m) => {
    const times = offBy(m);
    const shown = times >= 10 ? Math.round(times) : Number(times.toFixed(1));
    return [m.pool, m.kind === 'bot' ? m.id : `encoder ${m.id}`, formatMemory(m.declared), formatMemory(m.measured), `${shown}x ${m.measured >= m.declared ? 'more' : 'less'}`];
  });
  const more = off.length > OFF_LISTED ? [`  and ${off.length - OFF_LISTED} more`] : [];
  return [
    `measured more than ${OFF_FACTOR}x off the declared size (${plural(off.length, 'model')}; save \`botshard status --json\`, then \`botshard plan --sizes FILE\` suggests each \`memory\`):`,
    table(['POOL', 'MODEL', 'DECLARED', 'MEASURED', 'MEASURED IS'], rows, [false, false, true, true, false]),
    ...more,
  ].join('\n');
}

/**
 * The rollouts view: per bot with a candidate, its mode, share and state, and both versions' figures side
 * by side, summed over the pool replicas that answered; then why a candidate was rolled back, failed or refused.
 */
export function formatRollouts(s: PlatformStatus): string | undefined {
  const all = rolloutsOf(s);
  if (all.length === 0) return undefined;
  const num = (x: number | null, unit = '') => (x === null ? '-' : `${x}${unit}`);
  const rows = all.flatMap((r) =>
    (['serving', 'candidate'] as const).map((role) => {
      const f = figuresOf(r.figures[role]);
      const first = role === 'serving';
      return [
        first ? r.bot : '',
        role === 'serving' ? r.serving : r.candidate,
        role,
        first ? `${r.mode} ${Math.round(r.share * 1000) / 10}%` : '',
        first ? r.state : '',
        String(f.requests),
        String(f.errors),
        num(f.fallbackRatePct, '%'),
        num(f.meanConfidence),
        num(f.p50Ms),
        num(f.p99Ms),
        role === 'candidate' && r.mode === 'shadow' ? `${num(f.agreementPct, '%')}${f.dropped ? ` (${f.dropped} dropped)` : ''}` : '',
      ];
    }),
  );
  const header = ['BOT', 'VERSION', 'ROLE', 'ROLLOUT', 'STATE', 'REQUESTS', 'ERRORS', 'FALLBACK', 'CONFIDENCE', 'P50 MS', 'P99 MS', 'AGREEMENT'];
  const replicas = Math.max(...all.map((r) => r.replicas));
  const lines = [`rollouts (each pool replica judges its own traffic; figures summed over the ${plural(replicas, 'replica')} that answered; run times in the worker):`, table(header, rows, header.map((h) => ['REQUESTS', 'ERRORS', 'FALLBACK', 'CONFIDENCE', 'P50 MS', 'P99 MS'].includes(h)))];
  for (const r of all) {
    if (r.rolledBack) lines.push(`  ${r.bot}: candidate ${r.candidate} rolled back at ${r.rolledBack.at} by ${r.rolledBack.guard}: ${r.rolledBack.reason}`);
    else if (r.error) lines.push(`  ${r.bot}: candidate ${r.candidate} ${r.state}: ${r.error}`);
    else if (r.state === 'passing') lines.push(`  ${r.bot}: candidate ${r.candidate} passes its guards: promote it by making it the model in the catalog`);
  }
  return lines.join('\n');
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Fetches the status from `url` (the router's metrics port) and prints it. */
export async function fetchStatus(url: string): Promise<PlatformStatus> {
  const target = `${url.replace(/\/+$/, '')}${STATUS_PATH}`;
  let res: Response;
  try {
    res = await fetch(target, { signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    throw new SettingsError(`cannot reach the router's metrics port at ${url} (${err.cause?.code ?? err.message}): pass --url http://HOST:PORT (botshard up prints it; in a cluster: kubectl -n botshard port-forward deploy/botshard-router 9090)`);
  }
  if (res.status !== 200) throw new SettingsError(`${target} answered ${res.status}: --url must be the router's metrics port (9090 in the manifests), not its HTTP port`);
  return (await res.json()) as PlatformStatus;
}

/** The `botshard status` command. */
export function statusCommand(flags: { url?: string; json?: boolean }): string {
  const url = flags.url ?? 'http://127.0.0.1:9090';
  fetchStatus(url).then(
    (s) => process.stdout.write(`${flags.json ? JSON.stringify(s, null, 2) : formatStatus(s)}\n`),
    (e) => exitWithFailure('botshard status', e),
  );
  return '';
}
