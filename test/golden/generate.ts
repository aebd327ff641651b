/**
 * Writes test/golden/placement.json: seeded synthetic catalogs and the assignment plan() gives them.
 * Regenerate only when the placement rule changes on purpose (every running cluster would move bots):
 *   npx ts-node --transpile-only test/golden/generate.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { normalizeCatalog, plan, toHex, xxh64 } from '@botshard/runtime';
import { SyntheticOptions, syntheticCatalog } from '../../bench/synthetic';

export const GOLDEN_CATALOGS: Record<string, SyntheticOptions> = {
  'locality-none': { bots: 400, seed: 7, locality: 'none', memory: '1Gi', pinned: 0.01 },
  'locality-encoder': { bots: 400, seed: 8, locality: 'encoder', memory: '1Gi' },
  // Memory to spare at a fixed count: balanced locality (the auto counts above fill pools to the budget).
  'locality-balanced': { bots: 400, seed: 9, locality: 'encoder', memory: '8Gi', pools: 6, oneGroup: true },
};
export const GOLDEN_STRINGS = ['', 'a', 'bot-1', 'realtime#0', 'encoder:encoder-en', 'é日本', 'x'.repeat(100)];

if (require.main === module) {
  const out = {
    xxh64: Object.fromEntries(GOLDEN_STRINGS.map((s) => [s, toHex(xxh64(s))])),
    catalogs: Object.fromEntries(
      Object.entries(GOLDEN_CATALOGS).map(([name, opts]) => {
        const result = normalizeCatalog(syntheticCatalog(opts));
        if (!result.ok) throw new Error(JSON.stringify(result.problems));
        const topology = plan(result.catalog);
        return [name, { options: opts, generation: result.catalog.generation, pools: topology.pools.map((p) => p.name), assignment: Object.fromEntries(topology.assignment) }];
      }),
    ),
  };
  fs.writeFileSync(path.join(__dirname, 'placement.json'), `${JSON.stringify(out, null, 1)}\n`);
}
