import { Bot, Candidate, Catalog, DEFAULT_VERSION, Encoder, RolloutMode } from '../catalog';
import { Topology } from './plan';

/** Why a bot's pool changed between two catalogs. */
export type MoveReason = 'bot added' | 'bot removed' | 'pin changed' | 'group changed' | 'pool added' | 'pool removed' | 'rebalanced';

export interface Move {
  bot: string;
  from?: string;
  to?: string;
  reason: MoveReason;
}

export interface TopologyDiff {
  moves: Move[];
  /** Moves counted by reason. */
  counts: Partial<Record<MoveReason, number>>;
  poolsAdded: string[];
  poolsRemoved: string[];
  /** Bots present in both catalogs that stayed in their pool. */
  unchanged: number;
  /**
   * Bots that stay in their pool with a new definition: the pool reloads them (the old version serves meanwhile).
   * A change of the candidate alone is no reload (it is in `rollouts`); a promotion is one (the serving model changed).
   */
  reloads: Reload[];
  /** Bots whose candidate started, changed, stopped or was promoted (see Rollout), by bot id. */
  rollouts: Rollout[];
}

/** A bot that stays in its pool but is loaded again: what changed in its definition (or its encoder's). */
export interface Reload {
  bot: string;
  pool: string;
  changed: string[];
}

/** How a bot's candidate changed between two catalogs. */
export type RolloutChange = 'started' | 'changed' | 'stopped' | 'promoted';

/** What a rollout line shows of a candidate. */
export interface RolloutVersion {
  version: string;
  mode: RolloutMode;
  share: number;
}

/**
 * A bot whose candidate (the new version tried beside the serving one) changed between two catalogs. A candidate
 * never moves a bot (placement reads the serving version only), and the serving version does not reload for it.
 * Only bots in both catalogs have one, whether they moved or not; a bot added or removed with a candidate is a
 * move (`bot added`, `bot removed`), not a rollout.
 * - `started`: the bot had no candidate and has one (`candidate`).
 * - `changed`: its candidate differs (`from` the old, `candidate` the new, `fields` what differs: `version`,
 *   `share`, `guards`, ..., or `encoder ID` when the candidate's encoder itself changed).
 * - `stopped`: the candidate was dropped (`from`) without being promoted: the serving version stays.
 * - `promoted`: the new serving model is the old candidate (same head, sha256, encoder and version): `from` is that
 *   candidate, `candidate` a new one if the catalog already starts it. The bot reloads too (it is in `reloads`).
 */
export interface Rollout {
  bot: string;
  /** The bot's pool in the new catalog. */
  pool: string;
  change: RolloutChange;
  /** The new catalog's candidate (`started`, `changed`, and `promoted` when a new one follows). */
  candidate?: RolloutVersion;
  /** The old catalog's candidate (`changed`, `stopped`, `promoted`). */
  from?: RolloutVersion;
  /** `changed` only: the candidate's fields that differ. */
  fields?: string[];
}

/** Which bots move from which pool to which between two planned catalogs, and why. */
export function diffTopologies(before: { catalog: Catalog; topology: Topology }, after: { catalog: Catalog; topology: Topology }): TopologyDiff {
  const oldPools = new Set(before.topology.pools.map((p) => p.name));
  const newPools = new Set(after.topology.pools.map((p) => p.name));
  const oldBots = new Map(before.catalog.bots.map((b) => [b.id, b]));
  const newBots = new Map(after.catalog.bots.map((b) => [b.id, b]));
  const oldGroup = new Map(before.topology.pools.map((p) => [p.name, p.group]));
  const newGroup = new Map(after.topology.pools.map((p) => [p.name, p.group]));
  const oldEncoders = new Map(before.catalog.encoders.map((e) => [e.id, e]));
  const newEncoders = new Map(after.catalog.encoders.map((e) => [e.id, e]));
  const moves: Move[] = [];
  const reloads: Reload[] = [];
  const rollouts: Rollout[] = [];
  let unchanged = 0;
  const ids = [...new Set([...oldBots.keys(), ...newBots.keys()])].sort();
  for (const bot of ids) {
    const from = before.topology.assignment.get(bot);
    const to = after.topology.assignment.get(bot);
    const rollout = from !== undefined && to !== undefined ? rolloutOf(oldBots.get(bot)!, newBots.get(bot)!, oldEncoders, newEncoders) : undefined;
    if (rollout) rollouts.push({ bot, pool: to!, ...rollout });
    if (from === to) {
      unchanged += 1;
      const changed = changedFields(oldBots.get(bot)!, newBots.get(bot)!, oldEncoders, newEncoders);
      if (changed.length > 0) reloads.push({ bot, pool: to!, changed });
      continue;
    }
    let reason: MoveReason;
    if (from === undefined) reason = 'bot added';
    else if (to === undefined) reason = 'bot removed';
    else if (oldBots.get(bot)?.pin !== newBots.get(bot)?.pin) reason = 'pin changed';
    else if (oldGroup.get(from) !== newGroup.get(to)) reason = 'group changed';
    else if (!oldPools.has(to)) reason = 'pool added';
    else if (!newPools.has(from)) reason = 'pool removed';
    else reason = 'rebalanced';
    moves.push({ bot, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), reason });
  }
  const counts: TopologyDiff['counts'] = {};
  for (const m of moves) counts[m.reason] = (counts[m.reason] ?? 0) + 1;
  return {
    moves,
    counts,
    poolsAdded: [...newPools].filter((p) => !oldPools.has(p)).sort(),
    poolsRemoved: [...oldPools].filter((p) => !newPools.has(p)).sort(),
    unchanged,
    reloads,
    rollouts,
  };
}

