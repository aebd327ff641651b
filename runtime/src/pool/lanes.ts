/**
 * The pool's lanes, seen from the HTTP thread: starts their inference threads, feeds them and starts them
 * again when they die. What each part decides lives beside it: which requests are refused at once
 * (shedding.ts), what runs together (batcher.ts), when loads and unloads go (load-order.ts), and which
 * bots run in the quarantine lane (quarantine/). Requests wait per bot in a fair queue (scheduler.ts): the
 * least-served bot goes next, one request per bot runs at a time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { PoolGroup } from '../catalog';
import { Batcher, MAX_JOBS_PER_MESSAGE } from './batcher';
import { Answer, InferPayload, Job, Lane, LaneReply, LaneRequest, Model, ModelError, Payload, RunJob, RunResult, ThreadData, uses } from './lane';
import { controlInFlight, nextControl, waitingForLoad, withLoad } from './load-order';
import { measureLock, releaseHeldBy } from './measure';
import { QuarantineChange, QuarantineLane } from './quarantine';
import { Clock, ServiceTimes } from './scheduler';
import { DeadlineError, QueueLimits, Shedding, closingError, queueLimits } from './shedding';

/** The pool group's settings the lanes follow: the catalog's, with the process's overrides. */
export type LaneSettings = Pick<PoolGroup, 'concurrency' | 'timeoutMs' | 'quarantineShare' | 'batchWindowMs' | 'batchMaxRows'>;

/** A group's settings as the lanes follow them: the process's overrides (local use) win over the catalog's. */
export function laneSettings(group: LaneSettings, overrides: { concurrency?: number; timeoutMs?: number } = {}): LaneSettings {
  const { quarantineShare, batchWindowMs, batchMaxRows } = group;
  return { concurrency: overrides.concurrency ?? group.concurrency, timeoutMs: overrides.timeoutMs ?? group.timeoutMs, quarantineShare, batchWindowMs, batchMaxRows };
}

export interface LanesOptions {
  /** Home lanes, one thread each (the quarantine lane, when a bot needs it, is one more). */
  lanes: number;
  /** The group's settings before the first catalog is applied (`configure` follows it). @default - none: nothing runs until `configure` */
  settings?: LaneSettings;
  /** Messages in flight per home lane (a bot never has two). @default 2 */
  inflight?: number;
  /** Called when a lane's thread dies (it is started again and its models reloaded). */
  onThreadExit?(lane: number, error: Error): void;
  /** Called when a model could not be reloaded into a restarted thread: it is gone from that lane. */
  onModelLost?(lane: number, key: string, error: Error): void;
  /** Called when a lane's depth (requests, loads and unloads waiting or in flight) changes. */
  onQueueDepth?(lane: number, depth: number): void;
  /** Called for each message of requests sent to a thread: how many requests and texts it carries. */
  onBatch?(lane: number, requests: number, rows: number): void;
  /** Called when a bot is confined to the quarantine lane or released from it. */
  onQuarantine?(change: QuarantineChange): void;
  /** @default Date.now */
  clock?: Clock;
}

function threadScript(): string {
  // Compiled: lib/pool/inference-thread.js beside this file. From sources (ts-jest), the compiled copy in lib/.
  const here = path.join(__dirname, 'inference-thread.js');
  return fs.existsSync(here) ? here : path.resolve(__dirname, '../../lib/pool/inference-thread.js');
}

export class Lanes {
  private readonly homes: Lane[] = [];
  private readonly times = new ServiceTimes();
  private readonly shedding = new Shedding(this.times);
  private readonly batcher: Batcher;
  private readonly quarantine: QuarantineLane;
  private readonly clock: Clock;
  private settings?: LaneSettings;
  private nextId = 1;
  private nextSeq = 1;
  private closed = false;
  private closing?: Promise<void>;

  constructor(private readonly opts: LanesOptions) {
    this.settings = opts.settings;
    this.clock = opts.clock ?? { now: () => Date.now() };
    this.batcher = new Batcher(this.times, this.clock, () => ({ batchWindowMs: this.group.batchWindowMs, batchMaxRows: this.group.batchMaxRows, slowMs: this.slowMs }));
    this.quarantine = new QuarantineLane(this.times, {
      homes: () => this.homes,
      start: () => this.start(this.homes.length, new Map(), 1, 1),
      submit: (lane, payload) => this.submit(lane, payload, {}),
      pump: (lane) => this.pump(lane),
      slowMs: () => this.slowMs,
      onChange: opts.onQuarantine,
    });
    for (let i = 0; i < opts.lanes; i++) this.homes.push(this.start(i, new Map()));
  }

