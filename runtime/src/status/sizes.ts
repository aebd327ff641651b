/**
 * Measured against declared, over a whole platform: every model the pools measured (each bot's head, each
 * encoder), the ones off their declared size by more than 2x (`botshard status`), and the `memory` to
 * declare instead (`botshard plan --sizes`).
 */
import type { PlatformStatus, PoolStatus } from './index';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** A suggested size is the measured one times this, rounded up to a whole MiB (see `suggestedBytes`). */
export const MARGIN = 1.2;

/** Off its declared size by more than this factor, either way: listed by `botshard status`. */
export const OFF_FACTOR = 2;

/** A model as the pools measured it: the largest measurement over the pools and replicas that hold it. */
export interface MeasuredModel {
  kind: 'bot' | 'encoder';
  /** The bot's or the encoder's id. */
  id: string;
  /** The pool of that measurement. */
  pool: string;
  declared: number;
  measured: number;
}

/** The pool replicas' own statuses when the router has them (each replica measures its own loads), else one per pool. */
function poolsOf(s: PlatformStatus): PoolStatus[] {
  return (s.replicas ?? s.pools).filter((p): p is PoolStatus => !('unreachable' in p));
}

/**
 * Every model measured in a platform's status, bots first, each sorted by id. A model measured more than
 * once (several replicas, or a bot moving between pools) counts its largest measurement among the pools on
 * the router's catalog generation (any pool's when none is).
 */
export function measuredModels(s: PlatformStatus): MeasuredModel[] {
  const all = poolsOf(s);
  const current = all.filter((p) => p.generation === s.router.generation);
  const found = new Map<string, MeasuredModel>();
  for (const p of current.length > 0 ? current : all) {
    const seen = [...(p.sizes?.bots ?? []).map((b) => ({ kind: 'bot' as const, id: b.bot, ...b })), ...(p.sizes?.encoders ?? []).map((e) => ({ kind: 'encoder' as const, id: e.encoder, ...e }))];
    for (const m of seen) {
      const key = `${m.kind}/${m.id}`;
      if ((found.get(key)?.measured ?? -1) < m.measured) found.set(key, { kind: m.kind, id: m.id, pool: p.pool, declared: m.declared, measured: m.measured });
    }
  }
  return [...found.values()].sort((a, b) => (a.kind !== b.kind ? (a.kind === 'bot' ? -1 : 1) : a.id < b.id ? -1 : 1));
}

/** How far a model is off its declared size: measured / declared, or its inverse when smaller (always >= 1). */
export function offBy(m: { declared: number; measured: number }): number {
  if (m.declared <= 0) return Infinity;
  const ratio = m.measured / m.declared;
  return ratio >= 1 ? ratio : 1 / ratio;
}

/**
 * The `memory` to declare for a measured size: measured x MARGIN, rounded up to a whole MiB (at least
 * 1 MiB). The margin covers what one load's window cannot see: other replicas measuring a little more
 * (allocator and page rounding, another thread allocating during the window), and the memory a model's
 * runs take beside its weights.
 */
export function suggestedBytes(measured: number): number {
  return Math.max(1, Math.ceil((measured * MARGIN) / MiB)) * MiB;
}

/** Whole MiB as a Kubernetes quantity: `3Mi`, or `2Gi` when it is whole GiB. */
export function quantity(bytes: number): string {
  return bytes % GiB === 0 ? `${bytes / GiB}Gi` : `${Math.ceil(bytes / MiB)}Mi`;
}
