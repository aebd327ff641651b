/**
 * Model rollouts in a pool: each bot's candidate version (the catalog's `model.candidate`) loaded beside
 * the serving version, given its share of the bot's traffic (a shadow runs copies of requests after they
 * are answered, a canary answers them), judged by its guards after each request, and rolled back (unloaded)
 * on a breach. A rollout's state lasts until the catalog changes its candidate. Placement never sees a
 * candidate: it loads into the pool's headroom, or is refused with the reason.
 */
import type { FastifyBaseLogger } from 'fastify';
import { Bot, Candidate, DEFAULT_VERSION, Encoder } from '../../catalog';
import { RawFigures, countAgreement, countAnswer, countError, emptyFigures } from '../../status/figures';
import { definitionHash } from '../encoders';
import type { Answer } from '../lane';
import type { Lanes } from '../lanes';
import type { BotEntry, Loader, Task } from '../loading';
import type { PoolMetrics } from '../metrics';
import { OverloadedError } from '../shedding';
import { Breach, judge } from './guards';
import { takesCandidate } from './split';

/**
 * `loading`; `judging` (serving its share, fewer requests than its guards need); `passing` (enough requests,
 * no guard breached: ready to promote); `rolled-back` (a guard breached); `failed` (it could not be loaded);
 * `refused` (the pool's budget cannot hold it); `waiting` (its bot is cold: it loads with it).
 */
export type CandidateState = 'loading' | 'judging' | 'passing' | 'rolled-back' | 'failed' | 'refused' | 'waiting';
export const CANDIDATE_STATES: readonly CandidateState[] = ['loading', 'judging', 'passing', 'rolled-back', 'failed', 'refused', 'waiting'];

/** Which version runs a request: the serving one, or the candidate. */
export type Role = 'serving' | 'candidate';

export interface Rollout {
  /** The bot as the catalog defines it (its serving version). */
  bot: Bot;
  candidate: Candidate;
  /** Identifies the candidate: a catalog that changes it starts a new rollout. */
  hash: string;
  state: CandidateState;
  /** When the state last changed (ISO 8601). */
  since: string;
  /** Why it failed or was refused. */
  error?: string;
  rolledBack?: Breach & { at: string };
  /** The candidate's models while loaded. */
  loaded?: BotEntry;
  figures: Record<Role, RawFigures>;
}

/** What rollouts need of the pool's engine. */
export interface RolloutHost {
  /** Whether the bot's serving version is loaded (a candidate loads only beside it). */
  resident(id: string): boolean;
  encoderOf(id: string | undefined): Encoder | undefined;
  /** Declared bytes of the pool, the encoders they cover, and the limit candidates must fit under; `counted`: loaded candidates are in `used` already. */
  budget(): { used: number; limit: number; encoders: ReadonlySet<string>; what: string; counted?: boolean } | undefined;
  /** A candidate of the bot was loaded (bytes > 0) or unloaded (< 0): an overcommitted pool counts it in its resident set. */
  counted(id: string, bytes: number): void;
  /** The deadline of a shadow run. */
  timeoutMs(): number;
}

export interface RolloutsOptions {
  loader: Loader;
  lanes: Lanes;
  metrics: PoolMetrics;
  log: FastifyBaseLogger;
  host: RolloutHost;
}

const now = () => new Date().toISOString();

/**
 * The share of the pool's time shadow copies may take, each counted from its submission to its answer (the
 * messages to and from its worker included): a tenth, so that copies stay a small share of a busy pool's
 * work (bench:rollout measures what they cost the serving p99).
 */
const SHADOW_SHARE = 0.1;

/** A budget of worker time, refilled at `share` ms per ms up to `capacityMs`: a token bucket. */
class WorkBudget {
  private left: number;
  private at = performance.now();

  constructor(
    private readonly share: number,
    private readonly capacityMs: number,
  ) {
    this.left = capacityMs;
  }

