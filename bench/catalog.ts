/**
 * npm run bench:catalog
 *
 * What the catalog costs a process at 1,000 / 10,000 / 100,000 bots (bench/fleet.ts, pools of 1 GiB:
 * about 110 bots a pool), now that pools and router read the compact placement index.
 * - Pool: one `botshard pool` process holding one pool's bots (the median pool of the plan), from spawn
 *   to ready and its RSS 1 s after, in three set-ups alternating in each round: the catalog folder with
 *   its index (as mounted in a cluster); the same catalog as one JSON file without an index (every bot
 *   read and validated, as before the index); and the baseline: a catalog of only that pool's bots (an
 *   empty pool plus its own models). `poolCatalogMiB` = index RSS - baseline RSS.
 * - Router: one `botshard router` process over a folder holding only the index files (as the router
 *   mounts them), its RSS once ready, and how long a new catalog generation takes to be applied: from
 *   the folder's atomic swap (the new files already written, as kubelet does) to the router's "catalog
 *   changed: applied" line (fs.watch, debounce, read, plan, routing table). Against the same with the whole catalog as one file (no index).
 * - Pipeline (issue #33, bench/catalog-pipeline.ts): normalizeCatalog and plan() of 100,000 to 1,000,000
 *   synthetic bots in a fresh process each: time, CPU and peak RSS.
 * Writes bench/results/catalog.{json,md} with a `headline`.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { Catalog, isIndexFile, parseCatalog, plan, stageCatalogFolder, writeCatalogFolder } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { PIPELINE_CATALOG, PipelineRow, measurePipeline, pipelineHeadline } from './catalog-pipeline';
import { fleetBot, fleetCatalog } from './fleet';
import { Child, MiB, SMOKE, fmt, installed, log, machine, rssOf, sleep, spread, startBotshard, startPool, stopAll, tempDir, writeResult } from './processes';

const SIZES = SMOKE ? [300] : (process.env.BENCH_SIZES ?? '1000,10000,100000').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 3));
/** The largest size runs fewer rounds (each whole-catalog start takes long there). */
const LARGEST_ROUNDS = Number(process.env.BENCH_LARGEST_ROUNDS ?? (SMOKE ? 1 : 2));
const SETTLE_MS = SMOKE ? 200 : 1000;
const WORKERS = 2;
const HAPROXY = installed('haproxy', ['-v']);

type PoolSetup = 'index' | 'whole' | 'own';
interface PoolRun {
  readyMs: number;
  rssMiB: number;
}

/** The whole catalog as one JSON file: read and validated in full by whoever loads it. */
function writeWholeFile(dir: string, catalog: Catalog): string {
  const file = path.join(dir, 'catalog.json');
  fs.writeFileSync(file, JSON.stringify(catalog));
  return file;
}

async function runPool(pool: string, catalog: string, models: string): Promise<PoolRun> {
  const c = await startPool({ pool, catalog, models, workers: WORKERS });
  try {
    await sleep(SETTLE_MS);
    return { readyMs: c.readyMs, rssMiB: rssOf(c.pid) / MiB };
  } finally {
    await stopAll([c]);
  }
}

/** Starts a router (log level info, to see its "applied" line), waits until ready. */
async function startRouter(catalog: string, poolUrls: string): Promise<Child> {
  // Polling every minute: the change is seen by fs.watch, as in a cluster.
  return startBotshard({ name: 'router', env: { BOTSHARD_LOG_LEVEL: 'info', BOTSHARD_POLL_MS: '60000' }, args: ['router', '--catalog', catalog, '--pool-urls', poolUrls, '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1'] });
}

/**
 * A stand-in for the pools in front of the HAProxy control plane: answers 200 to every GET (HAProxy's
 * health checks of 888 pool servers, and "is this bot ready here" for moves). Only the control plane
 * and HAProxy are measured; 888 real pools do not fit this machine.
 */
function poolStandIn(): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ready":true}');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() })));
}

/** Starts the HAProxy mode (`botshard haproxy`) and waits until HAProxy serves ready. */
async function startHaproxyMode(catalog: string, poolUrls: string): Promise<Child> {
  return startBotshard({ name: 'haproxy', env: { BOTSHARD_LOG_LEVEL: 'info', BOTSHARD_POLL_MS: '60000' }, args: ['haproxy', '--catalog', catalog, '--pool-urls', poolUrls, '--port', '0', '--metrics-port', '0', '--haproxy-metrics-port', '0', '--host', '127.0.0.1'] });
}

