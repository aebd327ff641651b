/**
 * A second placement, written from the documented rules (README.md and ARCHITECTURE.md, "Placement")
 * and not from `plan()`: slow and plain, with BigInt scores and whole rankings, compared with `plan()`
 * on random catalogs with pins, fixed and automatic pool counts, every locality and every strategy. The
 * hash and the score are the shared, reference-checked primitives (test/placement/hash.test.ts);
 * everything built on them (order, ranking, bounded-load filling, fill factor, pool memory, pins,
 * strategies) is redone here.
 *
 * What each part proves, and what it does not:
 * - Rule 3 (bounded-load hashing), pins, strategies and each pool's memory follow from the rules' words:
 *   equality with `plan()` there is independent evidence.
 * - Balanced locality (rule 4) is an algorithm more than a rule: `balanced()` transcribes its documented
 *   steps, so equality only shows that `plan()` follows those steps; a misreading shared by both would
 *   pass. Its exact result cannot be derived another way, so a separate test checks, on `plan()`'s own
 *   output, what the construction promises (never past the fill factor, a new pool takes bots from the
 *   others and nothing else moves, a holder gives the top of its stretch of a key's line).
 * - Pool counts: the comparison takes each `auto` count from `plan()`; `autoCountProblem` bounds it from
 *   rule 5 alone.
 * - Mutants: the oracle with any one rule changed disagrees with `plan()` on the same random catalogs, so
 *   the comparison can fail.
 */
import fc from 'fast-check';
import { Bot, Catalog, PlacementError, PoolGroup, Topology, U64, groupOf, normalizeCatalog, plan, poolName, scoreHi, scoreLo, xxh64 } from '@botshard/runtime';

/** The rules the oracle follows: `RULES` are the documented ones; each mutant below changes one. */
interface OracleRules {
  /** Rule 3: bots are taken in ascending order of their id's score against the order salt. */
  readonly order: 'ascending' | 'descending';
  /** Rule 3: a bot ranks the pools by descending score of (its key, the pool). */
  readonly ranking: 'descending' | 'ascending';
  /** Pool memory: a bot's encoder counts once in a pool that lacks it ('every bot': with each bot). */
  readonly encoder: 'once per pool' | 'every bot';
  /** The fill factor holds (rule 3's spill of shared keys, rule 4's new pools, rule 5's sizing); false: the budget instead. */
  readonly fillFactor: boolean;
  /** Rule 4 places a fixed count with a locality key (false: rule 3 does). */
  readonly balanced: boolean;
  /** Rule 4 stands only if every pool fits its budget (false: it stands regardless). */
  readonly fallback: boolean;
  /** Rule 4: a key's bots lie along its line by the hash of their id ('id': by id). */
  readonly line: 'id hash' | 'id';
  /** Rule 4: the cap's level L runs 1, 2, ..., 8, 10, 12, 15, ...: each step is this function of L. */
  readonly capStep: (level: number) => number;
  /** Rule 4: pool q takes from a key's holders down to `target - target / band`. */
  readonly band: number;
  /** Rule 4: pool q takes keys in descending order of their score against it. */
  readonly preference: 'descending' | 'ascending';
  /** Rule 4: a bot lands where the middle of its bytes lies ('start': its first byte; 'ties below': a middle on a cut stays below it). */
  readonly landing: 'middle' | 'ties below' | 'start';
  /** Rule 5: a pool's overhead counts against its budget at the fill factor. */
  readonly autoOverhead: boolean;
}

const RULES: OracleRules = {
  order: 'ascending',
  ranking: 'descending',
  encoder: 'once per pool',
  fillFactor: true,
  balanced: true,
  fallback: true,
  line: 'id hash',
  capStep: (level) => Math.max(1, Math.floor(level / 4)),
  band: 4,
  preference: 'descending',
  landing: 'middle',
  autoOverhead: true,
};

/**
 * One rule changed each. Not here: the tie-breaks between equal 64-bit scores (a bot's rank among pools,
 * the order of bots, a pool's order of keys): equal scores do not occur in these catalogs (nor, at odds
 * of 2^-64 a pair, in real ones), so changing those tie-breaks changes nothing a test can see. The tie
 * that does occur, a bot's middle exactly on a cut, is 'a middle on a cut landing below it'.
 */
