import { loadAnyCatalog } from '../catalog/config';
import { diffTopologies, plan } from '../placement';
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
  const reloading = diff.reloads.length > 0 ? ` (${diff.reloads.length} of them reload with a new definition)` : '';
  const lines = [`${before.catalog.generation} -> ${after.catalog.generation}: ${diff.moves.length} of ${total} bots change pool, ${diff.unchanged} stay${reloading}`];
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
  return lines.join('\n');
}
