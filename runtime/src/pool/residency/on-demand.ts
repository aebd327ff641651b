/**
 * Cold bots, loaded on demand (a group with `overcommit`): the pool keeps a resident set within its
 * memory at the fill factor (Residency: the bot asked least lately goes first) and loads any other bot
 * on its first request, as ModelMesh and Ray Serve's multiplexing do. A request for a cold bot waits for its load
 * within its own deadline; every request that waits for the same bot shares one load; loads run a few
 * at a time (the pool's load concurrency), so a burst of cold bots queues behind itself and not in front
 * of the bots that are resident. Bots in use (a request queued or running) are never evicted.
 */
import { Bot } from '../../catalog';
import type { PoolMetrics } from '../metrics';
import { DeadlineError } from '../shedding';
import { Residency, ResidentCost } from './resident-set';

/** What on-demand loading needs of the pool's engine: given once, when the group starts to overcommit. */
export interface ResidencyHost {
  /** Loads a cold bot's models; resolves with its state after the load (ready, or failed with its error). */
  load(id: string): Promise<{ ready: boolean; error?: string }>;
  /** Unloads a resident bot; it becomes cold. */
  evict(id: string): void;
  /** Whether a bot is resident and idle (no request queued or running). */
  idle(id: string): boolean;
  /** Whether a bot is still cold (it may have been removed, changed or loaded meanwhile). */
  cold(id: string): boolean;
  /** Declared bytes of a bot's encoder. */
  encoderBytes(encoder: string): number;
  metrics: PoolMetrics;
}

/** An on-demand load failed: the bot is failed (503) until its pause before the next attempt ends. */
export class NotLoadedError extends Error {
  readonly statusCode = 503;
}

/** How long a load waiting for room sleeps before it looks again, at most (a finished request wakes it sooner). */
const ROOM_POLL_MS = 50;

export class OnDemand {
  private readonly residency: Residency;
  /** Loads under way, by bot: every request for the bot waits for the same one. */
  private readonly loads = new Map<string, Promise<void>>();
  /** Requests waiting for their bot's load, by bot: a bot loaded for them is not evicted before they run. */
  private readonly waiting = new Map<string, number>();
  private running = 0;
  private readonly queue: Array<() => void> = [];
  private wakers: Array<() => void> = [];

  constructor(
    private readonly host: ResidencyHost,
    limit: number,
    overhead: number,
    /** Loads at once. */
    private readonly concurrency: number,
  ) {
    this.residency = new Residency(limit, overhead);
  }

  /** Resident bots, least recently used first. */
  order(): string[] {
    return this.residency.order();
  }

  /** Declared bytes resident now (the overhead included) and the limit. */
  get bytes(): { used: number; limit: number } {
    return { used: this.residency.used, limit: this.residency.limit };
  }

  /** Follows the group's memory at its fill factor (a catalog change). */
  setLimit(limit: number): void {
    this.residency.limit = limit;
  }

  /** A resident bot's candidate loaded (bytes > 0) or unloaded (< 0): the resident set counts it with the bot. */
  candidate(id: string, bytes: number): void {
    this.residency.grow(id, bytes);
  }

  /** The bot is no longer resident (evicted, failed, moved away or removed). */
  remove(id: string): void {
    this.residency.remove(id);
  }

  costOf(bot: Bot): ResidentCost {
    const encoder = bot.model.encoder;
    return { head: bot.model.memory, encoder, encoderBytes: encoder === undefined ? 0 : this.host.encoderBytes(encoder) };
  }

  /** Whether an on-demand load of the bot is under way. */
  loading(id: string): boolean {
    return this.loads.has(id);
  }

  /** A request for the bot came (resident or not): it counts for the bot, which becomes the most recently used if resident. */
  asked(id: string): void {
    this.residency.touch(id);
  }

  /** A request is served from a resident bot: counted as a hit, or a miss when it waited for a load. */
  used(missed: boolean): void {
    this.host.metrics.residency.inc({ result: missed ? 'miss' : 'hit' });
  }

