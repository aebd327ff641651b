/**
 * The pool's state: which bots it serves and in which state, kept in line with the catalog by
 * `apply()` (the reconcile step): load bots newly assigned here, reload changed ones (the old version
 * serves until the new one is ready), keep bots that moved to another pool for a grace period, unload
 * removed ones. Each shared encoder is loaded once per pool, in the worker that runs its bots.
 */
import { createHash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { Bot, CatalogIndex, CatalogSource, Encoder, PoolGroup, groupDefaults } from '../catalog';
import { Topology, fillLimit, plan } from '../placement';
import { BotState, PoolMetrics, PoolState } from './metrics';
import { processingOf } from './processors';
import type { Answer } from './worker';
import { HotSet } from './hot-set';
import { OnDemand } from './on-demand';
import { ModelStore } from './store';
import { ModelError, QueueLimits, WorkerPool } from './workers';

/** A bot this pool serves (or tried to). */
export interface BotEntry {
  bot: Bot;
  state: BotState;
  /** Why the bot failed to load. */
  error?: string;
  /** Pool that holds the bot now, while it is `leaving` this one. */
  holder?: string;
  /** Hash of the bot's definition and its encoder's: a change means a reload. */
  spec: string;
  /** The inference worker holding its models (-1 while cold). */
  worker: number;
  headKey: string;
  encoderKey?: string;
  headBytes: number;
  leaveTimer?: NodeJS.Timeout;
  /** While failed: when it is loaded again. */
  retryTimer?: NodeJS.Timeout;
  /** Requests queued or running on it: a bot in use is never evicted. */
  inflight: number;
}

interface EncoderEntry {
  key: string;
  worker: number;
  refs: number;
  bytes: number;
  loaded: Promise<void>;
}

export interface PoolRuntimeOptions {
  pool: string;
  /** Resolves model locations (paths under the model root, s3:// and https:// URIs) to local files. */
  store: ModelStore;
  workers: WorkerPool;
  metrics: PoolMetrics;
  log: FastifyBaseLogger;
  /** How long a bot that moved to another pool is still served here. */
  moveGraceMs: number;
  /** Models loading at once. */
  loadConcurrency: number;
  /** Queue bounds over the group's concurrency (local use). @default - the group's, followed on each catalog */
  concurrency?: number;
  /** Deadline over the group's timeout (local use): what a slow run is measured against too. @default - the group's */
  timeoutMs?: number;
  /** First pause before a failed bot is loaded again; it doubles with each failure, up to 5 minutes. @default 5000 */
  retryMs?: number;
  /** Where an overcommitted pool records its resident bots (and reads them back at start, to warm them). @default - none */
  hotSet?: HotSet;
  /** How often the resident bots are recorded. @default 30000 */
  hotSetEveryMs?: number;
}

/** A catalog planned for one pool: what `PoolRuntime.apply` takes. */
export interface PlannedCatalog {
  catalog: CatalogIndex;
  topology: Topology;
  /** This pool's group, or undefined when the plan has no such pool. */
  group?: PoolGroup;
  /** The full definitions of this pool's bots. */
  assigned: Bot[];
  /** Bot definitions read from a folder with a placement index (undefined: the whole catalog was loaded). */
  definitionsRead?: number;
}

/**
 * Plans a catalog for one pool: its index planned, then the full definitions of this pool's bots only
 * read and validated. Throws a PlacementError or CatalogError when the catalog cannot be used.
 */
export function planPool(source: CatalogSource, pool: string): PlannedCatalog {
  const catalog = source.index;
  const topology = plan(catalog);
  const own = topology.pools.find((p) => p.name === pool);
  const assigned = source.definitions(own?.bots ?? []);
  return { catalog, topology, group: own && catalog.groups.find((g) => g.name === own.group), assigned, definitionsRead: source.definitionsRead };
}

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

/** The longest pause between two loads of a failed bot. */
const MAX_RETRY_MS = 5 * 60_000;

/** Where a request for a bot goes: served here, or a 404 naming the pool that holds it (if any). */
export type Lookup = { entry: BotEntry } | { entry?: undefined; holder?: string };

const hash = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);

