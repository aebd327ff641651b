/**
 * Loading a bot's models into a lane (its encoder shared, see encoders.ts), unloading them, and loading
 * a failed bot again after a pause. The pool's engine decides which bots load; this does the loads.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Bot, Encoder } from '../catalog';
import { Encoders, LaneAssignment } from './encoders';
import { ModelError } from './lane';
import type { Lanes } from './lanes';
import type { BotState, PoolMetrics } from './metrics';
import { processingOf } from './processors';
import type { ModelStore } from './store';

/** A bot this pool serves (or tried to). */
export interface BotEntry {
  bot: Bot;
  state: BotState;
  /** Why the bot failed to load. */
  error?: string;
  /** Pool that holds the bot now, while it is `leaving` this one. */
  holder?: string;
  /** Hash of the bot's definition and its encoder's: a change means a reload. */
  definitionHash: string;
  /** The home lane holding its models (-1 while cold). */
  lane: number;
  headKey: string;
  encoderKey?: string;
  /** Its head's file size, and what the head measured when it loaded (measure.ts); 0 while not loaded. */
  headBytes: number;
  headMeasuredBytes: number;
  leaveTimer?: NodeJS.Timeout;
  /** While failed: when it is loaded again. */
  retryTimer?: NodeJS.Timeout;
  /** Requests queued or running on it: a bot in use is never evicted. */
  inflight: number;
  /** A new definition of this serving bot that failed to load: this one keeps serving meanwhile. */
  failedVersion?: FailedVersion;
  /** The definition loading to replace this serving one: of two started (a retry and a catalog change), the last wins. */
  replacing?: string;
}

/** The catalog no longer names the failed version: it is forgotten, and its retries stop. */
export function forgetFailedVersion(entry: BotEntry): void {
  if (entry.failedVersion) clearTimeout(entry.retryTimer);
  entry.failedVersion = undefined;
}

/**
 * A changed bot's new version that could not be loaded (missing, corrupt, failing its checks, or its
 * sha256 not matching) while its previous version serves: the bot stays ready, and says why it is not on
 * the catalog's version. Loaded again after a pause that doubles (as a failed bot is), until it loads or
 * a catalog changes the bot again.
 */
export interface FailedVersion {
  /** The failed definition's hash: a catalog with another definition of the bot drops this record. */
  definitionHash: string;
  /** The head (model file) it names. */
  head: string;
  error: string;
  /** When it first failed (ISO 8601). */
  since: string;
  /** Failed loads in a row. */
  failures: number;
}

/** A bot assigned here and not resident: loaded on its first request. */
export function coldEntry(bot: Bot, definitionHash: string): BotEntry {
  return { bot, state: 'cold', definitionHash, lane: -1, headKey: '', headBytes: 0, headMeasuredBytes: 0, inflight: 0 };
}

/** The bot's models are loaded: it serves (ready, or leaving for another pool). */
export const isResident = (e: BotEntry) => e.state === 'ready' || e.state === 'leaving';

/** A request for a bot that cannot run here now: loading at start, failed, or gone. */
export class NotServableError extends Error {
  readonly statusCode = 503;
  constructor(
    message: string,
    readonly reason: 'loading' | 'failed' | 'gone',
  ) {
    super(message);
  }
}

/** Where a request for a bot goes: served here, or a 404 naming the pool that holds it (if any). */
export type Lookup = { entry: BotEntry } | { entry?: undefined; holder?: string };

/** A load decided by a reconcile. */
export type Task = () => Promise<void>;

/** Runs loads a few at a time (the pool's load concurrency). */
export async function runBounded(tasks: Task[], concurrency: number): Promise<void> {
  let next = 0;
  const run = async () => {
    while (next < tasks.length) await tasks[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, run));
}

/** The longest pause between two loads of a failed bot. */
const MAX_RETRY_MS = 5 * 60_000;

