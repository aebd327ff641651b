/**
 * What a pool group gets for each setting it leaves out, in one place: the catalog normalises groups
 * with these, the constructs size and probe the pools with them, and the pool falls back on them.
 * Real-time groups answer people waiting (short deadlines, more replicas spread over hosts, quick
 * start); non-real-time groups run batch-like work (long deadlines, fewer replicas, slower start).
 */
export interface GroupDefaults {
  /** Deadline of one request. */
  readonly timeoutMs: number;
  /** Requests queued per inference worker before the pool sheds with 503. */
  readonly concurrency: number;
  /** Share of `timeoutMs` above which a bot's average run confines it to a lane of its own. */
  readonly quarantineShare: number;
  /** How long a worker may wait for more requests to batch through a shared encoder. */
  readonly batchWindowMs: number;
  /** Most texts in one batch. */
  readonly batchMaxRows: number;
  /** Replicas per pool (the HPA's range). */
  readonly replicas: { readonly min: number; readonly max: number };
  /** CPU utilisation the HPA scales each pool to. */
  readonly targetCpuPercent: number;
  /** CPU of each pool container (Kubernetes quantities). */
  readonly cpu: { readonly request: string; readonly limit: string };
  /** Seconds a pool may take to answer its first liveness probe (loading its models) before a restart. */
  readonly startupSeconds: number;
}

const REALTIME: GroupDefaults = {
  timeoutMs: 2000,
  concurrency: 32,
  quarantineShare: 0.1,
  batchWindowMs: 0,
  batchMaxRows: 32,
  replicas: { min: 2, max: 10 },
  targetCpuPercent: 70,
  cpu: { request: '500m', limit: '2' },
  startupSeconds: 60,
};

const BATCH: GroupDefaults = {
  timeoutMs: 60_000,
  concurrency: 8,
  quarantineShare: 0.1,
  batchWindowMs: 2,
  batchMaxRows: 32,
  replicas: { min: 1, max: 4 },
  targetCpuPercent: 70,
  cpu: { request: '250m', limit: '1' },
  startupSeconds: 180,
};

/** The defaults of a real-time or a non-real-time pool group. */
export function groupDefaults(realtime: boolean): GroupDefaults {
  return realtime ? REALTIME : BATCH;
}