async function bounded(tasks: Array<() => Promise<void>>, concurrency: number): Promise<void> {
  let next = 0;
  const run = async () => {
    while (next < tasks.length) await tasks[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, run));
}

export class PoolRuntime {
  readonly bots = new Map<string, BotEntry>();
  /** The catalog being served, as placement sees it (full definitions: only this pool's bots, in `bots`). */
  catalog?: CatalogIndex;
  topology?: Topology;
  /** The group of this pool in the current catalog. */
  group?: PoolGroup;
  /** Bot definitions read for the latest catalog (from a folder with a placement index; else undefined). */
  definitionsRead?: number;
  /** The first catalog has been applied (every assigned bot loaded or failed). */
  started = false;
  draining = false;
  private readonly encoders = new Map<string, EncoderEntry>();
  private readonly workerOfKey = new Map<string, number>();
  private readonly botsPerWorker: number[];
  private version = 0;
  private applying: Promise<void> = Promise.resolve();
  private pending?: CatalogIndex;
  private closed = false;
  /** Failed loads in a row, per bot: how long the next pause before loading it again is. */
  private readonly failures = new Map<string, number>();
  /** Set while the group overcommits: the resident set and the loads of cold bots. */
  private onDemand?: OnDemand;
  /** The current catalog's encoders, by id. */
  private encoderById: ReadonlyMap<string, Encoder> = new Map();
  /** Each encoder's model key (its id and a hash of its definition), computed once per catalog. */
  private readonly encoderKeys = new WeakMap<Encoder, string>();
  private hotSetTimer?: NodeJS.Timeout;
  private hotSetWarned = false;

  constructor(private readonly opts: PoolRuntimeOptions) {
    this.botsPerWorker = new Array(opts.workers.size).fill(0);
    opts.metrics.collectFrom(this.gaugeState());
    if (opts.hotSet) {
      this.hotSetTimer = setInterval(() => void this.recordHotSet(), opts.hotSetEveryMs ?? 30_000);
      this.hotSetTimer.unref();
    }
  }

  /** Records the resident bots of an overcommitted pool, most recently used first (nothing otherwise). */
  async recordHotSet(): Promise<void> {
    const resident = this.onDemand?.residency.order();
    if (!resident || !this.opts.hotSet || !this.started) return;
    await this.opts.hotSet.write([...resident].reverse()).then(
      () => (this.hotSetWarned = false),
      (err: Error) => {
        if (!this.hotSetWarned) this.opts.log.warn({ err }, 'the resident bots could not be recorded: a restart warms only warm and pinned bots');
        this.hotSetWarned = true;
      },
    );
  }

  get ready(): boolean {
    return this.started && !this.draining && !this.closed;
  }

  /** Applies a catalog planned for this pool (`planPool`: a catalog that cannot be used throws there, before anything changes). */
  apply(planned: PlannedCatalog): Promise<void> {
    const { catalog } = planned;
    this.pending = catalog;
    this.applying = this.applying.then(async () => {
      if (this.pending !== catalog || this.closed) return; // a newer catalog came in meanwhile
      this.pending = undefined;
      try {
        await this.reconcile(planned);
      } catch (e) {
        this.opts.log.error({ err: e, generation: catalog.generation }, 'catalog could not be applied');
      }
    });
    return this.applying;
  }

  lookup(id: string): Lookup {
    const entry = this.bots.get(id);
    if (entry) return { entry };
    return { holder: this.topology?.assignment.get(id) };
  }