/** What loading needs of the pool's engine. */
export interface LoaderHost {
  /** Whether a failed bot may be loaded again now (the pool serves, and the bot is still assigned here). */
  mayRetry(id: string): boolean;
  /** Whether the group overcommits: a failed bot becomes cold instead of loading again. */
  onDemand(): boolean;
  /** The bot's models are no longer loaded: it leaves the resident set. */
  unloaded(id: string): void;
  /** The bot's encoder in the current catalog. */
  encoderOf(bot: Bot): Encoder | undefined;
  /** Loads a failed new version of a serving bot again, beside it, if the catalog still names that version. */
  retryVersion(bot: Bot, encoder: Encoder | undefined, hash: string): Promise<void>;
}

export interface LoaderOptions {
  bots: Map<string, BotEntry>;
  store: ModelStore;
  lanes: Lanes;
  metrics: PoolMetrics;
  log: FastifyBaseLogger;
  /** First pause before a failed bot is loaded again; it doubles with each failure, up to 5 minutes. @default 5000 */
  retryMs?: number;
  host: LoaderHost;
}

export class Loader {
  readonly encoders: Encoders;
  private readonly assignment: LaneAssignment;
  /** Heads loaded so far: each head's key carries its number, so a reload never reuses a key. */
  private headCount = 0;
  /** Failed loads in a row, per bot: how long the next pause before loading it again is. */
  private readonly failures = new Map<string, number>();
  private closed = false;

  constructor(private readonly o: LoaderOptions) {
    this.assignment = new LaneAssignment(o.lanes.size);
    this.encoders = new Encoders({ store: o.store, lanes: o.lanes, metrics: o.metrics, assignment: this.assignment });
  }

  /** A new entry for a bot's models, placed in the lane of its encoder (or a lane of its own key). */
  private entryFor(bot: Bot, encoder: Encoder | undefined, hash: string): BotEntry {
    const encoderKey = encoder ? this.encoders.keyOf(encoder) : undefined;
    const lane = this.assignment.laneFor(encoderKey ?? `bot/${bot.id}`);
    this.assignment.count(lane, 1);
    return { bot, state: 'loading', definitionHash: hash, lane, headKey: `${bot.id}#${++this.headCount}`, encoderKey, headBytes: 0, headMeasuredBytes: 0, inflight: 0 };
  }

  /**
   * Loads models that are not the bot's entry (a candidate version beside the serving one): the entry
   * comes back ready or failed (and why), and is never registered as the bot's. Release it with releaseVersion.
   */
  async loadVersion(bot: Bot, encoder: Encoder | undefined, hash: string): Promise<BotEntry> {
    const entry = this.entryFor(bot, encoder, hash);
    if (this.closed) return Object.assign(entry, { state: 'failed', error: 'the pool is stopping' });
    await this.loadModels(entry, encoder);
    if (entry.state === 'failed') this.assignment.count(entry.lane, -1);
    return entry;
  }

  /** Unloads a version loaded by loadVersion (the bot's own entry and the resident set are left alone). */
  releaseVersion(entry: BotEntry): void {
    if (entry.state !== 'ready') return;
    entry.state = 'cold'; // not loaded any more: released once
    entry.headMeasuredBytes = 0;
    this.assignment.count(entry.lane, -1);
    this.o.lanes.unload(entry.lane, entry.headKey).catch(() => undefined);
    if (entry.encoderKey) this.encoders.release(entry.encoderKey);
  }

