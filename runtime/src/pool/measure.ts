/**
 * What a model really takes, measured in its inference thread around its load: the process's resident
 * memory (RSS) before and after its session is created, and at least its file's size (onnxruntime may
 * pre-pack weights, so a session can take more than its file).
 *
 * RSS is the whole process's, and every lane's thread loads on its own: a window in which two models load
 * would count both. So the window is one at a time in the process, behind a lock in memory the threads
 * share (a SharedArrayBuffer given to each thread in its workerData); unloads take the lock too (a session
 * released in another thread would shrink the window). onnxruntime's one-time start-up (its environment,
 * operator schemas and kernels: tens of MiB, paid by the first session of the process) is paid before the
 * first window, on a one-node model, so that no model is charged for it.
 *
 * No onnxruntime import here: the pool's HTTP thread imports this file for the lock alone.
 */

/** Where in the lock's memory: the thread that holds it (0: none), and whether onnxruntime has started. */
const HOLDER = 0;
const STARTED = 1;

/** How long a thread waits for the lock before it measures unserialized (the holder is stuck, or gone). */
const WAIT_MS = 60_000;

let processLock: SharedArrayBuffer | undefined;

/** The lock of this process: one for every pool and lane in it, since RSS is the process's. */
export function measureLock(): SharedArrayBuffer {
  return (processLock ??= new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
}

/** A thread that ended while it held the lock (it died in a load): the lock is free again. */
export function releaseHeldBy(lock: SharedArrayBuffer, threadId: number): void {
  const view = new Int32Array(lock);
  if (Atomics.compareExchange(view, HOLDER, threadId, 0) === threadId) Atomics.notify(view, HOLDER);
}

/**
 * A model that takes `x` ONNX: one Identity node (float [1] in and out), what onnxruntime's start-up is
 * paid on. Encoded with runtime/src/local/onnx.ts's `encodeModel` (opset 13).
 */
export const START_UP_MODEL = Buffer.from('CAcSCGJvdHNoYXJkGgUwLjEuMDpJChwKAXgSAXkaCklkZW50aXR5X3kiCElkZW50aXR5Egd3YXJtLXVwWg8KAXgSCgoICAESBAoCCAFiDwoBeRIKCggIARIECgIIAUIECgAQDQ==', 'base64');

export class Measurer {
  private readonly view?: Int32Array;
  private startedHere = false;

  constructor(
    lock: SharedArrayBuffer | undefined,
    /** This thread's id (never 0: the lock's "none"). */
    private readonly threadId: number,
    /** Pays onnxruntime's one-time start-up (loads START_UP_MODEL and releases it). */
    private readonly startUp: () => Promise<void>,
  ) {
    this.view = lock && new Int32Array(lock);
  }

  /**
   * Creates a session (`create`) inside the measuring window: `measuredBytes` is the RSS it added, at
   * least `fileBytes`.
   */
  async load<T>(fileBytes: number, create: () => Promise<T>): Promise<{ value: T; measuredBytes: number }> {
    return this.exclusive(async () => {
      if (!this.started) await this.startOnce();
      const before = process.memoryUsage.rss();
      const value = await create();
      return { value, measuredBytes: Math.max(fileBytes, process.memoryUsage.rss() - before) };
    });
  }

  /** Runs `fn` while no other thread of the process loads or unloads. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const held = this.acquire();
    try {
      return await fn();
    } finally {
      if (held) releaseHeldBy(this.view!.buffer as SharedArrayBuffer, this.threadId);
    }
  }

  /** onnxruntime's start-up is paid in this process (without a lock: in this thread). */
  private get started(): boolean {
    return this.view ? Atomics.load(this.view, STARTED) === 1 : this.startedHere;
  }

  /** Pays onnxruntime's start-up, once per process (with the lock held: no other thread measures meanwhile). */
  private async startOnce(): Promise<void> {
    if (this.view) Atomics.store(this.view, STARTED, 1);
    this.startedHere = true;
    await this.startUp().catch(() => undefined); // if it fails, the first model pays it: no worse than not trying
  }

  /** Takes the lock (blocking this thread: it has nothing else to do until its load is done); false without one. */
  private acquire(): boolean {
    const view = this.view;
    if (!view) return false;
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const holder = Atomics.compareExchange(view, HOLDER, 0, this.threadId);
      if (holder === 0) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.wait(view, HOLDER, holder, left);
    }
  }
}