  private async reconcile(planned: PlannedCatalog): Promise<void> {
    const { catalog, topology, assigned } = planned;
    const { pool, log, metrics } = this.opts;
    const started = Date.now();
    if (!planned.group) log.warn({ generation: catalog.generation, pools: topology.pools.length }, `pool "${pool}" is not in the catalog's plan: it serves no bots`);
    this.catalog = catalog;
    this.topology = topology;
    this.group = planned.group;
    this.definitionsRead = planned.definitionsRead;
    if (this.group) {
      const g = this.group;
      const defaults = groupDefaults(g.realtime);
      this.opts.workers.configure({
        concurrency: this.opts.concurrency ?? g.concurrency,
        timeoutMs: this.timeoutMs,
        quarantineShare: g.quarantineShare ?? defaults.quarantineShare,
        batchWindowMs: g.batchWindowMs ?? defaults.batchWindowMs,
        batchMaxRows: g.batchMaxRows ?? defaults.batchMaxRows,
      });
    }
    metrics.setGeneration(catalog.generation);
    const encoders = new Map(catalog.encoders.map((e) => [e.id, e]));
    this.encoderById = encoders;
    this.configureOnDemand();
    const onDemand = this.onDemand;
    metrics.botsAssigned.set(assigned.length);
    const wanted = new Set(assigned.map((b) => b.id));

    let leaving = 0;
    let removed = 0;
    for (const [id, entry] of this.bots) {
      if (wanted.has(id)) continue;
      const holder = topology.assignment.get(id);
      if (holder && entry.state === 'ready') {
        // Moved to another pool: keep serving it while routers still send it here.
        entry.state = 'leaving';
        entry.holder = holder;
        leaving++;
        entry.leaveTimer = setTimeout(() => {
          if (this.bots.get(id) === entry) {
            this.bots.delete(id);
            this.release(entry);
            log.info({ bot: id, holder: entry.holder }, 'bot moved away: unloaded after its grace period');
          }
        }, this.opts.moveGraceMs);
        entry.leaveTimer.unref();
      } else if (holder && entry.state === 'leaving') {
        entry.holder = holder;
      } else {
        // Removed from the catalog (or moved before it ever served): gone at once.
        this.bots.delete(id);
        this.failures.delete(id);
        this.release(entry);
        removed++;
      }
    }

    const tasks: Array<() => Promise<void>> = [];
    const warm: Bot[] = [];
    // At start, after the warm and pinned bots: those its traffic kept resident before a restart, most recent first.
    const recorded = onDemand && !this.started && this.opts.hotSet ? await this.opts.hotSet.read() : [];
    for (const bot of assigned) {
      const encoder = bot.model.encoder ? encoders.get(bot.model.encoder) : undefined;
      const spec = hash({ bot, encoder });
      const current = this.bots.get(bot.id);
      if (current && current.spec === spec && current.state !== 'failed' && !(current.state === 'cold' && !onDemand)) {
        current.bot = bot;
        if (current.state === 'leaving') {
          // Moved back before its grace period ended.
          clearTimeout(current.leaveTimer);
          current.state = 'ready';
          current.holder = undefined;
        }
        continue;
      }
      if (onDemand) {
        // New or changed: cold (a changed bot is loaded again on its next request); warm bots load now.
        if (current) this.release(current);
        this.bots.set(bot.id, this.coldEntry(bot, spec));
        if (bot.warm || bot.pin !== undefined) warm.push(bot);
        continue;
      }
      tasks.push(() => this.load(bot, encoder, spec));
    }
    const byId = new Map(assigned.map((b) => [b.id, b]));
    const warmed = new Set(warm.map((b) => b.id));
    const hot = recorded.map((id) => byId.get(id)).filter((b): b is Bot => b !== undefined && !warmed.has(b.id) && this.bots.get(b.id)?.state === 'cold');
    if (hot.length > 0) log.info({ bots: hot.length, recorded: recorded.length }, 'loading the bots this pool had resident before it restarted');
    let warmCold = 0;
    for (const bot of warm) {
      tasks.push(async () => {
        if (!(await onDemand!.warm(bot)) && this.bots.get(bot.id)?.state === 'cold') warmCold++;
      });
    }
    // Then as many of those as fit beside them, without evicting anything.
    for (const bot of hot) {
      tasks.push(async () => {
        await onDemand!.warm(bot);
      });
    }
    await bounded(tasks, this.opts.loadConcurrency);
    if (warmCold > 0) log.warn({ bots: warmCold, limitBytes: onDemand?.residency.limit }, 'warm bots beyond the memory the pool keeps resident stay cold: they load on their first request');
    this.started = true;
    const counts = this.counts();
    log.info({ generation: catalog.generation, bots: catalog.bots.length, assigned: assigned.length, definitionsRead: this.definitionsRead, loaded: tasks.length, leaving, removed, ready: counts.ready, failed: counts.failed, ms: Date.now() - started }, 'catalog applied');
  }