const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);

/**
 * The fields of a bot's definition that differ (`model.head`, `intents`, ...), and `encoder` when its encoder changed.
 * Never `model.candidate`: a candidate is a rollout, the serving version does not reload for it. `model.version`
 * only beside another change: a new label alone is no reload (the pool relabels the loaded model).
 */
function changedFields(a: Bot, b: Bot, oldEncoders: ReadonlyMap<string, Encoder>, newEncoders: ReadonlyMap<string, Encoder>): string[] {
  const changed: string[] = [];
  for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort() as Array<keyof Bot>) {
    if (key === 'model') {
      for (const m of [...new Set([...Object.keys(a.model), ...Object.keys(b.model)])].sort() as Array<keyof Bot['model']>) {
        if (m !== 'candidate' && !same(a.model[m], b.model[m])) changed.push(`model.${m}`);
      }
    } else if (!same(a[key], b[key])) {
      changed.push(key);
    }
  }
  const encoder = b.model.encoder;
  if (encoder !== undefined && encoder === a.model.encoder && !same(oldEncoders.get(encoder), newEncoders.get(encoder))) changed.push(`encoder ${encoder}`);
  return changed.length === 1 && changed[0] === 'model.version' ? [] : changed;
}

/** How a bot's candidate changed from `a` to `b` (Rollout without bot and pool), or undefined when it did not. */
function rolloutOf(a: Bot, b: Bot, oldEncoders: ReadonlyMap<string, Encoder>, newEncoders: ReadonlyMap<string, Encoder>): Omit<Rollout, 'bot' | 'pool'> | undefined {
  const old = a.model.candidate;
  const next = b.model.candidate;
  const candidate = next ? { candidate: shown(next) } : {};
  if (!old) return next ? { change: 'started', ...candidate } : undefined;
  const m = b.model;
  const promoted = m.head === old.head && m.sha256 === old.sha256 && m.encoder === old.encoder && (m.version ?? DEFAULT_VERSION) === old.version;
  if (promoted && !same(old, next)) return { change: 'promoted', ...candidate, from: shown(old) };
  if (!next) return { change: 'stopped', from: shown(old) };
  const fields = candidateFields(old, next, oldEncoders, newEncoders);
  return fields.length > 0 ? { change: 'changed', ...candidate, from: shown(old), fields } : undefined;
}

/** The fields of a candidate that differ (`version`, `share`, ...), and `encoder ID` when its encoder itself changed. */
function candidateFields(a: Candidate, b: Candidate, oldEncoders: ReadonlyMap<string, Encoder>, newEncoders: ReadonlyMap<string, Encoder>): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort() as Array<keyof Candidate>;
  const fields: string[] = keys.filter((k) => !same(a[k], b[k]));
  const encoder = b.encoder;
  if (encoder !== undefined && encoder === a.encoder && !same(oldEncoders.get(encoder), newEncoders.get(encoder))) fields.push(`encoder ${encoder}`);
  return fields;
}

const shown = (c: Candidate): RolloutVersion => ({ version: c.version, mode: c.mode, share: c.share });

/** How many of the bots placed in both topologies changed pool, and how many of those moved between pools that exist in both. */
export function countMoves(before: Topology, after: Topology): { moved: number; betweenOld: number; total: number } {
  const oldPools = new Set(before.pools.map((p) => p.name));
  const newPools = new Set(after.pools.map((p) => p.name));
  let moved = 0;
  let betweenOld = 0;
  for (const [bot, from] of before.assignment) {
    const to = after.assignment.get(bot);
    if (to === undefined || to === from) continue;
    moved += 1;
    if (oldPools.has(to) && newPools.has(from)) betweenOld += 1;
  }
  return { moved, betweenOld, total: before.assignment.size };
}