  /** Home lanes. */
  get size(): number {
    return this.homes.length;
  }

  private get group(): LaneSettings {
    if (!this.settings) throw new Error('the lanes have no pool group settings yet: configure() them with the catalog\'s group first');
    return this.settings;
  }

  /** The queue bounds now in force (from the group's concurrency, or the process's override). */
  get queueLimits(): QueueLimits {
    return queueLimits(this.group.concurrency);
  }

  /** The deadline of a request now: the group's timeout, or the process's override. */
  get timeoutMs(): number {
    return this.group.timeoutMs;
  }

  /** Follows the pool group's settings (a catalog change); queued requests stay queued. */
  configure(settings: LaneSettings): void {
    this.settings = { ...settings };
  }

  /** Runs slower than this on average (ms) put a bot in quarantine: the share of the deadline in force. */
  get slowMs(): number {
    return this.group.quarantineShare * this.group.timeoutMs;
  }

  /** Whether a bot runs in the quarantine lane, and its average run time (ms). */
  laneOf(bot: string): { quarantined: boolean; meanMs: number } {
    return { quarantined: this.quarantine.has(bot), meanMs: this.times.estimate(bot) };
  }

  /** Bots in the quarantine lane. */
  get quarantined(): ReadonlySet<string> {
    return this.quarantine.bots;
  }

  /** A home lane: for diagnostics and fault-injection tests (never terminate a thread that is running a model). */
  lane(index: number): Lane {
    return this.homes[index];
  }

  /**
   * Whether every lane (the quarantine lane too) has nothing waiting or in flight: a shadow run may take a
   * worker without delaying a request, or taking a CPU from one.
   */
  idle(): boolean {
    return !this.closed && this.all().every((lane) => lane.size === 0);
  }

  /** Requests waiting or running, per lane (the quarantine lane last, when it exists). */
  depths(): number[] {
    return this.all().map((lane) => lane.size);
  }

  private all(): Lane[] {
    const q = this.quarantine.lane;
    return q ? [...this.homes, q] : this.homes;
  }

  private start(index: number, models: Map<string, Model>, maxInflight = this.opts.inflight ?? 2, perMessage = MAX_JOBS_PER_MESSAGE): Lane {
    const workerData: ThreadData = { measureLock: measureLock() };
    const thread = new Worker(threadScript(), { name: `botshard-inference-${index}`, workerData });
    const lane = new Lane(index, thread, models, maxInflight, perMessage);
    // Its id now: a thread that has ended has none. One that ends in a load leaves the lock free.
    const threadId = thread.threadId;
    thread.on('message', (msg: LaneReply) => this.answer(lane, msg));
    thread.on('error', (e) => this.died(lane, e));
    thread.on('exit', (code) => {
      releaseHeldBy(workerData.measureLock, threadId);
      lane.exited = true;
      this.died(lane, new Error(`worker exited with code ${code}`));
    });
    // Reloads go first: requests queued for these models wait behind them (a request never runs before the load of its models).
    for (const [key, model] of models) this.submit(lane, { type: 'load', key, ...model }, { reload: true }).catch(() => undefined);
    return lane;
  }

  private isCurrent(lane: Lane): boolean {
    return lane === this.quarantine.lane || this.homes[lane.index] === lane;
  }

  private died(lane: Lane, error: Error): void {
    if (this.closed || !this.isCurrent(lane)) return;
    for (const job of lane.takeAll()) this.finish(job, undefined, new ModelError(`inference worker failed: ${error.message}`));
    this.opts.onThreadExit?.(lane.index, error);
    const fresh = this.start(lane.index, lane.models, lane.maxInflight, lane.perMessage);
    if (lane === this.quarantine.lane) this.quarantine.replaced(fresh);
    else this.homes[lane.index] = fresh;
  }

  private answer(lane: Lane, msg: LaneReply): void {
    const jobs = lane.inflight.get(msg.id);
    if (!jobs) return;
    lane.inflight.delete(msg.id);
    if (msg.type === 'ran') {
      for (const job of jobs) lane.running.delete(job.bot);
      msg.results.forEach((result, i) => {
        const job = jobs[i];
        if ('error' in result) return this.finish(job, undefined, new ModelError(result.error));
        this.measured(lane, job, result.ms);
        this.finish(job, result);
      });
    } else if (msg.type === 'error' && jobs[0].payload.type === 'infer') {
      // The whole message failed (the thread could not run it at all): every request in it fails.
      for (const job of jobs) {
        lane.running.delete(job.bot);
        this.finish(job, undefined, new ModelError(msg.message));
      }
    } else {
      const [job, ...released] = jobs;
      // Unloads that rode on a load went first in the thread, whatever became of the load.
      for (const unload of released) this.finish(unload, { type: 'unloaded', id: msg.id });
      if (msg.type === 'error') {
        // Before the next job is sent: nothing may run against a model that is not there.
        if (job.reload && job.payload.type === 'load') this.lost(lane, job.payload.key, job.payload.file, msg.message);
        this.finish(job, undefined, new ModelError(msg.message));
      } else {
        this.finish(job, msg);
      }
    }
    this.pump(lane);
  }

