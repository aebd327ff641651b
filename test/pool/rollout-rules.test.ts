/**
 * The rules of model rollouts as plain logic: the figures (sums that add up over replicas, quantiles from
 * fixed buckets), the guards (each at its boundary), and the canary split (sticky, uniform, monotone).
 */
import { GUARD_DEFAULTS } from '@botshard/runtime/catalog/defaults';
import { judge } from '@botshard/runtime/pool/rollout/guards';
import { splitPoint, takesCandidate } from '@botshard/runtime/pool/rollout/split';
import { RawFigures, addFigures, bucketMs, bucketOf, countAgreement, countAnswer, countError, emptyFigures, figuresOf, quantileMs } from '@botshard/runtime/status/figures';

/** Figures of `n` requests of one text each, run in `ms`, with `fallbacks` of them below a 0.5 threshold. */
function figures(n: number, o: { ms?: number; fallbacks?: number; errors?: number; agreed?: number } = {}): RawFigures {
  const f = emptyFigures();
  for (let i = 0; i < n; i++) countAnswer(f, o.ms ?? 1, [{ confidence: i < (o.fallbacks ?? 0) ? 0.2 : 0.9 }], 0.5);
  for (let i = 0; i < (o.errors ?? 0); i++) countError(f);
  if (o.agreed !== undefined) for (let i = 0; i < n; i++) countAgreement(f, [{ intent: 'a' }], [{ intent: i < o.agreed ? 'a' : 'b' }]);
  return f;
}

describe('figures', () => {
  test('buckets grow by 10%: a run time lies within its bucket, and the bound is at most 10% above it', () => {
    for (const ms of [0.01, 0.05, 0.051, 0.3, 1, 7.7, 100, 2500]) {
      const b = bucketOf(ms);
      expect(bucketMs(b)).toBeGreaterThanOrEqual(ms);
      if (b > 0) expect(bucketMs(b - 1)).toBeLessThan(ms);
      if (ms > 0.05) expect(bucketMs(b) / ms).toBeLessThanOrEqual(1.1 + 1e-9);
    }
    expect(bucketOf(1e9)).toBe(159);
    expect([bucketOf(0), bucketOf(0.01), bucketOf(0.05), bucketOf(0.0501), bucketOf(1)]).toEqual([0, 0, 0, 1, 32]);
  });

  test('rates, mean confidence and quantiles of the counted answers', () => {
    const f = emptyFigures();
    for (let i = 0; i < 98; i++) countAnswer(f, 1, [{ confidence: 0.8 }, { confidence: 0.4 }], 0.5);
    countAnswer(f, 50, [{ confidence: 0.8 }], 0.5);
    countAnswer(f, 50, [{ confidence: 0.8 }], 0.5);
    countError(f);
    expect(figuresOf(f)).toEqual({ requests: 101, errors: 1, errorRatePct: 0.99, fallbackRatePct: 49.49, meanConfidence: 0.602, p50Ms: quantileMs(f, 0.5), p99Ms: quantileMs(f, 0.99), agreementPct: null, dropped: 0 });
    expect(quantileMs(f, 0.5)).toBeCloseTo(bucketMs(bucketOf(1)), 2);
    expect(quantileMs(f, 0.99)).toBeCloseTo(bucketMs(bucketOf(50)), 2);
    expect(quantileMs(emptyFigures(), 0.99)).toBeNull();
  });

  test('two replicas\' figures add up to the figures of their requests counted in one place', () => {
    const a = figures(30, { ms: 2, fallbacks: 3, errors: 1, agreed: 20 });
    const b = figures(10, { ms: 9, fallbacks: 5, agreed: 10 });
    const one = emptyFigures();
    for (const [n, ms, fb, ag] of [[30, 2, 3, 20], [10, 9, 5, 10]]) {
      for (let i = 0; i < n; i++) countAnswer(one, ms, [{ confidence: i < fb ? 0.2 : 0.9 }], 0.5);
      for (let i = 0; i < n; i++) countAgreement(one, [{ intent: 'a' }], [{ intent: i < ag ? 'a' : 'b' }]);
    }
    countError(one);
    const sum = addFigures(a, b);
    expect({ ...sum, confidenceSum: 0 }).toEqual({ ...one, confidenceSum: 0 });
    expect(sum.confidenceSum).toBeCloseTo(one.confidenceSum, 9);
    expect(figuresOf(addFigures(a, b)).agreementPct).toBe(75);
  });
});

