/**
 * npm run bench:batching
 *
 * What running requests of different bots through their shared encoder as one batch buys, with the
 * transformer-shaped demo encoder (4 layers of width 256): 100 bots on 2 encoders, one pool process each
 * set-up, 16-word texts (31 tokens). Side by side in one run, rounds alternating:
 * - non-real-time group: batching (window 2 ms, up to 32 texts) against no batching (`batchMaxRows: 1`):
 *   the most requests/s each serves within the same p99 budget (closed loops of 2 to 64 connections, the
 *   best one whose p99 stays within budget), and both at one closed loop of 32 connections;
 * - real-time group at low load (a fixed 40 requests/s): batching as real-time groups do it (no window:
 *   only what is already waiting) against no batching: the p50 it adds.
 * Writes bench/results/batching.{json,md}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool as HttpPool } from 'undici';
import { CatalogInput, parseCatalog, plan, writeCatalogFolder } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { Child, SMOKE, fmt, log, machine, percentile, predictLoad, round, sleep, spread, startPool, stopAll, tempDir, writeResult } from './processes';
import { syntheticCatalog } from './synthetic';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 3));
const SECONDS = Number(process.env.BENCH_SECONDS ?? (SMOKE ? 1 : 5));
const CONNECTIONS = 32;
/** The p99 both set-ups must keep when their throughput is compared. */
const P99_BUDGET_MS = 100;
const SWEEP = SMOKE ? [2, 8] : [2, 4, 8, 16, 32, 64];
const LOW_RATE = 40;
const TEXT = 'hello I ordered a blue jacket last week and it still has not arrived where is my order now';

type SetupName = 'batched' | 'unbatched' | 'realtimeBatched' | 'realtimeUnbatched';

/** The 100-bot catalog with its one group made real-time or not, batching as given. */
function catalogFor(realtime: boolean, batching: Record<string, number>) {
  const input = syntheticCatalog({ bots: SMOKE ? 20 : 100, seed: 1, oneGroup: true, pools: 1, memory: '256Gi', encoders: 2 }) as CatalogInput & { groups: object[]; bots: object[] };
  return parseCatalog({
    ...input,
    // Queues deep enough for the closed loop: the comparison is of throughput, not of shedding.
    groups: input.groups.map((g) => ({ ...g, realtime, concurrency: 256, ...batching })),
    bots: input.bots.map((b) => ({ ...b, realtime })),
  });
}

