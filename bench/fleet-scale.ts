/**
 * npm run bench:fleet
 *
 * How the catalog reaches pools at fleet scale (docs/fleet-scale.md), measured on a 1,000,000-bot synthetic
 * catalog (`syntheticCatalog({ bots, locality: 'encoder' })`: two groups, real-time and batch, pools
 * sized `auto`) and on 10,000 bots (the small-fleet path), for three designs:
 * - today: the ConfigMap folder and its JSON placement index (runtime/src/catalog/placement-index.ts);
 * - packed: the packed placement index (runtime/src/catalog/packed-index.ts) in the model store, a pool
 *   reading its own group's parts;
 * - publish: CI plans once and writes one shard per pool (its bots' definitions, its assignment, the
 *   index's name) and the router's table; a pool reads its shard only.
 * The bots are normalized with `normalizeCatalog` in chunks of 50,000 (the whole catalog at once is what
 * bench:catalog measures); at 10,000 bots the chunks are checked against one whole normalization.
 * Memory and time are measured in child processes (node --expose-gc): the bytes a process holds after
 * reading (heap + external, after a full GC, less the same before reading), its RSS, and the time from
 * reading the first byte to knowing its own pool's bots. Bytes fetched when one bot changes come from the
 * objects themselves (one bot's head grows by 1 MiB, and one bot is added).
 * Writes bench/results/fleet.{json,md} with a `headline`, and the table of docs/fleet-scale.md.
 * FLEET_DOC_ONLY=1 renders fleet.md and the doc's table again from fleet.json, measuring nothing.
 * The file is not bench/fleet.ts: that one is the catalog the other benchmarks share.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CATALOG_API_VERSION, CatalogIndex, CatalogInput, IndexBot, IndexPart, IndexRow, Topology, U64, indexBotOf, indexText, normalizeCatalog, placementProperties, plan, readIndex, toHex, xxh64 } from '@botshard/runtime';
import { chunk } from '@botshard/runtime/catalog/parts';
import { DEFAULT_RECORDS_PER_PART, PackedIndex, packIndex, partsToFetch, readPackedIndex } from '@botshard/runtime/catalog/packed-index';
import { DEFAULT_RESULTS, DOC_BEGIN, DOC_END, renderFleetTable } from './figures';
import { MiB, RESULTS, ROOT, SMOKE, log, machine, round, spread, tempDir, writeResult } from './processes';
import { syntheticCatalog } from './synthetic';

const BOTS = SMOKE ? 3000 : Number(process.env.BENCH_FLEET_BOTS ?? 1_000_000);
const SMALL = SMOKE ? 500 : 10_000;
const CHUNK = SMOKE ? 1000 : 50_000;
const ROUNDS = SMOKE ? 1 : Number(process.env.BENCH_ROUNDS ?? 3);
const SWEEP = SMOKE ? [] : [256, 4096];
const CONFIGMAP_PART = 900 * 1024;
const TS_NODE = require.resolve('ts-node/dist/bin.js', { paths: [ROOT] });

/** The ConfigMap GitOps applies in the packed and publish designs: it names the generation and the manifest. */
const pointerConfigMap = (generation: string, manifest: string) =>
  JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'botshard-catalog', namespace: 'botshard', labels: { 'app.kubernetes.io/part-of': 'botshard' } }, data: { generation, manifest: `sha256:${manifest}`, store: 's3://botshard-models/catalog/' } });

// ---------------------------------------------------------------- the catalog

interface Fleet {
  input: CatalogInput;
  index: CatalogIndex;
  /** XXH64 of each bot's normalized definition JSON (hi, lo), and that JSON's length, as in index.bots. */
  definitions: Uint32Array;
  jsonBytes: Uint32Array;
  normalizeMs: number;
}

