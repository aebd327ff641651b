/**
 * The pool's inference workers, seen from the HTTP thread. Each worker thread is a lane with a fair queue
 * (pool/scheduler.ts): requests wait per bot, the least-served bot goes next, one request per bot runs at
 * a time, and a request that could not finish before its deadline is refused at once. A bot whose runs
 * keep taking a large share of the group's timeout is confined to a lane of its own (an extra thread,
 * with copies of its models) until it is fast again, so it cannot hold up the bots it shares a worker
 * with. A request never runs before the load of a model it uses; other requests go past waiting loads,
 * and while requests wait a lane has one load or unload in flight at most (a cold bot's load does not hold up
 * the bots that are resident).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { groupDefaults } from '../catalog';
import { Clock, FairQueue, Quarantine, ServiceTimes, expectedWaitMs } from './scheduler';
import type { Processing } from './processors';
import type { Answer, RunJob, RunResult, WorkerRequest, WorkerResponse } from './worker';

/** Why a request was shed. */
export type ShedReason = 'bot' | 'worker' | 'wait' | 'closing';

/** The request cannot be taken now: answer 503 with Retry-After. */
export class OverloadedError extends Error {
  readonly statusCode = 503;
  constructor(
    message: string,
    readonly reason: ShedReason,
    /** When retrying can succeed. */
    readonly retryAfterSeconds = 1,
  ) {
    super(message);
  }
}
/** The request's deadline passed: answer 504. */
export class DeadlineError extends Error {
  readonly statusCode = 504;
}
/** A model failed to load or run. */
export class ModelError extends Error {
  readonly statusCode = 500;
}

/** What a job asks of its worker: a load or an unload (sent alone, or unloads riding on a load), or an inference request (sent in a `run` with others). */
type InferPayload = { type: 'infer' } & RunJob;
type Payload = ({ type: 'load'; key: string; check?: { encoder?: string } } & Model) | { type: 'unload'; key: string } | InferPayload;

/** A model's file, and its bot's text pipeline when it is a head. */
export interface Model {
  file: string;
  processing?: Processing;
}

/** Most requests in one message to a worker (their texts are bounded by the group's `batchMaxRows`). */
const MAX_JOBS_PER_MESSAGE = 32;
/**
 * Requests share a message only when their bots' runs are measured and take at most this share of what
 * quarantines a bot (a quarter: 50 ms in a real-time group of 2 s). A bot never measured (it may be slow) or a
 * slower one runs alone in its message: the worker answers a message once all of it has run, so nothing waits
 * for such a run but the messages queued behind it.
 */
const SHARED_SHARE_OF_SLOW = 0.25;

interface Job {
  payload: Payload;
  /** Bot the job runs for (inference only; loads and unloads have none). */
  bot: string;
  /** A load that restores a model into a restarted worker. */
  reload?: boolean;
  deadline?: number;
  timer?: NodeJS.Timeout;
  /** When it was queued. */
  queuedAt: number;
  /** Order of submission in the pool: a request submitted before an unload belongs to the copy it unloads. */
  seq: number;
  /** When it was sent to the thread. */
  sentAt?: number;
  /** What the fair queue charged its bot when it was picked (the estimate; corrected by the measured time). */
  charged?: number;
  lane?: Slot;
  done: boolean;
  resolve(r: WorkerResponse | RunResult): void;
  reject(e: Error): void;
}

interface Slot {
  index: number;
  worker: Worker;
  /** Inference requests waiting, per bot. */
  queue: FairQueue<Job>;
  /** Loads and unloads waiting: they go before any inference request queued after them. */
  control: Job[];
  /** Messages in flight: message id -> its jobs. */
  inflight: Map<number, Job[]>;
  /** Bots with a request in flight on this lane. */
  running: Set<string>;
  /** Messages in flight at most. */
  depth: number;
  /** Requests in one message at most (the quarantine lane: 1). */
  perMessage: number;
  /** Set while the lane waits (the batch window) for more requests before it sends a message. */
  windowTimer?: NodeJS.Timeout;
  /** Set while requests queued in this turn of the event loop wait for its end, to go as one message. */
  flush?: NodeJS.Immediate;
  /** Models loaded in this worker by key, to reload them if the worker has to be restarted. */
  models: Map<string, Model>;
  /** The thread has ended. */
  exited: boolean;
}

