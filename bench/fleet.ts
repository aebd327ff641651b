/**
 * The catalog the approach, isolation and scale benchmarks share: N bots of one real-time group over
 * 8 shared encoders, a head per bot, with production-like declared sizes (encoders 48 MiB, heads 2-8
 * MiB, pools of 1 GiB at the default fill factor and overhead), so that plan() sizes the sharded pools
 * as it would in production (about 100 bots a pool). The model files written are the demo models (an
 * encoder of 4,096 x 64 float32 = 1 MiB, heads of a few KiB): what the benchmarks measure is the
 * runtime's cost per process and per bot, which is what the three approaches differ in.
 * Bot i is the same bot whatever N, so one models folder serves every size.
 */
import type { BotInput, CatalogInput, Strategy } from '@botshard/runtime';

export const ENCODERS = 8;
export const POOL_MEMORY = '1Gi';

export interface FleetOptions {
  bots: number;
  strategy?: Strategy;
  /** Fixed pool count (sharded), or "auto". @default "auto" */
  pools?: number | 'auto';
  /** Extra bots (e.g. misbehaving ones), appended as they are. */
  extra?: BotInput[];
  /** @default "encoder" */
  locality?: 'encoder' | 'none';
  /** Pool memory budget. @default POOL_MEMORY */
  memory?: string;
  /** The group's overcommit (cold bots load on demand). @default - off */
  overcommit?: number;
}

const INTENTS = [
  { name: 'password_reset', examples: ['I forgot my password', 'reset my password please'] },
  { name: 'billing', examples: ['why was I charged twice', 'question about my invoice'] },
  { name: 'order_status', examples: ['where is my order', 'my delivery is late'] },
  { name: 'greeting', examples: ['hello there', 'hi good morning'] },
];

export const botId = (i: number) => `bot-${String(i).padStart(5, '0')}`;

export function fleetBot(i: number): BotInput {
  return {
    id: botId(i),
    tenant: 'bench',
    realtime: true,
    // A small multiplicative hash spreads encoders and sizes without a visible pattern.
    model: { head: `heads/${botId(i)}.onnx`, memory: `${2 + ((i * 2654435761) >>> 0) % 7}Mi`, encoder: `encoder-${((i * 40503) >>> 0) % ENCODERS}` },
    intents: INTENTS,
  };
}

export function fleetCatalog(opts: FleetOptions): CatalogInput {
  return {
    platform: { strategy: opts.strategy ?? 'sharded' },
    tenants: [{ id: 'bench' }],
    encoders: Array.from({ length: ENCODERS }, (_, i) => ({
      id: `encoder-${i}`,
      path: `encoders/${i}.onnx`,
      memory: '48Mi',
      tokenizer: { kind: 'hashing' as const, buckets: 4096 },
      dimensions: 64,
    })),
    groups: [{ name: 'rt', realtime: true, memory: opts.memory ?? POOL_MEMORY, pools: opts.pools ?? 'auto', locality: opts.locality ?? 'encoder', concurrency: 256, timeoutMs: 30000, ...(opts.overcommit ? { overcommit: opts.overcommit } : {}) }],
    bots: [...Array.from({ length: opts.bots }, (_, i) => fleetBot(i)), ...(opts.extra ?? [])],
  };
}