const MUTANTS: ReadonlyArray<readonly [string, Partial<OracleRules>]> = [
  ['bots taken in descending hash order', { order: 'descending' }],
  ['pools ranked by ascending score', { ranking: 'ascending' }],
  ['an encoder counted with every bot', { encoder: 'every bot' }],
  ['the fill factor ignored', { fillFactor: false }],
  ['no balanced locality', { balanced: false }],
  ['balanced locality kept over budget', { fallback: false }],
  ['a key line ordered by bot id', { line: 'id' }],
  ['a cap falling with every pool (step 1)', { capStep: () => 1 }],
  ['a cap falling by halves', { capStep: (level) => Math.max(1, Math.floor(level / 2)) }],
  ['holders giving down to half the target', { band: 2 }],
  ['keys taken in ascending score order', { preference: 'ascending' }],
  ['a bot landing where its first byte lies', { landing: 'start' }],
  ['a middle on a cut landing below it', { landing: 'ties below' }],
  ['auto counts without the pool overhead', { autoOverhead: false }],
];

const hashes = new Map<string, U64>();
/** XXH64 of a string, remembered: the oracle asks for the same ids and pool names many times. */
function hashOf(s: string): U64 {
  let h = hashes.get(s);
  if (!h) hashes.set(s, (h = xxh64(s)));
  return h;
}

/** The 64-bit rendezvous score of a key and a pool, as one BigInt. */
function score(key: string, pool: string): bigint {
  const k = hashOf(key);
  const p = hashOf(pool);
  const lo = scoreLo(k.lo, p.lo);
  return (BigInt(scoreHi(k.hi, p.hi, lo)) << 32n) | BigInt(lo);
}

/** Ascending comparison of BigInts, for sorts. */
const cmp = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/** Rule: bots sharing a locality key rank pools alike; others rank by their own id. */
function keyOf(group: PoolGroup, bot: Bot): string {
  if (group.locality === 'encoder' && bot.model.encoder !== undefined) return `encoder:${bot.model.encoder}`;
  if (typeof group.locality === 'object' && bot.properties[group.locality.property] !== undefined) {
    return `property:${group.locality.property}=${JSON.stringify(bot.properties[group.locality.property])}`;
  }
  return bot.id;
}

/** Rule 4's key of a bot: its locality key, or "free" for the bots without one. */
function lineOf(group: PoolGroup, bot: Bot): string {
  const key = keyOf(group, bot);
  return key === bot.id ? 'free' : key;
}

/** A pool's memory at the group's fill factor, in whole bytes (the factor read to 3 decimals). */
function fillLimit(group: PoolGroup, rules: OracleRules = RULES): number {
  return rules.fillFactor ? Math.floor((group.memory * Math.round(group.fillFactor * 1000)) / 1000) : group.memory;
}

type EncoderBytes = ReadonlyMap<string, number>;

interface OraclePool {
  name: string;
  used: number;
  budget: number;
  encoders: Set<string>;
  bots: string[];
}

const emptyPool = (name: string, group: PoolGroup): OraclePool => ({ name, used: group.poolOverhead, budget: group.memory, encoders: new Set(), bots: [] });

/** Rule: what a bot adds to a pool, its head plus its encoder when the pool does not hold it yet. */
function cost(pool: OraclePool, bot: Bot, encoderBytes: EncoderBytes, rules: OracleRules): number {
  const enc = bot.model.encoder;
  return bot.model.memory + (enc !== undefined && (rules.encoder === 'every bot' || !pool.encoders.has(enc)) ? encoderBytes.get(enc)! : 0);
}

function add(pool: OraclePool, bot: Bot, encoderBytes: EncoderBytes, rules: OracleRules): void {
  pool.used += cost(pool, bot, encoderBytes, rules);
  pool.bots.push(bot.id);
  if (bot.model.encoder !== undefined) pool.encoders.add(bot.model.encoder);
}

/** The names of a group's shared pools 0..n-1: each drawn against the dedicated pools and the pools before it. */
function sharedNames(catalog: Catalog, group: PoolGroup, n: number): string[] {
  const taken = new Set(catalog.groups.flatMap((g) => g.dedicatedPools));
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    names.push(poolName(group.name, i, taken));
    taken.add(names[i]);
  }
  return names;
}

const groupBots = new WeakMap<Catalog, Map<string, Bot[]>>();
/** The bots of a group that are not pinned: the ones its shared pools take (found once per catalog). */
function hashedBots(catalog: Catalog, group: PoolGroup): Bot[] {
  let byGroup = groupBots.get(catalog);
  if (!byGroup) {
    byGroup = new Map(catalog.groups.map((g) => [g.name, []]));
    for (const b of catalog.bots) if (b.pin === undefined) byGroup.get(groupOf(catalog, b)?.name ?? '')?.push(b);
    groupBots.set(catalog, byGroup);
  }
  return byGroup.get(group.name)!;
}