export interface WorkerPoolOptions {
  /** Worker threads (the quarantine lane, when a bot needs it, is one more). */
  workers: number;
  /** Inference requests a pool group allows at once: sets both queue bounds (see `queueLimits`). */
  concurrency: number;
  /** The group's deadline, which sets what a slow run is. @default 2000 */
  timeoutMs?: number;
  /** A bot whose average run takes more than this share of `timeoutMs` is confined to a lane of its own. @default 0.1 */
  quarantineShare?: number;
  /** How long a lane may wait for more requests to batch. @default 0 */
  batchWindowMs?: number;
  /** Most texts in one message (1: no batching). @default 32 */
  batchMaxRows?: number;
  /** Messages in flight per worker (a bot never has two). @default 2 */
  inflight?: number;
  /** Called when a worker thread dies (it is restarted and its models reloaded). */
  onWorkerExit?(index: number, error: Error): void;
  /** Called when a model could not be reloaded into a restarted worker: it is gone from that worker. */
  onModelLost?(index: number, key: string, error: Error): void;
  /** Called when a queue's depth changes. */
  onQueueDepth?(index: number, depth: number): void;
  /** Called for each message of requests sent to a worker: how many requests and texts it carries. */
  onBatch?(index: number, requests: number, rows: number): void;
  /** Called when a bot is confined to the quarantine lane or released from it. */
  onQuarantine?(bot: string, confined: boolean, meanMs: number): void;
  /** @default Date.now */
  clock?: Clock;
}

export interface QueueLimits {
  /** Inference requests waiting per worker beyond those in flight. */
  workerQueue: number;
  /** Inference requests waiting or running per bot. */
  botQueue: number;
}

/** A group's concurrency as queue bounds: per worker all of it, per bot half of it (at least 2). */
export function queueLimits(concurrency: number): QueueLimits {
  return { workerQueue: concurrency, botQueue: Math.max(2, Math.ceil(concurrency / 2)) };
}

function workerScript(): string {
  // Compiled: lib/pool/worker.js beside this file. From sources (ts-jest), the compiled copy in lib/.
  const here = path.join(__dirname, 'worker.js');
  return fs.existsSync(here) ? here : path.resolve(__dirname, '../../lib/pool/worker.js');
}

/** The models of a confined bot copied into the quarantine lane. */
interface Confined {
  keys: Set<string>;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  /** The quarantine lane: spawned when a bot is first confined. */
  private quarantineSlot?: Slot;
  private readonly perBot = new Map<string, number>();
  private readonly times = new ServiceTimes();
  private readonly quarantine: Quarantine;
  private readonly confined = new Map<string, Confined>();
  private readonly clock: Clock;
  private nextId = 1;
  private nextSeq = 1;
  private closed = false;
  private closing?: Promise<void>;
  private limits: QueueLimits;
  private timeoutMs: number;
  private quarantineShare: number;
  private batchWindowMs: number;
  private batchMaxRows: number;

  constructor(private readonly opts: WorkerPoolOptions) {
    this.limits = queueLimits(opts.concurrency);
    const defaults = groupDefaults(true);
    this.timeoutMs = opts.timeoutMs ?? defaults.timeoutMs;
    this.quarantineShare = opts.quarantineShare ?? defaults.quarantineShare;
    this.batchWindowMs = opts.batchWindowMs ?? defaults.batchWindowMs;
    this.batchMaxRows = opts.batchMaxRows ?? defaults.batchMaxRows;
    this.clock = opts.clock ?? { now: () => Date.now() };
    this.quarantine = new Quarantine(this.times, { slowMs: () => this.slowMs });
    for (let i = 0; i < opts.workers; i++) this.slots.push(this.spawn(i, new Map()));
  }

  get size(): number {
    return this.slots.length;
  }

  /** The queue bounds now in force. */
  get queueLimits(): QueueLimits {
    return this.limits;
  }

