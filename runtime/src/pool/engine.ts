/**
 * The pool's engine: which bots the pool serves and in which state, kept in line with the catalog by
 * `apply()`. Each catalog is reconciled in four steps: follow the group's settings, retire the bots that
 * left (a bot that moved to another pool is served for a grace period), decide the loads (new and changed
 * bots; the old version serves until the new one is ready), and warm the bots an overcommitted pool had
 * resident before a restart. The loads themselves are loading.ts's, the lanes lanes.ts's, and the resident
 * set of an overcommitted pool residency/'s.
 */
import type { FastifyBaseLogger } from 'fastify';
import { Bot, CatalogIndex, Encoder, PoolGroup } from '../catalog';
import { Topology, fillLimit } from '../placement';
import { Encoders, servingHash } from './encoders';
import type { HotSet } from './hot-set';
import type { Answer } from './lane';
import { Lanes, laneSettings } from './lanes';
import type { QueueLimits } from './shedding';
import { BotEntry, Loader, Lookup, NotServableError, Task, coldEntry, forgetFailedVersion, isResident, runBounded } from './loading';
import { botCounts, gaugesOf } from './gauges';
import type { PoolMetrics } from './metrics';
import type { PlannedCatalog } from './plan';
import { OnDemand, engineResidencyHost, warmTasks } from './residency';
import { Rollouts } from './rollout/rollouts';
import { declaredBudget, residentBudget } from './rollout/budget';
import type { ModelStore } from './store';

export interface PoolEngineOptions {
  pool: string;
  /** Resolves model locations (paths under the model root, s3:// and https:// URIs) to local files. */
  store: ModelStore;
  lanes: Lanes;
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

export class PoolEngine {
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
  /** Candidate versions beside the serving ones (model rollouts). */
  readonly rollouts: Rollouts;
  private readonly loader: Loader;
  private applying: Promise<void> = Promise.resolve();
  private pending?: CatalogIndex;
  private closed = false;
  /** Set while the group overcommits: the resident set and the loads of cold bots. */
  private onDemand?: OnDemand;
  /** The current catalog's encoders, by id. */
  private encoderById: ReadonlyMap<string, Encoder> = new Map();
  private hotSetTimer?: NodeJS.Timeout;

  constructor(private readonly opts: PoolEngineOptions) {
    this.loader = new Loader({
      bots: this.bots,
      store: opts.store,
      lanes: opts.lanes,
      metrics: opts.metrics,
      log: opts.log,
      retryMs: opts.retryMs,
      host: {
        mayRetry: (id) => !this.closed && !this.draining && this.topology?.assignment.get(id) === opts.pool,
        onDemand: () => this.onDemand !== undefined,
        unloaded: (id) => this.onDemand?.remove(id),
        encoderOf: (bot) => this.catalog?.encoders.find((e) => e.id === bot.model.encoder),
        retryVersion: (bot, encoder, hash) => this.replace(bot, encoder, hash, true),
      },
    });
    this.rollouts = new Rollouts({
      loader: this.loader,
      lanes: opts.lanes,
      metrics: opts.metrics,
      log: opts.log,
      host: {
        resident: (id) => {
          const entry = this.bots.get(id);
          return entry !== undefined && isResident(entry);
        },
        encoderOf: (id) => this.encoderOf(id),
        budget: () => {
          const resident = this.onDemand?.bytes;
          if (resident) return residentBudget(resident, this.bots);
          return this.group && declaredBudget(this.group, this.bots, this.encoderById);
        },
        timeoutMs: () => this.timeoutMs,
        counted: (id, bytes) => this.onDemand?.candidate(id, bytes),
      },
    });
    opts.metrics.collectFrom(gaugesOf(this));
    if (opts.hotSet) {
      this.hotSetTimer = setInterval(() => void this.recordHotSet(), opts.hotSetEveryMs ?? 30_000);
      this.hotSetTimer.unref();
    }
  }