const orders = new Map<string, bigint>();
/** The order key of a bot: the score of its id against the order salt (remembered, as `hashOf`). */
function orderScore(id: string): bigint {
  let s = orders.get(id);
  if (s === undefined) orders.set(id, (s = score(id, 'botshard/order')));
  return s;
}

/**
 * Rule 3, bounded-load hashing: bots in a fixed hash order, each to the first pool in its ranking whose
 * budget still fits it (a shared key stopping at the fill factor first). Returns the pools, or the id of
 * a bot that fits nowhere.
 */
function hashing(group: PoolGroup, bots: readonly Bot[], names: readonly string[], encoderBytes: EncoderBytes, rules: OracleRules): OraclePool[] | string {
  const pools = names.map((name) => emptyPool(name, group));
  const order = new Map(bots.map((b) => [b.id, orderScore(b.id)]));
  const sign = rules.order === 'ascending' ? 1 : -1;
  const ordered = [...bots].sort((a, b) => sign * cmp(order.get(a.id)!, order.get(b.id)!) || (a.id < b.id ? -1 : 1));
  const soft = fillLimit(group, rules);
  for (const bot of ordered) {
    const key = keyOf(group, bot);
    // Rule: pools by descending score of (key, pool); equal scores by the bot id's own score.
    const keyScore = pools.map((p) => score(key, p.name));
    const ranking = pools
      .map((_, i) => i)
      .sort((a, b) => (rules.ranking === 'descending' ? cmp(keyScore[b], keyScore[a]) : cmp(keyScore[a], keyScore[b])) || cmp(score(bot.id, pools[b].name), score(bot.id, pools[a].name)))
      .map((i) => pools[i]);
    const fits = (p: OraclePool, limit: number) => p.used + cost(p, bot, encoderBytes, rules) <= limit;
    // Rule: a shared key fills its pools only to the fill factor before spilling; then to the budget.
    const chosen = (key !== bot.id ? ranking.find((p) => fits(p, soft)) : undefined) ?? ranking.find((p) => fits(p, p.budget));
    if (!chosen) return bot.id;
    add(chosen, bot, encoderBytes, rules);
  }
  return pools;
}

/** What the oracle plans: the pool of every bot, each pool's memory, and the groups placed by rule 4. */
interface OraclePlan {
  assignment: Map<string, string>;
  used: Map<string, number>;
  balancedGroups: string[];
}

/**
 * The oracle. `counts`: shared pools per group (what `pools` fixes, or what auto chose). Returns the
 * plan, or the id of a bot (or dedicated pool) that fits nowhere.
 */
function oracle(catalog: Catalog, counts: Record<string, number>, rules: OracleRules = RULES): OraclePlan | string {
  const encoderBytes = new Map(catalog.encoders.map((e) => [e.id, e.memory]));
  const result: OraclePlan = { assignment: new Map(), used: new Map(), balancedGroups: [] };
  const keep = (pools: OraclePool[]) => {
    for (const p of pools) {
      result.used.set(p.name, p.used);
      for (const id of p.bots) result.assignment.set(id, p.name);
    }
  };
  for (const group of catalog.groups) {
    // Rule: pinned bots go to their dedicated pool, and only there.
    for (const name of group.dedicatedPools) {
      const dedicated = emptyPool(name, group);
      for (const bot of catalog.bots.filter((b) => b.pin === name)) add(dedicated, bot, encoderBytes, rules);
      if (dedicated.used > dedicated.budget) return name; // Rule: a dedicated pool must hold its pinned bots.
      keep([dedicated]);
    }
    const hashed = hashedBots(catalog, group);
    if (catalog.platform.strategy === 'dedicated') {
      for (const bot of hashed) {
        const own = emptyPool(`${group.name}-${bot.id}`, group);
        add(own, bot, encoderBytes, rules);
        keep([own]);
      }
      continue;
    }
    if (catalog.platform.strategy === 'single') {
      const only = emptyPool(sharedNames(catalog, group, 1)[0], group);
      for (const bot of hashed) add(only, bot, encoderBytes, rules);
      keep([only]);
      continue;
    }
    if (hashed.length === 0) continue;
    const names = sharedNames(catalog, group, counts[group.name]);
    // Rule: a fixed count with a locality key is balanced, if every pool then fits its budget.
    if (rules.balanced && group.locality !== 'none' && typeof group.pools === 'number') {
      const owners = balanced(group, hashed, names, encoderBytes, rules);
      const trial = names.map((name) => emptyPool(name, group));
      for (const bot of hashed) add(trial[owners.get(bot.id)!], bot, encoderBytes, rules);
      if (!rules.fallback || trial.every((p) => p.used <= p.budget)) {
        keep(trial);
        result.balancedGroups.push(group.name);
        continue;
      }
    }
    const pools = hashing(group, hashed, names, encoderBytes, rules);
    if (typeof pools === 'string') return pools;
    keep(pools);
  }
  return result;
}