  /** Follows the pool group's settings (a catalog change); queued requests stay queued. */
  configure(group: { concurrency?: number; timeoutMs?: number; quarantineShare?: number; batchWindowMs?: number; batchMaxRows?: number }): void {
    if (group.concurrency !== undefined) this.limits = queueLimits(group.concurrency);
    if (group.timeoutMs !== undefined) this.timeoutMs = group.timeoutMs;
    if (group.quarantineShare !== undefined) this.quarantineShare = group.quarantineShare;
    if (group.batchWindowMs !== undefined) this.batchWindowMs = group.batchWindowMs;
    if (group.batchMaxRows !== undefined) this.batchMaxRows = group.batchMaxRows;
  }

  /** Runs slower than this on average (ms) put a bot in quarantine: the share of the deadline in force. */
  get slowMs(): number {
    return this.quarantineShare * this.timeoutMs;
  }

  /** Whether a bot runs in the quarantine lane, and its average run time (ms). */
  laneOf(bot: string): { quarantined: boolean; meanMs: number } {
    return { quarantined: this.quarantine.has(bot), meanMs: this.times.estimate(bot) };
  }

  /** Bots in the quarantine lane. */
  get quarantined(): ReadonlySet<string> {
    return this.quarantine.bots;
  }

  /** The thread of a worker: for diagnostics and fault-injection tests (never terminate one that is running a model). */
  thread(index: number): Worker {
    return this.slots[index].worker;
  }

  /** Requests waiting or running, per worker (the quarantine lane last, when it exists). */
  depths(): number[] {
    return this.lanes().map((s) => this.depthOf(s));
  }

  private depthOf(slot: Slot): number {
    let n = slot.queue.size + slot.control.length;
    for (const jobs of slot.inflight.values()) n += jobs.length;
    return n;
  }

  private lanes(): Slot[] {
    return this.quarantineSlot ? [...this.slots, this.quarantineSlot] : this.slots;
  }

  private spawn(index: number, models: Map<string, Model>, depth = this.opts.inflight ?? 2, perMessage = MAX_JOBS_PER_MESSAGE): Slot {
    const worker = new Worker(workerScript(), { name: `botshard-inference-${index}` });
    const slot: Slot = { index, worker, queue: new FairQueue<Job>(), control: [], inflight: new Map(), running: new Set(), depth, perMessage, models, exited: false };
    worker.on('message', (msg: WorkerResponse) => this.answer(slot, msg));
    worker.on('error', (e) => this.died(slot, e));
    worker.on('exit', (code) => {
      slot.exited = true;
      this.died(slot, new Error(`worker exited with code ${code}`));
    });
    // Reloads go first: requests queued for these models wait behind them (a request never runs before the load of its models).
    for (const [key, model] of models) this.submit(slot, { type: 'load', key, ...model }, { reload: true }).catch(() => undefined);
    return slot;
  }

  private isCurrent(slot: Slot): boolean {
    return slot === this.quarantineSlot || this.slots[slot.index] === slot;
  }

  private died(slot: Slot, error: Error): void {
    if (this.closed || !this.isCurrent(slot)) return;
    for (const job of [...[...slot.inflight.values()].flat(), ...slot.queue.clear(), ...slot.control]) this.finish(job, undefined, new ModelError(`inference worker failed: ${error.message}`));
    slot.control = [];
    slot.inflight.clear();
    slot.running.clear();
    this.opts.onWorkerExit?.(slot.index, error);
    const fresh = this.spawn(slot.index, slot.models, slot.depth, slot.perMessage);
    if (slot === this.quarantineSlot) this.quarantineSlot = fresh;
    else this.slots[slot.index] = fresh;
  }

