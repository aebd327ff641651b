import fc from 'fast-check';
import { Catalog, CatalogInput, normalizeCatalog, parseCatalog } from '@botshard/runtime';
import { syntheticCatalog } from '../../bench/synthetic';

/** A small valid catalog to start each test from (a deep copy: mutate freely). */
export function smallCatalog(): any {
  const input: CatalogInput = {
    platform: { namespace: 'botshard' },
    tenants: [{ id: 'acme' }, { id: 'globex' }],
    encoders: [{ id: 'encoder-en', path: 'encoders/en.onnx', memory: '40Mi', tokenizer: { kind: 'hashing', buckets: 512 }, dimensions: 16 }],
    groups: [
      { name: 'realtime', realtime: true, memory: '512Mi', dedicatedPools: ['vip'] },
      { name: 'batch', realtime: false, memory: '1Gi' },
    ],
    bots: [
      {
        id: 'acme-support',
        tenant: 'acme',
        realtime: true,
        properties: { language: 'en' },
        model: { head: 'heads/acme-support.onnx', memory: '8Mi', encoder: 'encoder-en' },
        intents: [{ name: 'greeting', examples: ['hello'] }, { name: 'billing' }],
        preprocess: [{ pattern: '\\s+', replace: ' ' }],
        postprocess: { threshold: 0.4, fallback: 'fallback', entities: [{ name: 'order', pattern: '#([0-9]+)' }] },
      },
      {
        id: 'globex-batch',
        tenant: 'globex',
        realtime: false,
        model: { head: 'heads/globex-batch.onnx', memory: '1.5Mi' },
        intents: [{ name: 'yes' }, { name: 'no' }],
      },
      {
        id: 'acme-vip',
        tenant: 'acme',
        realtime: true,
        model: { head: 'heads/acme-vip.onnx', memory: '16Mi', encoder: 'encoder-en' },
        intents: [{ name: 'a' }, { name: 'b' }],
        pin: 'vip',
      },
    ],
  };
  return JSON.parse(JSON.stringify(input));
}

/**
 * The generation of `smallCatalog()`, pinned: what botshard computed for it before model digests (`sha256`,
 * commit 1bb329f) and before `overcommit` and `warm` (commit 34f83d6) existed. A field added later leaves the
 * generation of a catalog that does not use it as it was (an upgrade must not look like a catalog change to the
 * pools); a change to the hash or to the canonical form shows here too.
 */
export const SMALL_CATALOG_GENERATION = '4861be362319f7fa';


/** Problems of an input expected to be invalid. */
export function problemsOf(input: unknown) {
  const result = normalizeCatalog(input);
  if (result.ok) throw new Error('expected the catalog to be invalid');
  return result.problems;
}

/** The shape of a random synthetic catalog, as the placement index property tests draw it. */
export interface CatalogShape {
  bots: number;
  seed: number;
  locality: 'none' | 'encoder' | 'language';
  pinned: number;
  pools: number | 'auto';
  byTier: boolean;
  memory?: string;
}

/** The arbitraries of a CatalogShape's fields but memory (in this order: fast-check draws the keys in order). */
export const catalogShapeFields = {
  bots: fc.integer({ min: 1, max: 400 }),
  seed: fc.integer({ min: 1, max: 1e6 }),
  locality: fc.constantFrom('none' as const, 'encoder' as const, 'language' as const),
  pinned: fc.constantFrom(0, 0.05),
  pools: fc.constantFrom<number | 'auto'>('auto', 3),
  byTier: fc.boolean(),
};

/** Pools of 2Gi mostly; 3 pools of 512Mi cannot hold a few hundred bots, so some catalogs cannot be placed. */
export const catalogShapeMemory = fc.constantFrom('2Gi', '2Gi', '2Gi', '512Mi');

/** A synthetic catalog (pools of 2Gi unless said); with `byTier`, a first group that selects on a property (so an index must keep it). */
export function catalogOf(o: CatalogShape): Catalog {
  const input = syntheticCatalog({ bots: o.bots, seed: o.seed, locality: o.locality === 'language' ? { property: 'language' } : o.locality, pinned: o.pinned, pools: o.pools, memory: o.memory ?? '2Gi' });
  const gold = { ...input.groups[0], name: 'gold', selector: { properties: { tier: ['gold'] } }, dedicatedPools: [] };
  return parseCatalog(o.byTier ? { ...input, groups: [gold, ...input.groups] } : input);
}
