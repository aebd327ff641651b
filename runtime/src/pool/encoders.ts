/**
 * The pool's shared encoders: each loaded once per pool, in the lane that runs its bots, counted by the
 * bots that use it and unloaded with the last of them.
 */
import { createHash } from 'node:crypto';
import type { Bot, Encoder } from '../catalog';
import type { Lanes } from './lanes';
import { ModelError } from './lane';
import type { PoolMetrics } from './metrics';
import type { ModelStore } from './store';

/** A short hash of a definition: a change of it means a reload. */
export const definitionHash = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);

/**
 * The hash of what a bot's serving version loads: the bot and its encoder, without the model's version
 * label (a new label alone relabels the loaded model) and its candidate (loaded beside it, see rollout/).
 * A bot without either hashes as it always has.
 */
export function servingHash(bot: Bot, encoder: Encoder | undefined): string {
  const { candidate: _c, version: _v, ...model } = bot.model;
  return definitionHash({ bot: { ...bot, model }, encoder });
}

interface EncoderEntry {
  key: string;
  /** The encoder's id, and the size the catalog declares for it. */
  id: string;
  declaredBytes: number;
  lane: number;
  refs: number;
  /** Its file's size, and what it measured when it loaded (measure.ts); 0 until loaded. */
  bytes: number;
  measuredBytes: number;
  loaded: Promise<void>;
}

/** Which lane holds each model key (an encoder's, or a bot's without one), and how many bots each lane has. */
export class LaneAssignment {
  private readonly laneOfKey = new Map<string, number>();
  private readonly botsPerLane: number[];

  constructor(lanes: number) {
    this.botsPerLane = new Array(lanes).fill(0);
  }

  /** The lane of a key; a new key goes to the lane with the fewest bots. */
  laneFor(key: string): number {
    let lane = this.laneOfKey.get(key);
    if (lane === undefined) {
      lane = this.botsPerLane.indexOf(Math.min(...this.botsPerLane));
      this.laneOfKey.set(key, lane);
    }
    return lane;
  }

  forget(key: string): void {
    this.laneOfKey.delete(key);
  }

  /** A bot was placed in the lane (+1) or left it (-1). */
  count(lane: number, change: 1 | -1): void {
    this.botsPerLane[lane] += change;
  }
}

export class Encoders {
  private readonly entries = new Map<string, EncoderEntry>();
  /** Each encoder's model key (its id and a hash of its definition), computed once per catalog. */
  private readonly keys = new WeakMap<Encoder, string>();

  constructor(
    private readonly o: { store: ModelStore; lanes: Lanes; metrics: PoolMetrics; assignment: LaneAssignment },
  ) {}

  keyOf(encoder: Encoder): string {
    let key = this.keys.get(encoder);
    if (key === undefined) this.keys.set(encoder, (key = `encoder/${encoder.id}/${definitionHash(encoder)}`));
    return key;
  }

  /** Bytes of the encoders loaded. */
  get bytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.bytes;
    return n;
  }

  /** The encoders loaded: each one's declared and measured bytes (counted once, however many bots use it). */
  sizes(): Array<{ encoder: string; declared: number; measured: number }> {
    return [...this.entries.values()].filter((e) => e.measuredBytes > 0).map((e) => ({ encoder: e.id, declared: e.declaredBytes, measured: e.measuredBytes }));
  }

  /** Counts a bot as a user of the encoder, loading it first if no bot uses it yet. Throws ModelError if it cannot load. */
  async acquire(encoder: Encoder, key: string, lane: number): Promise<void> {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = this.startLoad(encoder, key, lane);
      this.entries.set(key, entry);
    }
    entry.refs++;
    try {
      await entry.loaded;
    } catch (err) {
      entry.refs--;
      throw err;
    }
  }

  private startLoad(encoder: Encoder, key: string, lane: number): EncoderEntry {
    const { store, lanes, metrics } = this.o;
    const started = performance.now();
    const e: EncoderEntry = { key, id: encoder.id, declaredBytes: encoder.memory, lane, refs: 0, bytes: 0, measuredBytes: 0, loaded: Promise.resolve() };
    e.loaded = store.resolve(encoder.path, encoder.sha256).then((file) => lanes.load(lane, key, { file })).then(
      (r) => {
        if (!r.inputs.includes('input_ids') || !r.outputs.includes('embedding')) {
          throw new ModelError(`encoder "${encoder.id}" (${encoder.path}) must take "input_ids" and output "embedding", it takes ${JSON.stringify(r.inputs)} and outputs ${JSON.stringify(r.outputs)}`);
        }
        e.bytes = r.bytes;
        e.measuredBytes = r.measuredBytes;
        metrics.loadSeconds.observe({ kind: 'encoder' }, (performance.now() - started) / 1000);
      },
      (err: Error) => {
        throw new ModelError(`encoder "${encoder.id}" failed to load from ${encoder.path}: ${err.message}`);
      },
    );
    e.loaded.catch(() => {
      metrics.loadFailures.inc({ kind: 'encoder' });
      if (this.entries.get(key) === e) this.entries.delete(key); // the next catalog retries
    });
    return e;
  }

  /** A bot no longer uses the encoder: unloaded with its last user. */
  release(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    if (--entry.refs <= 0) {
      this.entries.delete(key);
      this.o.assignment.forget(key);
      this.o.lanes.unload(entry.lane, key).catch(() => undefined);
    }
  }

  /** A restarted lane could not load the encoder again: forgotten (counted as a failed load). Whether the key was an encoder's. */
  lost(key: string): boolean {
    if (!this.entries.delete(key)) return false;
    this.o.assignment.forget(key);
    this.o.metrics.loadFailures.inc({ kind: 'encoder' });
    return true;
  }
}
