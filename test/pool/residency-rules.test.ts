/**
 * The resident set's bookkeeping case by case (runtime/src/pool/residency.ts): declared bytes with shared
 * encoders, the recency order, request counts and their halving, and which bots `victims()` names, at the
 * exact boundaries. Deterministic and fast, next to the randomised test/pool/residency.test.ts.
 */
import { Residency, ResidentCost } from '@botshard/runtime/pool/residency';

const head = (bytes: number): ResidentCost => ({ head: bytes, encoderBytes: 0 });
const withEncoder = (bytes: number, encoder: string, encoderBytes: number): ResidentCost => ({ head: bytes, encoder, encoderBytes });
const all = () => true;

describe('Residency: declared bytes', () => {
  test('starts at the overhead, with nothing resident', () => {
    const r = new Residency(1000, 100);
    expect([r.used, r.size, r.modelBytes, r.order(), r.residentEncoders()]).toEqual([100, 0, 0, [], []]);
    expect(r.has('a')).toBe(false);
  });

  test('counts each head, and each encoder once while any resident bot uses it', () => {
    const r = new Residency(1000, 100);
    r.add('a', withEncoder(10, 'e', 50));
    expect([r.used, r.modelBytes]).toEqual([160, 60]);
    r.add('b', withEncoder(20, 'e', 50));
    expect(r.used).toBe(180);
    r.add('c', head(5));
    expect([r.used, r.size, r.residentEncoders()]).toEqual([185, 3, ['e']]);
    // Adding a resident bot again changes nothing.
    r.add('a', withEncoder(10, 'e', 50));
    expect([r.used, r.size]).toEqual([185, 3]);
    r.remove('a');
    expect([r.used, r.residentEncoders()]).toEqual([175, ['e']]);
    r.remove('b');
    expect([r.used, r.residentEncoders()]).toEqual([105, []]);
    r.remove('b');
    r.remove('nobody');
    expect([r.used, r.size, r.has('c'), r.has('b')]).toEqual([105, 1, true, false]);
    r.remove('c');
    expect([r.used, r.modelBytes]).toEqual([100, 0]);
  });

  test('costOf: the head, plus the encoder unless it is resident; no encoder, no encoder bytes', () => {
    const r = new Residency(1000, 0);
    expect(r.costOf(withEncoder(10, 'e', 50))).toBe(60);
    expect(r.costOf({ head: 10, encoderBytes: 50 })).toBe(10);
    r.add('a', withEncoder(1, 'e', 50));
    expect(r.costOf(withEncoder(10, 'e', 50))).toBe(10);
    expect(r.costOf(withEncoder(10, 'f', 7))).toBe(17);
  });

  test('an encoder re-added after its last user left is counted again', () => {
    const r = new Residency(1000, 0);
    r.add('a', withEncoder(1, 'e', 50));
    r.remove('a');
    r.add('b', withEncoder(2, 'e', 50));
    expect([r.used, r.residentEncoders()]).toEqual([52, ['e']]);
  });
});

describe('Residency: order and counts', () => {
  test('order is least recently used first; touching a resident bot makes it the most recent', () => {
    const r = new Residency(1000, 0);
    for (const id of ['a', 'b', 'c']) r.add(id, head(1));
    r.touch('a');
    expect(r.order()).toEqual(['b', 'c', 'a']);
    r.touch('x'); // not resident: counted, not added
    expect([r.order(), r.heatOf('x'), r.has('x')]).toEqual([['b', 'c', 'a'], 1, false]);
  });

  test('every request counts for its bot; every count halves after agingRequests requests, and one below 1 is forgotten', () => {
    const r = new Residency(1000, 0, 4);
    expect(r.agingRequests).toBe(4);
    r.touch('a');
    r.touch('a');
    r.touch('b');
    expect([r.heatOf('a'), r.heatOf('b'), r.heatOf('c')]).toEqual([2, 1, 0]);
    r.touch('a'); // the 4th request: every count halves
    expect([r.heatOf('a'), r.heatOf('b')]).toEqual([1.5, 0.5]);
    for (let i = 0; i < 3; i++) r.touch('c');
    expect([r.heatOf('a'), r.heatOf('b'), r.heatOf('c')]).toEqual([1.5, 0.5, 3]);
    r.touch('c'); // the 8th: 0.5 is forgotten, 1.5 and 4 halve
    expect([r.heatOf('a'), r.heatOf('b'), r.heatOf('c')]).toEqual([0.75, 0, 2]);
  });

  test('a count of exactly 1 halves to 0.5 (only counts below 1 are forgotten)', () => {
    const r = new Residency(1000, 0, 2);
    r.touch('a');
    r.touch('b');
    expect([r.heatOf('a'), r.heatOf('b')]).toEqual([0.5, 0.5]);
  });

  test('agingRequests: at least the minimum, else 20 per resident bot', () => {
    const r = new Residency(10_000, 0, 50);
    expect(r.agingRequests).toBe(50);
    for (let i = 0; i < 3; i++) r.add(`b${i}`, head(1));
    expect(r.agingRequests).toBe(60);
    r.remove('b0');
    expect(r.agingRequests).toBe(50);
    expect(new Residency(1, 0).agingRequests).toBe(1000);
  });
});