/** The synthetic catalog normalized in chunks: every bot's index entry, definition hash and JSON size. */
function fleetOf(bots: number, chunkSize: number): Fleet {
  const input = syntheticCatalog({ bots, locality: 'encoder' });
  const started = performance.now();
  const head = normalizeCatalog({ ...input, bots: [] });
  if (!head.ok) throw new Error(`the synthetic settings do not normalize: ${JSON.stringify(head.problems.slice(0, 3))}`);
  const keep = placementProperties(head.catalog);
  const out: IndexBot[] = [];
  const definitions = new Uint32Array(2 * bots);
  const jsonBytes = new Uint32Array(bots);
  for (let from = 0; from < bots; from += chunkSize) {
    const r = normalizeCatalog({ ...input, bots: input.bots.slice(from, from + chunkSize) });
    if (!r.ok) throw new Error(`bots ${from}.. do not normalize: ${JSON.stringify(r.problems.slice(0, 3))}`);
    for (const bot of r.catalog.bots) {
      const json = JSON.stringify(bot);
      const h = xxh64(json);
      definitions[2 * out.length] = h.hi;
      definitions[2 * out.length + 1] = h.lo;
      jsonBytes[out.length] = Buffer.byteLength(json);
      out.push(indexBotOf(bot, keep));
    }
    log(`  normalized ${Math.min(bots, from + chunkSize)} of ${bots} bots`);
  }
  const { bots: _b, ...settings } = head.catalog;
  // A stand-in generation: the whole catalog's hash needs the whole catalog normalized at once.
  const generation = toHex(xxh64(new Uint8Array(definitions.buffer)));
  return { input, index: { ...settings, generation, bots: out }, definitions, jsonBytes, normalizeMs: performance.now() - started };
}

/** At the small size: the chunks give exactly what one whole normalization gives. */
function checkChunks(fleet: Fleet): void {
  const whole = normalizeCatalog(fleet.input);
  if (!whole.ok) throw new Error('the small catalog does not normalize');
  const keep = placementProperties(whole.catalog);
  const mine = new Map(fleet.index.bots.map((b, i) => [b.id, { bot: JSON.stringify(b), hi: fleet.definitions[2 * i], lo: fleet.definitions[2 * i + 1] }]));
  for (const bot of whole.catalog.bots) {
    const h = xxh64(JSON.stringify(bot));
    const m = mine.get(bot.id);
    if (!m || m.bot !== JSON.stringify(indexBotOf(bot, keep)) || m.hi !== h.hi || m.lo !== h.lo) throw new Error(`bot ${bot.id}: the chunked normalization differs from the whole one`);
  }
  if (mine.size !== whole.catalog.bots.length) throw new Error('the chunked normalization has another number of bots');
}

// ---------------------------------------------------------------- today: ConfigMaps and the JSON index

/** The JSON placement index as the ConfigMap folder holds it (the rows buildIndex writes, spans from each bot's JSON size), and the catalog parts' sizes. */
function writeToday(dir: string, fleet: Fleet): { indexBytes: number; partsBytes: number; configMaps: number } {
  fs.mkdirSync(dir, { recursive: true });
  const { index } = fleet;
  const order = index.bots.map((_, i) => i).sort((a, b) => (index.bots[a].id < index.bots[b].id ? -1 : 1));
  const header = JSON.stringify({ ...index, bots: undefined }).length;
  const parts = chunk(order, (i) => fleet.jsonBytes[i] + 2, CONFIGMAP_PART, (p) => 120 + (p === 0 ? header : 0));
  const tenants = new Map(index.tenants.map((t, i) => [t.id, i]));
  const encoders = new Map(index.encoders.map((e, i) => [e.id, i]));
  const rows: IndexRow[] = [];
  parts.forEach((run, p) => {
    let offset = 120 + (p === 0 ? header : 0);
    for (const i of run) {
      const b = index.bots[i];
      const row: IndexRow = [b.id, tenants.get(b.tenant)!, b.realtime ? 1 : 0, b.model.memory, b.model.encoder !== undefined ? encoders.get(b.model.encoder)! : -1, p, offset, fleet.jsonBytes[i]];
      if (b.pin !== undefined || Object.keys(b.properties).length > 0) row.push(b.pin ?? null);
      if (Object.keys(b.properties).length > 0) row.push(b.properties);
      rows.push(row);
      offset += fleet.jsonBytes[i] + 2;
    }
  });
  const { bots: _b, ...catalog } = index;
  const runs = chunk(rows, (r) => JSON.stringify(r).length + 2, CONFIGMAP_PART, (i) => 200 + (i === 0 ? header : 0));
  let indexBytes = 0;
  runs.forEach((bots, i) => {
    const part: IndexPart = { apiVersion: CATALOG_API_VERSION, kind: 'CatalogIndex', generation: index.generation, part: i, parts: runs.length, ...(i === 0 ? { catalog } : {}), bots };
    const text = indexText(part);
    indexBytes += Buffer.byteLength(text);
    fs.writeFileSync(path.join(dir, `index-${String(i).padStart(4, '0')}.json`), text);
  });
  const partsBytes = parts.reduce((n, run, p) => n + 120 + (p === 0 ? header : 0) + run.reduce((m, i) => m + fleet.jsonBytes[i] + 2, 0), 0);
  return { indexBytes, partsBytes, configMaps: parts.length + runs.length };
}