  /** Whether a resident bot may be evicted now: no request queued, running, or waiting for its load. */
  private evictable(id: string): boolean {
    return this.host.idle(id) && !this.waiting.has(id);
  }

  /** Something that may free room happened (a request finished, a load ended): waiting loads look again. */
  roomChanged(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const w of wakers) w();
  }

  /**
   * Waits until the bot is resident, within the deadline (DeadlineError after it; the load goes on for the
   * next request). Throws NotLoadedError if the load fails. Until the returned function is called, the bot
   * is kept from eviction for this request (call it once the request counts as running on the bot).
   */
  async resident(bot: Bot, deadline: number): Promise<() => void> {
    let load = this.loads.get(bot.id);
    if (!load) {
      const started = performance.now();
      load = this.load(bot).finally(() => {
        this.loads.delete(bot.id);
        this.roomChanged();
      });
      load.then(() => this.host.metrics.coldLoadSeconds.observe((performance.now() - started) / 1000)).catch(() => undefined);
      this.loads.set(bot.id, load);
    }
    const ms = deadline - Date.now();
    if (ms <= 0) throw new DeadlineError(`bot "${bot.id}" is loading and the deadline has passed`);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineError(`bot "${bot.id}" did not load within the request's deadline`)), ms);
    });
    this.waiting.set(bot.id, (this.waiting.get(bot.id) ?? 0) + 1);
    let marked = true;
    const unmark = () => {
      if (!marked) return;
      marked = false;
      const n = this.waiting.get(bot.id)! - 1;
      if (n > 0) this.waiting.set(bot.id, n);
      else this.waiting.delete(bot.id);
    };
    try {
      await Promise.race([load, late]);
      return unmark;
    } catch (e) {
      unmark();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Loads a warm bot at start or on a catalog change, only if it fits without evicting anything.
   * Returns whether it was loaded.
   */
  async warm(bot: Bot): Promise<boolean> {
    const cost = this.costOf(bot);
    if (this.residency.victims(cost, () => false)?.length !== 0) return false;
    this.residency.add(bot.id, cost);
    const r = await this.host.load(bot.id);
    if (!r.ready) this.residency.remove(bot.id);
    return r.ready;
  }

  /**
   * A resident bot changed in the catalog: its new version loads beside the serving one, which keeps
   * serving if the new one fails (`load` says whether it loaded). Once loaded, the bot is resident at its
   * new cost (loading it released the old version, which left the resident set).
   */
  async swap(bot: Bot, load: () => Promise<boolean>): Promise<void> {
    await this.turn();
    try {
      if (await load()) this.residency.add(bot.id, this.costOf(bot));
    } finally {
      this.endTurn();
    }
  }

  private async load(bot: Bot): Promise<void> {
    await this.turn();
    try {
      const cost = this.costOf(bot);
      for (;;) {
        if (!this.host.cold(bot.id)) return; // changed, removed or loaded meanwhile: the caller looks again
        const victims = this.residency.victims(cost, (id) => this.evictable(id));
        if (victims) {
          for (const id of victims) {
            this.host.evict(id);
            this.host.metrics.evictions.inc();
          }
          this.residency.add(bot.id, cost);
          break;
        }
        if (this.residency.order().every((id) => this.evictable(id))) {
          // Nothing is in use and it still does not fit: it never will (placement keeps a bot within a pool's memory).
          throw new NotLoadedError(`bot "${bot.id}" needs ${cost.head + cost.encoderBytes} bytes, more than the pool keeps resident (${this.residency.limit - (this.residency.used - this.residency.modelBytes)})`);
        }
        await this.roomFreed();
      }
      const r = await this.host.load(bot.id);
      if (!r.ready) {
        this.residency.remove(bot.id);
        throw new NotLoadedError(`bot "${bot.id}" failed to load: ${r.error ?? 'unknown error'}`);
      }
    } finally {
      this.endTurn();
    }
  }

  private roomFreed(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ROOM_POLL_MS);
      this.wakers.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Waits for a turn among the loads at once. */
  private turn(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push(resolve));
  }

  private endTurn(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.running--;
  }
}
