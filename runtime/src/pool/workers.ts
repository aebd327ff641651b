/**
 * The pool's inference workers, seen from the HTTP thread: a bounded queue per worker and per bot,
 * deadlines, and at most a couple of messages in flight per worker (the rest wait here, where a
 * request past its deadline can still be dropped instead of computed for nobody).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { WorkerRequest, WorkerResponse } from './worker';

/** The queue is full: answer 503 with Retry-After. */
export class OverloadedError extends Error {
  readonly statusCode = 503;
}
/** The request's deadline passed: answer 504. */
export class DeadlineError extends Error {
  readonly statusCode = 504;
}
/** A model failed to load or run. */
export class ModelError extends Error {
  readonly statusCode = 500;
}

type Payload = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

interface Job {
  id: number;
  payload: Payload;
  /** Bot the job counts against (inference only). */
  bot?: string;
  /** A load that restores a model into a restarted worker. */
  reload?: boolean;
  deadline?: number;
  timer?: NodeJS.Timeout;
  sent: boolean;
  done: boolean;
  resolve(r: WorkerResponse): void;
  reject(e: Error): void;
}

interface Slot {
  index: number;
  worker: Worker;
  queue: Job[];
  inflight: Map<number, Job>;
  /** Models loaded in this worker: key -> file, to reload them if the worker has to be restarted. */
  models: Map<string, string>;
  /** The thread has ended. */
  exited: boolean;
}

export interface WorkerPoolOptions {
  /** Worker threads. */
  workers: number;
  /** Inference requests a pool group allows at once: sets both queue bounds (see `queueLimits`). */
  concurrency: number;
  /** Messages in flight per worker. @default 2 */
  inflight?: number;
  /** Called when a worker thread dies (it is restarted and its models reloaded). */
  onWorkerExit?(index: number, error: Error): void;
  /** Called when a model could not be reloaded into a restarted worker: it is gone from that worker. */
  onModelLost?(index: number, key: string, error: Error): void;
  /** Called when a queue's depth changes. */
  onQueueDepth?(index: number, depth: number): void;
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

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly perBot = new Map<string, number>();
  private nextId = 1;
  private closed = false;
  private closing?: Promise<void>;
  private limits: QueueLimits;

  constructor(private readonly opts: WorkerPoolOptions) {
    this.limits = queueLimits(opts.concurrency);
    for (let i = 0; i < opts.workers; i++) this.slots.push(this.spawn(i, new Map()));
  }

  get size(): number {
    return this.slots.length;
  }

  /** The queue bounds now in force. */
  get queueLimits(): QueueLimits {
    return this.limits;
  }

  /** Sets the queue bounds from a group's concurrency (a catalog change); queued requests stay queued. */
  setConcurrency(concurrency: number): void {
    this.limits = queueLimits(concurrency);
  }

  /** The thread of a worker: for diagnostics and fault-injection tests (never terminate one that is running a model). */
  thread(index: number): Worker {
    return this.slots[index].worker;
  }

  /** Requests waiting or running, per worker. */
  depths(): number[] {
    return this.slots.map((s) => s.queue.length + s.inflight.size);
  }

  private spawn(index: number, models: Map<string, string>): Slot {
    const worker = new Worker(workerScript(), { name: `botshard-inference-${index}` });
    const slot: Slot = { index, worker, queue: [], inflight: new Map(), models, exited: false };
    worker.on('message', (msg: WorkerResponse) => this.answer(slot, msg));
    worker.on('error', (e) => this.died(slot, e));
    worker.on('exit', (code) => {
      slot.exited = true;
      this.died(slot, new Error(`worker exited with code ${code}`));
    });
    // Reloads go first: requests queued for these models wait behind them (loads are barriers).
    for (const [key, file] of models) this.submit(slot, { type: 'load', key, file }, { reload: true }).catch(() => undefined);
    return slot;
  }

  private died(slot: Slot, error: Error): void {
    if (this.closed || this.slots[slot.index] !== slot) return;
    for (const job of [...slot.inflight.values(), ...slot.queue]) this.finish(job, undefined, new ModelError(`inference worker failed: ${error.message}`));
    slot.queue = [];
    slot.inflight.clear();
    this.opts.onWorkerExit?.(slot.index, error);
    this.slots[slot.index] = this.spawn(slot.index, slot.models);
  }

  private answer(slot: Slot, msg: WorkerResponse): void {
    const job = slot.inflight.get(msg.id);
    if (!job) return;
    slot.inflight.delete(msg.id);
    if (msg.type === 'error') {
      // Before the next job is sent: nothing may run against a model that is not there.
      if (job.reload && job.payload.type === 'load') this.lost(slot, job.payload.key, job.payload.file, msg.message);
      this.finish(job, undefined, new ModelError(msg.message));
    } else {
      this.finish(job, msg);
    }
    this.pump(slot);
  }

  /** A model that a restarted worker could not load again: requests queued for it fail, the owner is told. */
  private lost(slot: Slot, key: string, file: string, message: string): void {
    if (slot.models.get(key) !== file) return; // unloaded meanwhile
    slot.models.delete(key);
    const error = new ModelError(`inference worker failed and model ${key} could not be loaded again: ${message}`);
    const uses = (j: Job) => j.payload.type === 'infer' && (j.payload.head === key || j.payload.encoder === key);
    for (const job of slot.queue.filter(uses)) this.finish(job, undefined, error);
    slot.queue = slot.queue.filter((j) => !uses(j));
    this.opts.onModelLost?.(slot.index, key, new Error(message));
  }