// ---------------------------------------------------------------- packed and publish

const definitionOf = (fleet: Fleet) => (_bot: IndexBot, i: number): U64 => ({ hi: fleet.definitions[2 * i], lo: fleet.definitions[2 * i + 1] });
const blobBytes = (p: PackedIndex) => [...p.blobs.values()].reduce((n, b) => n + b.length, 0);

function writeStore(dir: string, packed: PackedIndex): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of packed.blobs) fs.writeFileSync(path.join(dir, name), bytes);
  fs.writeFileSync(path.join(dir, 'manifest.json'), packed.manifestBytes);
}

/** The shard CI would publish for a pool: its assignment, its bots' full definitions, the index it was planned from. */
function writeShard(file: string, fleet: Fleet, pool: Topology['pools'][number], indexName: string): number {
  const ids = new Set(pool.bots);
  const r = normalizeCatalog({ ...fleet.input, bots: fleet.input.bots.filter((b) => ids.has(b.id)) });
  if (!r.ok) throw new Error('the shard does not normalize');
  const text = JSON.stringify({ apiVersion: CATALOG_API_VERSION, kind: 'CatalogShard', generation: fleet.index.generation, index: indexName, pool: pool.name, group: pool.group, bots: r.catalog.bots });
  fs.writeFileSync(file, text);
  return Buffer.byteLength(text);
}

/** The router's table CI would publish: the pools' names, then one line per bot (id, pool position). */
function writeTable(file: string, topology: Topology): number {
  const position = new Map(topology.pools.map((p, i) => [p.name, i]));
  const lines = [JSON.stringify(topology.pools.map((p) => p.name))];
  for (const [bot, pool] of topology.assignment) lines.push(`${bot} ${position.get(pool)}`);
  const text = `${lines.join('\n')}\n`;
  fs.writeFileSync(file, text);
  return Buffer.byteLength(text);
}

// ---------------------------------------------------------------- one bot changes

/** The catalog with one bot's head 1 MiB larger (and its definition hash changed), or with one bot more. */
function edited(fleet: Fleet, id: string, kind: 'memory' | 'added'): Fleet {
  const { index } = fleet;
  if (kind === 'added') {
    const at = index.bots.findIndex((b) => b.id === id);
    const bot = { ...index.bots[at], id: `${id}-twin` };
    const definitions = new Uint32Array(fleet.definitions.length + 2);
    definitions.set(fleet.definitions);
    definitions[definitions.length - 1] = 0x1234;
    return { ...fleet, index: { ...index, bots: [...index.bots, bot] }, definitions, jsonBytes: Uint32Array.from([...fleet.jsonBytes, fleet.jsonBytes[at]]) };
  }
  const definitions = Uint32Array.from(fleet.definitions);
  const bots = index.bots.map((b, i) => {
    if (b.id !== id) return b;
    definitions[2 * i + 1] ^= 1;
    return { ...b, model: { ...b.model, memory: b.model.memory + MiB } };
  });
  return { ...fleet, index: { ...index, bots }, definitions };
}