/** Requests at a fixed rate (latency from the scheduled send), round robin over the bots. */
async function fixedRate(url: string, bots: string[], rate: number, seconds: number) {
  const client = new HttpPool(url, { connections: 8 });
  const lat: number[] = [];
  let failed = 0;
  const inflight: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < Math.round(rate * seconds); i++) {
    const scheduled = t0 + (i * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 0) await sleep(wait);
    inflight.push(
      client
        .request({ method: 'POST', path: `/v1/bots/${bots[i % bots.length]}/predict`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: TEXT }) })
        .then(async (res) => {
          await res.body.text();
          lat.push(performance.now() - scheduled);
          if (res.statusCode !== 200) failed++;
        }),
    );
  }
  await Promise.all(inflight);
  await client.close();
  return { p50: round(percentile(lat, 50), 2), p99: round(percentile(lat, 99), 2), failed };
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const work = tempDir('batching');
  const children: Child[] = [];
  const samples: Array<{ setup: SetupName; rps?: number; p50: number; p99: number; failed: number }> = [];
  const sweep: Array<{ setup: SetupName; connections: number; rps: number; p99: number; failed: number }> = [];
  try {
    const catalogs: Record<SetupName, ReturnType<typeof catalogFor>> = {
      batched: catalogFor(false, { batchWindowMs: 2, batchMaxRows: 32 }),
      unbatched: catalogFor(false, { batchMaxRows: 1 }),
      realtimeBatched: catalogFor(true, {}),
      realtimeUnbatched: catalogFor(true, { batchMaxRows: 1 }),
    };
    const models = path.join(work, 'models');
    writeDemoModels(catalogs.batched, models, { encoder: { transformer: {} } });
    const pools = {} as Record<SetupName, Child>;
    for (const [name, catalog] of Object.entries(catalogs) as Array<[SetupName, ReturnType<typeof catalogFor>]>) {
      const dir = path.join(work, name);
      writeCatalogFolder(dir, catalog);
      // The group's own deadline and queue (no local override): what a deployment would run with.
      pools[name] = await startPool({ pool: plan(catalog).pools[0].name, catalog: dir, models, env: { BOTSHARD_TIMEOUT_MS: '', BOTSHARD_CONCURRENCY: '' } });
      children.push(pools[name]);
    }
    const bots = catalogs.batched.bots.map((b) => b.id);
    for (const name of Object.keys(pools) as SetupName[]) await predictLoad(() => pools[name].url, bots, SMOKE ? 0.3 : 1, CONNECTIONS, TEXT); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      const order: SetupName[] = r % 2 ? ['unbatched', 'batched'] : ['batched', 'unbatched'];
      for (const name of order) {
        const m = await predictLoad(() => pools[name].url, bots, SECONDS, CONNECTIONS, TEXT);
        samples.push({ setup: name, rps: m.rps, p50: round(m.p50, 2), p99: round(m.p99, 2), failed: m.errors });
        log(`round ${r + 1} ${name}: ${m.rps} req/s, p50 ${round(m.p50, 2)} ms, p99 ${round(m.p99, 2)} ms, ${m.errors} failed`);
      }
      for (const name of (r % 2 ? ['realtimeUnbatched', 'realtimeBatched'] : ['realtimeBatched', 'realtimeUnbatched']) as SetupName[]) {
        const m = await fixedRate(pools[name].url, bots, LOW_RATE, SECONDS);
        samples.push({ setup: name, ...m });
        log(`round ${r + 1} ${name} at ${LOW_RATE} req/s: p50 ${m.p50} ms, p99 ${m.p99} ms, ${m.failed} failed`);
      }
    }
    // Alternating at each load, so that the machine's noise falls on both alike.
    for (const [i, connections] of SWEEP.entries()) {
      for (const name of (i % 2 ? ['unbatched', 'batched'] : ['batched', 'unbatched']) as SetupName[]) {
        const m = await predictLoad(() => pools[name].url, bots, SMOKE ? 0.5 : 3, connections, TEXT);
        sweep.push({ setup: name, connections, rps: m.rps, p99: round(m.p99, 2), failed: m.errors });
        log(`${name}, ${connections} connections: ${m.rps} req/s, p99 ${round(m.p99, 2)} ms`);
      }
    }
  } finally {
    await stopAll(children);
    fs.rmSync(work, { recursive: true, force: true });
  }
  /** The most requests/s a set-up served with its p99 within the budget (0 if never). */
  const withinBudget = (name: SetupName) => Math.max(0, ...sweep.filter((s) => s.setup === name && s.p99 <= P99_BUDGET_MS && s.failed === 0).map((s) => s.rps));
  const of = (name: SetupName) => samples.filter((s) => s.setup === name);
  const rows = (['batched', 'unbatched', 'realtimeBatched', 'realtimeUnbatched'] as SetupName[]).map((setup) => ({
    setup,
    rps: of(setup)[0].rps !== undefined ? spread(of(setup).map((s) => s.rps!), 0) : undefined,
    p50: spread(of(setup).map((s) => s.p50), 2),
    p99: spread(of(setup).map((s) => s.p99), 2),
    failed: of(setup).reduce((n, s) => n + s.failed, 0),
  }));
  const row = (setup: SetupName) => rows.find((x) => x.setup === setup)!;
  const headline = {
    /** Non-real-time group: the most requests/s with batching over the most without, both keeping p99 within the budget. */
    batchingSpeedupBatch: round(withinBudget('batched') / Math.max(1, withinBudget('unbatched')), 2),
    batchingP99BudgetMs: P99_BUDGET_MS,
    /** The same at one closed loop of 32 connections (medians over rounds), whatever the p99. */
    batchingSpeedupClosedLoop: round(row('batched').rps!.median / row('unbatched').rps!.median, 2),
    /** The same load's p99 with batching over without: what the speed-up costs in tail latency (below 1: none). */
    batchingP99OverUnbatched: round(row('batched').p99.median / row('unbatched').p99.median, 2),
    /** Real-time group at low load: p50 with batching minus p50 without. */
    batchingAddedP50MsRealtime: round(row('realtimeBatched').p50.median - row('realtimeUnbatched').p50.median, 2),
    batchedRequestsPerSecond: row('batched').rps!.median,
    unbatchedRequestsPerSecond: row('unbatched').rps!.median,
  };
  const result = {
    benchmark: 'batching',
    headline,
    date: new Date().toISOString(),
    machine: machine(),
    setup: { bots: SMOKE ? 20 : 100, encoders: 2, encoder: 'transformer-shaped demo encoder, 4 layers of width 256', text: TEXT, connections: CONNECTIONS, lowRate: LOW_RATE, seconds: SECONDS, rounds: ROUNDS, smoke: SMOKE },
    rows,
    samples,
    sweep,
    seconds: Math.round((Date.now() - startedAt) / 1000),
  };
  const label: Record<SetupName, string> = {
    batched: 'non-real-time, batching (window 2 ms, up to 32 texts), closed loop',
    unbatched: 'non-real-time, no batching (batchMaxRows 1), closed loop',
    realtimeBatched: `real-time, batching (no window), ${LOW_RATE} req/s`,
    realtimeUnbatched: `real-time, no batching, ${LOW_RATE} req/s`,
  };
  const md = [
    '# Batching across bots on a shared encoder',
    '',
    `${result.date}, ${result.machine.cpus} cores (${result.machine.cpuModel}), Node ${result.machine.node}. Command: \`npm run bench:batching\`; ${result.seconds} s.`,
    '',
    `${result.setup.bots} bots on ${result.setup.encoders} transformer-shaped encoders (4 layers of width 256), one pool process per set-up, texts of 31 tokens. Closed loop: ${CONNECTIONS} connections for ${SECONDS} s; low load: ${LOW_RATE} requests/s. ${ROUNDS} rounds, set-ups alternating; median (min-max) over rounds.`,
    '',
    '| set-up | requests/s | p50 | p99 | failed |',
    '|---|---:|---:|---:|---:|',
    ...rows.map((x) => `| ${label[x.setup]} | ${x.rps ? fmt(x.rps) : '-'} | ${fmt(x.p50, ' ms')} | ${fmt(x.p99, ' ms')} | ${x.failed} |`),
    '',
    `Within a p99 budget of ${P99_BUDGET_MS} ms (closed loops of ${SWEEP.join(', ')} connections, ${SMOKE ? 0.5 : 3} s each; the best one within budget): batching ${withinBudget('batched')} requests/s, no batching ${withinBudget('unbatched')}.`,
    '',
    '| connections | ' + SWEEP.join(' | ') + ' |',
    '|---|' + SWEEP.map(() => '---:').join('|') + '|',
    ...(['batched', 'unbatched'] as SetupName[]).map((name) => `| ${name} | ${SWEEP.map((c) => { const s = sweep.find((x) => x.setup === name && x.connections === c)!; return `${s.rps} req/s, p99 ${s.p99} ms`; }).join(' | ')} |`),
    '',
    `Headline: ${JSON.stringify(headline)}`,
  ].join('\n');
  writeResult('batching', result, md);
  log(`wrote batching.json and batching.md in ${result.seconds} s`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
