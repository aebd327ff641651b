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