  private answer(slot: Slot, msg: WorkerResponse): void {
    const jobs = slot.inflight.get(msg.id);
    if (!jobs) return;
    slot.inflight.delete(msg.id);
    if (msg.type === 'ran') {
      for (const job of jobs) slot.running.delete(job.bot);
      msg.results.forEach((result, i) => {
        const job = jobs[i];
        if ('error' in result) return this.finish(job, undefined, new ModelError(result.error));
        this.measured(slot, job, result.ms);
        this.finish(job, result);
      });
    } else if (msg.type === 'error' && jobs[0].payload.type === 'infer') {
      // The whole message failed (the worker could not run it at all): every request in it fails.
      for (const job of jobs) {
        slot.running.delete(job.bot);
        this.finish(job, undefined, new ModelError(msg.message));
      }
    } else {
      const [job, ...released] = jobs;
      // Unloads that rode on a load went first in the worker, whatever became of the load.
      for (const unload of released) this.finish(unload, { type: 'unloaded', id: msg.id });
      if (msg.type === 'error') {
        // Before the next job is sent: nothing may run against a model that is not there.
        if (job.reload && job.payload.type === 'load') this.lost(slot, job.payload.key, job.payload.file, msg.message);
        this.finish(job, undefined, new ModelError(msg.message));
      } else {
        this.finish(job, msg);
      }
    }
    this.pump(slot);
  }

  /** A finished run: the fair queue's charge is corrected to the time measured, and the bot may enter or leave quarantine. */
  private measured(slot: Slot, job: Job, ms: number): void {
    slot.queue.charge(job.bot, ms - (job.charged ?? 0));
    this.times.record(job.bot, ms);
    const change = this.quarantine.check(job.bot);
    if (!change) return;
    if (change === 'released') this.release(job.bot);
    else this.moveWaiting(job.bot);
    this.opts.onQuarantine?.(job.bot, change === 'confined', this.times.estimate(job.bot));
  }

  /** A model that a restarted worker could not load again: requests queued for it fail, the owner is told. */
  private lost(slot: Slot, key: string, file: string, message: string): void {
    if (slot.models.get(key)?.file !== file) return; // unloaded meanwhile
    slot.models.delete(key);
    const error = new ModelError(`inference worker failed and model ${key} could not be loaded again: ${message}`);
    for (const job of [...slot.queue.jobs()].filter((j) => uses(j, key))) {
      slot.queue.remove(job);
      this.finish(job, undefined, error);
    }
    if (slot === this.quarantineSlot) this.copyFailed(key);
    else this.opts.onModelLost?.(slot.index, key, new Error(message));
  }

  private finish(job: Job, result?: WorkerResponse | RunResult, error?: Error): void {
    if (job.done) return;
    job.done = true;
    if (job.timer) clearTimeout(job.timer);
    if (job.payload.type === 'infer') {
      const n = (this.perBot.get(job.bot) ?? 1) - 1;
      if (n <= 0) this.perBot.delete(job.bot);
      else this.perBot.set(job.bot, n);
    }
    if (error) job.reject(error);
    else job.resolve(result!);
  }

  /**
   * Sends messages while the lane has room: a waiting load or unload first, alone (an unload once no
   * waiting request still needs its model); otherwise one `run` of the requests the fair queue picks, in
   * its order, among bots with nothing running (the worker runs those sharing an encoder as one batch).
   */
  private pump(slot: Slot, hold = true): void {
    while (slot.inflight.size < slot.depth) {
      const control = this.nextControl(slot);
      // While requests wait, one load or unload at a time: a request waits behind one load (a head loads
      // in about a millisecond), never behind a burst of cold bots.
      if (control && (slot.queue.size === 0 || !this.controlInFlight(slot))) {
        if (control.done) {
          slot.control.splice(slot.control.indexOf(control), 1);
          continue;
        }
        const jobs = this.withLoad(slot, control);
        for (const job of jobs) slot.control.splice(slot.control.indexOf(job), 1);
        const id = this.nextId++;
        for (const job of jobs) job.sentAt = this.clock.now();
        slot.inflight.set(id, jobs);
        const [first, ...unloads] = jobs;
        const release = unloads.map((j) => (j.payload as { key: string }).key);
        slot.worker.postMessage({ ...first.payload, id, ...(release.length > 0 ? { release } : {}) } as WorkerRequest);
        continue;
      }
      if (hold && this.holdForBatch(slot)) break;
      const jobs = this.gather(slot, this.waitingForLoad(slot));
      if (jobs.length === 0) break;
      const id = this.nextId++;
      const now = this.clock.now();
      for (const job of jobs) {
        job.sentAt = now;
        slot.running.add(job.bot);
      }
      slot.inflight.set(id, jobs);
      const run: RunJob[] = jobs.map((j) => {
        const { encoder, head, texts, entities } = j.payload as InferPayload;
        return { encoder, head, texts, entities };
      });
      slot.worker.postMessage({ type: 'run', id, jobs: run } satisfies WorkerRequest);
      this.opts.onBatch?.(slot.index, run.length, run.reduce((n, j) => n + j.texts.length, 0));
    }
    this.opts.onQueueDepth?.(slot.index, this.depthOf(slot));
  }

