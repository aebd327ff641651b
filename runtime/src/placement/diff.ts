import { Bot, Catalog, Encoder } from '../catalog';
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
  /** Bots that stay in their pool with a new definition: the pool reloads them (the old version serves meanwhile). */
  reloads: Reload[];
}

/** A bot that stays in its pool but is loaded again: what changed in its definition (or its encoder's). */
export interface Reload {
  bot: string;
  pool: string;
  changed: string[];
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
  let unchanged = 0;
  const ids = [...new Set([...oldBots.keys(), ...newBots.keys()])].sort();
  for (const bot of ids) {
    const from = before.topology.assignment.get(bot);
    const to = after.topology.assignment.get(bot);
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
  };
}

/** The fields of a bot's definition that differ (`model.head`, `intents`, ...), and `encoder` when its encoder changed. */
function changedFields(a: Bot, b: Bot, oldEncoders: ReadonlyMap<string, Encoder>, newEncoders: ReadonlyMap<string, Encoder>): string[] {
  const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
  const changed: string[] = [];
  for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort() as Array<keyof Bot>) {
    if (key === 'model') {
      for (const m of [...new Set([...Object.keys(a.model), ...Object.keys(b.model)])].sort() as Array<keyof Bot['model']>) {
        if (!same(a.model[m], b.model[m])) changed.push(`model.${m}`);
      }
    } else if (!same(a[key], b[key])) {
      changed.push(key);
    }
  }
  const encoder = b.model.encoder;
  if (encoder !== undefined && encoder === a.model.encoder && !same(oldEncoders.get(encoder), newEncoders.get(encoder))) changed.push(`encoder ${encoder}`);
  return changed;
}

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