describe('guards', () => {
  const g = { ...GUARD_DEFAULTS, minRequests: 100 };
  const serving = figures(1000, { fallbacks: 100 }); // 10% fallback, runs of 1 ms

  test('nothing is judged before minRequests candidate requests', () => {
    expect(judge(serving, figures(99, { errors: 0, fallbacks: 99 }), g, 'canary')).toEqual({ verdict: 'judging' });
    expect(judge(serving, figures(100, { fallbacks: 10 }), g, 'canary')).toEqual({ verdict: 'passing' });
  });

  test('maxErrorRate: 2% passes, just over rolls back', () => {
    expect(judge(serving, figures(98, { fallbacks: 10, errors: 2 }), g, 'canary').verdict).toBe('passing');
    const v = judge(serving, figures(97, { fallbacks: 10, errors: 3 }), g, 'canary');
    expect(v).toMatchObject({ verdict: 'breach', breach: { guard: 'maxErrorRate', candidate: 3, limit: 2 } });
  });

  test('maxFallbackRisePp: 5 points over the serving version passes, more rolls back', () => {
    expect(judge(serving, figures(100, { fallbacks: 15 }), g, 'canary').verdict).toBe('passing');
    expect(judge(serving, figures(100, { fallbacks: 16 }), g, 'canary')).toMatchObject({ verdict: 'breach', breach: { guard: 'maxFallbackRisePp', candidate: 6, limit: 5, serving: 10 } });
  });

  test('minAgreementPct, shadow only: 90% passes, less rolls back; a canary is never judged on it', () => {
    expect(judge(serving, figures(100, { fallbacks: 10, agreed: 90 }), g, 'shadow').verdict).toBe('passing');
    expect(judge(serving, figures(100, { fallbacks: 10, agreed: 89 }), g, 'shadow')).toMatchObject({ verdict: 'breach', breach: { guard: 'minAgreementPct', candidate: 89, limit: 90 } });
    expect(judge(serving, figures(100, { fallbacks: 10, agreed: 0 }), g, 'canary').verdict).toBe('passing');
  });

  test('maxP99Ratio: within 1.5x of the serving p99, or within the tolerance above it, passes; slower rolls back', () => {
    expect(judge(serving, figures(100, { fallbacks: 10, ms: 1.4 }), g, 'canary').verdict).toBe('passing');
    // 6 ms against 1 ms: 6x, yet only about 5 ms more (bucket bounds: 6.46 against 1.06 passes a tolerance of 5.5, not of 5).
    expect(judge(serving, figures(100, { fallbacks: 10, ms: 6 }), { ...g, p99ToleranceMs: 5.5 }, 'canary').verdict).toBe('passing');
    expect(judge(serving, figures(100, { fallbacks: 10, ms: 6 }), g, 'canary')).toMatchObject({ verdict: 'breach', breach: { guard: 'maxP99Ratio', limit: 1.5 } });
    expect(judge(serving, figures(100, { fallbacks: 10, ms: 2 }), { ...g, p99ToleranceMs: 0 }, 'canary')).toMatchObject({ verdict: 'breach', breach: { guard: 'maxP99Ratio', limit: 1.5 } });
  });

  test('the comparisons with the serving version wait until it has as many requests', () => {
    expect(judge(figures(50, { fallbacks: 0 }), figures(100, { fallbacks: 90 }), g, 'canary')).toEqual({ verdict: 'judging' });
    expect(judge(figures(100, { fallbacks: 0 }), figures(100, { fallbacks: 90 }), g, 'canary').verdict).toBe('breach');
  });
});