  /**
   * Sends at the end of this turn of the event loop (setImmediate): the requests read from all the
   * connections that were ready together go to the worker as one message, one wake-up of its thread and
   * one copy across, instead of one each. A request waits microseconds for it, never a timer.
   */
  private pumpSoon(slot: Slot): void {
    slot.flush ??= setImmediate(() => {
      slot.flush = undefined;
      if (!this.closed && this.isCurrent(slot)) this.pump(slot);
    });
  }

  /**
   * Whether to wait a little for more requests before sending a message (the batch window): only while the
   * worker is busy with another message (an idle worker never waits), the waiting requests are fewer than a
   * full batch, and the oldest has waited less than the window. A timer sends them when the window ends.
   */
  private holdForBatch(slot: Slot): boolean {
    if (this.batchWindowMs <= 0 || slot.perMessage === 1 || slot.queue.size === 0 || slot.inflight.size === 0) return false;
    if (slot.windowTimer) return true;
    let rows = 0;
    let oldest = Infinity;
    for (const job of slot.queue.jobs()) {
      rows += (job.payload as InferPayload).texts.length;
      oldest = Math.min(oldest, job.queuedAt);
    }
    const wait = oldest + this.batchWindowMs - this.clock.now();
    if (rows >= this.batchMaxRows || wait <= 0) return false;
    slot.windowTimer = setTimeout(() => {
      slot.windowTimer = undefined;
      if (!this.closed && this.isCurrent(slot)) this.pump(slot, false); // the window has ended: send what waits
    }, wait);
    slot.windowTimer.unref();
    return true;
  }

  /**
   * The requests of the next message: picked one by one by the fair queue (each charged its bot's expected
   * run time as it is picked, so one bot does not fill the message), up to the message's bounds.
   */
  private gather(slot: Slot, blocked: ReadonlySet<string>): Job[] {
    const jobs: Job[] = [];
    const sharedMaxMs = SHARED_SHARE_OF_SLOW * this.slowMs;
    const alone = (bot: string) => this.times.runs(bot) === 0 || this.times.estimate(bot) > sharedMaxMs;
    let rows = 0;
    while (jobs.length < slot.perMessage && rows < this.batchMaxRows) {
      const job = slot.queue.pick(slot.running, (bot) => !blocked.has(bot) && (jobs.length === 0 || !alone(bot)));
      if (!job) break;
      if (job.done) continue;
      job.charged = this.times.estimate(job.bot);
      slot.queue.charge(job.bot, job.charged);
      rows += (job.payload as InferPayload).texts.length;
      jobs.push(job);
      if (alone(job.bot)) break;
    }
    return jobs;
  }

  /**
   * The first load or unload that can go now: an unload once no request submitted before it waits for its
   * model any more; a load unless an unload of the same model waits before it. So an unload held by its
   * model's requests does not hold up the loads queued behind it (other requests wait for those).
   */
  private nextControl(slot: Slot): Job | undefined {
    const pendingUnloads = new Set<string>();
    for (const job of slot.control) {
      const p = job.payload;
      if (p.type === 'unload') {
        if (!this.needed(slot, p.key, job.seq)) return job;
        pendingUnloads.add(p.key);
      } else if (p.type === 'load' && !pendingUnloads.has(p.key)) {
        return job;
      }
    }
    return undefined;
  }

