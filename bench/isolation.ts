/**
 * npm run bench:isolation
 *
 * What one misbehaving bot does to the others. The same healthy bots (bench/fleet.ts) plus two bad
 * ones: a slow bot (a real ONNX head doing heavy MatMul rounds, a few hundred ms per request on one
 * core) flooded with requests by a separate client process, and a bot whose model fails to load
 * (a corrupt file). Three set-ups run side by side, each a real `botshard pool` process on 127.0.0.1:
 * - clean: one pool with the healthy bots only (no misbehaving bot at all);
 * - single: one pool with every bot, the bad ones included;
 * - sharded: the same bots over 2 pools; the bad bots share pool A with some healthy bots (set A),
 *   the other healthy bots are in pool B (set B).
 * In each phase a fixed-rate client (requests scheduled at a steady rate, latency counted from the
 * scheduled time, so a stalled server cannot hide its delay) alternates between set A and set B while
 * the flood runs against that set-up's slow bot. Phases rotate over rounds. Reports p50/p99 of the
 * healthy bots: same pool as the bad bots, a different pool, no bad bot at all.
 * Writes bench/results/isolation.{json,md}.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool as HttpPool } from 'undici';
import { BotInput, Catalog, parseCatalog, plan, writeCatalogFolder } from '@botshard/runtime';
import { STANDALONE_DIMENSIONS, buildHeadModel, embeddingTable, writeDemoModels } from '@botshard/runtime/local/models';
import { fleetCatalog } from './fleet';
import { Child, SMOKE, Spread, fmt, log, machine, percentile, round, sleep, spread, startPool, stopAll, tempDir, writeResult } from './processes';

const HEALTHY = SMOKE ? 6 : 20;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 3));
const SECONDS = Number(process.env.BENCH_SECONDS ?? (SMOKE ? 0.6 : 4));
/** Requests per second of the measuring client (healthy bots), alternating set A and set B. */
const RATE = SMOKE ? 50 : 100;
/** Connections of the flood against the slow bot (closed loop, no pause, 503s included). */
const FLOOD_CONNECTIONS = 8;
const SLOW = { size: 1024, rounds: SMOKE ? 4 : 24 };
/** The realtime group's defaults: the deadline and queue the runtime would apply. */
const POOL_ENV = { BOTSHARD_TIMEOUT_MS: '2000', BOTSHARD_CONCURRENCY: '32' };

const slowBot = (id: string): BotInput => ({
  id,
  tenant: 'bench',
  realtime: true,
  model: { head: `heads/${id}.onnx`, memory: '4Mi' },
  intents: [{ name: 'yes' }, { name: 'no' }],
});

type Setup = 'clean' | 'single' | 'sharded';
type Relation = 'none' | 'same pool' | 'different pool';

interface Sample {
  setup: Setup;
  set: 'A' | 'B';
  relation: Relation;
  p50: number;
  p99: number;
  max: number;
  ok: number;
  failed: number;
}

/** Names for the bad bots such that both land in the same sharded pool (placement is a hash: try suffixes). */
function badBots(healthy: number): { slow: string; broken: string; catalog: Catalog } {
  for (let k = 0; ; k++) {
    const slow = `slow-bot-${k}`;
    const broken = `broken-bot-${k}`;
    const catalog = parseCatalog(fleetCatalog({ bots: healthy, pools: 2, extra: [slowBot(slow), slowBot(broken)] }));
    const t = plan(catalog);
    const a = t.assignment.get(slow)!;
    if (a === t.assignment.get(broken) && t.pools.every((p) => p.bots.length >= 3)) return { slow, broken, catalog };
    if (k > 200) throw new Error('no suffix puts both bad bots in one pool');
  }
}

/** The flood: a separate process (so it does not share this one's event loop) hammering one bot. */
function startFlood(url: string, bot: string): ChildProcess {
  const code = `
    const { Pool } = require(${JSON.stringify(require.resolve('undici'))});
    const client = new Pool(${JSON.stringify(url)}, { connections: ${FLOOD_CONNECTIONS} });
    const counts = {};
    let stop = false;
    process.on('SIGTERM', () => { stop = true; });
    const loop = async () => {
      while (!stop) {
        try {
          const res = await client.request({ method: 'POST', path: '/v1/bots/${bot}/predict', headers: { 'content-type': 'application/json' }, body: '{"text":"no"}' });
          await res.body.text();
          counts[res.statusCode] = (counts[res.statusCode] || 0) + 1;
        } catch (e) { counts.error = (counts.error || 0) + 1; }
      }
    };
    Promise.all(Array.from({ length: ${FLOOD_CONNECTIONS} }, loop)).then(() => { process.stdout.write(JSON.stringify(counts)); process.exit(0); });`;
  return spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
}