/**
 * Rule 4 (balanced locality), transcribed from its documented steps: each key a line of bytes, pools
 * built one by one from the ones before. Returns bot id -> pool index.
 */
function balanced(group: PoolGroup, bots: Bot[], poolNames: string[], encoderBytes: EncoderBytes, rules: OracleRules): Map<string, number> {
  const n = poolNames.length;
  const total = bots.reduce((s, b) => s + b.model.memory, 0);
  const limit = fillLimit(group, rules);
  // Keys: the locality key, or "free" for bots whose key would be their id; bots by their id's hash.
  const members = new Map<string, Bot[]>();
  for (const bot of bots) {
    const name = lineOf(group, bot);
    members.set(name, [...(members.get(name) ?? []), bot]);
  }
  const idHash = (id: string) => (BigInt(hashOf(id).hi) << 32n) | BigInt(hashOf(id).lo);
  const byId = (a: Bot, b: Bot) => (a.id < b.id ? -1 : 1);
  for (const list of members.values()) list.sort(rules.line === 'id' ? byId : (a, b) => cmp(idHash(a.id), idHash(b.id)) || byId(a, b));
  const names = [...members.keys()];
  // Each bot's span on its key's line, and each key's line: pieces [start, end, pool], in order.
  const spans = new Map<string, Array<{ bot: Bot; start: number; end: number }>>();
  for (const k of names) {
    let at = 0;
    spans.set(k, members.get(k)!.map((bot) => ({ bot, start: at, end: (at += bot.model.memory) })));
  }
  const pieces = new Map(names.map((k) => [k, [[0, spans.get(k)![spans.get(k)!.length - 1].end, 0]]]));
  const bytes = (pool: number) => {
    let s = 0;
    for (const list of pieces.values()) for (const [a, b, p] of list) if (p === pool) s += b - a;
    return s;
  };
  // Where a bot lands: the middle of its bytes (a piece holds [a, b), or (a, b] when ties land below).
  const at = (x: { start: number; end: number }) => (rules.landing === 'start' ? x.start : (x.start + x.end) / 2);
  const within = (x: { start: number; end: number }, a: number, b: number) => (rules.landing === 'ties below' ? at(x) > a && at(x) <= b : at(x) >= a && at(x) < b);
  const memoryOf = (list: Bot[]) => {
    const encoders = list.map((b) => b.model.encoder).filter((e): e is string => e !== undefined);
    const counted = rules.encoder === 'every bot' ? encoders : [...new Set(encoders)];
    return group.poolOverhead + list.reduce((s, b) => s + b.model.memory, 0) + counted.reduce((s, e) => s + encoderBytes.get(e)!, 0);
  };
  for (let q = 1; q < n; q++) {
    const target = Math.floor(total / (q + 1));
    // The cap: total / L + a quarter, L the largest of 1, 2, ..., 8, 10, 12, 15, ... (a quarter more each) up to q + 1.
    let L = 1;
    while (L + rules.capStep(L) <= q + 1) L += rules.capStep(L);
    const top = Math.floor(total / L) + Math.floor(total / L / 4);
    const bottom = target - Math.floor(target / rules.band);
    const sign = rules.preference === 'descending' ? 1 : -1;
    const order = [...names].sort((a, b) => sign * cmp(score(b, poolNames[q]), score(a, poolNames[q])) || (a < b ? -1 : 1));
    let got = 0;
    const mine: Bot[] = [];
    const grab = (key: string, index: number, want: number) => {
      const list = pieces.get(key)!;
      const [a, b, owner] = list[index];
      let amount = Math.min(want, b - a);
      if (amount <= 0) return 0;
      // From the high end, the bots that would land in q while q stays within the fill factor.
      const landing = spans.get(key)!.filter((x) => within(x, b - amount, b)).reverse();
      const fitting: Bot[] = [];
      for (const x of landing) {
        if (memoryOf([...mine, ...fitting, x.bot]) > limit) {
          amount = b - x.end;
          break;
        }
        fitting.push(x.bot);
      }
      if (amount <= 0) return 0;
      mine.push(...fitting);
      if (amount === b - a) list[index] = [a, b, q];
      else list.splice(index, 1, [a, b - amount, owner], [b - amount, b, q]);
      got += amount;
      return amount;
    };
    for (let p = 0; p < q; p++) {
      if (got >= target) break;
      let over = Math.min(bytes(p) - top, target - got);
      for (const key of order) {
        for (let i = pieces.get(key)!.length - 1; i >= 0 && over > 0; i--) if (pieces.get(key)![i][2] === p) over -= grab(key, i, over);
      }
    }
    for (const key of order) {
      for (let i = pieces.get(key)!.length - 1; i >= 0 && got < target; i--) {
        const owner = pieces.get(key)![i][2];
        if (owner !== q) grab(key, i, Math.min(target - got, bytes(owner) - bottom));
      }
    }
  }
  const owners = new Map<string, number>();
  for (const key of names) {
    const list = pieces.get(key)!;
    for (const x of spans.get(key)!) owners.set(x.bot.id, (list.find(([a, b]) => within(x, a, b)) ?? list[list.length - 1])[2]);
  }
  return owners;
}