describe('the canary split', () => {
  const keys = Array.from({ length: 5000 }, (_, i) => `conversation-${i}`);

  test('a share of 0.1, 0.3 and 0.5 of 5,000 conversations lands within 2 points of the share', () => {
    for (const share of [0.1, 0.3, 0.5]) {
      const taken = keys.filter((k) => takesCandidate('acme-support-en', k, share)).length / keys.length;
      expect(Math.abs(taken - share)).toBeLessThan(0.02);
    }
  });

  test('sticky per conversation and per bot; raising the share only adds conversations; 0 and 1 are exact', () => {
    const at = (share: number) => new Set(keys.filter((k) => takesCandidate('b', k, share)));
    const [low, high] = [at(0.2), at(0.4)];
    expect(low.size).toBeGreaterThan(800);
    expect([...low].filter((k) => !high.has(k))).toEqual([]);
    expect(at(0).size).toBe(0);
    expect(at(1).size).toBe(keys.length);
    expect(splitPoint('b', 'k')).toBe(splitPoint('b', 'k'));
    expect(splitPoint('b', 'k')).not.toBe(splitPoint('c', 'k'));
    const points = keys.map((k) => splitPoint('b', k));
    expect(Math.min(...points)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...points)).toBeLessThan(1);
  });
});

describe('the rules at their edges (each assertion kills a mutant the cases above leave)', () => {
  const g = { ...GUARD_DEFAULTS, minRequests: 100 };
  const serving = figures(1000, { fallbacks: 100 });

  test('figures: errors and dropped copies add up over replicas; quantiles read the buckets in run-time order', () => {
    const a = figures(10, { errors: 2 });
    const b = figures(10, { errors: 3 });
    a.dropped = 4;
    b.dropped = 5;
    expect([addFigures(a, b).errors, addFigures(a, b).dropped]).toEqual([5, 9]);
    // Buckets inserted slow first: the median is still the fast one, the top the slow one.
    const f = emptyFigures();
    countAnswer(f, 40, [{ confidence: 1 }], 0);
    for (let i = 0; i < 3; i++) countAnswer(f, 1, [{ confidence: 1 }], 0);
    expect(Object.keys(f.runMs)[0]).toBe(String(bucketOf(1)));
    expect([quantileMs(f, 0.5), quantileMs(f, 0.75), quantileMs(f, 0.76), quantileMs(f, 1)]).toEqual([1.06, 1.06, quantileMs(f, 1), quantileMs(f, 1)]);
    expect(quantileMs(f, 1)).toBeGreaterThan(40);
    // A confidence exactly at the threshold is not a fallback; a request of no text has no mean confidence.
    const edge = emptyFigures();
    countAnswer(edge, 0.05, [{ confidence: 0.5 }], 0.5);
    expect([edge.fallbacks, edge.runMs]).toEqual([0, { 0: 1 }]);
    countAnswer(edge, 0.051, [], 0.5);
    expect(edge.runMs).toEqual({ 0: 1, 1: 1 });
    expect(figuresOf(emptyFigures()).meanConfidence).toBeNull();
    expect(figuresOf({ ...emptyFigures(), requests: 1, runMs: { 3: 1 } }).meanConfidence).toBeNull();
    // A shadow answer with fewer rows than the serving one: the missing rows disagree.
    const short = emptyFigures();
    countAgreement(short, [{ intent: 'a' }, { intent: 'b' }], [{ intent: 'a' }]);
    expect([short.compared, short.agreed]).toEqual([2, 1]);
  });

  test('guards: each breach says why, with its figures in the units the status shows', () => {
    expect(judge(serving, figures(97, { fallbacks: 10, errors: 3 }), g, 'canary')).toEqual({
      verdict: 'breach',
      breach: { guard: 'maxErrorRate', candidate: 3, limit: 2, reason: '3% of its requests failed (at most 2%)' },
    });
    expect(judge(serving, figures(100, { fallbacks: 10, agreed: 80 }), g, 'shadow')).toEqual({
      verdict: 'breach',
      breach: { guard: 'minAgreementPct', candidate: 80, limit: 90, reason: "it chose the serving version's intent for 80% of texts (at least 90%)" },
    });
    expect(judge(serving, figures(100, { fallbacks: 30 }), g, 'canary')).toEqual({
      verdict: 'breach',
      breach: { guard: 'maxFallbackRisePp', candidate: 20, limit: 5, serving: 10, reason: 'its fallback rate is 30% against 10% (at most 5 points more)' },
    });
    const slow = judge(serving, figures(100, { fallbacks: 10, ms: 20 }), g, 'canary');
    expect(slow).toEqual({
      verdict: 'breach',
      breach: { guard: 'maxP99Ratio', candidate: 19.11, limit: 1.5, serving: 1.06, reason: 'its p99 run time is 20.26 ms against 1.06 ms (at most 1.5x, or 5 ms more)' },
    });
  });

  test('guards: a shadow with nothing compared yet is not judged on agreement; the serving version needs its requests without errors', () => {
    expect(judge(serving, figures(100, { fallbacks: 10 }), g, 'shadow').verdict).toBe('passing');
    // 120 serving requests of which 30 failed: 90 answered, fewer than the candidate's 100.
    const flaky = figures(90, { fallbacks: 9, errors: 30 });
    expect(judge(flaky, figures(100, { fallbacks: 50 }), g, 'canary')).toEqual({ verdict: 'judging' });
    expect(judge(figures(99, { fallbacks: 10, errors: 1 }), figures(100, { fallbacks: 50 }), g, 'canary').verdict).toBe('judging');
    // A candidate of no text (every request failed within the error budget) waits for texts.
    const noTexts = { ...emptyFigures(), requests: 100, errors: 1 };
    expect(judge(serving, noTexts, { ...g, maxErrorRate: 0.5 }, 'canary')).toEqual({ verdict: 'judging' });
    // A serving version with no run time counted (only errors) cannot be compared on p99.
    const servingNoRuns = { ...figures(200, { fallbacks: 20 }), runMs: {} };
    expect(judge(servingNoRuns, figures(100, { fallbacks: 10, ms: 50 }), g, 'canary').verdict).toBe('passing');
  });

  test('guards: p99 exactly at the ratio, or exactly the tolerance above, passes; a p99 within the ratio passes however many ms above', () => {
    const p99Guard = { ...g, minRequests: 100 };
    const at = (servingMs: number, candidateMs: number, tol: number) => judge(figures(200, { fallbacks: 20, ms: servingMs }), figures(100, { fallbacks: 10, ms: candidateMs }), { ...p99Guard, p99ToleranceMs: tol }, 'canary').verdict;
    // Bucket bounds 0.08 and 0.12 ms: exactly 1.5x (0.04 ms over a tolerance of 0).
    expect([quantileMs(figures(1, { ms: 0.08 }), 0.99), quantileMs(figures(1, { ms: 0.117 }), 0.99)]).toEqual([0.08, 0.12]);
    expect(at(0.08, 0.117, 0)).toBe('passing');
    // Bucket bounds 0.34 and 5.34 ms: exactly 5 ms more (15.7x).
    expect([quantileMs(figures(1, { ms: 0.33 }), 0.99), quantileMs(figures(1, { ms: 5.3 }), 0.99)]).toEqual([0.34, 5.34]);
    expect(at(0.33, 5.3, 5)).toBe('passing');
    expect(at(0.33, 5.3, 4.99)).toBe('breach');
    // 20 ms against 25 ms: 5 ms or more above, yet within 1.5x.
    expect(at(20, 26, 0)).toBe('passing');
  });

  test('guards: the serving version must have as many answered requests as the guard, not as the candidate', () => {
    // The candidate has 150 requests, the serving version 120 answered: more than minRequests (100), fewer than 150.
    expect(judge(figures(120, { fallbacks: 0 }), figures(150, { fallbacks: 60 }), g, 'canary').verdict).toBe('breach');
  });

  test('the split at its edges: shares of 0, 1 and just under; a point is below the share that takes it', () => {
    const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`);
    for (const k of keys.slice(0, 50)) {
      const p = splitPoint('b', k);
      expect(takesCandidate('b', k, p)).toBe(false);
      expect(takesCandidate('b', k, Math.min(1, p + 1e-9))).toBe(true);
    }
    expect(keys.filter((k) => takesCandidate('b', k, 1)).length).toBe(2000);
    expect(keys.filter((k) => takesCandidate('b', k, 0.999999)).length).toBeGreaterThan(1990);
    expect(keys.filter((k) => takesCandidate('b', k, 0)).length).toBe(0);
    expect(keys.filter((k) => takesCandidate('b', k, 1e-12)).length).toBe(0);
    // The point uses the hash's high bits and low bits alike: its low 21 bits vary.
    expect(new Set(keys.map((k) => Math.round(splitPoint('b', k) * 2 ** 53) % 2 ** 21)).size).toBeGreaterThan(1900);
  });
});