  /**
   * An unload that can go now, with the load that follows it in the lane, as one message (the load first
   * in the list, the unloads it releases before loading after it): a cold bot's miss evicts one bot and
   * loads another, one message instead of two. Unloads wait for the end of the event loop's turn (see
   * `submit`), so the load of the same miss is queued by then. Anything else goes alone.
   */
  private withLoad(slot: Slot, first: Job): Job[] {
    if (first.payload.type !== 'unload') return [first];
    const start = slot.control.indexOf(first);
    // Unloads held before this one (nextControl passed them): a load of their model must wait for them.
    const held = new Set(slot.control.slice(0, start).flatMap((j) => (j.payload.type === 'unload' ? [j.payload.key] : [])));
    const unloads: Job[] = [];
    for (const job of slot.control.slice(start)) {
      const p = job.payload;
      if (p.type === 'unload') {
        if (this.needed(slot, p.key, job.seq)) return [first]; // the load may depend on what this unload is held for
        if (!job.done) unloads.push(job);
      } else if (p.type === 'load') {
        return job.done || held.has(p.key) ? [first] : [job, ...unloads];
      }
    }
    return [first];
  }

  /** A load or unload is in flight in the lane. */
  private controlInFlight(slot: Slot): boolean {
    for (const jobs of slot.inflight.values()) if (jobs[0].payload.type !== 'infer') return true;
    return false;
  }

  /**
   * Bots with a waiting request that uses a model whose load has not been sent yet: they wait for it (the
   * worker runs its messages in order, so once the load is sent they may follow it). A request submitted
   * before an unload of that model, which waits ahead of the load, is for the copy being unloaded: it goes
   * first. Requests of other bots go past a waiting load.
   */
  private waitingForLoad(slot: Slot): Set<string> {
    const blocked = new Set<string>();
    if (!slot.control.some((j) => j.payload.type === 'load')) return blocked;
    // Per model with a load waiting: requests submitted after this sequence number wait for it.
    const after = new Map<string, number>();
    const lastUnload = new Map<string, number>();
    for (const job of slot.control) {
      const p = job.payload;
      if (p.type === 'unload') lastUnload.set(p.key, job.seq);
      else if (p.type === 'load' && !after.has(p.key)) after.set(p.key, lastUnload.get(p.key) ?? 0);
    }
    // A bot's requests go in order: its oldest waiting request decides.
    const seen = new Set<string>();
    for (const job of slot.queue.jobs()) {
      if (seen.has(job.bot)) continue;
      seen.add(job.bot);
      for (const [key, seq] of after) if (job.seq > seq && uses(job, key)) blocked.add(job.bot);
    }
    return blocked;
  }

  /** A waiting request of the lane uses the model (`before`: only a request submitted before that sequence number). */
  private needed(slot: Slot, key: string, before = Infinity): boolean {
    for (const job of slot.queue.jobs()) if (job.seq < before && uses(job, key)) return true;
    return false;
  }

  private submit(slot: Slot, payload: Payload, o: { bot?: string; deadline?: number; reload?: boolean }): Promise<WorkerResponse | RunResult> {
    if (this.closed) return Promise.reject(new OverloadedError('the pool is shutting down', 'closing'));
    return new Promise<WorkerResponse | RunResult>((resolve, reject) => {
      const job: Job = { queuedAt: this.clock.now(), seq: this.nextSeq++, payload, bot: o.bot ?? '', deadline: o.deadline, reload: o.reload, lane: slot, done: false, resolve, reject };
      if (payload.type === 'infer') this.perBot.set(job.bot, (this.perBot.get(job.bot) ?? 0) + 1);
      if (o.deadline !== undefined) {
        job.timer = setTimeout(() => {
          // Waiting: it never runs. Running: its result is dropped when it comes.
          const lane = job.lane!;
          lane.queue.remove(job);
          this.finish(job, undefined, new DeadlineError('the request passed its deadline before the model answered'));
          this.opts.onQueueDepth?.(lane.index, this.depthOf(lane));
          // It may have been what held an unload back.
          if (!this.closed && this.isCurrent(lane)) this.pumpSoon(lane);
        }, Math.max(0, o.deadline - this.clock.now()));
        job.timer.unref();
      }
      if (payload.type === 'infer') {
        slot.queue.push(job);
        this.pumpSoon(slot);
      } else {
        slot.control.push(job);
        // An unload is not urgent: at the end of this turn it can ride on a load queued meanwhile.
        if (payload.type === 'unload') this.pumpSoon(slot);
        else this.pump(slot);
      }
    });
  }