/**
 * Rule 5, from its words and not from `plan()`: `auto` is the fewest pools whose budget at the fill
 * factor holds the group's memory (pool overhead + each encoder once per pool that needs it + each head),
 * then one more while hashing cannot place every bot. How many pools need an encoder is known only once
 * bots are placed, so that count lies between two counts: `lower`, with each encoder once in all, and
 * `worst`, with each encoder in every pool up to one per bot using it; neither is more than one pool per
 * bot (more would stay empty). Hence the chosen count N is at least `lower`, and when N is at least
 * `worst`, every count from `worst` to N - 1 cannot place every bot (N is the first from `worst` up that
 * can; that N can is the exact comparison's business). Returns what breaks these, or undefined.
 */
function autoCountProblem(catalog: Catalog, topology: Topology, rules: OracleRules): string | undefined {
  if (catalog.platform.strategy !== 'sharded') return undefined; // the other strategies have no count to choose
  const encoderBytes = new Map(catalog.encoders.map((e) => [e.id, e.memory]));
  for (const group of catalog.groups) {
    const bots = hashedBots(catalog, group);
    if (group.pools !== 'auto' || bots.length === 0) continue;
    const count = topology.pools.filter((p) => p.group === group.name && !p.dedicated).length;
    const { lower, worst } = autoBounds(group, bots, encoderBytes, rules);
    if (count < lower) return `group ${group.name}: auto chose ${count} pools, fewer than the ${lower} its memory needs at the fill factor`;
    for (let n = worst; n < count; n++) {
      if (typeof hashing(group, bots, sharedNames(catalog, group, n), encoderBytes, rules) !== 'string') {
        return `group ${group.name}: auto chose ${count} pools, but ${n} pools hold its memory even with every encoder everywhere, and hashing places every bot in them`;
      }
    }
  }
  return undefined;
}

/** The bounds of rule 5's memory count: see `autoCountProblem`. */
function autoBounds(group: PoolGroup, bots: readonly Bot[], encoderBytes: EncoderBytes, rules: OracleRules): { lower: number; worst: number } {
  const room = fillLimit(group, rules) - (rules.autoOverhead ? group.poolOverhead : 0);
  // No room beside the overhead: the rule names no count (never so in the random catalogs); bound nothing.
  if (room <= 0) return { lower: 1, worst: bots.length };
  const heads = bots.reduce((s, b) => s + b.model.memory, 0);
  const users = new Map<string, number>();
  for (const b of bots) if (b.model.encoder !== undefined) users.set(b.model.encoder, (users.get(b.model.encoder) ?? 0) + 1);
  const fewest = (need: (n: number) => number) => {
    let n = 1;
    while (n < bots.length && need(n) > n * room) n++;
    return n;
  };
  return {
    lower: fewest(() => heads + [...users.keys()].reduce((s, e) => s + encoderBytes.get(e)!, 0)),
    worst: fewest((n) => heads + [...users].reduce((s, [e, u]) => s + encoderBytes.get(e)! * Math.min(n, u), 0)),
  };
}