  /** Whether some time is left (a run may overdraw it; the next waits until it is paid back). */
  available(t = performance.now()): boolean {
    this.left = Math.min(this.capacityMs, this.left + (t - this.at) * this.share);
    this.at = t;
    return this.left > 0;
  }

  spend(ms: number): void {
    this.left -= ms;
  }
}
const MiB = 1024 * 1024;

/** A candidate as a bot: the bot's intents and rules with the candidate's model. */
function candidateBot(bot: Bot, c: Candidate): Bot {
  return { ...bot, model: { head: c.head, ...(c.sha256 ? { sha256: c.sha256 } : {}), memory: c.memory, ...(c.encoder ? { encoder: c.encoder } : {}), version: c.version } };
}

/** The version label of a bot's serving model. */
export const servingVersion = (bot: Bot) => bot.model.version ?? DEFAULT_VERSION;

export class Rollouts {
  private readonly byBot = new Map<string, Rollout>();
  /** Shadow copies running: one at a time in the pool, so that copies never take more than one worker. */
  private shadowsRunning = 0;
  /** The time shadow copies may still take (SHADOW_SHARE of the time, at most 50 ms ahead). */
  private readonly shadowTime = new WorkBudget(SHADOW_SHARE, 50);

  constructor(private readonly o: RolloutsOptions) {}

  /** The rollout of a bot, whatever its state. */
  of(id: string): Rollout | undefined {
    return this.byBot.get(id);
  }

  /** The rollout of a bot whose candidate takes traffic now (loaded, not rolled back). */
  active(id: string): Rollout | undefined {
    const r = this.byBot.get(id);
    return r?.loaded && (r.state === 'judging' || r.state === 'passing') ? r : undefined;
  }

  all(): IterableIterator<Rollout> {
    return this.byBot.values();
  }

  /**
   * Follows a catalog: a bot whose candidate is unchanged keeps its rollout (and its state, rolled back
   * included); a new or changed candidate starts over (its load is returned as a task); rollouts of bots
   * without a candidate, or no longer here, end.
   */
  follow(assigned: readonly Bot[]): Task[] {
    const tasks: Task[] = [];
    const wanted = new Set<string>();
    for (const bot of assigned) {
      const c = bot.model.candidate;
      if (!c) continue;
      wanted.add(bot.id);
      const hash = definitionHash({ candidate: c, serving: servingVersion(bot) });
      const current = this.byBot.get(bot.id);
      if (current?.hash === hash) {
        current.bot = bot;
        continue;
      }
      if (current) this.end(current);
      const r: Rollout = { bot, candidate: c, hash, state: 'waiting', since: now(), figures: { serving: emptyFigures(), candidate: emptyFigures() } };
      this.byBot.set(bot.id, r);
      tasks.push(() => this.load(r));
    }
    for (const r of [...this.byBot.values()]) if (!wanted.has(r.bot.id)) this.end(r);
    return tasks;
  }

  /** The bot's serving version was unloaded (evicted): its candidate goes too, and loads again with it. */
  suspend(id: string): void {
    const r = this.byBot.get(id);
    if (!r || (r.state !== 'judging' && r.state !== 'passing' && r.state !== 'loading')) return;
    this.unload(r);
    this.set(r, 'waiting');
  }

  /** The bot's serving version is loaded again: a waiting candidate loads beside it. */
  async resume(id: string): Promise<void> {
    const r = this.byBot.get(id);
    if (r?.state === 'waiting') await this.load(r);
  }

