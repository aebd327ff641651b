/**
 * The router's circuit per pool (runtime/src/routing/circuit.ts) at its edges, on an injected clock: the
 * default probe timeout, a probe abandoned for the caller's reasons, and Retry-After of a closed circuit.
 * (test/routing/circuit.test.ts has the main cycle: open, probe, close.)
 */
import { Circuit } from '@botshard/runtime/routing/circuit';
import { clock } from '../support/clock';

describe('Circuit: edges', () => {
  test('by default a lost probe holds the circuit half-open for 10 s (or the cooldown, when longer)', () => {
    const t = clock();
    const c = new Circuit(1, 2000, t.now);
    c.failure();
    t.t += 2000;
    expect(c.allow()).toBe(true); // the probe, never reported back
    t.t += 9999;
    expect(c.allow()).toBe(false);
    t.t += 1;
    expect(c.allow()).toBe(true);

    const slow = clock();
    const long = new Circuit(1, 20_000, slow.now);
    long.failure();
    slow.t += 20_000;
    expect(long.allow()).toBe(true);
    slow.t += 19_999;
    expect(long.allow()).toBe(false);
    slow.t += 1;
    expect(long.allow()).toBe(true);
  });

  test('the defaults: 5 failures open it for 2 s', () => {
    const t = clock();
    const c = new Circuit(undefined, undefined, t.now);
    for (let i = 0; i < 4; i++) c.failure();
    expect([c.open, c.allow()]).toEqual([false, true]);
    c.failure();
    expect([c.open, c.allow(), c.retryAfterSeconds()]).toEqual([true, false, 2]);
    t.t += 2000;
    expect(c.allow()).toBe(true);
  });

  test('a probe abandoned (its caller gave up) lets the next request probe at once, and counts nothing', () => {
    const t = clock();
    const c = new Circuit(1, 2000, t.now);
    c.failure();
    t.t += 2000;
    expect(c.allow()).toBe(true);
    expect(c.probing).toBe(true);
    c.abandon();
    expect([c.probing, c.open]).toEqual([false, true]);
    expect(c.allow()).toBe(true); // another probe, without waiting for the probe timeout
    c.success();
    expect(c.open).toBe(false);
  });

  test('Retry-After: the seconds left of the cooldown, rounded up; 1 s at least, and for a circuit that is not open', () => {
    const t = clock();
    const c = new Circuit(3, 5000, t.now);
    c.failure();
    c.failure();
    // Failures below the threshold open nothing: the pool may be tried now.
    expect([c.open, c.retryAfterSeconds()]).toEqual([false, 1]);
    c.failure();
    expect(c.retryAfterSeconds()).toBe(5);
    t.t += 1;
    expect(c.retryAfterSeconds()).toBe(5);
    t.t += 3999;
    expect(c.retryAfterSeconds()).toBe(1);
    t.t += 1000;
    expect(c.retryAfterSeconds()).toBe(1);
  });

  test('every failure past the threshold starts the cooldown again', () => {
    const t = clock();
    const c = new Circuit(1, 2000, t.now);
    c.failure();
    t.t += 1500;
    c.failure();
    t.t += 1000;
    expect(c.allow()).toBe(false);
    t.t += 1000;
    expect(c.allow()).toBe(true);
  });
});
