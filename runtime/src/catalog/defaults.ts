/**
 * What a pool group gets for each setting it leaves out, in one place: the catalog normalises groups
 * with these, the constructs size and probe the pools with them, and the pool falls back on them.
 * The normalized catalog carries every group field with these applied: nothing downstream re-defaults.
 * Real-time groups answer people waiting (short deadlines, more replicas spread over hosts, quick
 * start); non-real-time groups run batch-like work (long deadlines, fewer replicas, slower start).
 */
import type { RolloutMode } from './input';
import type { Guards } from './types';

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
  /** Average share of a pool's memory budget that `pools: auto` plans to use; the rest absorbs hashing imbalance. */
  readonly fillFactor: number;
  /** Memory of a pool process before it holds a bot (Node, onnxruntime, the server), in bytes. */
  readonly poolOverhead: number;
}

const MiB = 1024 * 1024;

/**
 * How long a bot that moved away from a pool stays served there (make-before-break): the old pool keeps
 * it this long after the catalog changes, or until the router routes it to the new pool. The HAProxy
 * control plane waits as long for the new pool before switching anyway, and `botshard up` keeps an old
 * pool process this long (plus the drain margin below) before stopping it.
 */
export const MOVE_GRACE_MS = 30_000;
/** What a process keeps beyond the move grace to finish the requests it already took. */
export const DRAIN_MARGIN_MS = 2_000;

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
  fillFactor: 0.75,
  poolOverhead: 160 * MiB,
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
  fillFactor: 0.75,
  poolOverhead: 160 * MiB,
};

/** The defaults of a real-time or a non-real-time pool group. */
export function groupDefaults(realtime: boolean): GroupDefaults {
  return realtime ? REALTIME : BATCH;
}

/** A candidate's guards when the catalog leaves them out (README "Rolling out a new model"). */
export const GUARD_DEFAULTS: Guards = {
  minRequests: 200,
  maxErrorRate: 0.02,
  maxFallbackRisePp: 5,
  minAgreementPct: 90,
  maxP99Ratio: 1.5,
  p99ToleranceMs: 5,
};

/** A candidate's share of requests when the catalog leaves it out: a shadow sees every request, a canary answers one in ten. */
export const SHARE_DEFAULTS: Record<RolloutMode, number> = { shadow: 1, canary: 0.1 };

/** A model's version label when the catalog gives none. */
export const DEFAULT_VERSION = '1';