/** A random catalog: one or two groups, encoders, pins, properties, any locality and strategy. */
const catalogs = fc
  .record({
    bots: fc.array(
      fc.record({
        memory: fc.integer({ min: 1, max: 120 }),
        encoder: fc.constantFrom(undefined, 'e1', 'e2', 'e3'),
        language: fc.constantFrom('en', 'de', 'fr'),
        realtime: fc.boolean(),
        pinned: fc.integer({ min: 0, max: 9 }),
      }),
      { minLength: 1, maxLength: 120, size: 'medium' },
    ),
    locality: fc.constantFrom('none' as const, 'encoder' as const, { property: 'language' }),
    strategy: fc.constantFrom('sharded' as const, 'sharded' as const, 'dedicated' as const, 'single' as const),
    memoryMi: fc.constantFrom(512, 768, 1024, 2048, 8192),
    fillFactor: fc.constantFrom(0.5, 0.75, 0.9, 1),
    // 12: rule 4's cap level steps past 8 (to 10 and 12) only from the tenth pool on.
    pools: fc.constantFrom<'auto' | number>('auto', 'auto', 1, 2, 3, 5, 8, 12),
    seed: fc.nat(),
  })
  .map(({ bots, locality, strategy, memoryMi, fillFactor, pools, seed }) => ({
    platform: { strategy },
    tenants: [{ id: 't' }],
    encoders: ['e1', 'e2', 'e3'].map((id, i) => ({ id, path: `enc/${id}.onnx`, memory: `${20 + 30 * i}Mi`, tokenizer: { kind: 'hashing', buckets: 64 }, dimensions: 8 })),
    groups: [
      { name: 'rt', realtime: true, memory: `${memoryMi}Mi`, fillFactor, pools, locality, poolOverhead: '100Mi', dedicatedPools: ['vip'] },
      { name: 'nrt', realtime: false, memory: `${memoryMi * 2}Mi`, fillFactor, pools: 'auto', locality, poolOverhead: '100Mi' },
    ],
    bots: bots.map((b, i) => ({
      id: `b${seed % 1000}-${i}`,
      tenant: 't',
      realtime: b.realtime,
      properties: { language: b.language },
      model: { head: `h/${i}.onnx`, memory: `${b.memory}Mi`, ...(b.encoder ? { encoder: b.encoder } : {}) },
      intents: [{ name: 'a' }, { name: 'b' }],
      ...(b.realtime && b.pinned === 0 ? { pin: 'vip' } : {}),
    })),
  }));

/** The random catalogs of every test below: the same seed and number, so the same catalogs. */
const RANDOM = { numRuns: 300, seed: 20261201 };
/** How long the first test shrinks a failing catalog before it reports the smallest found. */
const SHRINK_MS = 15_000;

/** A random catalog with what `plan()` made of it: a topology, or a refusal. */
interface Case {
  input: unknown;
  catalog: Catalog;
  topology?: Topology;
}

function caseOf(input: unknown): Case {
  const result = normalizeCatalog(input);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  try {
    return { input, catalog: result.catalog, topology: plan(result.catalog) };
  } catch (e) {
    if (!(e instanceof PlacementError)) throw e;
    return { input, catalog: result.catalog };
  }
}

let sampled: Case[] | undefined;
/**
 * The random catalogs, planned once: kept by the first test, or (when it did not run) drawn by fc.sample
 * with the same seed and number, which draws the same catalogs as fc.assert.
 */
function randomCases(): Case[] {
  return (sampled ??= fc.sample(catalogs, RANDOM).map(caseOf));
}

/**
 * Where the oracle under `rules` disagrees with `plan()` on a case, or undefined. Refused: the oracle
 * must find a bot with no room too (unless a bot is bigger than a pool, which plan() checks first).
 * Placed: the same pool for every bot, the same memory for every pool, and auto counts within rule 5.
 */