  private async load(r: Rollout): Promise<void> {
    const id = r.bot.id;
    if (!this.o.host.resident(id)) return this.set(r, 'waiting');
    const refused = this.refusal(r);
    if (refused) {
      r.error = refused;
      this.o.log.warn({ bot: id, version: r.candidate.version, reason: refused }, 'candidate refused: the serving version is untouched');
      return this.set(r, 'refused');
    }
    this.set(r, 'loading');
    const encoder = this.o.host.encoderOf(r.candidate.encoder);
    const entry = await this.o.loader.loadVersion(candidateBot(r.bot, r.candidate), encoder, r.hash);
    if (this.byBot.get(id) !== r || r.state !== 'loading') return this.o.loader.releaseVersion(entry); // ended or suspended meanwhile
    if (entry.state === 'failed') {
      r.error = entry.error;
      this.o.log.warn({ bot: id, version: r.candidate.version, err: entry.error }, 'candidate failed to load: the serving version is untouched');
      return this.set(r, 'failed');
    }
    r.loaded = entry;
    r.error = undefined;
    this.o.host.counted(id, this.bytesOf(r));
    this.o.log.info({ bot: id, version: r.candidate.version, mode: r.candidate.mode, share: r.candidate.share }, 'candidate loaded');
    this.set(r, 'judging');
  }

  /** Why the pool's budget cannot hold the candidate (its head, and its encoder if no bot here loads it), if it cannot. */
  private refusal(r: Rollout): string | undefined {
    const budget = this.o.host.budget();
    if (!budget) return undefined;
    const encoders = new Set(budget.encoders);
    let used = budget.used;
    for (const other of this.byBot.values()) {
      if (other === r || (other.state !== 'loading' && other.state !== 'judging' && other.state !== 'passing')) continue;
      if (budget.counted && other.loaded) continue; // in the resident set's bytes already
      used += other.candidate.memory;
      const enc = other.candidate.encoder;
      if (enc !== undefined && !encoders.has(enc)) used += (encoders.add(enc), this.o.host.encoderOf(enc)?.memory ?? 0);
    }
    const enc = r.candidate.encoder;
    const need = r.candidate.memory + (enc !== undefined && !encoders.has(enc) ? this.o.host.encoderOf(enc)?.memory ?? 0 : 0);
    if (used + need <= budget.limit) return undefined;
    const f = (b: number) => `${Math.round((b / MiB) * 10) / 10} MiB`;
    return `it needs ${f(need)} and the pool has ${f(Math.max(0, budget.limit - used))} free of ${budget.what} ${f(budget.limit)} (${f(used)} declared in use)`;
  }

  /** Runs the candidate on a request's texts (`key`: the fair queue's; a shadow runs under a key of its own). */
  runCandidate(r: Rollout, texts: string[], deadline: number, o: { entities?: boolean } = {}, key = r.bot.id): Promise<Answer> {
    const entry = r.loaded!;
    return this.o.lanes.infer(entry.lane, key, { encoder: entry.encoderKey, head: entry.headKey }, texts, deadline, o);
  }

  /** Whether a request goes to a canary (by its conversation key, or its request id). */
  takesCanary(r: Rollout, key: string): boolean {
    return r.candidate.mode === 'canary' && takesCandidate(r.bot.id, key, r.candidate.share);
  }

  /** Counts an answer of a version; a candidate's is judged. */
  answered(r: Rollout, role: Role, answer: Answer): void {
    countAnswer(r.figures[role], answer.ms, answer.rows, r.bot.postprocess.threshold);
    this.counted(r, role, 'ok', answer);
  }

  /** Counts a failed request of a version; a candidate's is judged. */
  failed(r: Rollout, role: Role): void {
    countError(r.figures[role]);
    this.counted(r, role, 'error');
  }

  private counted(r: Rollout, role: Role, outcome: 'ok' | 'error', answer?: Answer): void {
    const { metrics } = this.o;
    const labels = { bot: r.bot.id, version: role };
    metrics.versionRequests.inc({ ...labels, outcome });
    if (answer) {
      metrics.versionTexts.inc(labels, answer.rows.length);
      const below = answer.rows.filter((row) => row.confidence < r.bot.postprocess.threshold).length;
      if (below > 0) metrics.versionFallbacks.inc(labels, below);
    }
    if (role === 'candidate') this.judge(r);
  }