/** What one bot's change costs each design (bytes a pool fetches), and what it moves. */
function change(fleet: Fleet, packed: PackedIndex, topology: Topology, pool: Topology['pools'][number], shardBytes: number, today: { indexBytes: number; partsBytes: number }) {
  const fetched = (next: Fleet) => {
    const after = packIndex(next.index, { previous: packed.manifest, definitionHash: definitionOf(next) });
    const names = partsToFetch(packed.manifest, after.manifest, [pool.group]);
    const bytes = names.reduce((n, name) => n + after.blobs.get(name)!.length, 0);
    return { parts: names.length, bytes: bytes + after.manifestBytes.length + pointerConfigMap(next.index.generation, after.manifestName).length, manifestBytes: after.manifestBytes.length };
  };
  const grown = edited(fleet, pool.bots[0], 'memory');
  const t0 = performance.now();
  const replanned = plan(grown.index);
  const planMs = performance.now() - t0;
  const moved = [...topology.assignment].filter(([bot, p]) => replanned.assignment.get(bot) !== p).length;
  const before = new Map(topology.pools.map((p) => [p.name, p.bots.join(',')]));
  const poolsChanged = replanned.pools.filter((p) => before.get(p.name) !== p.bots.join(',')).length;
  const packedMemory = fetched(grown);
  const packedAdded = fetched(edited(fleet, pool.bots[0], 'added'));
  const pointer = JSON.stringify({ pool: pool.name, shard: '0'.repeat(64), generation: fleet.index.generation }).length;
  return {
    bot: pool.bots[0],
    moved,
    poolsChanged,
    planMs: round(planMs, 0),
    packed: { memory: packedMemory, added: packedAdded },
    // Every ConfigMap carries the generation: every one changes, and every pool's kubelet fetches them all.
    today: { bytes: today.indexBytes + today.partsBytes },
    // The changed bot's pool fetches its pointer and its new shard; pools whose shard did not change, the pointer.
    publish: { bytes: pointer + shardBytes, pointerBytes: pointer, poolsRefetching: poolsChanged },
  };
}

/** Bytes fetched per change and objects, by part size (1M only): the trade-off between parts and manifest. */
function sweep(fleet: Fleet, pool: Topology['pools'][number]) {
  return SWEEP.map((recordsPerPart) => {
    const before = packIndex(fleet.index, { recordsPerPart, definitionHash: definitionOf(fleet) });
    const next = edited(fleet, pool.bots[0], 'memory');
    const after = packIndex(next.index, { recordsPerPart, previous: before.manifest, definitionHash: definitionOf(next) });
    const names = partsToFetch(before.manifest, after.manifest, [pool.group]);
    const partBytes = names.reduce((n, name) => n + after.blobs.get(name)!.length, 0);
    return { recordsPerPart, objects: before.blobs.size, manifestBytes: before.manifestBytes.length, partBytes, fetchedBytes: partBytes + after.manifestBytes.length, storeBytes: blobBytes(before) };
  });
}

// ---------------------------------------------------------------- child processes

type Mode = 'today-pool' | 'today-router' | 'packed-pool' | 'packed-parts' | 'packed-router' | 'publish-pool' | 'publish-router';
interface ChildResult {
  heldMiB: number;
  rssMiB: number;
  peakRssMiB: number;
  readMs: number;
  planMs: number;
  readyMs: number;
  bots: number;
  poolBots: number;
}

const gc = () => {
  (globalThis as { gc?: () => void }).gc?.();
  (globalThis as { gc?: () => void }).gc?.();
};
const held = () => process.memoryUsage().heapUsed + process.memoryUsage().external;

