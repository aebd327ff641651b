import { loadAnyCatalog } from '../catalog/config';
import { Rollout, RolloutVersion, TopologyDiff, diffTopologies, plan } from '../placement';
import { table } from './output';

/** `botshard diff OLD NEW`: which bots move from which pool to which, and why. */
export function diffCommand(opts: { before: string; after: string; json: boolean }): string {
  const load = (location: string) => {
    const catalog = loadAnyCatalog(location);
    return { catalog, topology: plan(catalog) };
  };
  const before = load(opts.before);
  const after = load(opts.after);
  const diff = diffTopologies(before, after);
  if (opts.json) {
    return JSON.stringify({ before: before.catalog.generation, after: after.catalog.generation, ...diff }, null, 2);
  }
  const total = new Set([...before.topology.assignment.keys(), ...after.topology.assignment.keys()]).size;
  return renderDiff({ before: before.catalog.generation, after: after.catalog.generation, total }, diff);
}

/** The human view of a diff between generations `before` and `after` of `total` bots in all. */
export function renderDiff(o: { before: string; after: string; total: number }, diff: TopologyDiff): string {
  const reloading = diff.reloads.length > 0 ? ` (${diff.reloads.length} of them reload with a new definition)` : '';
  const rolling = diff.rollouts.length > 0 ? `, ${diff.rollouts.length} ${diff.rollouts.length === 1 ? 'rollout' : 'rollouts'}` : '';
  const lines = [`${o.before} -> ${o.after}: ${diff.moves.length} of ${o.total} bots change pool, ${diff.unchanged} stay${reloading}${rolling}`];
  const counts = Object.entries(diff.counts).map(([reason, n]) => `${reason}: ${n}`);
  if (counts.length) lines.push(`  ${counts.join(', ')}`);
  if (diff.poolsAdded.length) lines.push(`pools added: ${diff.poolsAdded.join(', ')}`);
  if (diff.poolsRemoved.length) lines.push(`pools removed: ${diff.poolsRemoved.join(', ')}`);
  if (diff.moves.length) {
    lines.push('', table(['BOT', 'FROM', 'TO', 'REASON'], diff.moves.map((m) => [m.bot, m.from ?? '-', m.to ?? '-', m.reason])));
  }
  if (diff.reloads.length) {
    lines.push('', 'reloaded in the same pool (the old version serves until the new one is ready):', table(['BOT', 'POOL', 'CHANGED'], diff.reloads.map((r) => [r.bot, r.pool, r.changed.join(', ')])));
  }
  if (diff.rollouts.length) {
    lines.push('', 'rollouts (candidates started, changed, stopped or promoted; no bot moves for them):', table(['BOT', 'POOL', 'ROLLOUT'], diff.rollouts.map((r) => [r.bot, r.pool, describeRollout(r)])));
  }
  return lines.join('\n');
}

/**
 * One rollout in words: `candidate 2026-12-06 started, canary 10%`, `candidate 2026-12-06 changed (share), canary 50%
 * (was canary 10%)`, `candidate 2026-12-06 stopped (was canary 10%)`, `promoted 2026-12-06 (was candidate, canary 10%)`.
 */
export function describeRollout(r: Rollout): string {
  const { candidate: to, from } = r;
  switch (r.change) {
    case 'started':
      return `candidate ${to!.version} started, ${modeShare(to!)}`;
    case 'changed': {
      const was = to!.version === from!.version ? modeShare(from!) : `${from!.version}, ${modeShare(from!)}`;
      return `candidate ${to!.version} changed (${r.fields!.join(', ')}), ${modeShare(to!)} (was ${was})`;
    }
    case 'stopped':
      return `candidate ${from!.version} stopped (was ${modeShare(from!)})`;
    case 'promoted':
      return `promoted ${from!.version} (was candidate, ${modeShare(from!)})${to ? `; candidate ${to.version} started, ${modeShare(to)}` : ''}`;
  }
}

/** `canary 10%`, `shadow 100%`, `canary 0.5%`. */
function modeShare(v: RolloutVersion): string {
  return `${v.mode} ${Number((v.share * 100).toFixed(2))}%`;
}
