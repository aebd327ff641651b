/**
 * `plainBot` reads a bot that breaks no rule without the Checker; anything else goes to `normalizeBot`,
 * which reports every problem. So it must never accept what the Checker would report, and must give what
 * the Checker gives, field for field and in the same key order (the catalog files are its JSON). Here:
 * random bots, valid ones changed at random (a field set to an odd value, removed, or an unknown one
 * added), both ways; the shared values of a normalised catalog; and reports unchanged around the fast path.
 */
import fc from 'fast-check';
import { normalizeBot } from '@botshard/runtime/catalog/bots';
import { Checker } from '@botshard/runtime/catalog/checker';
import { normalizeCatalog, parseCatalog } from '@botshard/runtime/catalog/normalize';
import { NONE, Shared, plainBot, plainObjectsAreOwn } from '@botshard/runtime/catalog/plain-bot';
import { checkRe2 } from '@botshard/runtime/catalog/regex';
import { syntheticCatalog } from '../../bench/synthetic';
import { smallCatalog } from '../support/catalogs';

/** A valid bot using every field plainBot reads. */
function fullBot(): any {
  return {
    id: 'acme-support',
    tenant: 'acme',
    realtime: true,
    properties: { language: 'en', tier: 2, beta: false },
    model: { head: 'heads/a.onnx', sha256: 'AB'.repeat(32), memory: '4Mi', encoder: 'enc', version: 'v2' },
    intents: [{ name: 'greet', examples: ['hi', 'hello'] }, { name: 'bye' }],
    preprocess: [{ pattern: '\\s+', replace: ' ' }, { pattern: 'pls', replace: 'please', flags: 'i' }],
    postprocess: { threshold: 0.5, fallback: 'fb', entities: [{ name: 'order', pattern: '#([0-9]+)', flags: 'm' }] },
    pin: 'vip',
    warm: true,
  };
}

/** What the Checker makes of a bot: its problems and its normalised form. */
function checked(b: unknown) {
  const c = new Checker();
  const bot = normalizeBot(c, b, 'bots[0]');
  return { problems: c.problems, bot };
}

/** Values that break (or pass) one rule or another. */
const ODD = [
  undefined, null, '', 'x', 'acme', 'greet', 'UPPER', 'a b', 'a'.repeat(41), 0, -1, 0.5, 1, 2, NaN, Infinity, true, false, [], {}, [''], ['x'], { a: 1 }, [{}],
  '../x', '/abs', 'a/../../b', 'a\\b', 's3://bucket/key', 'ftp://h/x', 'https://h', '40Mi', '1.5Gi', 'Mi', 'ef'.repeat(32), 'sha256:' + 'ef'.repeat(32),
  '(?=x)', '(a', '\\1', 'ims', 'g', 'v 2', '1.0', new Date(0), Object.create(null),
];
/** Every place in `fullBot()` a value can go: each field of each object (and an unknown one), each element of each list. */
const PLACES: Array<readonly [readonly (string | number)[], string | number]> = [
  ...['id', 'tenant', 'realtime', 'properties', 'model', 'intents', 'preprocess', 'postprocess', 'pin', 'warm', 'x'].map((k) => [[], k] as const),
  ...['language', 'tier', 'beta', 'x-y', '9lives', ''].map((k) => [['properties'], k] as const),
  ...['head', 'sha256', 'memory', 'encoder', 'version', 'candidate', 'x'].map((k) => [['model'], k] as const),
  ...['name', 'examples', 'x'].map((k) => [['intents', 0], k] as const),
  [['intents', 1], 'name'], [['intents'], 0], [['intents'], 2], [['intents', 0, 'examples'], 0], [['intents', 0, 'examples'], 2],
  ...['pattern', 'replace', 'flags', 'x'].map((k) => [['preprocess', 1], k] as const),
  [['preprocess'], 0], [['preprocess'], 2],
  ...['threshold', 'fallback', 'entities', 'x'].map((k) => [['postprocess'], k] as const),
  ...['name', 'pattern', 'flags', 'x'].map((k) => [['postprocess', 'entities', 0], k] as const),
  [['postprocess', 'entities'], 1],
];

/** A change to a bot: a place set to a value, or removed. */
const change = fc.record({ place: fc.constantFrom(...PLACES), value: fc.constantFrom(...ODD), remove: fc.boolean() });

function apply(bot: any, changes: Array<{ place: readonly [readonly (string | number)[], string | number]; value: unknown; remove: boolean }>): any {
  for (const { place: [at, key], value, remove } of changes) {
    let target = bot;
    for (const step of at) target = target?.[step];
    if (typeof target !== 'object' || target === null) continue;
    if (remove) delete target[key];
    else target[key] = value;
  }
  return bot;
}