async function stopFlood(flood: ChildProcess): Promise<Record<string, number>> {
  let out = '';
  flood.stdout!.on('data', (d) => (out += d));
  const exited = new Promise((r) => flood.once('exit', r));
  const kill = setTimeout(() => flood.kill('SIGKILL'), 10_000);
  flood.kill('SIGTERM');
  await exited;
  clearTimeout(kill);
  try {
    return JSON.parse(out);
  } catch {
    return {};
  }
}

/** Where the pool runs the slow bot (its quarantine state and measured run time), from its model metadata. */
async function laneOf(url: string, bot: string): Promise<unknown> {
  const meta = (await (await fetch(`${url}/v2/models/${bot}`)).json()) as { parameters?: unknown };
  return meta.parameters;
}

/** Requests at a fixed rate, alternating between the bots of set A and set B (each at its own pool URL). */
async function measure(targets: { A: { url: string; bots: string[] }; B: { url: string; bots: string[] } }, seconds: number) {
  const clients = new Map<string, HttpPool>();
  const client = (url: string) => clients.get(url) ?? clients.set(url, new HttpPool(url, { connections: 32 })).get(url)!;
  const lat = { A: [] as number[], B: [] as number[] };
  const failed = { A: 0, B: 0 };
  const inflight: Promise<void>[] = [];
  const t0 = performance.now();
  const total = Math.round(seconds * RATE);
  for (let i = 0; i < total; i++) {
    const scheduled = t0 + (i * 1000) / RATE;
    const wait = scheduled - performance.now();
    if (wait > 0) await sleep(wait);
    const set = i % 2 ? 'B' : 'A';
    const target = targets[set];
    const bot = target.bots[Math.floor(i / 2) % target.bots.length];
    inflight.push(
      client(target.url)
        .request({ method: 'POST', path: `/v1/bots/${bot}/predict`, headers: { 'content-type': 'application/json' }, body: '{"text":"where is my order"}' })
        .then(async (res) => {
          await res.body.text();
          // Latency from the scheduled send: a server that stalls cannot hide it by slowing the client.
          lat[set].push(performance.now() - scheduled);
          if (res.statusCode !== 200) failed[set]++;
        })
        .catch(() => {
          lat[set].push(performance.now() - scheduled);
          failed[set]++;
        }),
    );
  }
  await Promise.all(inflight);
  await Promise.all([...clients.values()].map((c) => c.close()));
  const figures = (set: 'A' | 'B') => ({
    p50: round(percentile(lat[set], 50), 2),
    p99: round(percentile(lat[set], 99), 2),
    max: round(Math.max(...lat[set]), 2),
    ok: lat[set].length - failed[set],
    failed: failed[set],
  });
  return { A: figures('A'), B: figures('B') };
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const work = tempDir('isolation');
  const children: Child[] = [];
  const samples: Sample[] = [];
  const floods: Array<{ setup: Setup; counts: Record<string, number>; slowBot?: unknown }> = [];
  let info: Record<string, unknown> = {};
  try {
    const { slow, broken, catalog: sharded } = badBots(HEALTHY);
    const single = parseCatalog(fleetCatalog({ bots: HEALTHY, strategy: 'single', extra: [slowBot(slow), slowBot(broken)] }));
    const clean = parseCatalog(fleetCatalog({ bots: HEALTHY, strategy: 'single' }));
    const models = path.join(work, 'models');
    writeDemoModels(sharded, models);
    const head = buildHeadModel({
      weights: new Float32Array(STANDALONE_DIMENSIONS * 2),
      dimensions: STANDALONE_DIMENSIONS,
      labels: 2,
      bag: { table: embeddingTable(1, 'slow', 4096, STANDALONE_DIMENSIONS), buckets: 4096 },
      slow: SLOW,
    });
    fs.writeFileSync(path.join(models, `heads/${slow}.onnx`), head);
    fs.writeFileSync(path.join(models, `heads/${broken}.onnx`), Buffer.from('this is not an ONNX model'));

    const topo = plan(sharded);
    const poolA = topo.assignment.get(slow)!;
    const poolB = topo.pools.find((p) => p.name !== poolA)!.name;
    const healthy = (pool: string) => topo.pools.find((p) => p.name === pool)!.bots.filter((b) => b !== slow && b !== broken);
    const setA = healthy(poolA);
    const setB = healthy(poolB);

    const dirs: Record<Setup, string> = { clean: path.join(work, 'clean'), single: path.join(work, 'single'), sharded: path.join(work, 'sharded') };
    writeCatalogFolder(dirs.clean, clean);
    writeCatalogFolder(dirs.single, single);
    writeCatalogFolder(dirs.sharded, sharded);
    const start = async (setup: Setup, pool: string) => {
      const c = await startPool({ pool, catalog: dirs[setup], models, env: POOL_ENV });
      children.push(c);
      return c;
    };
    const cleanPool = await start('clean', plan(clean).pools[0].name);
    const singlePool = await start('single', plan(single).pools[0].name);
    const shardedA = await start('sharded', poolA);
    const shardedB = await start('sharded', poolB);

    // The slow bot's cost per request, alone (no flood, nothing else running).
    const t = performance.now();
    const probe = await fetch(`${singlePool.url}/v1/bots/${slow}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"no"}' });
    await probe.text();
    const slowMs = round(performance.now() - t, 0);
    const brokenState = await (await fetch(`${singlePool.url}/v2/models/${broken}/ready`)).json();
    info = { slowBot: slow, brokenBot: broken, slowRequestMs: slowMs, brokenBotState: brokenState, poolA, poolB, setA: setA.length, setB: setB.length };
    log(`slow bot: ${slowMs} ms a request alone; broken bot: ${JSON.stringify(brokenState)}; set A ${setA.length} bots, set B ${setB.length}`);

    const phases: Record<Setup, () => Promise<void>> = {
      clean: async () => {
        const m = await measure({ A: { url: cleanPool.url, bots: setA }, B: { url: cleanPool.url, bots: setB } }, SECONDS);
        samples.push({ setup: 'clean', set: 'A', relation: 'none', ...m.A }, { setup: 'clean', set: 'B', relation: 'none', ...m.B });
      },
      single: async () => {
        const flood = startFlood(singlePool.url, slow);
        await sleep(SMOKE ? 200 : 1000);
        const m = await measure({ A: { url: singlePool.url, bots: setA }, B: { url: singlePool.url, bots: setB } }, SECONDS);
        floods.push({ setup: 'single', counts: await stopFlood(flood), slowBot: await laneOf(singlePool.url, slow) });
        samples.push({ setup: 'single', set: 'A', relation: 'same pool', ...m.A }, { setup: 'single', set: 'B', relation: 'same pool', ...m.B });
      },
      sharded: async () => {
        const flood = startFlood(shardedA.url, slow);
        await sleep(SMOKE ? 200 : 1000);
        const m = await measure({ A: { url: shardedA.url, bots: setA }, B: { url: shardedB.url, bots: setB } }, SECONDS);
        floods.push({ setup: 'sharded', counts: await stopFlood(flood), slowBot: await laneOf(shardedA.url, slow) });
        samples.push({ setup: 'sharded', set: 'A', relation: 'same pool', ...m.A }, { setup: 'sharded', set: 'B', relation: 'different pool', ...m.B });
      },
    };
    const order: Setup[] = ['clean', 'single', 'sharded'];
    // Warm-up: connections, JIT, first runs of every model.
    await measure({ A: { url: cleanPool.url, bots: setA }, B: { url: cleanPool.url, bots: setB } }, SMOKE ? 0.3 : 1);
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < order.length; i++) {
        const setup = order[(i + r) % order.length];
        await phases[setup]();
        const last = samples.slice(-2);
        log(`round ${r + 1} ${setup}: A p50 ${last[0].p50} p99 ${last[0].p99} ms (${last[0].failed} failed), B p50 ${last[1].p50} p99 ${last[1].p99} ms (${last[1].failed} failed)`);
        // Let queued slow requests reach their deadline and drain before the next phase.
        if (setup !== 'clean') await sleep(SMOKE ? 300 : 2200);
      }
    }
  } finally {
    await stopAll(children);
    fs.rmSync(work, { recursive: true, force: true });
  }

  const rows: Array<{ setup: Setup; set: 'A' | 'B'; relation: Relation; p50: Spread; p99: Spread; max: Spread; failed: number; ok: number }> = [];
  for (const setup of ['clean', 'single', 'sharded'] as Setup[]) {
    for (const set of ['A', 'B'] as const) {
      const s = samples.filter((x) => x.setup === setup && x.set === set);
      rows.push({
        setup,
        set,
        relation: s[0].relation,
        p50: spread(s.map((x) => x.p50), 2),
        p99: spread(s.map((x) => x.p99), 2),
        max: spread(s.map((x) => x.max), 2),
        failed: s.reduce((a, x) => a + x.failed, 0),
        ok: s.reduce((a, x) => a + x.ok, 0),
      });
    }
  }
  const row = (setup: Setup, set: 'A' | 'B') => rows.find((x) => x.setup === setup && x.set === set)!;
  const failedPct = (x: { failed: number; ok: number }) => round((100 * x.failed) / Math.max(1, x.failed + x.ok), 2);
  const headline = {
    /** Healthy bots in the slow bot's own pool (sharded, set A): share of their requests not answered 200. */
    isolationSamePoolFailedPct: failedPct(row('sharded', 'A')),
    /** Their p99 over the p99 of the same bots with no misbehaving bot at all (medians over rounds). */
    isolationSamePoolP99OverClean: round(row('sharded', 'A').p99.median / row('clean', 'A').p99.median, 2),
    isolationDifferentPoolFailedPct: failedPct(row('sharded', 'B')),
    isolationDifferentPoolP99OverClean: round(row('sharded', 'B').p99.median / row('clean', 'B').p99.median, 2),
    /** Every bot in one process: the healthy ones beside the bad ones. */
    isolationSingleProcessFailedPct: failedPct({ failed: row('single', 'A').failed + row('single', 'B').failed, ok: row('single', 'A').ok + row('single', 'B').ok }),
    cleanP99Ms: row('clean', 'A').p99.median,
    samePoolP99Ms: row('sharded', 'A').p99.median,
  };
  const result = {
    benchmark: 'isolation',
    headline,
    date: new Date().toISOString(),
    machine: machine(),
    setup: {
      healthyBots: HEALTHY,
      ...info,
      slowModel: `head with ${SLOW.rounds} rounds of ${SLOW.size} x ${SLOW.size} MatMul + Sigmoid`,
      flood: `${FLOOD_CONNECTIONS} connections, closed loop without pause, from a separate process`,
      rate: RATE,
      seconds: SECONDS,
      rounds: ROUNDS,
      poolEnv: POOL_ENV,
      smoke: SMOKE,
    },
    rows,
    samples,
    floods,
    seconds: Math.round((Date.now() - startedAt) / 1000),
  };
  writeResult('isolation', result, markdown(result));
  log(`wrote isolation.json and isolation.md in ${result.seconds} s`);
}

function markdown(r: any): string {
  const label: Record<string, string> = {
    'clean/A': 'no misbehaving bot at all (set A)',
    'clean/B': 'no misbehaving bot at all (set B)',
    'single/A': 'single: same pool as the bad bots (set A)',
    'single/B': 'single: same pool as the bad bots (set B)',
    'sharded/A': 'sharded: same pool as the bad bots (set A)',
    'sharded/B': 'sharded: a different pool (set B)',
  };
  const s = r.setup;
  return [
    '# Isolation: a misbehaving bot and its neighbours',
    '',
    `${r.date}, ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}. Command: \`npm run bench:isolation\`; ${r.seconds} s.`,
    '',
    `${s.healthyBots} healthy bots (bench/fleet.ts) plus a slow bot (${s.slowModel}: ${s.slowRequestMs} ms a request alone) flooded by ${s.flood}, and a bot whose model fails to load (state: ${s.brokenBotState?.state ?? 'n/a'}). Set-ups side by side, each pool a real process with the real-time group's deadline and queue (${s.poolEnv.BOTSHARD_TIMEOUT_MS} ms, ${s.poolEnv.BOTSHARD_CONCURRENCY}) and 2 inference workers: clean (the healthy bots only), single (every bot in one pool), sharded (2 pools: the bad bots share pool A with ${s.setA} healthy bots, set A; the other ${s.setB}, set B, are in pool B).`,
    `The measuring client sends ${s.rate} requests/s (alternating set A and set B, round robin over each set's bots) for ${s.seconds} s per phase; latency counts from the scheduled send. ${s.rounds} rounds, phases rotating; figures are median (min-max) over rounds; failed = non-200 answers (shed 503, deadline 504) among healthy-bot requests.`,
    '',
    '| healthy bots | p50 ms | p99 ms | max ms | failed / sent |',
    '|---|---:|---:|---:|---:|',
    ...r.rows.map((x: any) => `| ${label[`${x.setup}/${x.set}`]} | ${fmt(x.p50)} | ${fmt(x.p99)} | ${fmt(x.max)} | ${x.failed} / ${x.ok + x.failed} |`),
    '',
    `Flood answers (all rounds): ${r.floods.map((f: any) => `${f.setup} ${JSON.stringify(f.counts)}`).join('; ')}.`,
    '',
    'All pools share the same 2 cores here, so the slow bot\'s computation also takes CPU from a different pool; on a cluster, CPU limits or separate nodes would shield pool B from that too. What sharding isolates on its own: queues, worker threads and the HTTP thread of the flooded pool.',
    '',
  ].join('\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
