/** The router's circuit per pool and rate limit per tenant, on an injected clock. */
import { Circuit } from '@botshard/runtime/routing/circuit';
import { RateLimiter } from '@botshard/runtime/routing/tenants';
import { clock } from '../support/clock';

describe('Circuit', () => {
  test('opens after `threshold` consecutive failures, not before; a success in between resets the count', () => {
    const t = clock();
    const c = new Circuit(3, 2000, t.now);
    c.failure();
    c.failure();
    c.success();
    c.failure();
    c.failure();
    expect([c.open, c.allow()]).toEqual([false, true]);
    c.failure();
    expect([c.open, c.allow()]).toEqual([true, false]);
  });

  test('after the cooldown lets exactly one probe through; its success closes the circuit', () => {
    const t = clock();
    const c = new Circuit(1, 2000, t.now);
    c.failure();
    t.t += 1999;
    expect(c.allow()).toBe(false);
    expect(c.retryAfterSeconds()).toBe(1);
    t.t += 1;
    expect(c.allow()).toBe(true); // the probe
    expect(c.probing).toBe(true);
    expect(c.allow()).toBe(false); // one probe at a time
    c.success();
    expect([c.open, c.probing, c.allow(), c.allow()]).toEqual([false, false, true, true]);
  });

  test("a probe's failure (a timeout too) opens the circuit for another cooldown, then probes again", () => {
    const t = clock();
    const c = new Circuit(2, 2000, t.now);
    c.failure();
    c.failure();
    t.t += 2000;
    expect(c.allow()).toBe(true);
    c.failure();
    expect([c.open, c.probing, c.allow()]).toEqual([true, false, false]);
    expect(c.retryAfterSeconds()).toBe(2);
    t.t += 2000;
    expect(c.allow()).toBe(true);
    c.success();
    expect(c.open).toBe(false);
  });

  test('a probe that never reports back stops holding the circuit half-open after the probe timeout', () => {
    const t = clock();
    const c = new Circuit(1, 2000, t.now, 5000);
    c.failure();
    t.t += 2000;
    expect(c.allow()).toBe(true); // a probe that is lost
    t.t += 4999;
    expect(c.allow()).toBe(false);
    t.t += 1;
    expect(c.allow()).toBe(true); // another probe: the pool is not refused forever
    c.success();
    expect(c.open).toBe(false);
  });
});

describe('RateLimiter', () => {
  test('allows a burst, then refuses with the seconds to wait, then refills at the rate', () => {
    const t = clock();
    const r = new RateLimiter(2, 4, t.now);
    expect([r.take('a'), r.take('a'), r.take('a'), r.take('a')]).toEqual([0, 0, 0, 0]);
    expect(r.take('a')).toBe(1); // Retry-After: one token takes 0.5 s, rounded up to 1 s
    t.t += 500;
    expect([r.take('a'), r.take('a')]).toEqual([0, 1]);
    t.t += 10_000; // refills to the burst, never beyond
    expect([r.take('a'), r.take('a'), r.take('a'), r.take('a'), r.take('a')]).toEqual([0, 0, 0, 0, 1]);
  });

  test('keeps one bucket per tenant', () => {
    const t = clock();
    const r = new RateLimiter(1, 1, t.now);
    expect([r.take('a'), r.take('a'), r.take('b')]).toEqual([0, 1, 0]);
  });

  test('a slow rate asks for a longer wait', () => {
    const t = clock();
    const r = new RateLimiter(0.25, 1, t.now);
    expect([r.take('a'), r.take('a')]).toEqual([0, 4]);
  });
});