  /** Loads a bot's models; `again`: a failed bot, which stays failed (and says why) until this load succeeds. */
  async load(bot: Bot, encoder: Encoder | undefined, hash: string, again = false): Promise<void> {
    if (this.closed) return;
    const { bots } = this.o;
    const entry = this.entryFor(bot, encoder, hash);
    const previous = bots.get(bot.id);
    // A serving bot keeps serving its old version until the new one is ready.
    if (!again && (!previous || !isResident(previous))) {
      if (previous) this.release(previous);
      bots.set(bot.id, entry);
    }
    const replacing = !again && previous !== undefined && isResident(previous);
    if (replacing) previous.replacing = hash;
    await this.loadModels(entry, encoder);
    const current = bots.get(bot.id);
    if (replacing && previous.replacing !== hash) {
      // Another version started loading for this bot meanwhile: this load is stale, whatever its outcome.
      this.release(entry);
      return;
    }
    if (replacing) previous.replacing = undefined;
    if (entry.state === 'failed' && replacing) {
      // The last good version keeps serving (as Triton keeps a loaded model whose reload fails); a bot
      // removed or moved away meanwhile just drops the failed load.
      if (current === previous && isResident(previous)) this.keepServing(previous, entry, encoder);
      else this.release(entry);
      return;
    }
    if (entry.state === 'failed') {
      this.o.log.warn({ bot: bot.id, err: entry.error }, 'bot failed to load');
      this.retryLater(entry, encoder);
    }
    if (again && current !== previous) {
      // A catalog change replaced or removed the failed bot while it was being loaded again: its load wins.
      if (!current) this.failures.delete(bot.id);
      this.release(entry);
      return;
    }
    if (current !== entry) {
      if (current) this.release(current);
      bots.set(bot.id, entry);
    }
  }

  /** The encoder, then the head checked against its bot: the entry ends ready, or failed (and says why). */
  private async loadModels(entry: BotEntry, encoder: Encoder | undefined): Promise<void> {
    const { bot, lane, encoderKey } = entry;
    const { metrics, lanes } = this.o;
    const started = performance.now();
    let encoderAcquired = false;
    let headLoaded = false;
    try {
      if (bot.model.encoder && !encoder) throw new ModelError(`encoder "${bot.model.encoder}" is not in the catalog`);
      if (encoder && encoderKey) {
        await this.encoders.acquire(encoder, encoderKey, lane);
        encoderAcquired = true;
      }
      const file = await this.o.store.resolve(bot.model.head, bot.model.sha256).catch((err: Error) => {
        throw new ModelError(`head ${bot.model.head} could not be fetched: ${err.message}`);
      });
      // Checked as part of the load: its inputs, outputs and label count.
      const r = await lanes.load(lane, entry.headKey, { file, processing: processingOf(bot, encoder?.tokenizer) }, { check: { encoder: encoderKey } }).catch((err: Error) => {
        throw new ModelError(`head ${bot.model.head} failed to load: ${err.message}`);
      });
      headLoaded = true;
      entry.headBytes = r.bytes;
      entry.headMeasuredBytes = r.measuredBytes;
      entry.state = 'ready';
      this.failures.delete(bot.id);
      metrics.loadSeconds.observe({ kind: 'head' }, (performance.now() - started) / 1000);
    } catch (e) {
      entry.state = 'failed';
      entry.error = (e as Error).message;
      metrics.loadFailures.inc({ kind: 'head' });
      if (headLoaded) lanes.unload(lane, entry.headKey).catch(() => undefined);
      if (encoderAcquired && encoderKey) this.encoders.release(encoderKey);
    }
  }

  /**
   * A serving bot's new version failed: the failed load is dropped, the serving entry keeps serving and
   * records the failed version, which is loaded again after a pause that doubles with each failure.
   */
  private keepServing(serving: BotEntry, failed: BotEntry, encoder: Encoder | undefined): void {
    const id = serving.bot.id;
    this.release(failed);
    const same = serving.failedVersion?.definitionHash === failed.definitionHash;
    const failures = same ? serving.failedVersion!.failures + 1 : 1;
    serving.failedVersion = {
      definitionHash: failed.definitionHash,
      head: failed.bot.model.head,
      error: failed.error ?? 'failed to load',
      since: same ? serving.failedVersion!.since : new Date().toISOString(),
      failures,
    };
    this.o.log.warn({ bot: id, head: failed.bot.model.head, err: failed.error, failures }, 'new version failed to load: the previous version keeps serving');
    clearTimeout(serving.retryTimer);
    serving.retryTimer = setTimeout(() => {
      if (this.closed || this.o.bots.get(id) !== serving || !isResident(serving) || serving.failedVersion?.definitionHash !== failed.definitionHash || !this.o.host.mayRetry(id)) return;
      this.o.log.info({ bot: id, head: failed.bot.model.head, failures }, 'loading a failed new version again (the previous one serves meanwhile)');
      void this.o.host.retryVersion(failed.bot, encoder, failed.definitionHash);
    }, this.retryDelay(failures));
    serving.retryTimer.unref();
  }