/** What a mode reads (FLEET_DIR): the objects a process holds, and the index it plans from (when it plans). */
function load(mode: Mode): { keep: unknown[]; index?: CatalogIndex; entries: number } {
  const dir = process.env.FLEET_DIR!;
  const store = path.join(dir, 'store');
  const manifest = () => JSON.parse(fs.readFileSync(path.join(store, 'manifest.json'), 'utf8'));
  if (mode === 'today-pool' || mode === 'today-router') {
    const today = path.join(dir, 'today');
    const files = fs.readdirSync(today).filter((f) => /^index-\d+\.json$/.test(f)).sort();
    const read = readIndex(files.map((f) => JSON.parse(fs.readFileSync(path.join(today, f), 'utf8'))), today);
    return { keep: [read.locations, read.index], index: read.index, entries: read.index.bots.length };
  }
  if (mode === 'packed-pool' || mode === 'packed-router') {
    const read = readPackedIndex(manifest(), (name) => fs.readFileSync(path.join(store, name)), { groups: mode === 'packed-pool' ? [process.env.FLEET_GROUP!] : undefined });
    return { keep: [read.definitions, read.index], index: read.index, entries: read.index.bots.length };
  }
  if (mode === 'packed-parts') {
    const m = manifest();
    const parts: string[] = m.groups.find((g: { name: string }) => g.name === process.env.FLEET_GROUP).parts;
    return { keep: [m, parts.map((name) => fs.readFileSync(path.join(store, name)))], entries: parts.length };
  }
  if (mode === 'publish-pool') {
    const shard = JSON.parse(fs.readFileSync(path.join(dir, 'shard.json'), 'utf8'));
    // The pool checks that its shard was planned from the index the ConfigMap names.
    if (shard.index !== process.env.FLEET_MANIFEST || shard.pool !== process.env.FLEET_POOL) throw new Error('the shard was planned from another index');
    return { keep: [shard], entries: shard.bots.length };
  }
  const [names, ...lines] = fs.readFileSync(path.join(dir, 'table.txt'), 'utf8').trimEnd().split('\n');
  const pools: string[] = JSON.parse(names);
  const table = new Map<string, string>();
  for (const line of lines) {
    const at = line.indexOf(' ');
    table.set(line.slice(0, at), pools[Number(line.slice(at + 1))]);
  }
  return { keep: [table], entries: table.size };
}

/**
 * Reads and plans once, cold, as a starting process does (the time to ready, the RSS it grows by); then,
 * its code compiled, reads again and measures what it holds (the router also holds its topology).
 */
