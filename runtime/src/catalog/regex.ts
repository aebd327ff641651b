import RE2 from 're2';

/** Why a pattern is not accepted, naming the RE2 rule it breaks; undefined when it compiles. */
export function checkRe2(pattern: string, flags: string): string | undefined {
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