  /** Records the resident bots of an overcommitted pool, most recently used first (nothing otherwise). */
  async recordHotSet(): Promise<void> {
    const resident = this.onDemand?.order();
    if (resident && this.started) await this.opts.hotSet?.record([...resident].reverse(), this.opts.log);
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
    const { catalog, assigned } = planned;
    const started = Date.now();
    this.followGroup(planned);
    const { leaving, removed } = this.retire(planned.topology, new Set(assigned.map((b) => b.id)));
    const { tasks, warm } = this.decideLoads(assigned);
    const warmCold = await this.warm(assigned, warm, tasks);
    await runBounded(tasks, this.opts.loadConcurrency);
    // Candidates load once the serving versions have (they take the headroom the serving versions leave).
    await runBounded(this.rollouts.follow(assigned), this.opts.loadConcurrency);
    if (warmCold.count > 0) this.opts.log.warn({ bots: warmCold.count, limitBytes: this.onDemand?.bytes.limit }, 'warm bots beyond the memory the pool keeps resident stay cold: they load on their first request');
    this.started = true;
    const counts = botCounts(this.bots);
    this.opts.log.info({ generation: catalog.generation, bots: catalog.bots.length, assigned: assigned.length, definitionsRead: this.definitionsRead, loaded: tasks.length, leaving, removed, ready: counts.ready, failed: counts.failed, ms: Date.now() - started }, 'catalog applied');
  }

  /** Step 1: the catalog and this pool's group in force; the lanes and the resident set follow the group's settings. */
  private followGroup(planned: PlannedCatalog): void {
    const { catalog, topology, group, assigned } = planned;
    const { pool, log, metrics } = this.opts;
    if (!group) log.warn({ generation: catalog.generation, pools: topology.pools.length }, `pool "${pool}" is not in the catalog's plan: it serves no bots`);
    this.catalog = catalog;
    this.topology = topology;
    this.group = group;
    this.definitionsRead = planned.definitionsRead;
    if (group) this.opts.lanes.configure(laneSettings(group, this.opts));
    metrics.setGeneration(catalog.generation);
    this.encoderById = new Map(catalog.encoders.map((e) => [e.id, e]));
    this.followOvercommit();
    metrics.botsAssigned.set(assigned.length);
  }

