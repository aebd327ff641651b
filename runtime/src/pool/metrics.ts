/**
 * Prometheus metrics of a pool, in a registry of its own (several pools can share a process in tests).
 * Per-bot series are counters only, so a pool of thousands of bots keeps a bounded number of histograms.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** `cold`: assigned to an overcommitted pool and not resident; loaded on its first request. */
export type BotState = 'loading' | 'ready' | 'failed' | 'leaving' | 'cold';

/** What the state gauges read when metrics are read (a scrape): each gauge only what it shows. */
export interface PoolState {
  bots(): Record<BotState, number>;
  modelFileBytes(): { head: number; encoder: number };
  /** Sizes of the models loaded: declared by the catalog, measured when they loaded (sizes.ts). */
  modelBytes(): { declared: number; measured: number };
  /** Overcommitted pools only. */
  residentBytes(): { resident: number; limit: number } | undefined;
  ready(): boolean;
  quarantined(): number;
  /** Serving bots whose new version failed to load. */
  versionsFailed(): number;
  /** Candidate versions, by rollout state. */
  candidates(): Record<string, number>;
}

export class PoolMetrics {
  readonly registry = new Registry();
  readonly botsAssigned: Gauge;
  readonly bots: Gauge<'state'>;
  readonly modelFileBytes: Gauge<'kind'>;
  readonly modelBytes: Gauge<'kind'>;
  readonly loadSeconds: Histogram<'kind'>;
  readonly loadFailures: Counter<'kind'>;
  readonly inferenceSeconds: Histogram<'group'>;
  readonly requestSeconds: Histogram<'route' | 'code'>;
  readonly botRequests: Counter<'bot' | 'outcome'>;
  readonly shed: Counter<'reason'>;
  readonly queueDepth: Gauge<'worker'>;
  readonly generation: Gauge<'generation'>;
  readonly catalogReloads: Counter<'result'>;
  readonly ready: Gauge;
  readonly quarantined: Gauge;
  readonly versionsFailed: Gauge;
  readonly batchRequests: Histogram;
  readonly quarantineChanges: Counter<'to'>;
  readonly residency: Counter<'result'>;
  readonly coldLoadSeconds: Histogram;
  readonly evictions: Counter;
  readonly residentBytes: Gauge<'kind'>;
  readonly versionRequests: Counter<'bot' | 'version' | 'outcome'>;
  readonly versionTexts: Counter<'bot' | 'version'>;
  readonly versionFallbacks: Counter<'bot' | 'version'>;
  readonly shadowTexts: Counter<'bot' | 'result'>;
  readonly shadowDropped: Counter<'bot'>;
  readonly rollbacks: Counter<'bot' | 'guard'>;
  readonly candidates: Gauge<'state'>;
  /** Where the state gauges read their values. */
  private state?: PoolState;