describe('Residency: victims', () => {
  test('none while the bot fits, even to the last byte', () => {
    const r = new Residency(100, 10);
    r.add('a', head(40));
    expect(r.victims(head(50), all)).toEqual([]);
    expect(r.victims(head(51), all)).toEqual(['a']);
  });

  test('the bot asked least lately first; among equals the least recently used; only as many as needed', () => {
    const r = new Residency(100, 0);
    for (const id of ['a', 'b', 'c', 'd']) r.add(id, head(25));
    r.touch('a');
    r.touch('a');
    r.touch('b');
    r.touch('c');
    r.touch('d');
    // Counts: a 2, b 1, c 1, d 1; recency b, c, d, a.
    expect(r.victims(head(10), all)).toEqual(['b']);
    expect(r.victims(head(30), all)).toEqual(['b', 'c']);
    expect(r.victims(head(60), all)).toEqual(['b', 'c', 'd']);
    expect(r.victims(head(100), all)).toEqual(['b', 'c', 'd', 'a']);
    r.touch('b');
    r.touch('b');
    // Now c and d have 1 (c less recent), b 3, a 2.
    expect(r.victims(head(60), all)).toEqual(['c', 'd', 'a']);
  });

  test('a bot in use is never named; undefined when the others cannot make room', () => {
    const r = new Residency(100, 0);
    r.add('a', head(50));
    r.add('b', head(50));
    expect(r.victims(head(50), (id) => id !== 'a')).toEqual(['b']);
    expect(r.victims(head(51), (id) => id !== 'a')).toBeUndefined();
    expect(r.victims(head(10), () => false)).toBeUndefined();
    expect(r.victims(head(101), all)).toBeUndefined();
  });

  test('an encoder frees its bytes only with its last resident user', () => {
    const r = new Residency(100, 0);
    r.add('a', withEncoder(10, 'e', 40));
    r.add('b', withEncoder(10, 'e', 40));
    r.add('c', head(30));
    // used 90: a bot of 20 needs 10 freed: a's head is enough.
    expect(r.victims(head(20), all)).toEqual(['a']);
    // A bot of 40 needs 30: a (10) and b (10) free their heads and then the encoder (40).
    expect(r.victims(head(40), all)).toEqual(['a', 'b']);
    r.touch('a');
    r.touch('b');
    // c goes first now (asked least), then a, then b with the encoder.
    expect(r.victims(head(40), all)).toEqual(['c']);
    expect(r.victims(head(51), all)).toEqual(['c', 'a', 'b']);
  });

  test('an encoder the new bot uses is never counted as freed', () => {
    const r = new Residency(100, 0);
    r.add('a', withEncoder(10, 'e', 40));
    r.add('c', head(40));
    r.touch('c');
    // used 90; a bot of 20 on encoder e costs 20: 10 to free. a goes (its head, 10), e stays.
    expect(r.victims(withEncoder(20, 'e', 40), all)).toEqual(['a']);
    // A bot of 25 on e: 15 to free; a's head is 10 and e stays: c must go too.
    expect(r.victims(withEncoder(25, 'e', 40), all)).toEqual(['a', 'c']);
    // On another encoder, a frees e as well: a alone is enough for 45 (10 + 40 freed).
    expect(r.victims(withEncoder(20, 'f', 15), all)).toEqual(['a']);
    expect(r.victims(withEncoder(41, 'f', 10), all)).toEqual(['a']);
  });

  test('the limit can be changed while running', () => {
    const r = new Residency(100, 0);
    r.add('a', head(60));
    expect(r.victims(head(40), all)).toEqual([]);
    r.limit = 80;
    expect(r.victims(head(40), all)).toEqual(['a']);
  });
});