/** Swaps `next` into the router's catalog location and measures until the router logs `done` for it. */
async function applyMs(router: Child, swap: () => void, generation: string, done = 'catalog changed: applied'): Promise<number> {
  const lines = readline.createInterface({ input: router.proc.stdout! });
  try {
    const applied = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the router did not apply the new generation within 120 s')), 120_000);
      lines.on('line', (line) => {
        if (line.includes(done) && line.includes(generation)) {
          clearTimeout(timer);
          resolve(performance.now());
        }
        if (line.includes('cannot be used')) reject(new Error(`the router refused the catalog: ${line}`));
      });
    });
    const started = performance.now();
    swap();
    return (await applied) - started;
  } finally {
    lines.close();
  }
}

/** The catalog with one more bot: a new generation, same pools. */
const grown = (bots: number) => parseCatalog(fleetCatalog({ bots: bots + 1 }));

async function main(): Promise<void> {
  const startedAt = Date.now();
  const work = tempDir('catalog');
  const sizes: Record<string, unknown>[] = [];
  const pipeline: PipelineRow[] = measurePipeline();
  const headline: Record<string, number> = pipelineHeadline(pipeline);
  try {
    const models = path.join(work, 'models');
    writeDemoModels(parseCatalog(fleetCatalog({ bots: Math.max(...SIZES) + 1 })), models);
    for (const bots of SIZES) {
      const t0 = Date.now();
      const catalog = parseCatalog(fleetCatalog({ bots }));
      const topology = plan(catalog);
      const byCount = [...topology.pools].sort((a, b) => a.bots.length - b.bots.length || (a.name < b.name ? -1 : 1));
      const pool = byCount[Math.floor(byCount.length / 2)];
      const dir = path.join(work, `${bots}`);
      const folder = path.join(dir, 'folder');
      writeCatalogFolder(folder, catalog);
      const whole = writeWholeFile(dir, catalog);
      // The baseline: the same bots (same models) as the only bots of a catalog: one pool.
      const own = parseCatalog({ ...fleetCatalog({ bots: 0, pools: 1 }), bots: pool.bots.map((id) => fleetBot(Number(id.slice('bot-'.length)))) });
      const ownTopology = plan(own);
      if (ownTopology.pools.length !== 1) throw new Error(`the baseline catalog of ${pool.bots.length} bots needs ${ownTopology.pools.length} pools`);
      const ownFolder = path.join(dir, 'own');
      writeCatalogFolder(ownFolder, own);
      const urls = path.join(dir, 'pool-urls.json');
      fs.writeFileSync(urls, JSON.stringify(Object.fromEntries(topology.pools.map((p, i) => [p.name, `http://127.0.0.1:${20000 + i}`]))));
      const bytes = (d: string, keep: (f: string) => boolean) => fs.readdirSync(d).filter((f) => !f.startsWith('.') && keep(f)).reduce((n, f) => n + fs.statSync(path.join(d, f)).size, 0);
      log(`${bots} bots: catalogs written in ${Date.now() - t0} ms; pool ${pool.name} holds ${pool.bots.length} bots of ${topology.pools.length} pools`);

      const rounds = bots === Math.max(...SIZES) ? Math.min(ROUNDS, LARGEST_ROUNDS) : ROUNDS;
      const pools: Record<PoolSetup, PoolRun[]> = { index: [], whole: [], own: [] };
      await runPool(ownTopology.pools[0].name, ownFolder, models); // warm-up (page cache), not counted
      for (let r = 0; r < rounds; r++) {
        const order: PoolSetup[] = r % 2 ? ['own', 'whole', 'index'] : ['index', 'whole', 'own'];
        for (const setup of order) {
          const run = setup === 'index' ? await runPool(pool.name, folder, models) : setup === 'whole' ? await runPool(pool.name, whole, models) : await runPool(ownTopology.pools[0].name, ownFolder, models);
          pools[setup].push(run);
          log(`  pool (${setup}): ready in ${Math.round(run.readyMs)} ms, RSS ${run.rssMiB.toFixed(1)} MiB`);
        }
      }

      // The router: index only (as mounted), then the whole catalog as one file; each applies a new generation.
      const next = grown(bots);
      const router: Record<'index' | 'whole', { rssMiB: number; readyMs: number; applyMs: number; applyRssMiB: number }[]> = { index: [], whole: [] };
      for (let r = 0; r < rounds; r++) {
        for (const setup of (r % 2 ? ['whole', 'index'] : ['index', 'whole']) as Array<'index' | 'whole'>) {
          const location = setup === 'index' ? path.join(dir, `router-${r}`) : path.join(dir, `whole-${r}.json`);
          // The router's mount: the index files only (it never opens the parts).
          if (setup === 'index') writeCatalogFolder(location, catalog, { only: isIndexFile });
          else fs.copyFileSync(whole, location);
          const c = await startRouter(location, urls);
          try {
            await sleep(SETTLE_MS);
            const rssMiB = rssOf(c.pid) / MiB;
            // The next generation written beside the current one first; timed from the swap (kubelet's ..data
            // rename, or a file's rename) to the router's "applied".
            let swap: () => void;
            if (setup === 'index') swap = stageCatalogFolder(location, next, { only: isIndexFile });
            else {
              fs.writeFileSync(`${location}.tmp`, JSON.stringify(next));
              swap = () => fs.renameSync(`${location}.tmp`, location);
            }
            const ms = await applyMs(c, swap, next.generation);
            await sleep(SETTLE_MS);
            router[setup].push({ rssMiB, readyMs: c.readyMs, applyMs: ms, applyRssMiB: rssOf(c.pid) / MiB });
            log(`  router (${setup}): ready in ${Math.round(c.readyMs)} ms, RSS ${rssMiB.toFixed(1)} MiB, new generation applied in ${Math.round(ms)} ms (RSS then ${(rssOf(c.pid) / MiB).toFixed(1)} MiB)`);
          } finally {
            await stopAll([c]);
          }
        }
      }
      // The HAProxy mode (the manifests' default): its control plane reads the index, plans, and pushes the
      // bots map of every bot through HAProxy's Runtime API; timed from the swap to "HAProxy routes the
      // catalog generation" (the map committed).
      const haproxy: { rssMiB: number; readyMs: number; applyMs: number }[] = [];
      if (HAPROXY) {
        const standIn = await poolStandIn();
        const standInUrls = path.join(dir, 'pool-urls-stand-in.json');
        fs.writeFileSync(standInUrls, JSON.stringify(Object.fromEntries(topology.pools.map((p) => [p.name, standIn.url]))));
        try {
          for (let r = 0; r < rounds; r++) {
            const location = path.join(dir, `haproxy-${r}`);
            writeCatalogFolder(location, catalog, { only: isIndexFile });
            const c = await startHaproxyMode(location, standInUrls);
            try {
              await sleep(SETTLE_MS);
              const rssMiB = rssOf(c.pid) / MiB;
              const ms = await applyMs(c, stageCatalogFolder(location, next, { only: isIndexFile }), next.generation, 'HAProxy routes the catalog generation');
              haproxy.push({ rssMiB, readyMs: c.readyMs, applyMs: ms });
              log(`  HAProxy mode: ready in ${Math.round(c.readyMs)} ms, control plane RSS ${rssMiB.toFixed(1)} MiB, new generation routed in ${Math.round(ms)} ms`);
            } finally {
              await stopAll([c]);
            }
          }
        } finally {
          standIn.close();
        }
      }
      const s = (xs: number[], digits = 1) => spread(xs, digits);
      const row = {
        bots,
        pools: topology.pools.length,
        pool: { name: pool.name, bots: pool.bots.length },
        catalogBytes: bytes(folder, (f) => !isIndexFile(f)),
        indexBytes: bytes(folder, isIndexFile),
        poolReadyMs: { index: s(pools.index.map((p) => p.readyMs), 0), whole: s(pools.whole.map((p) => p.readyMs), 0), own: s(pools.own.map((p) => p.readyMs), 0) },
        poolRssMiB: { index: s(pools.index.map((p) => p.rssMiB)), whole: s(pools.whole.map((p) => p.rssMiB)), own: s(pools.own.map((p) => p.rssMiB)) },
        poolCatalogMiB: { index: s(pools.index.map((p, i) => p.rssMiB - pools.own[i].rssMiB)), whole: s(pools.whole.map((p, i) => p.rssMiB - pools.own[i].rssMiB)) },
        routerRssMiB: { index: s(router.index.map((x) => x.rssMiB)), whole: s(router.whole.map((x) => x.rssMiB)) },
        routerReadyMs: { index: s(router.index.map((x) => x.readyMs), 0), whole: s(router.whole.map((x) => x.readyMs), 0) },
        routerApplyMs: { index: s(router.index.map((x) => x.applyMs), 0), whole: s(router.whole.map((x) => x.applyMs), 0) },
        routerRssAfterApplyMiB: { index: s(router.index.map((x) => x.applyRssMiB)), whole: s(router.whole.map((x) => x.applyRssMiB)) },
        ...(haproxy.length > 0
          ? { haproxyMode: { controlRssMiB: s(haproxy.map((x) => x.rssMiB)), readyMs: s(haproxy.map((x) => x.readyMs), 0), applyMs: s(haproxy.map((x) => x.applyMs), 0) } }
          : {}),
      };
      sizes.push(row);
      const k = bots >= 1000 ? `${bots / 1000}k` : `${bots}`;
      headline[`poolReadyMs${k}`] = row.poolReadyMs.index.median;
      headline[`poolCatalogMiB${k}`] = row.poolCatalogMiB.index.median;
      headline[`poolCatalogMiBWhole${k}`] = row.poolCatalogMiB.whole.median;
      headline[`routerRssMiB${k}`] = row.routerRssMiB.index.median;
      headline[`routerApplyMs${k}`] = row.routerApplyMs.index.median;
      headline[`routerApplyMsWhole${k}`] = row.routerApplyMs.whole.median;
      if (row.haproxyMode) {
        headline[`haproxyControlRssMiB${k}`] = row.haproxyMode.controlRssMiB.median;
        headline[`haproxyApplyMs${k}`] = row.haproxyMode.applyMs.median;
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const seconds = Math.round((Date.now() - startedAt) / 1000);
  const result = { benchmark: 'catalog', date: new Date().toISOString(), command: 'npm run bench:catalog', seconds, machine: machine(), rounds: ROUNDS, workersPerPool: WORKERS, headline, sizes, pipeline: { catalog: PIPELINE_CATALOG, rows: pipeline } };
  const r = result as any;
  const md = [
    '# The catalog at fleet scale: what pools and router pay for it',
    '',
    `${r.date}, ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}. Command: \`${r.command}\`; ${seconds} s.`,
    '',
    `Catalog: bench/fleet.ts (one real-time group, 8 shared encoders, pools of 1 GiB). Each pool process holds the median pool of the plan, ${WORKERS} inference workers; "index" reads the catalog folder with its placement index (as mounted in a cluster), "whole" the same catalog as one JSON file without an index (every bot read and validated: how every pool read it before the index), "own" a catalog of only that pool's bots (the baseline: an empty pool plus its own models). RSS 1 s after ready. Median (min-max) over ${ROUNDS} rounds (the largest size: ${Math.min(ROUNDS, LARGEST_ROUNDS)}), the set-ups alternating in each round.`,
    '',
    '| bots | pools | pool holds | catalog parts | index | pool ready ms (index / whole / own) | pool RSS MiB (index / whole / own) | catalog in the pool, MiB (index / whole) |',
    '|---:|---:|---:|---:|---:|---|---|---|',
    ...sizes.map((x: any) => `| ${x.bots} | ${x.pools} | ${x.pool.bots} | ${(x.catalogBytes / MiB).toFixed(1)} MiB | ${(x.indexBytes / MiB).toFixed(2)} MiB | ${fmt(x.poolReadyMs.index)} / ${fmt(x.poolReadyMs.whole)} / ${fmt(x.poolReadyMs.own)} | ${fmt(x.poolRssMiB.index)} / ${fmt(x.poolRssMiB.whole)} / ${fmt(x.poolRssMiB.own)} | ${fmt(x.poolCatalogMiB.index)} / ${fmt(x.poolCatalogMiB.whole)} |`),
    '',
    'The Node router over the index files only (as its pods mount them) and over the whole catalog as one file; "apply" is from the catalog\'s atomic swap to the router\'s "catalog changed: applied" line (fs.watch, 50 ms debounce, read, plan, routing table of two generations), for a catalog with one more bot.',
    '',
    '| bots | router ready ms (index / whole) | router RSS MiB (index / whole) | new generation applied, ms (index / whole) | RSS after, MiB (index / whole) |',
    '|---:|---|---|---|---|',
    ...sizes.map((x: any) => `| ${x.bots} | ${fmt(x.routerReadyMs.index)} / ${fmt(x.routerReadyMs.whole)} | ${fmt(x.routerRssMiB.index)} / ${fmt(x.routerRssMiB.whole)} | ${fmt(x.routerApplyMs.index)} / ${fmt(x.routerApplyMs.whole)} | ${fmt(x.routerRssAfterApplyMiB.index)} / ${fmt(x.routerRssAfterApplyMiB.whole)} |`),
    '',
    HAPROXY
      ? 'The HAProxy mode (`botshard haproxy`, the manifests\' default) over the index files only: its control plane reads the index, plans and pushes the bots map (one entry per bot) through HAProxy\'s Runtime API; "routed" is from the swap to its "HAProxy routes the catalog generation" line (the map committed). Its pools are a stand-in answering 200 to every GET (health checks, bot readiness): only the control plane and HAProxy are measured. RSS is the control plane\'s (Node), HAProxy\'s own process apart.'
      : 'The HAProxy mode is not measured: HAProxy is not installed (apt-get install haproxy).',
    '',
    ...(HAPROXY
      ? [
          '| bots | ready ms | control plane RSS MiB | new generation routed, ms |',
          '|---:|---|---|---|',
          ...sizes.filter((x: any) => x.haproxyMode).map((x: any) => `| ${x.bots} | ${fmt(x.haproxyMode.readyMs)} | ${fmt(x.haproxyMode.controlRssMiB)} | ${fmt(x.haproxyMode.applyMs)} |`),
          '',
        ]
      : []),
    ...pipelineMd(pipeline),
    `Headline: ${Object.entries(headline).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
  ].join('\n');
  writeResult('catalog', result, md);
  log(md);
}

/** The pipeline rows as a table (bench/catalog-pipeline.ts). */
function pipelineMd(rows: PipelineRow[]): string[] {
  const perBot = (ms: number, bots: number) => ((ms * 1000) / bots).toFixed(1);
  return [
    `The catalog pipeline (issue #33): \`normalizeCatalog\` then \`plan()\` of a synthetic catalog (${PIPELINE_CATALOG.generator}: locality ${PIPELINE_CATALOG.locality}, groups ${PIPELINE_CATALOG.groups}, pools of ${PIPELINE_CATALOG.poolMemory}), in a fresh process per round that does only that and drops the input once normalised. Wall time (and the process's CPU time: the machine is shared), peak RSS (VmHWM, the process's own ${rows[0]?.processRssMiB.median ?? '?'} MiB included), the generation alone (canonical JSON and XXH64, part of normalize) and the catalog's size as JSON. Median (min-max) over ${rows[0]?.normalizeMs.runs ?? 0} rounds. The last row: every bot with two rewrite rules and an entity rule, the same patterns for all.`,
    '',
    '| bots | pools | catalog JSON | normalize ms (CPU) | µs a bot | of which the generation, ms | plan ms (CPU) | µs a bot | peak RSS MiB |',
    '|---:|---:|---:|---|---:|---|---|---:|---|',
    ...rows.map((x) => `| ${x.bots}${x.rules ? ', 3 rules each' : ''} | ${x.pools} | ${(x.catalogJsonBytes / 1e6).toFixed(0)} MB | ${fmt(x.normalizeMs)} (${x.normalizeCpuMs.median}) | ${perBot(x.normalizeMs.median, x.bots)} | ${fmt(x.generationMs)} | ${fmt(x.planMs)} (${x.planCpuMs.median}) | ${perBot(x.planMs.median, x.bots)} | ${fmt(x.peakRssMiB)} |`),
    '',
  ];
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
