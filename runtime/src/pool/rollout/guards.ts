/**
 * Judging a candidate against the serving version by its guards. Pure: the pool calls it after each of
 * the candidate's requests and rolls the candidate back on a breach.
 */
import type { Guards, RolloutMode } from '../../catalog';
import { RawFigures, quantileMs } from '../../status/figures';

/** A guard the candidate broke: which, its figure, and the limit it broke (the serving version's figure where one is compared). */
export interface Breach {
  guard: keyof Guards;
  /** The candidate's figure (percent for rates, points for the fallback rise, a ratio for p99). */
  candidate: number;
  /** The guard's limit in the same unit. */
  limit: number;
  /** The serving version's figure it was compared with, where there is one. */
  serving?: number;
  /** A sentence for the status and the log. */
  reason: string;
}

/** `judging`: fewer than `minRequests` candidate requests, or the serving version has too few to compare with. */
export type Verdict = { verdict: 'judging' } | { verdict: 'passing' } | { verdict: 'breach'; breach: Breach };

const r2 = (x: number) => Math.round(x * 100) / 100;

/** The candidate's verdict once it has `minRequests` requests (every guard is read each time). */
export function judge(serving: RawFigures, candidate: RawFigures, guards: Guards, mode: RolloutMode): Verdict {
  if (candidate.requests < guards.minRequests) return { verdict: 'judging' };
  const errorRate = candidate.errors / candidate.requests;
  if (errorRate > guards.maxErrorRate) {
    return breach('maxErrorRate', 100 * errorRate, 100 * guards.maxErrorRate, `${r2(100 * errorRate)}% of its requests failed (at most ${r2(100 * guards.maxErrorRate)}%)`);
  }
  if (mode === 'shadow' && candidate.compared > 0) {
    const agreement = (100 * candidate.agreed) / candidate.compared;
    if (agreement < guards.minAgreementPct) {
      return breach('minAgreementPct', agreement, guards.minAgreementPct, `it chose the serving version's intent for ${r2(agreement)}% of texts (at least ${guards.minAgreementPct}%)`);
    }
  }
  // The comparisons with the serving version wait until it has as many requests to compare with.
  if (serving.requests - serving.errors < Math.min(guards.minRequests, candidate.requests) || serving.texts === 0 || candidate.texts === 0) return { verdict: 'judging' };
  const servingFallback = (100 * serving.fallbacks) / serving.texts;
  const candidateFallback = (100 * candidate.fallbacks) / candidate.texts;
  const rise = candidateFallback - servingFallback;
  if (rise > guards.maxFallbackRisePp) {
    return breach('maxFallbackRisePp', rise, guards.maxFallbackRisePp, `its fallback rate is ${r2(candidateFallback)}% against ${r2(servingFallback)}% (at most ${guards.maxFallbackRisePp} points more)`, servingFallback);
  }
  const p99 = { serving: quantileMs(serving, 0.99), candidate: quantileMs(candidate, 0.99) };
  if (p99.serving !== null && p99.candidate !== null && p99.serving > 0) {
    const ratio = p99.candidate / p99.serving;
    if (ratio > guards.maxP99Ratio && p99.candidate - p99.serving > guards.p99ToleranceMs) {
      return breach('maxP99Ratio', ratio, guards.maxP99Ratio, `its p99 run time is ${p99.candidate} ms against ${p99.serving} ms (at most ${guards.maxP99Ratio}x, or ${guards.p99ToleranceMs} ms more)`, p99.serving);
    }
  }
  return { verdict: 'passing' };
}

function breach(guard: keyof Guards, candidate: number, limit: number, reason: string, serving?: number): Verdict {
  return { verdict: 'breach', breach: { guard, candidate: r2(candidate), limit, ...(serving !== undefined ? { serving: r2(serving) } : {}), reason } };
}