  private workerFor(key: string): number {
    let w = this.workerOfKey.get(key);
    if (w === undefined) {
      // A new key (an encoder, or a bot without one) goes to the worker with the fewest bots.
      w = this.botsPerWorker.indexOf(Math.min(...this.botsPerWorker));
      this.workerOfKey.set(key, w);
    }
    return w;
  }

  private async acquireEncoder(encoder: Encoder, key: string, worker: number): Promise<void> {
    let entry = this.encoders.get(key);
    if (!entry) {
      const started = performance.now();
      const e: EncoderEntry = { key, worker, refs: 0, bytes: 0, loaded: Promise.resolve() };
      e.loaded = this.opts.store.resolve(encoder.path, encoder.sha256).then((file) => this.opts.workers.load(worker, key, { file })).then(
        (r) => {
          if (!r.inputs.includes('input_ids') || !r.outputs.includes('embedding')) {
            throw new ModelError(`encoder "${encoder.id}" (${encoder.path}) must take "input_ids" and output "embedding", it takes ${JSON.stringify(r.inputs)} and outputs ${JSON.stringify(r.outputs)}`);
          }
          e.bytes = r.bytes;
          this.opts.metrics.loadSeconds.observe({ kind: 'encoder' }, (performance.now() - started) / 1000);
        },
        (err: Error) => {
          throw new ModelError(`encoder "${encoder.id}" failed to load from ${encoder.path}: ${err.message}`);
        },
      );
      e.loaded.catch(() => {
        this.opts.metrics.loadFailures.inc({ kind: 'encoder' });
        if (this.encoders.get(key) === e) this.encoders.delete(key); // the next catalog retries
      });
      this.encoders.set(key, e);
      entry = e;
    }
    entry.refs++;
    try {
      await entry.loaded;
    } catch (err) {
      entry.refs--;
      throw err;
    }
  }

  private releaseEncoder(key: string): void {
    const entry = this.encoders.get(key);
    if (!entry) return;
    if (--entry.refs <= 0) {
      this.encoders.delete(key);
      this.workerOfKey.delete(key);
      this.opts.workers.unload(entry.worker, key).catch(() => undefined);
    }
  }

  private release(entry: BotEntry): void {
    clearTimeout(entry.leaveTimer);
    clearTimeout(entry.retryTimer);
    if (entry.worker >= 0) this.botsPerWorker[entry.worker]--;
    if (entry.state === 'ready' || entry.state === 'leaving') {
      this.opts.workers.unload(entry.worker, entry.headKey).catch(() => undefined);
      if (entry.encoderKey) this.releaseEncoder(entry.encoderKey);
      this.onDemand?.residency.remove(entry.bot.id);
    }
  }

  /** A bot assigned here and not resident: loaded on its first request. */
  private coldEntry(bot: Bot, spec: string): BotEntry {
    return { bot, state: 'cold', spec, worker: -1, headKey: '', headBytes: 0, inflight: 0 };
  }

  /** Follows the group's overcommit: on-demand loading on (its resident limit followed live) or off. */
  private configureOnDemand(): void {
    const group = this.group;
    if (!group || group.overcommit === undefined) {
      this.onDemand = undefined; // every cold bot is loaded by this reconcile
      return;
    }
    const limit = fillLimit(group);
    if (this.onDemand) {
      this.onDemand.residency.limit = limit;
      return;
    }
    this.onDemand = new OnDemand(
      {
        load: async (id) => {
          const entry = this.bots.get(id);
          if (!entry || entry.state !== 'cold') return { ready: false, error: 'changed while it waited for room' };
          const encoder = entry.bot.model.encoder === undefined ? undefined : this.encoderById.get(entry.bot.model.encoder);
          await this.load(entry.bot, encoder, entry.spec);
          const after = this.bots.get(id);
          return { ready: after?.state === 'ready', error: after?.error };
        },
        evict: (id) => this.evict(id),
        idle: (id) => {
          const e = this.bots.get(id);
          return !!e && (e.state === 'ready' || e.state === 'leaving') && e.inflight === 0;
        },
        cold: (id) => this.bots.get(id)?.state === 'cold',
        encoderBytes: (id) => this.encoderById.get(id)?.memory ?? 0,
        metrics: this.opts.metrics,
      },
      limit,
      group.poolOverhead,
      this.opts.loadConcurrency,
    );
  }

