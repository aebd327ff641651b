/** A clock the test moves by hand: `now` reads `t` (milliseconds), injected where the code takes a clock. */
export function clock(start = 1_000_000): { t: number; now: () => number } {
  const c = { t: start, now: () => c.t };
  return c;
}