  /**
   * Loads a model into a worker under `key` (a head with its bot's text pipeline). `check`: the load fails
   * if the head cannot answer for its bot (its inputs, outputs and label count; its encoder, loaded before
   * it in the same worker). Resolves with its size in bytes.
   */
  async load(worker: number, key: string, model: Model, o: { check?: { encoder?: string } } = {}): Promise<{ bytes: number; inputs: string[]; outputs: string[] }> {
    const slot = this.slots[worker];
    const r = (await this.submit(slot, { type: 'load', key, ...model, ...(o.check ? { check: o.check } : {}) }, {})) as WorkerResponse;
    if (r.type !== 'loaded') throw new ModelError(`unexpected answer ${r.type}`);
    this.slots[worker].models.set(key, model);
    return r;
  }

  /** Unloads a model after the requests waiting for it (and its copy in the quarantine lane, if any). */
  async unload(worker: number, key: string): Promise<void> {
    const slot = this.slots[worker];
    slot.models.delete(key);
    for (const [bot, c] of this.confined) {
      if (!c.keys.has(key)) continue;
      c.keys.delete(key);
      this.dropCopy(key);
      if (c.keys.size === 0) {
        this.confined.delete(bot);
        this.quarantine.forget(bot);
      }
    }
    await this.submit(slot, { type: 'unload', key }, {});
  }

  /**
   * Runs a bot on texts (its pipeline and models), in its worker or, while the bot is confined, in the
   * quarantine lane; `entities`: its entities too. Throws OverloadedError when a queue is full or the
   * request could not finish before its deadline, DeadlineError past the deadline, ModelError when a
   * model fails.
   */
  async infer(worker: number, bot: string, models: { encoder?: string; head: string }, texts: string[], deadline: number, o: { entities?: boolean } = {}): Promise<Answer> {
    if (this.closed) throw new OverloadedError('the pool is shutting down', 'closing');
    const { workerQueue, botQueue } = this.limits;
    if ((this.perBot.get(bot) ?? 0) >= botQueue) throw new OverloadedError(`bot "${bot}" has ${botQueue} requests queued already`, 'bot');
    const slot = this.laneFor(worker, bot, models);
    if (slot.queue.size >= workerQueue) throw new OverloadedError(`inference worker ${slot.index} has ${workerQueue} requests queued already`, 'worker');
    const now = this.clock.now();
    const wait = this.expectedWait(slot, bot, now);
    if (now + wait > deadline) {
      throw new OverloadedError(`bot "${bot}" would answer in about ${Math.ceil(wait)} ms, after its deadline`, 'wait', Math.max(1, Math.ceil(wait / 1000)));
    }
    const payload: InferPayload = { type: 'infer', encoder: models.encoder, head: models.head, texts, entities: o.entities };
    const r = (await this.submit(slot, payload, { bot, deadline })) as RunResult;
    if (!('probabilities' in r)) throw new ModelError(`unexpected answer ${JSON.stringify(r)}`);
    return r;
  }

  /** How long a new request of `bot` would take on `slot` to finish, by the measured run times. */
  private expectedWait(slot: Slot, bot: string, now: number): number {
    // Messages run one after the other in the worker: only the oldest one in flight has started.
    const running: number[] = [];
    let first = true;
    for (const jobs of slot.inflight.values()) {
      let left = 0;
      for (const job of jobs) if (job.payload.type === 'infer') left += this.times.estimate(job.bot);
      running.push(first ? left - (now - (jobs[0].sentAt ?? now)) : left);
      first = false;
    }
    return expectedWaitMs({ bot, running, depths: slot.queue.depths(), estimate: (b) => this.times.estimate(b) });
  }