function disagreement(c: Case, rules: OracleRules, tally?: { balanced: number; hashing: number }): string | undefined {
  const { catalog, topology } = c;
  if (!topology) {
    const tooBig = catalog.bots.some((b) => {
      const g = groupOf(catalog, b)!;
      return g.poolOverhead + b.model.memory + (b.model.encoder ? catalog.encoders.find((x) => x.id === b.model.encoder)!.memory : 0) > g.memory;
    });
    const fixed = catalog.groups.find((g) => typeof g.pools === 'number');
    if (tooBig || catalog.platform.strategy !== 'sharded' || !fixed) return undefined;
    const counts = Object.fromEntries(catalog.groups.map((g) => [g.name, typeof g.pools === 'number' ? g.pools : 64]));
    return typeof oracle(catalog, counts, rules) === 'string' ? undefined : 'plan() refused a catalog the oracle places';
  }
  const counts = Object.fromEntries(catalog.groups.map((g) => [g.name, topology.pools.filter((p) => p.group === g.name && !p.dedicated).length]));
  const expected = oracle(catalog, counts, rules);
  if (typeof expected === 'string') return `the oracle finds no room for ${expected}`;
  const moved = [...topology.assignment].filter(([bot, pool]) => expected.assignment.get(bot) !== pool);
  if (moved.length > 0 || expected.assignment.size !== topology.assignment.size) {
    return `${moved.length} bots placed elsewhere, e.g. ${moved.slice(0, 3).map(([bot, pool]) => `${bot}: plan() ${pool}, oracle ${expected.assignment.get(bot)}`).join('; ')}`;
  }
  for (const p of topology.pools) {
    if (expected.used.has(p.name) && expected.used.get(p.name) !== p.used) return `pool ${p.name} uses ${p.used} bytes, the oracle says ${expected.used.get(p.name)}`;
  }
  if (tally) {
    for (const g of catalog.groups) {
      if (g.locality === 'none' || (counts[g.name] ?? 0) < 2 || catalog.platform.strategy !== 'sharded') continue;
      tally[expected.balancedGroups.includes(g.name) ? 'balanced' : 'hashing']++;
    }
  }
  return autoCountProblem(catalog, topology, rules);
}