  private finish(job: Job, result?: WorkerResponse, error?: Error): void {
    if (job.done) return;
    job.done = true;
    if (job.timer) clearTimeout(job.timer);
    if (job.bot !== undefined) {
      const n = (this.perBot.get(job.bot) ?? 1) - 1;
      if (n <= 0) this.perBot.delete(job.bot);
      else this.perBot.set(job.bot, n);
    }
    if (error) job.reject(error);
    else job.resolve(result!);
  }

  /**
   * The next job to send: the first one whose bot has nothing in flight on this worker, so that a bot
   * flooding the worker (or a slow one) takes turns with the others instead of holding every slot.
   * Loads and unloads stay barriers: no job jumps ahead of one.
   */
  private next(slot: Slot): Job {
    const busy = new Set<string>();
    for (const j of slot.inflight.values()) if (j.bot !== undefined) busy.add(j.bot);
    let index = 0;
    for (let i = 0; i < slot.queue.length; i++) {
      const bot = slot.queue[i].bot;
      if (bot === undefined) break;
      if (!busy.has(bot)) {
        index = i;
        break;
      }
    }
    return slot.queue.splice(index, 1)[0];
  }

  private pump(slot: Slot): void {
    const max = this.opts.inflight ?? 2;
    while (slot.inflight.size < max && slot.queue.length > 0) {
      const job = this.next(slot);
      if (job.done) continue;
      job.sent = true;
      slot.inflight.set(job.id, job);
      const msg = { ...job.payload, id: job.id } as WorkerRequest;
      slot.worker.postMessage(msg);
    }
    this.opts.onQueueDepth?.(slot.index, slot.queue.length + slot.inflight.size);
  }

  private submit(slot: Slot, payload: Payload, o: { bot?: string; deadline?: number; reload?: boolean }): Promise<WorkerResponse> {
    if (this.closed) return Promise.reject(new OverloadedError('the pool is shutting down'));
    return new Promise<WorkerResponse>((resolve, reject) => {
      const job: Job = { id: this.nextId++, payload, bot: o.bot, deadline: o.deadline, reload: o.reload, sent: false, done: false, resolve, reject };
      if (o.bot !== undefined) this.perBot.set(o.bot, (this.perBot.get(o.bot) ?? 0) + 1);
      if (o.deadline !== undefined) {
        job.timer = setTimeout(() => {
          // Queued: it never runs. Running: its result is dropped when it comes.
          const i = slot.queue.indexOf(job);
          if (i >= 0) slot.queue.splice(i, 1);
          this.finish(job, undefined, new DeadlineError('the request passed its deadline before the model answered'));
          this.opts.onQueueDepth?.(slot.index, slot.queue.length + slot.inflight.size);
        }, Math.max(0, o.deadline - Date.now()));
        job.timer.unref();
      }
      slot.queue.push(job);
      this.pump(slot);
    });
  }

  /** Loads a model into a worker under `key`. Resolves with its size in bytes. */
  async load(worker: number, key: string, file: string): Promise<{ bytes: number; inputs: string[]; outputs: string[] }> {
    const slot = this.slots[worker];
    const r = await this.submit(slot, { type: 'load', key, file }, {});
    if (r.type !== 'loaded') throw new ModelError(`unexpected answer ${r.type}`);
    this.slots[worker].models.set(key, file);
    return r;
  }

  /** Unloads a model after the requests queued before it. */
  async unload(worker: number, key: string): Promise<void> {
    const slot = this.slots[worker];
    slot.models.delete(key);
    await this.submit(slot, { type: 'unload', key }, {});
  }

  /**
   * Runs a bot's models on a batch of token ids ([batch, tokens], 0-padded). Throws OverloadedError when
   * the bot's or the worker's queue is full, DeadlineError past the deadline, ModelError when a model fails.
   */
  async infer(worker: number, bot: string, models: { encoder?: string; head: string }, ids: BigInt64Array, batch: number, tokens: number, deadline: number): Promise<{ probabilities: Float32Array; labels: number; ms: number }> {
    if (this.closed) throw new OverloadedError('the pool is shutting down');
    const slot = this.slots[worker];
    const { workerQueue, botQueue } = this.limits;
    if ((this.perBot.get(bot) ?? 0) >= botQueue) throw new OverloadedError(`bot "${bot}" has ${botQueue} requests queued already`);
    if (slot.queue.length >= workerQueue) throw new OverloadedError(`inference worker ${worker} has ${workerQueue} requests queued already`);
    const r = await this.submit(slot, { type: 'infer', encoder: models.encoder, head: models.head, ids, batch, tokens }, { bot, deadline });
    if (r.type !== 'result') throw new ModelError(`unexpected answer ${r.type}`);
    return r;
  }

  /**
   * Stops the threads. Requests fail at once; each worker ends the run it is in, releases its sessions
   * and exits on its own. A thread is never terminated: terminating one inside onnxruntime's native
   * `run()` aborts the whole process (`terminate called after throwing an instance of 'Napi::Error'`).
   */
  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      this.closing = Promise.all(this.slots.map((slot) => this.stop(slot))).then(() => undefined);
    }
    return this.closing;
  }

  private stop(slot: Slot): Promise<void> {
    for (const job of [...slot.inflight.values(), ...slot.queue]) this.finish(job, undefined, new OverloadedError('the pool is shutting down'));
    slot.queue = [];
    if (slot.exited) return Promise.resolve();
    return new Promise<void>((resolve) => {
      slot.worker.once('exit', () => resolve());
      slot.worker.postMessage({ type: 'close', id: this.nextId++ } satisfies WorkerRequest);
    });
  }
}