  /** Unloads a resident bot to make room: it stays assigned here, cold. */
  private evict(id: string): void {
    const entry = this.bots.get(id);
    if (!entry || (entry.state !== 'ready' && entry.state !== 'leaving')) return;
    if (entry.state === 'leaving') {
      // Moved away and idle: gone, as after its grace period.
      this.bots.delete(id);
      this.release(entry);
    } else {
      this.release(entry);
      Object.assign(entry, { state: 'cold', worker: -1, headKey: '', headBytes: 0, encoderKey: undefined });
    }
    this.opts.log.debug({ bot: id }, 'bot evicted (asked least lately)');
  }

  private encoderKeyOf(encoder: Encoder): string {
    let key = this.encoderKeys.get(encoder);
    if (key === undefined) this.encoderKeys.set(encoder, (key = `encoder/${encoder.id}/${hash(encoder)}`));
    return key;
  }

  /** Loads a bot's models; `again`: a failed bot, which stays failed (and says why) until this load succeeds. */
  private async load(bot: Bot, encoder: Encoder | undefined, spec: string, again = false): Promise<void> {
    if (this.closed) return;
    const { log, metrics, workers } = this.opts;
    const encoderKey = encoder ? this.encoderKeyOf(encoder) : undefined;
    const worker = this.workerFor(encoderKey ?? `bot/${bot.id}`);
    const entry: BotEntry = { bot, state: 'loading', spec, worker, headKey: `${bot.id}#${++this.version}`, encoderKey, headBytes: 0, inflight: 0 };
    this.botsPerWorker[worker]++;
    const previous = this.bots.get(bot.id);
    // A serving bot keeps serving its old version until the new one is ready.
    if (!again && (!previous || (previous.state !== 'ready' && previous.state !== 'leaving'))) {
      if (previous) this.release(previous);
      this.bots.set(bot.id, entry);
    }
    const started = performance.now();
    let encoderAcquired = false;
    let headLoaded = false;
    try {
      if (bot.model.encoder && !encoder) throw new ModelError(`encoder "${bot.model.encoder}" is not in the catalog`);
      if (encoder && encoderKey) {
        await this.acquireEncoder(encoder, encoderKey, worker);
        encoderAcquired = true;
      }
      const file = await this.opts.store.resolve(bot.model.head, bot.model.sha256).catch((err: Error) => {
        throw new ModelError(`head ${bot.model.head} could not be fetched: ${err.message}`);
      });
      // Checked as part of the load: its inputs, outputs and label count.
      const r = await workers.load(worker, entry.headKey, { file, processing: processingOf(bot, encoder?.tokenizer) }, { check: { encoder: encoderKey } }).catch((err: Error) => {
        throw new ModelError(`head ${bot.model.head} failed to load: ${err.message}`);
      });
      headLoaded = true;
      entry.headBytes = r.bytes;
      entry.state = 'ready';
      this.failures.delete(bot.id);
      metrics.loadSeconds.observe({ kind: 'head' }, (performance.now() - started) / 1000);
    } catch (e) {
      entry.state = 'failed';
      entry.error = (e as Error).message;
      metrics.loadFailures.inc({ kind: 'head' });
      if (headLoaded) workers.unload(worker, entry.headKey).catch(() => undefined);
      if (encoderAcquired && encoderKey) this.releaseEncoder(encoderKey);
      log.warn({ bot: bot.id, err: entry.error }, 'bot failed to load');
      this.retryLater(entry, encoder);
    }
    const current = this.bots.get(bot.id);
    if (again && current !== previous) {
      // A catalog change replaced or removed the failed bot while it was being loaded again: its load wins.
      if (!current) this.failures.delete(bot.id);
      this.release(entry);
      return;
    }
    if (current !== entry) {
      if (current) this.release(current);
      this.bots.set(bot.id, entry);
    }
  }