  /**
   * The lane a bot's request runs in: its worker, or the quarantine lane while the bot is confined (its
   * models are copied there first: the request waits behind their loads).
   */
  private laneFor(worker: number, bot: string, models: { encoder?: string; head: string }): Slot {
    const home = this.slots[worker];
    if (!this.quarantine.has(bot)) return home;
    const lane = (this.quarantineSlot ??= this.spawn(this.slots.length, new Map(), 1, 1));
    let c = this.confined.get(bot);
    if (!c) this.confined.set(bot, (c = { keys: new Set() }));
    for (const key of [models.encoder, models.head]) {
      if (key === undefined || c.keys.has(key)) continue;
      const model = home.models.get(key);
      if (model === undefined) return home; // not loaded at home (yet): nothing to copy
      c.keys.add(key);
      if (!lane.models.has(key)) {
        lane.models.set(key, model);
        this.submit(lane, { type: 'load', key, ...model }, {}).catch(() => this.copyFailed(key));
      }
    }
    return lane;
  }

  /** A bot just confined: its requests still waiting in its worker move to the quarantine lane at once. */
  private moveWaiting(bot: string): void {
    for (const home of this.slots) {
      const waiting = [...home.queue.jobs()].filter((j) => j.bot === bot);
      for (const job of waiting) {
        const payload = job.payload as InferPayload;
        const lane = this.laneFor(home.index, bot, { encoder: payload.encoder, head: payload.head });
        if (lane === home) continue;
        home.queue.remove(job);
        job.lane = lane;
        lane.queue.push(job);
      }
      this.pump(home);
    }
    if (this.quarantineSlot) this.pump(this.quarantineSlot);
  }

  /**
   * A model could not be copied into the quarantine lane (or reloaded there after the lane's thread died):
   * the bots that needed it leave quarantine and run in their own worker again, rather than fail there.
   */
  private copyFailed(key: string): void {
    if (this.closed) return;
    this.quarantineSlot?.models.delete(key);
    for (const [bot, c] of [...this.confined]) {
      if (!c.keys.has(key)) continue;
      c.keys.delete(key);
      this.quarantine.forget(bot);
      this.release(bot);
      this.opts.onQuarantine?.(bot, false, this.times.estimate(bot));
    }
  }

  /** A bot leaves quarantine: its copies go once no other confined bot uses them. */
  private release(bot: string): void {
    const c = this.confined.get(bot);
    this.confined.delete(bot);
    for (const key of c?.keys ?? []) this.dropCopy(key);
  }

  private dropCopy(key: string): void {
    const lane = this.quarantineSlot;
    if (!lane || [...this.confined.values()].some((c) => c.keys.has(key))) return;
    if (lane.models.delete(key)) this.submit(lane, { type: 'unload', key }, {}).catch(() => undefined);
  }

  /**
   * Stops the threads. Requests fail at once; each worker ends the run it is in, releases its sessions
   * and exits on its own. A thread is never terminated: terminating one inside onnxruntime's native
   * `run()` aborts the whole process (`terminate called after throwing an instance of 'Napi::Error'`).
   */
  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      this.closing = Promise.all(this.lanes().map((slot) => this.stop(slot))).then(() => undefined);
    }
    return this.closing;
  }

  private stop(slot: Slot): Promise<void> {
    clearTimeout(slot.windowTimer);
    clearImmediate(slot.flush);
    for (const job of [...[...slot.inflight.values()].flat(), ...slot.queue.clear(), ...slot.control]) this.finish(job, undefined, new OverloadedError('the pool is shutting down', 'closing'));
    slot.control = [];
    if (slot.exited) return Promise.resolve();
    return new Promise<void>((resolve) => {
      slot.worker.once('exit', () => resolve());
      slot.worker.postMessage({ type: 'close', id: this.nextId++ } satisfies WorkerRequest);
    });
  }
}

/** An inference job that runs the model. */
function uses(job: Job, key: string): boolean {
  return job.payload.type === 'infer' && (job.payload.head === key || job.payload.encoder === key);
}
