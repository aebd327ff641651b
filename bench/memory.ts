/**
 * `npm run bench:memory`: where an idle pool's memory goes.
 *
 * 1. The floor of the stack: child processes that load, in order, what a pool loads (Node; fastify;
 *    grpc-js and protobufjs with the protocol's .proto; prom-client and re2; one worker thread that
 *    loads onnxruntime-node, as a pool's inference thread does), with RSS after each step.
 * 2. An idle pool: a pool name that holds no bot of a 1,000-bot synthetic catalog, so it loads no model,
 *    started as the manifests start pools (botshard's Node options). RSS with 1 and 2 inference workers,
 *    START_UP_MS after ready (start-up) and settled (SETTLED_MS after ready), and its peak (VmHWM);
 *    PSS alone, and PSS with 4 idle pools running at once (pools on one node share the libraries' pages); its
 *    breakdown from /proc/<pid>/smaps (Node's binary, onnxruntime, other libraries, anonymous memory)
 *    and its V8 heap from its own metrics (`nodejs_heap_size_*`), settled.
 * 3. Measured against actual, per model: a pool with one inference worker holds a tiny bot, is warmed by
 *    requests and settled, then its catalog gains a bot whose head is as large as it declares
 *    (`--sized` demo heads of MEASURE_MIB); what the process grew by, after its first requests, is the independent
 *    measurement the pool's own `measured_bytes` is compared with.
 * Rounds alternate 1 and 2 workers; medians (min-max).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Catalog, CatalogInput, PROCESS_ENV, nodeArgs, parseCatalog, plan, writeCatalogFolder } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { Child, MiB, ROOT, SMOKE, Spread, fmt, log, machine, peakRssOf, pssOf, round, rssOf, sleep, spread, startBotshard, stopAll, tempDir, writeResult } from './processes';
import { syntheticCatalog } from './synthetic';

const ROUNDS = SMOKE ? 1 : Number(process.env.BENCH_ROUNDS ?? 3);
/** After ready, the start-up reading of an idle pool: before V8's memory reducer has run. Whole seconds. */
const START_UP_MS = SMOKE ? 1000 : 3000;
/**
 * After ready, before measuring an idle pool settled: V8's memory reducer runs its first compacting GCs
 * several seconds after a process goes idle and gives back what start-up left on the heap, in up to
 * three steps (the idle pool's RSS second by second is in the results). A pool idles for hours, and
 * the floor is measured after a full GC at each step: the settled figure is the one to hold against it.
 */
const SETTLED_MS = SMOKE ? 2000 : 25_000;
const COLOCATED = 4;
/** Declared sizes of the heads measured in part 3, MiB. */
const MEASURE_MIB = SMOKE ? [16] : [16, 64];

type Pool = Child & { metricsPort: number };

/** A `botshard pool` process, as the manifests run it (botshard's Node options and environment), once it reports ready. */
async function startPool(catalog: string, models: string, pool: string, workers: number): Promise<Pool> {
  const child = await startBotshard({
    name: pool,
    env: { BOTSHARD_WORKERS: String(workers) },
    args: ['pool', '--pool', pool, '--catalog', catalog, '--models', models, '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1'],
  });
  if (child.metricsPort === undefined) throw new Error(`pool ${pool} reported no metrics port`);
  return child as Pool;
}

/** A process's RSS each second from now until `ms` have passed, MiB. */
async function rssEverySecond(pid: number, ms: number): Promise<number[]> {
  const out: number[] = [];
  const start = performance.now();
  for (let s = 1; s <= Math.ceil(ms / 1000); s++) {
    await sleep(start + s * 1000 - performance.now());
    out.push(rssOf(pid) / MiB);
  }
  return out;
}

/** RSS of a process by mapping: Node's binary, onnxruntime, other libraries, anonymous memory (heaps, stacks, allocations); MiB. */
function breakdown(pid: number): Record<string, number> {
  const out: Record<string, number> = { node: 0, onnxruntime: 0, libraries: 0, anonymous: 0 };
  let kind = 'anonymous';
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) {
      const name = mapping[1];
      kind = name === '' || name.startsWith('[') ? 'anonymous' : name === process.execPath || /\/node$/.test(name) ? 'node' : /onnxruntime/.test(name) ? 'onnxruntime' : 'libraries';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] += Number(rss[1]) / 1024;
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, round(v)]));
}

/** The main thread's V8 heap, from the pool's own metrics: used and total, MiB. */
async function v8Heap(metricsPort: number): Promise<{ usedMiB: number; totalMiB: number }> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / MiB;
  return { usedMiB: round(value('nodejs_heap_size_used_bytes')), totalMiB: round(value('nodejs_heap_size_total_bytes')) };
}