  /** A finished run: the fair queue's charge is corrected to the time measured, and the bot may enter or leave quarantine. */
  private measured(lane: Lane, job: Job, ms: number): void {
    lane.queue.charge(job.bot, ms - (job.charged ?? 0));
    this.times.record(job.bot, ms);
    this.quarantine.measured(job.bot);
  }

  /** A model that a restarted thread could not load again: requests queued for it fail, the owner is told. */
  private lost(lane: Lane, key: string, file: string, message: string): void {
    if (lane.models.get(key)?.file !== file) return; // unloaded meanwhile
    lane.models.delete(key);
    const error = new ModelError(`inference worker failed and model ${key} could not be loaded again: ${message}`);
    for (const job of [...lane.queue.jobs()].filter((j) => uses(j, key))) {
      lane.queue.remove(job);
      this.finish(job, undefined, error);
    }
    if (lane === this.quarantine.lane) this.quarantine.copyFailed(key);
    else this.opts.onModelLost?.(lane.index, key, new Error(message));
  }

  private finish(job: Job, result?: LaneReply | RunResult, error?: Error): void {
    if (job.done) return;
    job.done = true;
    if (job.timer) clearTimeout(job.timer);
    if (job.payload.type === 'infer') this.shedding.ended(job.bot);
    if (error) job.reject(error);
    else job.resolve(result!);
  }

  /**
   * Sends messages while the lane has room: a waiting load or unload first, alone (an unload once no
   * waiting request still needs its model); otherwise one `run` of the requests the batcher gathers, in
   * the fair queue's order, among bots with nothing running (the thread runs those sharing an encoder as
   * one batch). `hold`: the batch window may hold the run back.
   */
  private pump(lane: Lane, hold = true): void {
    while (lane.inflight.size < lane.maxInflight) {
      const control = nextControl(lane);
      // While requests wait, one load or unload at a time: a request waits behind one load, never behind
      // a burst of cold bots.
      if (control && (lane.queue.size === 0 || !controlInFlight(lane))) {
        this.sendControl(lane, control);
        continue;
      }
      if (hold && this.batcher.hold(lane, () => this.closed || !this.isCurrent(lane) || this.pump(lane, false))) break;
      if (!this.sendRun(lane)) break;
    }
    this.opts.onQueueDepth?.(lane.index, lane.size);
  }

  /** Sends a load or an unload (with the unloads that ride on a load), or drops it when it has ended already. */
  private sendControl(lane: Lane, control: Job): void {
    if (control.done) {
      lane.control.splice(lane.control.indexOf(control), 1);
      return;
    }
    const jobs = withLoad(lane, control);
    for (const job of jobs) lane.control.splice(lane.control.indexOf(job), 1);
    const [first, ...unloads] = jobs;
    const release = unloads.map((j) => (j.payload as { key: string }).key);
    const id = this.nextId++;
    lane.send(id, jobs, { ...first.payload, id, ...(release.length > 0 ? { release } : {}) } as LaneRequest, this.clock.now());
  }

  /** Sends one `run` of the requests the batcher gathers; false when there is none to send. */
  private sendRun(lane: Lane): boolean {
    const jobs = this.batcher.gather(lane, waitingForLoad(lane));
    if (jobs.length === 0) return false;
    for (const job of jobs) lane.running.add(job.bot);
    const run: RunJob[] = jobs.map((j) => {
      const { encoder, head, texts, entities } = j.payload as InferPayload;
      return { encoder, head, texts, entities };
    });
    const id = this.nextId++;
    lane.send(id, jobs, { type: 'run', id, jobs: run }, this.clock.now());
    this.opts.onBatch?.(lane.index, run.length, run.reduce((n, j) => n + j.texts.length, 0));
    return true;
  }

  /**
   * Sends at the end of this turn of the event loop (setImmediate): the requests read from all the
   * connections that were ready together go to the thread as one message, one wake-up of it and one copy
   * across, instead of one each. A request waits microseconds for it, never a timer.
   */
  private pumpSoon(lane: Lane): void {
    lane.flush ??= setImmediate(() => {
      lane.flush = undefined;
      if (!this.closed && this.isCurrent(lane)) this.pump(lane);
    });
  }