describe('plainBot', () => {
  it('gives what the Checker gives for a valid bot, in the same key order, and accepts the bots the benchmarks and fixtures use', () => {
    const bots = [fullBot(), ...smallCatalog().bots, ...syntheticCatalog({ bots: 500, locality: 'encoder', pinned: 0.05 }).bots];
    for (const b of bots) {
      const fast = plainBot(b, new Shared());
      expect(fast).toBeDefined();
      const { problems, bot } = checked(b);
      expect(problems).toEqual([]);
      expect(JSON.stringify(fast)).toBe(JSON.stringify(bot));
    }
  });

  /** plainBot against the Checker on one bot: undefined, or what the Checker gives with no problem. */
  const agree = (b: unknown): boolean => {
    const fast = plainBot(b, new Shared());
    const { problems, bot } = checked(b);
    if (fast === undefined) return false;
    expect(problems).toEqual([]);
    expect(JSON.stringify(fast)).toBe(JSON.stringify(bot));
    return true;
  };

  it('never accepts a bot the Checker reports, and agrees with it on every bot it accepts: each place, each value', () => {
    let accepted = 0;
    for (const place of PLACES) {
      for (const value of ODD) for (const remove of [false, true]) if (agree(apply(fullBot(), [{ place, value, remove }]))) accepted++;
    }
    expect(accepted).toBeGreaterThan(300);
  });

  it('never accepts a bot the Checker reports, and agrees with it on every bot it accepts: several changes at once', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.array(change, { minLength: 2, maxLength: 4 }), (changes) => {
        if (agree(apply(fullBot(), changes))) accepted++;
      }),
      { numRuns: 5000 },
    );
    // Some changes keep a bot valid (a valid value, an optional field removed), so the comparison is not empty.
    expect(accepted).toBeGreaterThan(100);
  });

  it('leaves to the Checker a candidate version, a class instance, an object without prototype and holes in a list', () => {
    const candidate = { ...fullBot(), model: { ...fullBot().model, candidate: { version: 'v3', head: 'h3.onnx', memory: '1Mi', mode: 'shadow' } } };
    class Props {
      language = 'en';
    }
    const holes = { ...fullBot(), intents: [{ name: 'a' }, , { name: 'b' }] }; // eslint-disable-line no-sparse-arrays
    for (const b of [candidate, { ...fullBot(), properties: new Props() }, Object.assign(Object.create(null), fullBot()), holes]) {
      expect(plainBot(b, new Shared())).toBeUndefined();
      expect(checked(b).problems).toEqual([]);
    }
  });

  it('is used only while Object.prototype has no enumerable key and none of the fields', () => {
    expect(plainObjectsAreOwn()).toBe(true);
    (Object.prototype as any).tenant = 'acme';
    try {
      expect(plainObjectsAreOwn()).toBe(false);
      // Through the Checker, a bot without its own tenant is still told so.
      const { tenant: _t, ...bot } = fullBot();
      const r = normalizeCatalog({ ...smallCatalog(), bots: [bot] });
      expect(r.ok ? [] : r.problems.map((p) => p.message)).toContain('is required');
    } finally {
      delete (Object.prototype as any).tenant;
    }
    expect(plainObjectsAreOwn()).toBe(true);
  });
});

describe('a normalised catalog shares what bots hold alike', () => {
  const catalog = parseCatalog(syntheticCatalog({ bots: 200, locality: 'encoder' }));

  it('one frozen empty list, one frozen default postprocess, one frozen intent per name without examples and one list of them per sequence', () => {
    const [a, b] = catalog.bots;
    expect(a.preprocess).toBe(NONE);
    expect(a.postprocess).toBe(b.postprocess);
    expect(Object.isFrozen(a.postprocess)).toBe(true);
    const byName = new Map(catalog.bots.flatMap((bot) => bot.intents.map((i) => [i.name, i] as const)));
    for (const bot of catalog.bots) for (const intent of bot.intents) expect(intent).toBe(byName.get(intent.name));
    expect(Object.isFrozen(a.intents[0])).toBe(true);
    // One list per sequence of names (the synthetic bots' labels repeat every 12 bots).
    const byNames = new Map(catalog.bots.map((bot) => [bot.intents.map((i) => i.name).join(','), bot.intents] as const));
    for (const bot of catalog.bots) expect(bot.intents).toBe(byNames.get(bot.intents.map((i) => i.name).join(',')));
    expect(byNames.size).toBeLessThan(catalog.bots.length / 2);
    expect(Object.isFrozen(a.intents)).toBe(true);
  });

  it('a list with an intent that has examples is the bot\'s own', () => {
    const input = smallCatalog();
    input.bots[1].intents = [...input.bots[0].intents];
    const c = parseCatalog(input);
    const [x, y] = c.bots.filter((b) => b.intents.some((i) => i.name === 'greeting'));
    expect(x.intents).not.toBe(y.intents);
    expect(x.intents).toEqual(y.intents);
  });

  it('reads back from its JSON unchanged, and edits go through the input', () => {
    expect(parseCatalog(JSON.parse(JSON.stringify(catalog)))).toEqual(catalog);
    expect(() => (catalog.bots[0].preprocess as unknown[]).push({})).toThrow(TypeError);
  });
});

describe('reports around the fast path', () => {
  it('duplicate ids in input order, naming the first, before the reference problems, as before', () => {
    const input = smallCatalog();
    const [a, b] = input.bots;
    input.bots = [a, { ...b, tenant: 'nobody' }, { ...a }, { ...b, tenant: 'nobody' }];
    const r = normalizeCatalog(input);
    expect(r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      `bots[2] (${a.id}).id: duplicate bot id "${a.id}", already used at bots[0] (${a.id}).id`,
      `bots[3] (${b.id}).id: duplicate bot id "${b.id}", already used at bots[1] (${b.id}).id`,
      `bots[1] (${b.id}).tenant: unknown tenant "nobody"`,
      `bots[3] (${b.id}).tenant: unknown tenant "nobody"`,
    ]);
  });

  it('a pattern checked once reports the same for every bot that uses it', () => {
    expect(checkRe2('(a', '')).toBe(checkRe2('(a', ''));
    const input = smallCatalog();
    input.bots = input.bots.map((bot: any) => ({ ...bot, preprocess: [{ pattern: '(a', replace: '' }] }));
    const r = normalizeCatalog(input);
    const messages = r.ok ? [] : r.problems.filter((p) => p.path.endsWith('.pattern')).map((p) => p.message);
    expect(messages).toEqual(input.bots.map(() => '"(a" is not valid RE2 syntax: missing ): (a'));
  });
});
