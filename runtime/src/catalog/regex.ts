import RE2 from 're2';

/**
 * What `checkRe2` found for each (flags, pattern) seen: bots share their rules (bots built from one
 * template carry the same patterns), and compiling one is the cost of the check. Bounded, so that a
 * catalog of distinct patterns does not grow it without end.
 */
const checked = new Map<string, Map<string, string | undefined>>();
const CHECKED_MAX = 10_000;
let checkedCount = 0;

/** Why a pattern is not accepted, naming the RE2 rule it breaks; undefined when it compiles. */
export function checkRe2(pattern: string, flags: string): string | undefined {
  let byPattern = checked.get(flags);
  if (byPattern?.has(pattern)) return byPattern.get(pattern);
  const why = compileProblem(pattern, flags);
  if (checkedCount < CHECKED_MAX) {
    if (!byPattern) checked.set(flags, (byPattern = new Map()));
    byPattern.set(pattern, why);
    checkedCount++;
  }
  return why;
}

function compileProblem(pattern: string, flags: string): string | undefined {
  if (/\(\?<?[=!]/.test(pattern)) {
    return 'uses lookaround ((?=, (?!, (?<=, (?<!), which RE2 does not support: RE2 matches in linear time and never looks ahead or behind';
  }
  if (/\\[1-9]|\\k</.test(pattern)) {
    return 'uses a backreference (\\1, \\k<name>), which RE2 does not support: matching a backreference needs backtracking';
  }
  try {
    new RE2(pattern, flags);
    return undefined;
  } catch (e) {
    return `is not valid RE2 syntax: ${(e as Error).message}`;
  }
}

/** Compiles a pattern already accepted by `checkRe2`. */
export function compileRe2(pattern: string, flags: string): RE2 {
  return new RE2(pattern, flags);
}