  /**
   * A model that could not be reloaded into a restarted worker thread: the bots that use it (its head, or
   * its shared encoder) are failed, honestly: not ready (503), counted and logged. The next catalog that
   * changes them loads them again.
   */
  modelLost(key: string, error: Error): void {
    const { log, metrics } = this.opts;
    const encoder = this.encoders.get(key);
    if (encoder) {
      this.encoders.delete(key);
      this.workerOfKey.delete(key);
      metrics.loadFailures.inc({ kind: 'encoder' });
    }
    for (const entry of this.bots.values()) {
      if (entry.headKey !== key && entry.encoderKey !== key) continue;
      if (entry.state !== 'ready' && entry.state !== 'leaving') continue;
      this.onDemand?.residency.remove(entry.bot.id);
      entry.state = 'failed';
      entry.error = `its inference worker died and ${encoder ? `encoder ${key.split('/')[1]}` : `head ${entry.bot.model.head}`} could not be loaded again: ${error.message}`;
      // What is still loaded of it goes: nothing serves a failed bot.
      if (entry.headKey !== key) this.opts.workers.unload(entry.worker, entry.headKey).catch(() => undefined);
      if (!encoder && entry.encoderKey) this.releaseEncoder(entry.encoderKey);
      metrics.loadFailures.inc({ kind: 'head' });
      log.error({ bot: entry.bot.id, err: entry.error }, 'bot failed after its inference worker died');
      this.retryLater(entry, this.catalog?.encoders.find((e) => e.id === entry.bot.model.encoder));
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
    // Jittered (x0.5 to x1.5): bots that failed together (a model store down) do not all load again at once.
    const delayMs = Math.min((this.opts.retryMs ?? 5000) * 2 ** (failures - 1), MAX_RETRY_MS) * (0.5 + Math.random());
    clearTimeout(entry.retryTimer);
    entry.retryTimer = setTimeout(() => {
      if (this.closed || this.draining || this.bots.get(id) !== entry || entry.state !== 'failed') return;
      if (this.topology?.assignment.get(id) !== this.opts.pool) return;
      if (this.onDemand) {
        // Cold again: its next request loads it (and only then evicts anything for it).
        this.release(entry);
        this.bots.set(id, this.coldEntry(entry.bot, entry.spec));
        return;
      }
      this.opts.log.info({ bot: id, failures }, 'loading a failed bot again');
      void this.load(entry.bot, encoder, entry.spec, true);
    }, delayMs);
    entry.retryTimer.unref();
  }

  /**
   * Serves a request for a bot: runs it if resident; if cold (or being loaded for another request),
   * waits for its load within the deadline first, as often as it takes (a bot evicted meanwhile is loaded
   * again). `residency` is set in an overcommitted pool: hit, or miss (this request waited for a load).
   * Throws NotServableError (loading at start, or failed), NotLoadedError, OverloadedError,
   * DeadlineError or ModelError.
   */
  async serve(id: string, texts: string[], deadline: number, o: { entities?: boolean } = {}): Promise<{ answer: Answer; residency?: 'hit' | 'miss' }> {
    let missed = false;
    if (this.bots.has(id)) this.onDemand?.asked(id);
    // Set while this request waited for a load: the bot is kept from eviction until the request runs on it.
    let unmark: (() => void) | undefined;
    try {
      for (;;) {
        const entry = this.bots.get(id);
        if (!entry) throw new NotServableError(`bot "${id}" left this pool while its request waited`, 'gone');
        const onDemand = this.onDemand;
        if (entry.state === 'ready' || entry.state === 'leaving') {
          onDemand?.used(missed);
          entry.inflight++;
          unmark?.();
          unmark = undefined;
          try {
            return { answer: await this.predict(entry, texts, deadline, o), residency: onDemand ? (missed ? 'miss' : 'hit') : undefined };
          } finally {
            entry.inflight--;
            onDemand?.roomChanged();
          }
        }
        if (onDemand && (entry.state === 'cold' || (entry.state === 'loading' && onDemand.loading(id)))) {
          missed = true;
          unmark?.();
          unmark = await onDemand.resident(entry.bot, deadline);
          continue;
        }
        throw new NotServableError(entry.state === 'loading' ? `bot "${id}" is loading` : `bot "${id}" failed to load: ${entry.error ?? ''}`, entry.state === 'loading' ? 'loading' : 'failed');
      }
    } finally {
      unmark?.();
    }
  }

  /** In an overcommitted pool: declared bytes resident now and the limit (memory at the fill factor); else undefined. */
  get residentBytes(): { used: number; limit: number; bots: string[] } | undefined {
    const r = this.onDemand?.residency;
    return r && { used: r.used, limit: r.limit, bots: r.order() };
  }

  /** In an overcommitted pool: whether a bot is resident, cold or loading (undefined otherwise, and for a failed bot). */
  residencyOf(entry: BotEntry): 'resident' | 'cold' | 'loading' | undefined {
    if (!this.onDemand) return undefined;
    if (entry.state === 'ready' || entry.state === 'leaving') return 'resident';
    return entry.state === 'cold' || entry.state === 'loading' ? entry.state : undefined;
  }

  /** Runs a bot on a batch of texts (`entities`: find its entities too). Throws OverloadedError, DeadlineError or ModelError. */
  async predict(entry: BotEntry, texts: string[], deadline: number, o: { entities?: boolean } = {}): Promise<Answer> {
    const r = await this.opts.workers.infer(entry.worker, entry.bot.id, { encoder: entry.encoderKey, head: entry.headKey }, texts, deadline, o);
    this.opts.metrics.inferenceSeconds.observe({ group: this.group?.name ?? 'none' }, r.ms / 1000);
    return r;
  }

  /** The deadline of a request: the group's timeout (followed live), unless this process overrides it. */
  get timeoutMs(): number {
    return this.opts.timeoutMs ?? this.group?.timeoutMs ?? groupDefaults(true).timeoutMs;
  }

  /** The pool's inference worker threads. */
  get workers(): WorkerPool {
    return this.opts.workers;
  }

  /** The queue bounds in force (from the group's concurrency, or the process's override). */
  queueLimits(): QueueLimits {
    return this.opts.workers.queueLimits;
  }

  /** Inference requests waiting or running, per worker thread. */
  queueDepths(): number[] {
    return this.opts.workers.depths();
  }

  /** Failed bots and their errors. */
  failedBots(): Array<{ bot: string; error: string }> {
    return [...this.bots.values()].filter((e) => e.state === 'failed').map((e) => ({ bot: e.bot.id, error: e.error ?? 'unknown' }));
  }

  counts(): Record<BotState, number> {
    const counts: Record<BotState, number> = { loading: 0, ready: 0, failed: 0, leaving: 0, cold: 0 };
    for (const e of this.bots.values()) counts[e.state]++;
    return counts;
  }

  /** What the state gauges show, read when metrics are read (a scrape): nothing to keep up to date on the request path. */
  private gaugeState(): PoolState {
    return {
      bots: () => this.counts(),
      modelBytes: () => {
        let head = 0;
        for (const e of this.bots.values()) if (e.state === 'ready' || e.state === 'leaving') head += e.headBytes;
        let encoder = 0;
        for (const e of this.encoders.values()) encoder += e.bytes;
        return { head, encoder };
      },
      residentBytes: () => this.onDemand && { resident: this.onDemand.residency.used, limit: this.onDemand.residency.limit },
      ready: () => this.ready,
      quarantined: () => this.opts.workers.quarantined.size,
    };
  }


  /** A bot moved into the quarantine lane or out of it: logged once per move, counted, and shown in its metadata. */
  quarantineChanged(bot: string, confined: boolean, meanMs: number): void {
    const { log, metrics, workers } = this.opts;
    const slowMs = Math.round(workers.slowMs);
    metrics.quarantineChanges.inc({ to: confined ? 'quarantine' : 'shared' });
    if (confined) log.warn({ bot, meanMs: Math.round(meanMs), slowMs }, 'bot quarantined: its runs take too long, it now runs in a lane of its own');
    else log.info({ bot, meanMs: Math.round(meanMs), slowMs }, 'bot released from quarantine: its runs are fast again');
  }

  /** Reports not ready from now on (SIGTERM). */
  drain(): void {
    this.draining = true;
    void this.recordHotSet();
  }

  close(): void {
    clearInterval(this.hotSetTimer);
    this.closed = true;
    for (const e of this.bots.values()) {
      clearTimeout(e.leaveTimer);
      clearTimeout(e.retryTimer);
    }
  }
}
