/**
 * A lane: one inference thread (inference-thread.ts) and the work the pool keeps for it: inference
 * requests waiting per bot (a fair queue, scheduler.ts), loads and unloads waiting, and the messages in
 * flight. Also the lane's message protocol: what the pool sends to the thread and what it answers.
 */
import type { Worker } from 'node:worker_threads';
import type { Entity } from '../oip';
import { FairQueue } from './scheduler';
import type { Prediction, Processing } from './processors';

/** Messages from the pool to a lane's thread. */
export type LaneRequest =
  /**
   * `processing`: the text pipeline of the bot whose head this is. `check`: check the head against its
   * bot as part of the load (see checkHead; `encoder`: loaded here before it), without a message of its
   * own. `release`: models to unload first (unloads that ride on this message instead of one each).
   */
  | { type: 'load'; id: number; key: string; file: string; processing?: Processing; check?: { encoder?: string }; release?: string[] }
  | { type: 'unload'; id: number; key: string }
  | { type: 'run'; id: number; jobs: RunJob[] }
  /** Release every session and end the thread (after the messages before it). */
  | { type: 'close'; id: number };

/** What a lane's thread is started with (its workerData). */
export interface ThreadData {
  /** The process's lock around loads and unloads, so that each load's measured bytes are its own (measure.ts). */
  measureLock: SharedArrayBuffer;
}

/** Answers of a lane's thread, one per message. */
export type LaneReply =
  /** `bytes`: the model file's size; `measuredBytes`: what the process's memory grew by when it loaded, at least `bytes` (measure.ts). */
  | { type: 'loaded'; id: number; bytes: number; measuredBytes: number; inputs: string[]; outputs: string[] }
  | { type: 'unloaded'; id: number }
  | { type: 'closed'; id: number }
  | { type: 'ran'; id: number; results: RunResult[] }
  | { type: 'error'; id: number; message: string };

/** One request: texts through the head's pipeline and an optional encoder, then the head. */
export interface RunJob {
  encoder?: string;
  head: string;
  texts: string[];
  /** Find the bot's entities in each text too. */
  entities?: boolean;
}

/** A request's answer, and the time it used in the thread (its own work plus its share of a shared encoder run). */
export type RunResult = Answer | { error: string };
export interface Answer {
  /** One per text. */
  rows: Prediction[];
  /** [texts, labels]. */
  probabilities: Float32Array;
  /** One list per text, when asked for. */
  entities?: Entity[][];
  ms: number;
}

/** A model failed to load or run. */
export class ModelError extends Error {
  readonly statusCode = 500;
}

/** A model's file, and its bot's text pipeline when it is a head. */
export interface Model {
  file: string;
  processing?: Processing;
}

/** What a job asks of its lane: a load or an unload (sent alone, or unloads riding on a load), or an inference request (sent in a `run` with others). */
export type InferPayload = { type: 'infer' } & RunJob;
export type LoadPayload = { type: 'load'; key: string; check?: { encoder?: string } } & Model;
export type Payload = LoadPayload | { type: 'unload'; key: string } | InferPayload;

/** A load, an unload or an inference request, from its submission to its answer. */
export interface Job {
  payload: Payload;
  /** Bot the job runs for (inference only; loads and unloads have none). */
  bot: string;
  /** A load that restores a model into a restarted thread. */
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
  /** The lane it waits or runs in (a quarantined bot's waiting requests move to the quarantine lane). */
  lane?: Lane;
  done: boolean;
  resolve(r: LaneReply | RunResult): void;
  reject(e: Error): void;
}

/** An inference job that runs the model. */
export function uses(job: Job, key: string): boolean {
  return job.payload.type === 'infer' && (job.payload.head === key || job.payload.encoder === key);
}

/** Texts of an inference job (0 for a load or an unload). */
export function rowsOf(job: Job): number {
  return job.payload.type === 'infer' ? job.payload.texts.length : 0;
}

export class Lane {
  /** Inference requests waiting, per bot. */
  readonly queue = new FairQueue<Job>();
  /** Loads and unloads waiting: they go before any inference request queued after them. */
  control: Job[] = [];
  /** Messages in flight: message id -> its jobs. */
  readonly inflight = new Map<number, Job[]>();
  /** Bots with a request in flight on this lane. */
  readonly running = new Set<string>();
  /** Set while the lane waits (the batch window) for more requests before it sends a message. */
  windowTimer?: NodeJS.Timeout;
  /** Set while requests queued in this turn of the event loop wait for its end, to go as one message. */
  flush?: NodeJS.Immediate;
  /** The thread has ended. */
  exited = false;

  constructor(
    /** The lane's place: the home lanes first, the quarantine lane after them. */
    readonly index: number,
    readonly thread: Worker,
    /** Models loaded in this lane by key, to reload them if its thread has to be restarted. */
    readonly models: Map<string, Model>,
    /** Messages in flight at most. */
    readonly maxInflight: number,
    /** Requests in one message at most (the quarantine lane: 1). */
    readonly perMessage: number,
  ) {}

  /** Requests, loads and unloads waiting or in flight. */
  get size(): number {
    let n = this.queue.size + this.control.length;
    for (const jobs of this.inflight.values()) n += jobs.length;
    return n;
  }

  /** Sends a message of jobs to the thread. */
  send(id: number, jobs: Job[], message: LaneRequest, now: number): void {
    for (const job of jobs) job.sentAt = now;
    this.inflight.set(id, jobs);
    this.thread.postMessage(message);
  }

  /** Takes every job out of the lane (its thread died, or the pool stops). */
  takeAll(): Job[] {
    const all = [...[...this.inflight.values()].flat(), ...this.queue.clear(), ...this.control];
    this.control = [];
    this.inflight.clear();
    this.running.clear();
    return all;
  }

  /** Asks the thread to release its sessions and end; resolves once it has. */
  stop(id: number): Promise<void> {
    clearTimeout(this.windowTimer);
    clearImmediate(this.flush);
    if (this.exited) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.thread.once('exit', () => resolve());
      this.thread.postMessage({ type: 'close', id } satisfies LaneRequest);
    });
  }
}