/** The stack's floor: RSS after each step of loading what a pool loads, in one child process per round. */
function floor(): Array<{ step: string; rssMiB: number }> {
  const proto = path.join(ROOT, 'runtime/proto/open_inference_grpc.proto');
  const script = `
    const { Worker } = require('node:worker_threads');
    const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
    const steps = [
      ['Node', () => {}],
      ['+ fastify', () => require('fastify')],
      ['+ grpc-js, protobufjs and the protocol', () => { require('@grpc/grpc-js'); const pb = require(require.resolve('protobufjs', { paths: [${JSON.stringify(path.join(ROOT, 'runtime'))}] })); new pb.Root().loadSync(${JSON.stringify(proto)}, { keepCase: true }).resolveAll(); }],
      ['+ prom-client and re2', () => { require('prom-client'); require('re2'); }],
    ];
    (async () => {
      const out = [];
      for (const [step, load] of steps) { load(); global.gc(); await new Promise((r) => setTimeout(r, 300)); out.push({ step, rssMiB: rss() }); }
      const worker = new Worker("require('onnxruntime-node'); require('node:worker_threads').parentPort.postMessage(1)", { eval: true });
      await new Promise((r) => worker.once('message', r));
      await new Promise((r) => setTimeout(r, 500));
      out.push({ step: '+ one worker thread with onnxruntime-node', rssMiB: rss() });
      console.log(JSON.stringify(out));
      process.exit(0);
    })();`;
  const r = spawnSync(process.execPath, [...nodeArgs(), '--expose-gc', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...PROCESS_ENV, ...process.env } });
  if (r.status !== 0) throw new Error(`the floor script failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** One pool of one group: a tiny bot, and with `heavy` a second one declared `mib` MiB. */
function measureCatalog(mib: number, heavy: boolean): Catalog {
  const bot = (id: string, memory: string) => ({
    id,
    tenant: 'acme',
    realtime: true,
    model: { head: `heads/${id}.onnx`, memory },
    intents: [
      { name: 'yes', examples: ['yes please', 'sure thing', 'absolutely yes'] },
      { name: 'no', examples: ['no thanks', 'not at all', 'absolutely not'] },
    ],
  });
  const input: CatalogInput = { tenants: [{ id: 'acme' }], groups: [{ name: 'rt', realtime: true, memory: '2Gi', pools: 1, locality: 'none' }], bots: [bot('tiny', '1Mi'), ...(heavy ? [bot('heavy', `${mib}Mi`)] : [])] };
  return parseCatalog(input);
}

/** Predictions for `bot`, `n` of them one after another. */
async function predict(port: number, bot: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await fetch(`http://127.0.0.1:${port}/v1/bots/${bot}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'yes please' }) });
    if (r.status !== 200) throw new Error(`predict ${bot}: ${r.status} ${await r.text()}`);
  }
}

/**
 * A head of `mib` MiB loaded into a warmed pool: its `measured_bytes` and what the process grew by (RSS,
 * after its first requests).
 */
