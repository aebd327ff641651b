/**
 * Seeded synthetic catalogs for scale tests and benchmarks: N bots over tenants, languages and
 * shared encoders, with realistic head sizes. Same options, same catalog, byte for byte.
 */
import type { BotInput, CatalogInput, LocalityInput, PoolGroupInput } from '@botshard/runtime';
import { mulberry32 } from '@botshard/runtime/local/random';

export interface SyntheticOptions {
  bots: number;
  /** @default 1 */
  seed?: number;
  /** Locality of both groups. @default "none" */
  locality?: LocalityInput;
  /** Pools per group, or "auto". @default "auto" */
  pools?: number | 'auto';
  /** Shared encoders (one per language). @default 8 */
  encoders?: number;
  /** Pool memory budget. @default "4Gi" */
  memory?: string;
  /** Share of bots pinned to the dedicated VIP pool. @default 0 */
  pinned?: number;
  /** Put every bot in one group (simplest setting for disruption figures). @default false */
  oneGroup?: boolean;
}

/** The seeded PRNG of the synthetic catalogs. */
export const rng = mulberry32;

const WORDS = ['order', 'refund', 'account', 'balance', 'flight', 'hotel', 'card', 'delivery', 'invoice', 'password', 'upgrade', 'cancel'];

/** A synthetic catalog input (validate it with `normalizeCatalog`). */
export function syntheticCatalog(opts: SyntheticOptions): CatalogInput {
  const random = rng(opts.seed ?? 1);
  const encoderCount = opts.encoders ?? 8;
  const tenants = Array.from({ length: Math.max(1, Math.ceil(opts.bots / 50)) }, (_, i) => ({ id: `tenant-${i}` }));
  const encoders = Array.from({ length: encoderCount }, (_, i) => ({
    id: `encoder-${i}`,
    path: `encoders/${i}.onnx`,
    memory: `${32 + Math.floor(random() * 64)}Mi`,
    tokenizer: { kind: 'hashing' as const, buckets: 4096 },
    dimensions: 64,
  }));
  const vip = opts.pinned ? ['vip'] : [];
  const bots: BotInput[] = [];
  for (let i = 0; i < opts.bots; i++) {
    const labels = 2 + Math.floor(random() * 6);
    const realtime = opts.oneGroup ? true : random() < 0.7;
    const bot: BotInput = {
      id: `bot-${i.toString(36)}-${Math.floor(random() * 1e6).toString(36)}`,
      tenant: tenants[Math.floor(random() * tenants.length)].id,
      realtime,
      properties: { language: `lang-${Math.floor(random() * encoderCount)}`, tier: random() < 0.1 ? 'gold' : 'standard' },
      model: { head: `heads/bot-${i}.onnx`, memory: `${1 + Math.floor(random() * 12)}Mi`, encoder: `encoder-${Math.floor(random() * encoderCount)}` },
      intents: Array.from({ length: labels }, (_, j) => ({ name: `${WORDS[(i + j) % WORDS.length]}_${j}` })),
    };
    bots.push(opts.pinned && random() < opts.pinned ? { ...bot, pin: 'vip' } : bot);
  }
  const group = (name: string, realtime: boolean): PoolGroupInput => ({
    name,
    realtime,
    selector: opts.oneGroup ? {} : { realtime },
    pools: opts.pools ?? 'auto',
    memory: opts.memory ?? '4Gi',
    locality: opts.locality ?? 'none',
    dedicatedPools: realtime ? vip : [],
  });
  return {
    tenants,
    encoders,
    groups: opts.oneGroup ? [group('realtime', true)] : [group('realtime', true), group('batch', false)],
    bots,
  };
}
