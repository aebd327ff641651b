/**
 * What a bot team judges a model version by, per version side by side: requests and errors, the fallback
 * rate (texts answered below the bot's threshold: its own quality signal), the mean confidence, run-time
 * quantiles, and, for a shadow, the agreement with the serving version. Kept as sums and a fixed-bucket
 * histogram, so that the figures of several pool replicas add up exactly (the router's status sums them).
 */

/** Run times are counted in buckets growing by 10% from 50 µs: a quantile is known within 10%. */
const FIRST_MS = 0.05;
const GROWTH = 1.1;
const BUCKETS = 160; // up to about 50 s

/** The bucket of a run time. */
export function bucketOf(ms: number): number {
  if (!(ms > FIRST_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / FIRST_MS) / Math.log(GROWTH)));
}

/** The upper bound of a bucket, in ms. */
export function bucketMs(bucket: number): number {
  return FIRST_MS * GROWTH ** bucket;
}

/** A version's figures as sums: what a pool reports, and what adds up over replicas. */
export interface RawFigures {
  /** Requests it answered (or was asked to, for a shadow), and those that failed. */
  requests: number;
  errors: number;
  /** Texts answered, those below the bot's threshold (the fallback answered), and the sum of their confidences. */
  texts: number;
  fallbacks: number;
  confidenceSum: number;
  /** Run times: bucket -> requests (see bucketOf). */
  runMs: Record<number, number>;
  /** Shadow only: texts compared with the serving version's answer, and those where both chose the same intent. */
  compared: number;
  agreed: number;
  /** Shadow only: copies of requests dropped because the worker was busy. */
  dropped: number;
}

/** The figures a person reads. Rates and agreement in percent; null where nothing was counted yet. */
export interface Figures {
  requests: number;
  errors: number;
  errorRatePct: number | null;
  fallbackRatePct: number | null;
  meanConfidence: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  agreementPct: number | null;
  dropped: number;
}

export function emptyFigures(): RawFigures {
  return { requests: 0, errors: 0, texts: 0, fallbacks: 0, confidenceSum: 0, runMs: {}, compared: 0, agreed: 0, dropped: 0 };
}

/** Counts a request's answer: its run time and, per text, its confidence and whether it fell below the threshold. */
export function countAnswer(f: RawFigures, ms: number, rows: ReadonlyArray<{ confidence: number }>, threshold: number): void {
  f.requests++;
  const b = bucketOf(ms);
  f.runMs[b] = (f.runMs[b] ?? 0) + 1;
  for (const row of rows) {
    f.texts++;
    f.confidenceSum += row.confidence;
    if (row.confidence < threshold) f.fallbacks++;
  }
}

/** Counts a failed request. */
export function countError(f: RawFigures): void {
  f.requests++;
  f.errors++;
}

/** Counts a shadow's answers against the serving version's, text by text. */
export function countAgreement(f: RawFigures, serving: ReadonlyArray<{ intent: string }>, candidate: ReadonlyArray<{ intent: string }>): void {
  for (let i = 0; i < serving.length; i++) {
    f.compared++;
    if (serving[i].intent === candidate[i]?.intent) f.agreed++;
  }
}

/** The sum of two replicas' figures. */
export function addFigures(a: RawFigures, b: RawFigures): RawFigures {
  const runMs: Record<number, number> = { ...a.runMs };
  for (const [k, n] of Object.entries(b.runMs)) runMs[Number(k)] = (runMs[Number(k)] ?? 0) + n;
  return {
    requests: a.requests + b.requests,
    errors: a.errors + b.errors,
    texts: a.texts + b.texts,
    fallbacks: a.fallbacks + b.fallbacks,
    confidenceSum: a.confidenceSum + b.confidenceSum,
    runMs,
    compared: a.compared + b.compared,
    agreed: a.agreed + b.agreed,
    dropped: a.dropped + b.dropped,
  };
}

/** The run time below which a share `q` (0..1) of the counted requests ran: a bucket's upper bound. */
export function quantileMs(f: RawFigures, q: number): number | null {
  const entries = Object.entries(f.runMs).map(([k, n]) => [Number(k), n] as const).sort((x, y) => x[0] - y[0]);
  const total = entries.reduce((s, [, n]) => s + n, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [bucket, n] of entries) {
    seen += n;
    if (seen >= rank) return round(bucketMs(bucket));
  }
  return round(bucketMs(entries[entries.length - 1][0]));
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const pct = (n: number, d: number) => (d > 0 ? round((100 * n) / d) : null);

/** The figures of raw sums. */
export function figuresOf(f: RawFigures): Figures {
  return {
    requests: f.requests,
    errors: f.errors,
    errorRatePct: pct(f.errors, f.requests),
    fallbackRatePct: pct(f.fallbacks, f.texts),
    meanConfidence: f.texts > 0 ? round(f.confidenceSum / f.texts, 4) : null,
    p50Ms: quantileMs(f, 0.5),
    p99Ms: quantileMs(f, 0.99),
    agreementPct: pct(f.agreed, f.compared),
    dropped: f.dropped,
  };
}