  /** Step 2: the bots no longer assigned here: served for a grace period if they moved to another pool, else gone at once. */
  private retire(topology: Topology, wanted: ReadonlySet<string>): { leaving: number; removed: number } {
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
          if (this.bots.get(id) !== entry) return;
          this.bots.delete(id);
          this.loader.release(entry);
          this.opts.log.info({ bot: id, holder: entry.holder }, 'bot moved away: unloaded after its grace period');
        }, this.opts.moveGraceMs);
        entry.leaveTimer.unref();
      } else if (holder && entry.state === 'leaving') {
        entry.holder = holder;
      } else {
        // Removed from the catalog (or moved before it ever served): gone at once.
        this.bots.delete(id);
        this.loader.forget(id);
        this.loader.release(entry);
        removed++;
      }
    }
    return { leaving, removed };
  }

  /**
   * Step 3: the loads of new and changed bots. An unchanged bot keeps its models; a serving bot's new
   * version loads beside it (the serving one stays if it fails). In an overcommitted pool a new bot is cold
   * (loaded on its next request), and its warm and pinned bots load now.
   */
  private decideLoads(assigned: Bot[]): { tasks: Task[]; warm: Bot[] } {
    const onDemand = this.onDemand;
    const tasks: Task[] = [];
    const warm: Bot[] = [];
    for (const bot of assigned) {
      const encoder = bot.model.encoder ? this.encoderById.get(bot.model.encoder) : undefined;
      const hash = servingHash(bot, encoder);
      const current = this.bots.get(bot.id);
      if (current && current.definitionHash === hash && current.state !== 'failed' && !(current.state === 'cold' && !onDemand)) {
        current.bot = bot;
        forgetFailedVersion(current); // back to the serving version
        if (current.state === 'leaving') {
          // Moved back before its grace period ended.
          clearTimeout(current.leaveTimer);
          current.state = 'ready';
          current.holder = undefined;
        }
        continue;
      }
      // A new version that failed while the previous one serves is loaded again by its own timer (backing off).
      if (current?.failedVersion?.definitionHash === hash && isResident(current)) continue;
      if (current?.state === 'ready') {
        forgetFailedVersion(current); // a version past the failed one
        tasks.push(() => this.replace(bot, encoder, hash));
        continue;
      }
      if (onDemand) {
        if (current) this.loader.release(current);
        this.bots.set(bot.id, coldEntry(bot, hash));
        if (bot.warm || bot.pin !== undefined) warm.push(bot);
        continue;
      }
      tasks.push(() => this.loader.load(bot, encoder, hash));
    }
    return { tasks, warm };
  }

  /**
   * A serving bot's new version loads beside it; in an overcommitted pool through the resident set, at its
   * new cost. A `retry` of a failed version goes ahead only while the catalog still names that version.
   */
  private async replace(bot: Bot, encoder: Encoder | undefined, hash: string, retry = false): Promise<void> {
    const load = async () => {
      if (retry && this.bots.get(bot.id)?.failedVersion?.definitionHash !== hash) return false;
      return (await this.loader.load(bot, encoder, hash), this.bots.get(bot.id)?.definitionHash === hash);
    };
    await (this.onDemand ? this.onDemand.swap(bot, load) : load());
  }

  /**
   * Step 4 (overcommitted pools): the warm and pinned bots load, then, at start, those its traffic kept
   * resident before a restart (see residency/warm.ts). Adds their loads to `tasks`.
   */
  private async warm(assigned: Bot[], warm: Bot[], tasks: Task[]): Promise<{ count: number }> {
    if (!this.onDemand) return { count: 0 };
    const recorded = !this.started && this.opts.hotSet ? await this.opts.hotSet.read() : [];
    return warmTasks(this.onDemand, { assigned, warm, recorded, tasks, isCold: (id) => this.bots.get(id)?.state === 'cold', log: this.opts.log });
  }

  /** Follows the group's overcommit: on-demand loading on (its resident limit followed live) or off. */
  private followOvercommit(): void {
    const group = this.group;
    if (!group || group.overcommit === undefined) {
      this.onDemand = undefined; // every cold bot is loaded by this reconcile
      return;
    }
    const limit = fillLimit(group);
    if (this.onDemand) this.onDemand.setLimit(limit);
    else {
      const { loader, rollouts, bots, opts } = this;
      const host = engineResidencyHost({ bots, loader, rollouts, log: opts.log, metrics: opts.metrics, encoderOf: (id) => this.encoderOf(id) });
      this.onDemand = new OnDemand(host, limit, group.poolOverhead, opts.loadConcurrency);
    }
  }

  private encoderOf(id: string | undefined): Encoder | undefined {
    return id === undefined ? undefined : this.encoderById.get(id);
  }

  /** A model a restarted lane could not load again: the bots that use it are failed (see Loader.modelLost). */
  modelLost(key: string, error: Error): void {
    this.loader.modelLost(key, error);
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
        if (isResident(entry)) {
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
    return this.onDemand && { ...this.onDemand.bytes, bots: this.onDemand.order() };
  }

  /** Runs a bot on a batch of texts (`entities`: find its entities too). Throws OverloadedError, DeadlineError or ModelError. */
  async predict(entry: BotEntry, texts: string[], deadline: number, o: { entities?: boolean } = {}): Promise<Answer> {
    const r = await this.opts.lanes.infer(entry.lane, entry.bot.id, { encoder: entry.encoderKey, head: entry.headKey }, texts, deadline, o);
    this.opts.metrics.inferenceSeconds.observe({ group: this.group?.name ?? 'none' }, r.ms / 1000);
    return r;
  }

  /** The deadline of a request: the group's timeout (followed live), unless this process overrides it. */
  get timeoutMs(): number {
    return this.opts.lanes.timeoutMs;
  }

  /** The pool's lanes (one inference thread each). */
  get lanes(): Lanes {
    return this.opts.lanes;
  }

  /** The queue bounds in force (from the group's concurrency, or the process's override). */
  queueLimits(): QueueLimits {
    return this.opts.lanes.queueLimits;
  }

  /** Inference requests waiting or running, per lane. */
  queueDepths(): number[] {
    return this.opts.lanes.depths();
  }

  /** The encoders loaded (their bytes, declared and measured sizes). */
  get encoders(): Encoders {
    return this.loader.encoders;
  }

  /** Reports not ready from now on (SIGTERM). */
  drain(): void {
    this.draining = true;
    void this.recordHotSet();
  }

  close(): void {
    clearInterval(this.hotSetTimer);
    this.closed = true;
    this.loader.close();
    for (const e of this.bots.values()) {
      clearTimeout(e.leaveTimer);
      clearTimeout(e.retryTimer);
    }
  }
}