describe('placement oracle', () => {
  test('plan() agrees with a plain implementation of the rules on random catalogs (pins, pool counts, localities, strategies)', () => {
    const seen: Case[] = [];
    // Groups with a locality key over several pools, by the rule that placed them (auto counts: hashing).
    const tally = { balanced: 0, hashing: 0 };
    // Shrinking a failing catalog of many bots may try thousands of smaller ones (each normalized and
    // planned, minutes in all): SHRINK_MS after the first failure the rest pass unchecked, and fast-check
    // reports the smallest failing catalog found by then. Passing runs are never skipped.
    let failedAt: number | undefined;
    fc.assert(
      fc.property(catalogs, (input) => {
        if (failedAt !== undefined && Date.now() - failedAt > SHRINK_MS) return;
        try {
          const c = caseOf(input);
          seen.push(c);
          expect(disagreement(c, RULES, tally)).toBeUndefined();
          if (!c.topology) return;
          // And the rules' invariants: no pool over budget (single grows its one pool), pins honoured.
          for (const p of c.topology.pools) if (c.catalog.platform.strategy !== 'single') expect(p.used).toBeLessThanOrEqual(p.budget);
          for (const b of c.catalog.bots) if (b.pin) expect(c.topology.assignment.get(b.id)).toBe(b.pin);
        } catch (e) {
          failedAt ??= Date.now();
          throw e;
        }
      }),
      RANDOM,
    );
    const compared = seen.filter((c) => c.topology).length;
    expect(compared).toBeGreaterThan(150);
    expect(tally.balanced).toBeGreaterThan(30);
    expect(tally.hashing).toBeGreaterThan(30);
    // The tests below read the same catalogs: these, planned already (fc.sample would give the same).
    sampled = seen;
  });

  /** Enough disagreements to show a mutant is seen on more than one catalog; the search stops there. */
  const ENOUGH = 3;

  test.each(MUTANTS)('the comparison can fail: the oracle with %s disagrees with plan() on the random catalogs', (_name, change) => {
    const rules = { ...RULES, ...change };
    const found: string[] = [];
    for (const c of randomCases()) {
      const d = disagreement(c, rules);
      if (d !== undefined) found.push(d);
      if (found.length === ENOUGH) break;
    }
    expect(found).toHaveLength(ENOUGH);
  });

  test('balanced locality keeps what its construction promises, checked on plan() without re-running it', () => {
    let checked = 0;
    let unconstrained = 0;
    for (const { catalog, topology } of randomCases()) {
      const group = catalog.groups[0];
      const n = group.pools;
      if (!topology || catalog.platform.strategy !== 'sharded' || group.locality === 'none' || typeof n !== 'number' || n < 2) continue;
      const bots = hashedBots(catalog, group);
      const encoderBytes = new Map(catalog.encoders.map((e) => [e.id, e.memory]));
      const names = sharedNames(catalog, group, n);
      // Which rule placed the group: the fallback is rule 3, redone here; anything else must be rule 4.
      // (When rule 3 happens to give the same placement, the two cannot be told apart: skipped.)
      const byHashing = hashing(group, bots, names, encoderBytes, RULES);
      if (typeof byHashing !== 'string' && byHashing.every((p) => p.bots.every((id) => topology.assignment.get(id) === p.name))) continue;
      checked++;
      const pools = new Map(topology.pools.map((p) => [p.name, p]));
      // Pools 1..n-1 never go past the fill factor; pool 0 keeps the rest, within its budget.
      names.forEach((name, i) => expect(pools.get(name)!.used).toBeLessThanOrEqual(i === 0 ? group.memory : fillLimit(group)));

      // n + 1 pools are n pools and the new pool's step: it stands if n did (the old pools only lose
      // bots, the new one stops at the fill factor), and bots move only into the new pool.
      const next = plan(catalog, { pools: { [group.name]: n + 1 } });
      const fresh = sharedNames(catalog, group, n + 1)[n];
      const gone = new Set(bots.filter((b) => next.assignment.get(b.id) !== topology.assignment.get(b.id)).map((b) => b.id));
      for (const id of gone) expect([id, next.assignment.get(id)]).toEqual([id, fresh]);
      const added = next.pools.find((p) => p.name === fresh)!;
      expect(added.used).toBeLessThanOrEqual(fillLimit(group));

      // Cut points: the new pool takes from the high end of each holder's stretch of a key's line, so
      // from each (key, old pool) it takes that pool's top bots along the line (bots by their id's hash),
      // never bots below one it left. Only the fill factor can stop a cut early (one bot short) and let
      // a later piece go on below it: checked when no bot can have been stopped, i.e. the new pool's
      // memory plus the largest bot with its encoder stays within the fill factor.
      const largest = Math.max(...bots.map((b) => b.model.memory + (b.model.encoder ? encoderBytes.get(b.model.encoder)! : 0)));
      if (added.used + largest > fillLimit(group)) continue;
      unconstrained++;
      const stretches = new Map<string, Bot[]>();
      for (const b of bots) {
        const k = `${lineOf(group, b)} in ${topology.assignment.get(b.id)}`;
        stretches.set(k, [...(stretches.get(k) ?? []), b]);
      }
      for (const [stretch, list] of stretches) {
        const line = list.map((b) => ({ b, h: (BigInt(hashOf(b.id).hi) << 32n) | BigInt(hashOf(b.id).lo) })).sort((x, y) => cmp(x.h, y.h) || (x.b.id < y.b.id ? -1 : 1));
        const given = line.map((x) => gone.has(x.b.id));
        const first = given.indexOf(true);
        if (first >= 0) expect([stretch, given.slice(first).every(Boolean)]).toEqual([stretch, true]);
      }
    }
    // Not asserted here: the band (target ± a quarter) and the cap. They hold in bytes along the key
    // lines, but bots land by their middles and a cut may leave a sliver holding no bot, so a pool's
    // heads differ from its bytes by up to a bot per piece, and the pieces cannot be seen from outside.
    // test/placement/locality.test.ts holds pools near the mean where bots are many and small.
    expect(checked).toBeGreaterThan(30);
    expect(unconstrained).toBeGreaterThan(10);
  });

  test('auto pool counts lie within bounds derived from rule 5, not taken from plan()', () => {
    let groups = 0;
    let pinned = 0;
    for (const { catalog, topology } of randomCases()) {
      if (!topology || catalog.platform.strategy !== 'sharded') continue;
      expect(autoCountProblem(catalog, topology, RULES)).toBeUndefined();
      const encoderBytes = new Map(catalog.encoders.map((e) => [e.id, e.memory]));
      for (const group of catalog.groups) {
        const bots = hashedBots(catalog, group);
        if (group.pools !== 'auto' || bots.length === 0) continue;
        groups++;
        // The count is pinned exactly (the first from `worst` up that hashing can fill) when it reached `worst`.
        const count = topology.pools.filter((p) => p.group === group.name && !p.dedicated).length;
        if (count >= autoBounds(group, bots, encoderBytes, RULES).worst) pinned++;
      }
    }
    expect(groups).toBeGreaterThan(120);
    expect(pinned).toBeGreaterThan(100);
  });
});