  private submit(lane: Lane, payload: Payload, o: { bot?: string; deadline?: number; reload?: boolean }): Promise<LaneReply | RunResult> {
    if (this.closed) return Promise.reject(closingError());
    return new Promise<LaneReply | RunResult>((resolve, reject) => {
      const job: Job = { queuedAt: this.clock.now(), seq: this.nextSeq++, payload, bot: o.bot ?? '', deadline: o.deadline, reload: o.reload, lane, done: false, resolve, reject };
      if (payload.type === 'infer') this.shedding.taken(job.bot);
      if (o.deadline !== undefined) this.expireAt(job, o.deadline);
      if (payload.type === 'infer') {
        lane.queue.push(job);
        this.pumpSoon(lane);
      } else {
        lane.control.push(job);
        // An unload is not urgent: at the end of this turn it can ride on a load queued meanwhile.
        if (payload.type === 'unload') this.pumpSoon(lane);
        else this.pump(lane);
      }
    });
  }

  /** At its deadline a request fails: waiting, it never runs; running, its result is dropped when it comes. */
  private expireAt(job: Job, deadline: number): void {
    job.timer = setTimeout(() => {
      const lane = job.lane!;
      lane.queue.remove(job);
      this.finish(job, undefined, new DeadlineError('the request passed its deadline before the model answered'));
      this.opts.onQueueDepth?.(lane.index, lane.size);
      // It may have been what held an unload back.
      if (!this.closed && this.isCurrent(lane)) this.pumpSoon(lane);
    }, Math.max(0, deadline - this.clock.now()));
    job.timer.unref();
  }

  /**
   * Loads a model into a home lane under `key` (a head with its bot's text pipeline). `check`: the load
   * fails if the head cannot answer for its bot (its inputs, outputs and label count; its encoder, loaded
   * before it in the same lane). Resolves with its file's size and its measured size in bytes.
   */
  async load(lane: number, key: string, model: Model, o: { check?: { encoder?: string } } = {}): Promise<{ bytes: number; measuredBytes: number; inputs: string[]; outputs: string[] }> {
    const r = (await this.submit(this.homes[lane], { type: 'load', key, ...model, ...(o.check ? { check: o.check } : {}) }, {})) as LaneReply;
    if (r.type !== 'loaded') throw new ModelError(`unexpected answer ${r.type}`);
    this.homes[lane].models.set(key, model);
    return r;
  }

  /** Unloads a model after the requests waiting for it (and its copy in the quarantine lane, if any). */
  async unload(lane: number, key: string): Promise<void> {
    const home = this.homes[lane];
    home.models.delete(key);
    this.quarantine.unloaded(key);
    await this.submit(home, { type: 'unload', key }, {});
  }

  /**
   * Runs a bot on texts (its pipeline and models), in its home lane or, while the bot is confined, in the
   * quarantine lane; `entities`: its entities too. Throws OverloadedError when a queue is full or the
   * request could not finish before its deadline, DeadlineError past the deadline, ModelError when a
   * model fails.
   */
  async infer(lane: number, bot: string, models: { encoder?: string; head: string }, texts: string[], deadline: number, o: { entities?: boolean } = {}): Promise<Answer> {
    if (this.closed) throw closingError();
    const limits = this.queueLimits;
    this.shedding.checkBot(bot, limits);
    const target = this.quarantine.laneFor(this.homes[lane], bot, models);
    this.shedding.checkLane(target, bot, deadline, this.clock.now(), limits);
    const payload: InferPayload = { type: 'infer', encoder: models.encoder, head: models.head, texts, entities: o.entities };
    const r = (await this.submit(target, payload, { bot, deadline })) as RunResult;
    if (!('probabilities' in r)) throw new ModelError(`unexpected answer ${JSON.stringify(r)}`);
    return r;
  }

  /**
   * Stops the threads. Requests fail at once; each thread ends the run it is in, releases its sessions
   * and exits on its own. A thread is never terminated: terminating one inside onnxruntime's native
   * `run()` aborts the whole process (`terminate called after throwing an instance of 'Napi::Error'`).
   */
  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      this.quarantine.close();
      this.closing = Promise.all(
        this.all().map((lane) => {
          for (const job of lane.takeAll()) this.finish(job, undefined, closingError());
          return lane.stop(this.nextId++);
        }),
      ).then(() => undefined);
    }
    return this.closing;
  }
}