async function measureOne(work: string, mib: number): Promise<{ fileBytes: number; measuredBytes: number; grewBytes: number }> {
  const [tinyOnly, both] = [measureCatalog(mib, false), measureCatalog(mib, true)];
  const models = path.join(work, `measure-${mib}`);
  writeDemoModels(both, models, { sized: true });
  const fileBytes = fs.statSync(path.join(models, 'heads/heavy.onnx')).size;
  const dir = path.join(work, `measure-catalog-${mib}`);
  fs.rmSync(dir, { recursive: true, force: true });
  writeCatalogFolder(dir, tinyOnly);
  const name = plan(both).pools[0].name;
  if (plan(tinyOnly).pools[0].name !== name) throw new Error('the measured pool changed its name');
  const pool = await startPool(dir, models, name, 1);
  try {
    // Warmed first (heaps and compiled code grown by serving) and settled (what V8's memory reducer gives
    // back must not count against the model), so that what the process grows by next is the model.
    await predict(pool.port, 'tiny', SMOKE ? 200 : 1500);
    await sleep(SETTLED_MS);
    const before = rssOf(pool.pid);
    writeCatalogFolder(dir, both);
    for (let i = 0; ; i++) {
      if ((await fetch(`http://127.0.0.1:${pool.port}/v2/models/heavy/ready`)).status === 200) break;
      if (i > 600) throw new Error('heavy did not load within 30 s');
      await sleep(50);
    }
    // Its first requests, whose allocations are the model's too (onnxruntime's buffers for its tensors).
    await predict(pool.port, 'heavy', 100);
    const grewBytes = rssOf(pool.pid) - before;
    const meta = (await (await fetch(`http://127.0.0.1:${pool.port}/v2/models/heavy`)).json()) as { parameters: { measured_bytes: number } };
    return { fileBytes, measuredBytes: meta.parameters.measured_bytes, grewBytes };
  } finally {
    await stopAll([pool.proc]);
    fs.rmSync(models, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const work = tempDir('memory');
  const catalog = parseCatalog(syntheticCatalog({ bots: 1000 }));
  const dir = path.join(work, 'catalog');
  writeCatalogFolder(dir, catalog);
  log('catalog ready');

  const floors: Record<string, number[]> = {};
  const rss: Record<string, number[]> = { 1: [], 2: [] };
  const rssStartUp: Record<string, number[]> = { 1: [], 2: [] };
  const peak: number[] = [];
  const timelines: number[][] = [];
  const pssAlone: number[] = [];
  const pssColocated: number[] = [];
  const parts: Record<string, number[]> = {};
  const heap: Record<string, number[]> = { usedMiB: [], totalMiB: [] };
  const measures: Record<number, Array<{ fileBytes: number; measuredBytes: number; grewBytes: number }>> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const f of floor()) (floors[f.step] ??= []).push(f.rssMiB);
    for (const workers of r % 2 ? [2, 1] : [1, 2]) {
      const pool = await startPool(dir, work, 'idle-pool', workers);
      try {
        const seconds = await rssEverySecond(pool.pid, SETTLED_MS);
        rssStartUp[workers].push(seconds[START_UP_MS / 1000 - 1]);
        rss[workers].push(seconds.at(-1)!);
        if (workers !== 1) continue;
        timelines.push(seconds);
        peak.push(peakRssOf(pool.pid) / MiB);
        pssAlone.push(pssOf(pool.pid) / MiB);
        for (const [k, v] of Object.entries(breakdown(pool.pid))) (parts[k] ??= []).push(v);
        const h = await v8Heap(pool.metricsPort);
        heap.usedMiB.push(h.usedMiB);
        heap.totalMiB.push(h.totalMiB);
      } finally {
        await stopAll([pool.proc]);
      }
    }
    // Pools on one node: 4 idle pools at once, the PSS of each.
    const colocated: Pool[] = [];
    try {
      for (let i = 0; i < COLOCATED; i++) colocated.push(await startPool(dir, work, `idle-pool-${i}`, 1));
      await sleep(SETTLED_MS);
      for (const p of colocated) pssColocated.push(pssOf(p.pid) / MiB);
    } finally {
      await stopAll(colocated.map((p) => p.proc));
    }
    log(`round ${r + 1}: idle pool ${round(rss[1].at(-1)!)} MiB RSS settled with 1 worker (${round(rssStartUp[1].at(-1)!)} at start-up), ${round(rss[2].at(-1)!)} with 2`);
    for (const mib of MEASURE_MIB) {
      const m = await measureOne(work, mib);
      (measures[mib] ??= []).push(m);
      log(`round ${r + 1}: a ${mib} MiB head: measured ${round(m.measuredBytes / MiB)} MiB, the process grew by ${round(m.grewBytes / MiB)} MiB (file ${round(m.fileBytes / MiB)} MiB)`);
    }
  }

  const floorSteps = Object.entries(floors).map(([step, xs]) => ({ step, rssMiB: spread(xs) }));
  const stackFloor = floorSteps.at(-1)!.rssMiB.median;
  const idle1 = spread(rss[1]);
  const measured = MEASURE_MIB.map((mib) => ({
    declaredMiB: mib,
    fileMiB: spread(measures[mib].map((m) => m.fileBytes / MiB)),
    measuredMiB: spread(measures[mib].map((m) => m.measuredBytes / MiB)),
    grewMiB: spread(measures[mib].map((m) => m.grewBytes / MiB)),
    measuredOverGrew: spread(measures[mib].map((m) => m.measuredBytes / m.grewBytes), 2),
  }));
  const headline = {
    idlePoolRssMiB1Worker: idle1.median,
    idlePoolRssMiB1WorkerStartUp: spread(rssStartUp[1]).median,
    idlePoolPeakRssMiB1Worker: spread(peak).median,
    idlePoolRssMiB2Workers: spread(rss[2]).median,
    idlePoolPssMiB1Worker: spread(pssColocated).median,
    idlePoolPssMiB1WorkerAlone: spread(pssAlone).median,
    stackFloorRssMiB: stackFloor,
    idlePoolOverFloorMiB: round(idle1.median - stackFloor),
    measuredOverActualModelBytes: spread(Object.values(measures).flat().map((m) => m.measuredBytes / m.grewBytes), 2).median,
  };
  const result = {
    benchmark: 'memory',
    date: new Date().toISOString(),
    machine: machine(),
    rounds: ROUNDS,
    setup: { catalogBots: catalog.bots.length, idlePool: 'a pool name that holds no bot of the catalog (it loads no model)', colocatedPools: COLOCATED, nodeOptions: nodeArgs().join(' '), startUpMs: START_UP_MS, settledMs: SETTLED_MS },
    headline,
    floor: floorSteps,
    idlePool: {
      rssMiB1Worker: idle1,
      rssMiB2Workers: spread(rss[2]),
      startUpRssMiB1Worker: spread(rssStartUp[1]),
      startUpRssMiB2Workers: spread(rssStartUp[2]),
      peakRssMiB1Worker: spread(peak),
      /** RSS with 1 worker each second after ready (second 1, 2, ...): median over rounds. */
      rssEverySecondMiB1Worker: timelines[0].map((_, i) => spread(timelines.map((t) => t[i])).median),
      pssMiB1WorkerAlone: spread(pssAlone),
      pssMiB1WorkerColocated: spread(pssColocated),
      breakdownMiB1Worker: Object.fromEntries(Object.entries(parts).map(([k, xs]) => [k, spread(xs)])),
      v8HeapMiB1Worker: { used: spread(heap.usedMiB), total: spread(heap.totalMiB) },
    },
    measured,
  };
  writeResult('memory', result, markdown(result));
  fs.rmSync(work, { recursive: true, force: true });
  console.log(markdown(result));
}