  constructor(pool: string, defaults = true) {
    this.registry.setDefaultLabels({ pool });
    if (defaults) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.botsAssigned = new Gauge({ name: 'botshard_pool_bots_assigned', help: 'Bots the catalog assigns to this pool', registers });
    this.bots = new Gauge({ name: 'botshard_pool_bots', help: 'Bots held by this pool, by state (loading, ready, failed, leaving, cold)', labelNames: ['state'], registers, collect: () => this.collectBots() });
    this.modelFileBytes = new Gauge({ name: 'botshard_pool_model_file_bytes', help: 'Bytes of model files loaded, by kind (encoder, head)', labelNames: ['kind'], registers, collect: () => this.collectModelFileBytes() });
    this.modelBytes = new Gauge({ name: 'botshard_pool_model_bytes', help: 'Memory of the models loaded (each encoder once), by kind: declared in the catalog, or measured when they loaded (the memory the process grew by, at least the file size)', labelNames: ['kind'], registers, collect: () => this.collectModelBytes() });
    this.loadSeconds = new Histogram({ name: 'botshard_pool_model_load_seconds', help: 'Time to load a model into an inference worker', labelNames: ['kind'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers });
    this.loadFailures = new Counter({ name: 'botshard_pool_model_load_failures_total', help: 'Models that failed to load, by kind', labelNames: ['kind'], registers });
    this.inferenceSeconds = new Histogram({ name: 'botshard_pool_inference_seconds', help: 'Model time of an inference request (encoder + head) in a worker, by pool group', labelNames: ['group'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers });
    this.requestSeconds = new Histogram({ name: 'botshard_pool_request_seconds', help: 'Request duration, by route (REST path, or "grpc <method>") and status code (a gRPC status as its HTTP equivalent)', labelNames: ['route', 'code'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    this.botRequests = new Counter({ name: 'botshard_pool_bot_requests_total', help: 'Inference requests per bot, by outcome (ok, bad_request, shed, timeout, error, not_ready)', labelNames: ['bot', 'outcome'], registers });
    this.shed = new Counter({ name: 'botshard_pool_shed_total', help: 'Requests refused with 503, by reason (bot or worker: a queue was full; wait: it could not finish before its deadline)', labelNames: ['reason'], registers });
    this.queueDepth = new Gauge({ name: 'botshard_pool_queue_depth', help: 'Inference requests waiting or running, per worker thread', labelNames: ['worker'], registers });
    this.generation = new Gauge({ name: 'botshard_pool_catalog_generation', help: 'Catalog generation being served (value 1)', labelNames: ['generation'], registers });
    this.catalogReloads = new Counter({ name: 'botshard_pool_catalog_reloads_total', help: 'Catalog changes seen, by result (applied, invalid)', labelNames: ['result'], registers });
    this.ready = new Gauge({ name: 'botshard_pool_ready', help: '1 when the pool reports ready', registers, collect: () => this.collectReady() });
    this.batchRequests = new Histogram({ name: 'botshard_pool_batch_requests', help: 'Requests per message to an inference worker (those sharing an encoder run through it as one batch)', buckets: [1, 2, 4, 8, 16, 32], registers });
    this.quarantined = new Gauge({ name: 'botshard_pool_quarantined_bots', help: 'Bots confined to the quarantine lane (their runs take too long a share of the group timeout)', registers, collect: () => this.collectQuarantined() });
    this.versionsFailed = new Gauge({ name: 'botshard_pool_bots_version_failed', help: 'Serving bots whose new version failed to load (missing, corrupt, failing its checks or its sha256): they keep serving their previous version', registers, collect: () => this.collectVersionsFailed() });
    this.quarantineChanges = new Counter({ name: 'botshard_pool_quarantine_changes_total', help: 'Bots moved into or out of the quarantine lane, by where to (quarantine, shared)', labelNames: ['to'], registers });
    this.residency = new Counter({ name: 'botshard_pool_residency_total', help: 'Requests of an overcommitted pool, by whether their bot was resident (hit) or loaded for them (miss)', labelNames: ['result'], registers });
    this.coldLoadSeconds = new Histogram({ name: 'botshard_pool_cold_load_seconds', help: 'Time from the first request for a cold bot to the bot resident (waiting for room and for a load slot included)', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers });
    this.evictions = new Counter({ name: 'botshard_pool_evictions_total', help: 'Resident bots unloaded to make room for a cold one (asked least lately first)', registers });
    // Model rollouts: only bots with a candidate have these series, each with two versions (serving, candidate), never every version seen.
    this.versionRequests = new Counter({ name: 'botshard_pool_version_requests_total', help: 'Requests of bots with a candidate version, by version (serving, candidate) and outcome (ok, error); a shadow\'s copies count as the candidate\'s', labelNames: ['bot', 'version', 'outcome'], registers });
    this.versionTexts = new Counter({ name: 'botshard_pool_version_texts_total', help: 'Texts answered by bots with a candidate version, by version (serving, candidate)', labelNames: ['bot', 'version'], registers });
    this.versionFallbacks = new Counter({ name: 'botshard_pool_version_fallback_texts_total', help: 'Texts answered below the bot\'s threshold (its fallback), by version (serving, candidate), for bots with a candidate', labelNames: ['bot', 'version'], registers });
    this.shadowTexts = new Counter({ name: 'botshard_pool_shadow_texts_total', help: 'Texts a shadow candidate answered, by whether it chose the serving version\'s intent (agreed, disagreed)', labelNames: ['bot', 'result'], registers });
    this.shadowDropped = new Counter({ name: 'botshard_pool_shadow_dropped_total', help: 'Shadow copies of requests dropped because the bot\'s worker had work waiting or running', labelNames: ['bot'], registers });
    this.rollbacks = new Counter({ name: 'botshard_pool_rollbacks_total', help: 'Candidate versions rolled back, by the guard they breached', labelNames: ['bot', 'guard'], registers });
    this.candidates = new Gauge({ name: 'botshard_pool_candidates', help: 'Candidate versions, by rollout state (loading, judging, passing, rolled-back, failed, refused, waiting)', labelNames: ['state'], registers, collect: () => this.collectCandidates() });
    this.residentBytes = new Gauge({ name: 'botshard_pool_resident_bytes', help: 'Declared memory of an overcommitted pool: resident now (overhead, heads, encoders) and its limit (memory at the fill factor)', labelNames: ['kind'], registers, collect: () => this.collectResidentBytes() });
  }

  /** Where the state gauges come from: read when the metrics are (a scrape), not pushed on every change. */
  collectFrom(state: PoolState): void {
    this.state = state;
  }

  private collectBots(): void {
    if (this.state) for (const [state, n] of Object.entries(this.state.bots())) this.bots.set({ state }, n);
  }

  private collectModelFileBytes(): void {
    if (!this.state) return;
    const { head, encoder } = this.state.modelFileBytes();
    this.modelFileBytes.set({ kind: 'head' }, head);
    this.modelFileBytes.set({ kind: 'encoder' }, encoder);
  }

  private collectModelBytes(): void {
    if (!this.state) return;
    const { declared, measured } = this.state.modelBytes();
    this.modelBytes.set({ kind: 'declared' }, declared);
    this.modelBytes.set({ kind: 'measured' }, measured);
  }

  private collectResidentBytes(): void {
    const r = this.state?.residentBytes();
    if (!r) return;
    this.residentBytes.set({ kind: 'resident' }, r.resident);
    this.residentBytes.set({ kind: 'limit' }, r.limit);
  }

  private collectReady(): void {
    if (this.state) this.ready.set(this.state.ready() ? 1 : 0);
  }

  private collectQuarantined(): void {
    if (this.state) this.quarantined.set(this.state.quarantined());
  }

  private collectVersionsFailed(): void {
    if (this.state) this.versionsFailed.set(this.state.versionsFailed());
  }

  private collectCandidates(): void {
    if (this.state) for (const [state, n] of Object.entries(this.state.candidates())) this.candidates.set({ state }, n);
  }

  setGeneration(generation: string): void {
    this.generation.reset();
    this.generation.set({ generation }, 1);
  }
}