  /**
   * After a request was answered: a shadow runs a copy of it (its share of requests) when no worker of the
   * pool has anything waiting or running and no other copy runs; otherwise the copy is dropped and counted.
   */
  shadow(r: Rollout, texts: string[], serving: Answer, key: string): void {
    if (r.candidate.mode !== 'shadow' || !takesCandidate(r.bot.id, key, r.candidate.share) || !this.active(r.bot.id)) return;
    if (this.shadowsRunning > 0 || !this.o.lanes.idle() || !this.shadowTime.available()) return this.dropShadow(r);
    this.shadowsRunning++;
    const started = performance.now();
    this.runCandidate(r, texts, Date.now() + this.o.host.timeoutMs(), {}, `${r.bot.id}@shadow`).then(
      (answer) => {
        countAgreement(r.figures.candidate, serving.rows, answer.rows);
        const agreed = serving.rows.filter((row, i) => row.intent === answer.rows[i]?.intent).length;
        this.o.metrics.shadowTexts.inc({ bot: r.bot.id, result: 'agreed' }, agreed);
        this.o.metrics.shadowTexts.inc({ bot: r.bot.id, result: 'disagreed' }, serving.rows.length - agreed);
        if (this.byBot.get(r.bot.id) === r) this.answered(r, 'candidate', answer);
      },
      (e) => {
        if (e instanceof OverloadedError) this.dropShadow(r);
        else if (this.byBot.get(r.bot.id) === r) this.failed(r, 'candidate');
      },
    ).finally(() => {
      this.shadowTime.spend(performance.now() - started);
      this.shadowsRunning--;
    });
  }

  private dropShadow(r: Rollout): void {
    r.figures.candidate.dropped++;
    this.o.metrics.shadowDropped.inc({ bot: r.bot.id });
  }

  /** Judges the candidate by its guards: passing once it has enough requests, rolled back on a breach. */
  private judge(r: Rollout): void {
    if (r.state !== 'judging' && r.state !== 'passing') return;
    const v = judge(r.figures.serving, r.figures.candidate, r.candidate.guards, r.candidate.mode);
    if (v.verdict === 'breach') return this.rollBack(r, v.breach);
    if (v.verdict === 'passing' && r.state === 'judging') {
      this.o.log.info({ bot: r.bot.id, version: r.candidate.version, requests: r.figures.candidate.requests }, 'candidate passing: ready to promote');
      this.set(r, 'passing');
    }
  }

  private rollBack(r: Rollout, breach: Breach): void {
    this.unload(r);
    r.rolledBack = { ...breach, at: now() };
    this.set(r, 'rolled-back');
    this.o.metrics.rollbacks.inc({ bot: r.bot.id, guard: breach.guard });
    this.o.log.warn({ bot: r.bot.id, version: r.candidate.version, guard: breach.guard, candidate: breach.candidate, limit: breach.limit, serving: breach.serving }, `candidate rolled back: ${breach.reason}`);
  }

  private set(r: Rollout, state: CandidateState): void {
    if (r.state !== state) r.since = now();
    r.state = state;
  }

  private unload(r: Rollout): void {
    if (r.loaded) {
      this.o.loader.releaseVersion(r.loaded);
      this.o.host.counted(r.bot.id, -this.bytesOf(r));
    }
    r.loaded = undefined;
  }

  /** The declared bytes a loaded candidate adds: its head, and its encoder when its bot's is another. */
  private bytesOf(r: Rollout): number {
    const enc = r.candidate.encoder;
    return r.candidate.memory + (enc !== undefined && enc !== r.bot.model.encoder ? this.o.host.encoderOf(enc)?.memory ?? 0 : 0);
  }

  /** The rollout ends (its candidate left the catalog, or changed, or its bot left the pool). */
  private end(r: Rollout): void {
    this.unload(r);
    if (this.byBot.get(r.bot.id) === r) this.byBot.delete(r.bot.id);
    r.state = 'waiting';
  }

  /** Candidates per state (the metrics gauge). */
  counts(): Record<CandidateState, number> {
    const counts = Object.fromEntries(CANDIDATE_STATES.map((s) => [s, 0])) as Record<CandidateState, number>;
    for (const r of this.byBot.values()) counts[r.state]++;
    return counts;
  }
}
