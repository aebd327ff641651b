/**
 * The packed placement index (runtime/src/catalog/packed-index.ts): it reads back exactly what placement
 * reads of every bot, one bot's change rewrites one content-addressed part, planning from it (the whole
 * catalog, or one group as a pool reads it) gives the catalog's plan, and a missing, corrupt or cut part
 * is refused naming the part and the fix. Last, docs/fleet-scale.md's generated table matches the
 * results file it was written from.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { CatalogError, CatalogIndex, PlacementError, catalogSource, indexBotOf, placementProperties, plan, toHex, xxh64 } from '@botshard/runtime';
import { HEADER_BYTES, RECORD_BYTES } from '@botshard/runtime/catalog/packed-format';
import { PackedIndex, PackedManifest, packIndex, partsToFetch, readPackedIndex } from '@botshard/runtime/catalog/packed-index';
import { planPool } from '@botshard/runtime/pool/plan';
import { DOC_BEGIN, DOC_END, loadResults, renderFleetTable } from '../../bench/figures';
import { catalogOf, catalogShapeFields, catalogShapeMemory } from '../support/catalogs';

const ROOT = path.resolve(__dirname, '../..');

/** The manifest as a reader gets it (JSON), and its objects by name. */
const read = (p: PackedIndex, groups?: string[]) => readPackedIndex(JSON.parse(p.manifestBytes.toString('utf8')), (name) => p.blobs.get(name), { groups });
const byId = <T extends { id: string }>(xs: readonly T[]) => [...xs].sort((a, b) => (a.id < b.id ? -1 : 1));
const parts = (m: PackedManifest) => m.groups.flatMap((g) => g.parts);

