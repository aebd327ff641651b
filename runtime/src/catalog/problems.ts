/** One thing wrong with a catalog: where, what, and how to fix it. */
export interface Problem {
  /** Path in the catalog, e.g. `bots[12].id`. */
  readonly path: string;
  /** What is wrong, naming the value received. */
  readonly message: string;
  /** How to fix it. */
  readonly hint: string;
}

/** Formats problems one per line: `path: message (fix: hint)`. */
export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `  - ${p.path}: ${p.message}${p.hint ? ` (fix: ${p.hint})` : ''}`).join('\n');
}

/** A catalog that failed validation. `problems` lists every problem found, not only the first. */
export class CatalogError extends Error {
  constructor(
    readonly problems: readonly Problem[],
    readonly source?: string,
  ) {
    super(
      `${source ? `${source}: ` : ''}the catalog has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${formatProblems(problems)}`,
    );
    this.name = 'CatalogError';
  }
}

/** Renders a received value for a message: short, JSON-like, never throws. */
export function show(value: unknown): string {
  try {
    if (value === undefined) return 'undefined';
    if (typeof value === 'bigint') return `${value}n`;
    if (typeof value === 'function' || typeof value === 'symbol') return String(typeof value);
    const s = JSON.stringify(value);
    if (s === undefined) return String(value);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** The candidate closest to `word` by edit distance, when close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Math.abs(a.length - b.length) + 64;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