  /** The pause before loading a failed model again: doubling with each failure in a row, jittered. */
  private retryDelay(failures: number): number {
    // Jittered (x0.5 to x1.5): bots that failed together (a model store down) do not all load again at once.
    return Math.min((this.o.retryMs ?? 5000) * 2 ** (failures - 1), MAX_RETRY_MS) * (0.5 + Math.random());
  }

  /** Unloads what the bot has loaded and stops its timers (it is gone, cold, or replaced). */
  release(entry: BotEntry): void {
    clearTimeout(entry.leaveTimer);
    clearTimeout(entry.retryTimer);
    if (entry.lane >= 0) this.assignment.count(entry.lane, -1);
    if (isResident(entry)) {
      this.o.lanes.unload(entry.lane, entry.headKey).catch(() => undefined);
      if (entry.encoderKey) this.encoders.release(entry.encoderKey);
      this.o.host.unloaded(entry.bot.id);
    }
    entry.headMeasuredBytes = 0;
  }

  /** The bot left the catalog: its count of failures goes with it. */
  forget(id: string): void {
    this.failures.delete(id);
  }

  /**
   * A model that could not be reloaded into a restarted lane's thread: the bots that use it (its head, or
   * its shared encoder) are failed, honestly: not ready (503), counted and logged. The next catalog that
   * changes them loads them again.
   */
  modelLost(key: string, error: Error): void {
    const { log, metrics } = this.o;
    const encoder = this.encoders.lost(key);
    for (const entry of this.o.bots.values()) {
      if (entry.headKey !== key && entry.encoderKey !== key) continue;
      if (!isResident(entry)) continue;
      this.o.host.unloaded(entry.bot.id);
      entry.state = 'failed';
      entry.error = `its inference worker died and ${encoder ? `encoder ${key.split('/')[1]}` : `head ${entry.bot.model.head}`} could not be loaded again: ${error.message}`;
      // What is still loaded of it goes: nothing serves a failed bot.
      if (entry.headKey !== key) this.o.lanes.unload(entry.lane, entry.headKey).catch(() => undefined);
      if (!encoder && entry.encoderKey) this.encoders.release(entry.encoderKey);
      metrics.loadFailures.inc({ kind: 'head' });
      log.error({ bot: entry.bot.id, err: entry.error }, 'bot failed after its inference worker died');
      this.retryLater(entry, this.o.host.encoderOf(entry.bot));
    }
  }

  /**
   * Loads a failed bot again after a pause that doubles with each failure in a row (as ModelMesh retries
   * failed loads): a model store that was down or a file that was missing comes back without a new
   * catalog. Nothing happens if a catalog has changed or removed the bot meanwhile.
   */
  private retryLater(entry: BotEntry, encoder: Encoder | undefined): void {
    const id = entry.bot.id;
    const failures = (this.failures.get(id) ?? 0) + 1;
    this.failures.set(id, failures);
    const delayMs = this.retryDelay(failures);
    clearTimeout(entry.retryTimer);
    entry.retryTimer = setTimeout(() => {
      if (this.closed || this.o.bots.get(id) !== entry || entry.state !== 'failed' || !this.o.host.mayRetry(id)) return;
      if (this.o.host.onDemand()) {
        // Cold again: its next request loads it (and only then evicts anything for it).
        this.release(entry);
        this.o.bots.set(id, coldEntry(entry.bot, entry.definitionHash));
        return;
      }
      this.o.log.info({ bot: id, failures }, 'loading a failed bot again');
      void this.load(entry.bot, encoder, entry.definitionHash, true);
    }, delayMs);
    entry.retryTimer.unref();
  }

  /** Loads nothing more (the pool stops). */
  close(): void {
    this.closed = true;
  }
}