type Measured = Array<{ declaredMiB: number; fileMiB: Spread; measuredMiB: Spread; grewMiB: Spread; measuredOverGrew: Spread }>;

function markdown(r: { date: string; rounds: number; setup: { catalogBots: number; nodeOptions: string; startUpMs: number; settledMs: number }; floor: Array<{ step: string; rssMiB: Spread }>; idlePool: Record<string, any>; measured: Measured }): string {
  const p = r.idlePool;
  return [
    '# Pool memory benchmark',
    '',
    `${r.date}. Command: \`npm run bench:memory\`. ${r.rounds} rounds; median (min-max). Node options: \`${r.setup.nodeOptions}\`.`,
    '',
    '## The floor of the stack (one process, loading in this order)',
    '',
    '| step | RSS MiB |',
    '|---|---:|',
    ...r.floor.map((f) => `| ${f.step} | ${fmt(f.rssMiB)} |`),
    '',
    `## An idle pool (no model; a ${r.setup.catalogBots}-bot catalog)`,
    '',
    `- RSS settled (${r.setup.settledMs / 1000} s after ready, V8's memory reducer done): ${fmt(p.rssMiB1Worker, ' MiB')} with 1 inference worker, ${fmt(p.rssMiB2Workers, ' MiB')} with 2.`,
    `- RSS at start-up (${r.setup.startUpMs / 1000} s after ready): ${fmt(p.startUpRssMiB1Worker, ' MiB')} with 1 inference worker, ${fmt(p.startUpRssMiB2Workers, ' MiB')} with 2. Peak (VmHWM) with 1 worker: ${fmt(p.peakRssMiB1Worker, ' MiB')}.`,
    `- RSS with 1 worker, each second after ready (median over rounds): ${(p.rssEverySecondMiB1Worker as number[]).map((x, i) => `${i + 1} s ${x}`).join(', ')} MiB.`,
    `- PSS with 1 worker, settled: ${fmt(p.pssMiB1WorkerColocated, ' MiB')} with ${COLOCATED} idle pools running at once, ${fmt(p.pssMiB1WorkerAlone, ' MiB')} alone.`,
    `- RSS by mapping (1 worker, settled): ${Object.entries(p.breakdownMiB1Worker as Record<string, Spread>).map(([k, s]) => `${k} ${fmt(s, ' MiB')}`).join(', ')}.`,
    `- The main thread's V8 heap: ${fmt(p.v8HeapMiB1Worker.used, ' MiB')} used of ${fmt(p.v8HeapMiB1Worker.total, ' MiB')}.`,
    '',
    "## Measured against actual: a head as large as it declares, loaded into a warmed pool (1 worker)",
    '',
    "| declared | file MiB | the pool's measured_bytes, MiB | the process grew by, MiB | measured / grew |",
    '|---:|---:|---:|---:|---:|',
    ...r.measured.map((m) => `| ${m.declaredMiB} MiB | ${fmt(m.fileMiB)} | ${fmt(m.measuredMiB)} | ${fmt(m.grewMiB)} | ${fmt(m.measuredOverGrew)} |`),
  ].join('\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