function child(mode: Mode): void {
  const pool = process.env.FLEET_POOL!;
  gc();
  const startRss = process.memoryUsage().rss;
  const t0 = performance.now();
  let first: ReturnType<typeof load> | undefined = load(mode);
  const readMs = performance.now() - t0;
  const t1 = performance.now();
  const topology = first.index ? plan(first.index) : undefined;
  const planMs = performance.now() - t1;
  const readyMs = performance.now() - t0;
  const poolBots = topology ? topology.pools.find((p) => p.name === pool)?.bots.length ?? 0 : mode === 'publish-pool' ? first.entries : 0;
  gc();
  const rssMiB = (process.memoryUsage().rss - startRss) / MiB;
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  first = undefined;
  gc();
  const base = held();
  const again = load(mode);
  if (mode.endsWith('router') && again.index) again.keep.push(plan(again.index));
  // Held until measured (a local the optimizer sees unused could be collected first).
  (globalThis as { fleetHeld?: unknown }).fleetHeld = again.keep;
  gc();
  const result: ChildResult = { heldMiB: (held() - base) / MiB, rssMiB, peakRssMiB, readMs, planMs, readyMs, bots: again.entries, poolBots };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(mode: Mode, env: Record<string, string>): ChildResult {
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=4096', TS_NODE, '--transpile-only', __filename], {
    cwd: ROOT,
    env: { ...process.env, ...env, FLEET_CHILD: mode },
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`child ${mode} failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

// ---------------------------------------------------------------- one size

async function measureSize(bots: number, work: string) {
  const dir = path.join(work, `${bots}`);
  let t = performance.now();
  const fleet = fleetOf(bots, bots === SMALL ? Math.ceil(bots / 4) : CHUNK);
  log(`${bots} bots: synthetic and normalized in ${Math.round(performance.now() - t)} ms`);
  if (bots === SMALL) checkChunks(fleet);
  t = performance.now();
  const topology = plan(fleet.index);
  const ciPlanMs = performance.now() - t;
  const groups = fleet.index.groups.map((g) => ({ name: g.name, bots: topology.pools.filter((p) => p.group === g.name).reduce((n, p) => n + p.bots.length, 0), pools: topology.pools.filter((p) => p.group === g.name).length }));
  const largest = [...groups].sort((a, b) => b.bots - a.bots)[0].name;
  const byCount = topology.pools.filter((p) => p.group === largest).sort((a, b) => a.bots.length - b.bots.length || (a.name < b.name ? -1 : 1));
  const pool = byCount[Math.floor(byCount.length / 2)];
  log(`  planned in ${Math.round(ciPlanMs)} ms: ${topology.pools.length} pools; pool ${pool.name} of ${largest} holds ${pool.bots.length} bots`);
  const today = writeToday(path.join(dir, 'today'), fleet);
  t = performance.now();
  const packed = packIndex(fleet.index, { definitionHash: definitionOf(fleet) });
  const packMs = performance.now() - t;
  writeStore(path.join(dir, 'store'), packed);
  const shardBytes = writeShard(path.join(dir, 'shard.json'), fleet, pool, packed.manifestName);
  const tableBytes = writeTable(path.join(dir, 'table.txt'), topology);
  log(`  today: ${today.configMaps} ConfigMaps, index ${today.indexBytes} B; packed: ${packed.blobs.size} objects, ${blobBytes(packed)} B in ${Math.round(packMs)} ms; shard ${shardBytes} B, table ${tableBytes} B`);
  const changed = change(fleet, packed, topology, pool, shardBytes, today);
  const swept = bots === SMALL ? [] : sweep(fleet, pool);
  const group = packed.manifest.groups.find((g) => g.name === pool.group)!;
  const groupBytes = group.parts.reduce((n, name) => n + packed.blobs.get(name)!.length, 0);
  const env = { FLEET_DIR: dir, FLEET_POOL: pool.name, FLEET_GROUP: pool.group, FLEET_MANIFEST: packed.manifestName };
  const runs: Record<Mode, ChildResult[]> = { 'today-pool': [], 'today-router': [], 'packed-pool': [], 'packed-parts': [], 'packed-router': [], 'publish-pool': [], 'publish-router': [] };
  for (let r = 0; r < ROUNDS; r++) {
    const modes = Object.keys(runs) as Mode[];
    for (const mode of r % 2 ? [...modes].reverse() : modes) {
      const x = runChild(mode, env);
      runs[mode].push(x);
      log(`  ${mode}: holds ${x.heldMiB.toFixed(1)} MiB (RSS +${x.rssMiB.toFixed(0)} MiB), ready in ${Math.round(x.readyMs)} ms (plan ${Math.round(x.planMs)} ms), pool has ${x.poolBots} bots`);
      if (x.poolBots !== pool.bots.length && mode !== 'packed-parts' && !mode.endsWith('router')) throw new Error(`${mode}: the pool has ${x.poolBots} bots, the plan says ${pool.bots.length}`);
    }
  }
  const s = (mode: Mode, k: keyof ChildResult, digits = 1) => spread(runs[mode].map((x) => x[k]), digits);
  const perBot = (mode: Mode, held: number) => round((s(mode, 'heldMiB', 2).median * MiB) / held, 0);
  const pointer = pointerConfigMap(fleet.index.generation, packed.manifestName).length;
  return {
    bots,
    groups,
    pools: topology.pools.length,
    pool: { name: pool.name, group: pool.group, bots: pool.bots.length, groupBots: groups.find((g) => g.name === pool.group)!.bots },
    normalizeMs: round(fleet.normalizeMs, 0),
    catalogJsonBytes: fleet.jsonBytes.reduce((n, x) => n + x, 0),
    change: changed,
    sweep: swept,
    designs: {
      today: {
        poolHeldMiB: s('today-pool', 'heldMiB', 2), poolBytesPerBot: perBot('today-pool', bots), poolRssMiB: s('today-pool', 'rssMiB', 0), poolReadyMs: s('today-pool', 'readyMs', 0), poolPlanMs: s('today-pool', 'planMs', 0),
        routerHeldMiB: s('today-router', 'heldMiB', 2), routerReadyMs: s('today-router', 'readyMs', 0),
        fetchedPerChangeBytes: changed.today.bytes, indexBytes: today.indexBytes, partsBytes: today.partsBytes, configMaps: today.configMaps, gitopsBytes: today.indexBytes + today.partsBytes,
      },
      packed: {
        poolHeldMiB: s('packed-pool', 'heldMiB', 2), poolBytesPerBot: perBot('packed-pool', groups.find((g) => g.name === pool.group)!.bots), poolRssMiB: s('packed-pool', 'rssMiB', 0), poolReadyMs: s('packed-pool', 'readyMs', 0), poolPlanMs: s('packed-pool', 'planMs', 0), poolReadMs: s('packed-pool', 'readMs', 0),
        poolPartsHeldMiB: s('packed-parts', 'heldMiB', 2), poolFetchedAtStartBytes: groupBytes + packed.blobs.get(packed.manifest.settings)!.length + packed.manifestBytes.length,
        routerHeldMiB: s('packed-router', 'heldMiB', 2), routerReadyMs: s('packed-router', 'readyMs', 0),
        fetchedPerChangeBytes: changed.packed.memory.bytes, fetchedPerAddedBotBytes: changed.packed.added.bytes, partsPerChange: changed.packed.memory.parts,
        objects: packed.blobs.size, parts: packed.blobs.size - 1, manifestBytes: packed.manifestBytes.length, settingsBytes: packed.blobs.get(packed.manifest.settings)!.length, storeBytes: blobBytes(packed), packMs: round(packMs, 0), gitopsBytes: pointer,
      },
      publish: {
        poolHeldMiB: s('publish-pool', 'heldMiB', 2), poolBytesPerBot: perBot('publish-pool', pool.bots.length), poolReadyMs: s('publish-pool', 'readyMs', 0),
        routerHeldMiB: s('publish-router', 'heldMiB'), routerReadyMs: s('publish-router', 'readyMs', 0), tableBytes,
        shardBytes, fetchedPerChangeBytes: changed.publish.bytes, pointerBytes: changed.publish.pointerBytes, poolsRefetching: changed.publish.poolsRefetching,
        ciPlanMs: round(ciPlanMs, 0), gitopsBytes: pointer,
      },
    },
  };
}

// ---------------------------------------------------------------- results

type Size = Awaited<ReturnType<typeof measureSize>>;

function headlineOf(big: Size, small: Size): Record<string, number> {
  const k = (n: number) => (n >= 1e6 ? `${n / 1e6}m` : `${n / 1000}k`);
  const h: Record<string, number> = {};
  for (const [size, suffix] of [[big, k(big.bots)], [small, k(small.bots)]] as const) {
    const { today, packed, publish } = size.designs;
    Object.assign(h, {
      [`poolCatalogMiB${suffix}`]: packed.poolHeldMiB.median,
      [`indexBytesFetchedPerBotChange${suffix}`]: packed.fetchedPerChangeBytes,
      [`poolReadyMsPacked${suffix}`]: packed.poolReadyMs.median,
      [`routerMiBPacked${suffix}`]: packed.routerHeldMiB.median,
      [`poolCatalogMiBToday${suffix}`]: today.poolHeldMiB.median,
      [`bytesFetchedPerBotChangeToday${suffix}`]: today.fetchedPerChangeBytes,
      [`poolReadyMsToday${suffix}`]: today.poolReadyMs.median,
      [`poolCatalogMiBPublish${suffix}`]: publish.poolHeldMiB.median,
      [`bytesFetchedPerBotChangePublish${suffix}`]: publish.fetchedPerChangeBytes,
      [`packedIndexBytes${suffix}`]: packed.storeBytes,
    });
  }
  return h;
}

function markdown(r: any): string {
  // The sweep's other part sizes, and the default one from the main figures (the pointer ConfigMap aside).
  const p = r.sizes[0].designs.packed;
  const main = { recordsPerPart: r.setup.recordsPerPart, objects: p.objects, manifestBytes: p.manifestBytes, partBytes: p.fetchedPerChangeBytes - p.manifestBytes - p.gitopsBytes, fetchedBytes: p.fetchedPerChangeBytes - p.gitopsBytes, storeBytes: p.storeBytes };
  const sw = r.sizes[0].sweep.length ? [...r.sizes[0].sweep, main].sort((a: any, b: any) => a.recordsPerPart - b.recordsPerPart) : [];
  return [
    '# Fleet scale: how the catalog reaches pools',
    '',
    `${r.date}, ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, load average ${r.machine.loadAverage.join(' / ')}. Command: \`${r.command}\`; ${r.seconds} s.`,
    '',
    `Catalog: \`${r.setup.catalog}\`, bots normalized in chunks of ${r.setup.chunk.toLocaleString('en-US')} (at ${r.setup.smallBots.toLocaleString('en-US')} bots checked against one whole normalization). Generation: a stand-in hash of the definitions. Packed parts aim at ${r.setup.recordsPerPart} bots. Each figure in a child process (node --expose-gc), median (min-max) over ${r.setup.rounds} rounds; "holds" is heap + external after a full GC, less the same before reading. The pool is the median pool (by bots) of the largest group; "ready" is from its first read to knowing its own bots (reading local files: the fetch itself is not timed). docs/fleet-scale.md explains the designs.`,
    '',
    renderFleetTable(r),
    '',
    ...(sw.length
      ? [
          `Part size at ${r.sizes[0].bots.toLocaleString('en-US')} bots: what one bot's change costs a pool (the manifest and the changed part), against the number of objects in the store.`,
          '',
          '| bots a part aims at | objects | manifest | changed part | a pool fetches | store |',
          '|---:|---:|---:|---:|---:|---:|',
          ...sw.map((x) => `| ${x.recordsPerPart} | ${x.objects.toLocaleString('en-US')} | ${(x.manifestBytes / 1024).toFixed(0)} KiB | ${(x.partBytes / 1024).toFixed(0)} KiB | ${(x.fetchedBytes / 1024).toFixed(0)} KiB | ${(x.storeBytes / MiB).toFixed(1)} MiB |`),
          '',
        ]
      : []),
    `Headline: ${Object.entries(r.headline).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
  ].join('\n');
}

/** docs/fleet-scale.md with its generated table rewritten from the results. */
function writeDoc(result: unknown): void {
  const file = path.join(ROOT, 'docs/fleet-scale.md');
  if (!fs.existsSync(file)) return;
  const doc = fs.readFileSync(file, 'utf8');
  const [start, end] = [doc.indexOf(DOC_BEGIN), doc.indexOf(DOC_END)];
  if (start < 0 || end < start) throw new Error(`docs/fleet-scale.md has no "${DOC_BEGIN}" ... "${DOC_END}" block`);
  fs.writeFileSync(file, `${doc.slice(0, start + DOC_BEGIN.length)}\n${renderFleetTable(result)}\n${doc.slice(end)}`);
  log(`rewrote the table of ${file}`);
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  if (process.env.FLEET_DOC_ONLY === '1') {
    // The results as they are, rendered again (after a change to the tables): fleet.md and the doc's table.
    const result = JSON.parse(fs.readFileSync(path.join(RESULTS, 'fleet.json'), 'utf8'));
    writeResult('fleet', result, markdown(result));
    return writeDoc(result);
  }
  const work = tempDir('fleet');
  try {
    const big = await measureSize(BOTS, work);
    fs.rmSync(path.join(work, `${BOTS}`), { recursive: true, force: true });
    const small = await measureSize(SMALL, work);
    const result = {
      benchmark: 'fleet',
      date: new Date().toISOString(),
      command: 'npm run bench:fleet',
      seconds: Math.round((Date.now() - startedAt) / 1000),
      machine: machine(),
      setup: { bots: BOTS, smallBots: SMALL, catalog: "syntheticCatalog({ bots, locality: 'encoder' })", chunk: CHUNK, recordsPerPart: DEFAULT_RECORDS_PER_PART, rounds: ROUNDS, configMapPartBytes: CONFIGMAP_PART },
      headline: headlineOf(big, small),
      sizes: [big, small],
    };
    writeResult('fleet', result, markdown(result));
    if (path.resolve(RESULTS) === path.resolve(DEFAULT_RESULTS)) writeDoc(result);
    log(markdown(result));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.env.FLEET_CHILD) child(process.env.FLEET_CHILD as Mode);
else
  main().catch((e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