describe('packed placement index', () => {
  const catalog = catalogOf({ bots: 3000, seed: 7, locality: 'encoder', pinned: 0.02, pools: 'auto', byTier: true });

  it('reads back every setting and, of every bot, exactly what placement reads (and the hash of its definition)', () => {
    const packed = packIndex(catalog, { recordsPerPart: 256 });
    const { index, definitions, objectsRead, bytesRead } = read(packed);
    const keep = placementProperties(catalog);
    const { bots: _b, ...settings } = catalog;
    const { bots, ...readSettings } = index;
    expect(readSettings).toEqual(settings);
    expect(byId(bots)).toEqual(byId(catalog.bots.map((b) => indexBotOf(b, keep))));
    // Some bots are pinned and some carry the property the gold group selects on: both kept.
    expect(bots.filter((b) => b.pin !== undefined).length).toBe(catalog.bots.filter((b) => b.pin !== undefined).length);
    expect(bots.filter((b) => b.properties.tier === 'gold').length).toBeGreaterThan(0);
    const definition = new Map(catalog.bots.map((b) => [b.id, toHex(xxh64(JSON.stringify(b)))]));
    bots.forEach((b, i) => expect(toHex({ hi: definitions[2 * i], lo: definitions[2 * i + 1] })).toBe(definition.get(b.id)));
    // Fixed-width records: a part is its header, 40 bytes a bot, the ids and a small dictionary.
    expect(objectsRead).toBe(1 + parts(packed.manifest).length);
    expect(bytesRead).toBe([...packed.blobs.values()].reduce((n, b) => n + b.length, 0));
    const part = packed.blobs.get(packed.manifest.groups[1].parts[0])!;
    expect(part.length).toBeGreaterThan(HEADER_BYTES + packed.manifest.groups[1].records[0] * RECORD_BYTES);
    expect(RECORD_BYTES).toBe(40);
    // Names are the SHA-256 of the bytes; the same catalog packs to the same bytes, whatever the bot order.
    for (const [name, bytes] of packed.blobs) expect(createHash('sha256').update(bytes).digest('hex')).toBe(name);
    const shuffled = packIndex({ ...catalog, bots: [...catalog.bots].reverse() }, { recordsPerPart: 256 });
    expect(shuffled.manifestName).toBe(packed.manifestName);
  });

  it('rewrites exactly one part when one bot changes, is added or is removed; a new generation alone rewrites none', () => {
    const before = packIndex(catalog, { recordsPerPart: 256 });
    const bot = catalog.bots.find((b) => b.realtime && b.pin === undefined && b.properties.tier !== 'gold')!;
    const edits: Record<string, CatalogIndex> = {
      memory: { ...catalog, bots: catalog.bots.map((b) => (b === bot ? { ...b, model: { ...b.model, memory: b.model.memory + 1024 * 1024 } } : b)) },
      definition: { ...catalog, bots: catalog.bots.map((b) => (b === bot ? { ...b, intents: [...b.intents, { name: 'extra', examples: [] }] } : b)) },
      added: { ...catalog, bots: [...catalog.bots, { ...bot, id: 'a-new-bot' }] },
      removed: { ...catalog, bots: catalog.bots.filter((b) => b !== bot) },
    };
    for (const [edit, next] of Object.entries(edits)) {
      const after = packIndex(next, { recordsPerPart: 256, previous: before.manifest });
      const changed = parts(after.manifest).filter((p) => !parts(before.manifest).includes(p));
      expect([edit, changed.length, after.manifest.settings === before.manifest.settings]).toEqual([edit, 1, true]);
      // A pool of the bot's group fetches that part; a pool of another group fetches nothing.
      expect(partsToFetch(before.manifest, after.manifest, ['realtime'])).toEqual(changed);
      expect(partsToFetch(before.manifest, after.manifest, ['batch'])).toEqual([]);
    }
    const regenerated = packIndex({ ...catalog, generation: 'another' }, { recordsPerPart: 256 });
    expect(parts(regenerated.manifest)).toEqual(parts(before.manifest));
    expect(partsToFetch(before.manifest, regenerated.manifest)).toEqual([]);
    // A process that holds nothing fetches the settings and every part of its groups.
    expect(partsToFetch(undefined, before.manifest, ['batch'])).toEqual([before.manifest.settings, ...before.manifest.groups.find((g) => g.name === 'batch')!.parts]);
  });

  it('plans exactly as the catalog does, whole or one group as a pool reads it, for random catalogs; and refuses what it refuses', () => {
    let compared = 0;
    let refused = 0;
    fc.assert(
      fc.property(
        fc.record({
          ...catalogShapeFields,
          recordsPerPart: fc.constantFrom(1, 16, 1024),
          memory: catalogShapeMemory,
        }),
        (o) => {
          const c = catalogOf(o);
          const packed = packIndex(c, { recordsPerPart: o.recordsPerPart });
          const whole = read(packed).index;
          let expected;
          try {
            expected = plan(c);
          } catch (e) {
            if (!(e instanceof PlacementError)) throw e;
            expect(() => plan(whole)).toThrow(e.message);
            refused++;
            return;
          }
          const topology = plan(whole);
          expect(topology.pools).toEqual(expected.pools);
          expect(topology.assignment).toEqual(expected.assignment);
          // A pool reads only its own group's parts, and finds the same pool there.
          for (const group of c.groups) {
            const own = plan(read(packed, [group.name]).index);
            expect(own.pools.filter((p) => p.group === group.name)).toEqual(expected.pools.filter((p) => p.group === group.name));
          }
          compared++;
        },
      ),
      { numRuns: 40, seed: 20260601 },
    );
    expect(refused).toBeGreaterThan(0);
    expect(compared).toBeGreaterThanOrEqual(25);
  });

  it("gives the pool's planning path (planPool) the same pool and bots as the catalog", () => {
    const packed = packIndex(catalog, { recordsPerPart: 256 });
    const whole = catalogSource(catalog);
    for (const pool of plan(catalog).pools.filter((_, i) => i % 5 === 0)) {
      const group = read(packed, [pool.group]);
      const source = { index: group.index, definitions: (ids: readonly string[]) => whole.definitions(ids) };
      const fromPacked = planPool(source, pool.name);
      const fromCatalog = planPool(whole, pool.name);
      expect(fromPacked.topology.pools.find((p) => p.name === pool.name)).toEqual(pool);
      expect(fromPacked.assigned.map((b) => b.id)).toEqual(fromCatalog.assigned.map((b) => b.id));
      expect(fromPacked.group).toEqual(fromCatalog.group);
    }
  });

  describe('refuses a bad object, naming it and the fix', () => {
    const packed = packIndex(catalogOf({ bots: 600, seed: 3, locality: 'none', pinned: 0, pools: 'auto', byTier: false }), { recordsPerPart: 128 });
    const group = packed.manifest.groups[0];
    const victim = group.parts[1];
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    /** What reading throws when the store gives `bytes` for the victim part (under its name, or under their own name with a manifest that says so). */
    const refusal = (bytes: Buffer | undefined, renamed = false, manifest: unknown = JSON.parse(packed.manifestBytes.toString())) => {
      const name = renamed && bytes ? sha(bytes) : victim;
      if (renamed) (manifest as PackedManifest).groups[0].parts[1] = name;
      try {
        readPackedIndex(manifest, (n) => (n === name ? bytes : packed.blobs.get(n)));
      } catch (e) {
        expect(e).toBeInstanceOf(CatalogError);
        return (e as Error).message;
      }
      throw new Error('not refused');
    };
    const part = () => Buffer.from(packed.blobs.get(victim)!);
    const named = new RegExp(`part 1 of group "${group.name}" \\(${victim}\\)`);

    it('a missing part', () => {
      expect(refusal(undefined)).toMatch(named);
      expect(refusal(undefined)).toMatch(/is missing.*fix: fetch it again from the model store/s);
    });

    it('a part cut short or corrupt in transit (its bytes do not match its name)', () => {
      const cut = part().subarray(0, 100);
      expect(refusal(cut)).toMatch(named);
      expect(refusal(cut)).toMatch(/does not match its name: 100 bytes whose SHA-256 is [0-9a-f]{64}; corrupt or cut short \(fix: fetch it again from the model store; if the store's copy is bad too, publish the packed index again/);
      const flipped = part();
      flipped[HEADER_BYTES + 3] ^= 0xff;
      expect(refusal(flipped)).toMatch(/does not match its name/);
    });

    it('a part published cut short, or with a bad header or record (its name matches its bytes)', () => {
      expect(refusal(part().subarray(0, part().length - 7), true)).toMatch(new RegExp(`part 1 of group "${group.name}" \\([0-9a-f]{64}\\): is \\d+ bytes but its header declares \\d+ \\(\\d+ records\\): cut short \\(fix: fetch it again`));
      expect(refusal(part().subarray(0, 10), true)).toMatch(/shorter than its 32-byte header \(cut short\)/);
      const magic = part();
      magic.write('JSON', 0, 'latin1');
      expect(refusal(magic, true)).toMatch(/does not start with "BSPI": not a part of a packed index/);
      const format = part();
      format.writeUInt16LE(9, 4);
      expect(refusal(format, true)).toMatch(/is format 9 with 40-byte records; this botshard reads format 1/);
      const tenant = part();
      tenant.writeUInt16LE(0xfff0, HEADER_BYTES + 32);
      expect(refusal(tenant, true)).toMatch(/has record 0 \(.*\) pointing outside the part/);
      const memory = part();
      memory.writeUInt32LE(12345, HEADER_BYTES + 8); // the locality key hash of record 0
      expect(refusal(memory, true)).toMatch(/with a locality key hash that is not XXH64/);
    });

    it('a part listed in the wrong place, a malformed manifest, bad settings', () => {
      const manifest = JSON.parse(packed.manifestBytes.toString());
      [manifest.groups[0].parts[1], manifest.groups[0].parts[2]] = [manifest.groups[0].parts[2], manifest.groups[0].parts[1]];
      expect(() => readPackedIndex(manifest, (n) => packed.blobs.get(n))).toThrow(/part 1 of group "realtime" .*: is bucket 2 of \d+ with \d+ bots, but the manifest lists it as bucket 1/);
      // The batch group's parts listed as the real-time group's.
      const other = JSON.parse(packed.manifestBytes.toString());
      other.groups[0] = { ...other.groups[1], name: 'realtime' };
      expect(() => readPackedIndex(other, (n) => packed.blobs.get(n))).toThrow(/part 0 of group "realtime" .*: belongs to group "batch", not "realtime"/);
      const bad = { ...JSON.parse(packed.manifestBytes.toString()), kind: 'Catalog', settings: 'x', groups: [{ name: 'batch', bucketBits: 2, parts: [], records: [] }] };
      expect(() => readPackedIndex(bad, (n) => packed.blobs.get(n))).toThrow(/manifest\.kind: .*\n.*manifest\.settings: is not a SHA-256 name.*\n.*manifest\.groups\[0\] \(batch\)\.parts: must be 4 SHA-256 names/);
      const settings = Buffer.from('{"tenants":"nope"}');
      const wrongSettings = { ...JSON.parse(packed.manifestBytes.toString()), settings: sha(settings) };
      expect(() => readPackedIndex(wrongSettings, (n) => (n === sha(settings) ? settings : packed.blobs.get(n)))).toThrow(/settings .*tenants/s);
      expect(() => read(packed, ['nope'])).toThrow(/groups: \["nope"\]: not a group of this catalog \(its groups: \["realtime","batch"\]\)/);
    });
  });
});

describe('docs/fleet-scale.md', () => {
  it('carries the table npm run bench:fleet wrote from bench/results/fleet.json', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs/fleet-scale.md'), 'utf8');
    const start = doc.indexOf(DOC_BEGIN);
    const end = doc.indexOf(DOC_END);
    expect([start >= 0, end > start]).toEqual([true, true]);
    const results = loadResults(path.join(ROOT, 'bench/results'));
    expect(results.fleet).toBeDefined();
    expect(doc.slice(start + DOC_BEGIN.length, end).trim()).toBe(renderFleetTable(results.fleet).trim());
  });
});
