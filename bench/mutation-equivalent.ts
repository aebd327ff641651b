/**
 * The surviving mutants of `npm run test:mutation` that no test can kill: the mutated code behaves
 * exactly as the original for every input the code can receive. Each is matched on its file, mutator,
 * original code and replacement (not its line number, which moves as code is edited); `where` (a piece
 * of the mutant's line) and `before` (what its line holds just before it) tell apart mutants whose text
 * is the same. bench/mutation.ts lists the matched ones, with the reason, in bench/results/mutation.json.
 */

export interface Equivalent {
  /** The mutated file, or a folder (ending in "/") whose files the entry matches in. */
  file: string;
  mutator: string;
  original: string;
  replacement: string;
  /** A piece of the mutant's source line that must be there. */
  where?: string;
  /** What the mutant's line holds just before the mutant (with a leading ^: all of it, from the line's start). */
  before?: string;
  reason: string;
}

/** The catalog's normalization, one module per section: these entries match in any of its files (each is listed with its file and line in the results). */
const N = 'runtime/src/catalog/';
const BAL = 'runtime/src/placement/balance.ts';
const PLAN = 'runtime/src/placement/plan.ts';
const LO = 'runtime/src/pool/load-order.ts';
const ROTL_UNREACHABLE = 'rotl() is private to hash.ts and only ever called with a constant n below 32 (1, 7, 11, 12, 18, 23, 27, 31): its n >= 32 branches never run';
const ENCODE_SAME = 'both branches give the same UTF-8 bytes (TextEncoder.encode or encodeInto the 256-byte scratch buffer); only the allocation differs';

/** Reasons shared by several mutants of one spot. */
const OPTIONAL_SAME = "`optional` changes nothing in the Checker's helpers: an absent value (undefined) gets the same fallback and no problem either way, since each check reports only a value that is there (`if (v !== undefined)`)";
const BOOLEAN_NEVER_OPTIONAL = "boolean() is never called with optional = true, so `optional` is always false here";
const FALLBACK_WITH_PROBLEM = "the fallback is used only where a problem is reported (the value is missing or invalid), and a catalog with any problem is refused: no caller ever sees it";
const BAL_ID_TIE = "a tie-break between two different ids whose 64-bit XXH64 hashes are equal: no catalog reaches it (a 64-bit collision)";
const PLAN_ID_TIE = "a tie-break between two bots whose 64-bit order scores are equal: no catalog reaches it (a 64-bit collision)";
const KEY_TIE = "a tie-break between two keys with equal 64-bit rendezvous scores against the pool: no catalog reaches it (a 64-bit collision)";
const LAST_SEGMENT = "the last segment of a key ends at the key's weight, past every bot's middle: the walk never reaches the end, so the bound is never what stops it";
const HIGH_SCORE_TIE = "only for two pools whose 32-bit high scores for a key are equal: about 1 in 4 billion comparisons, never reached by a test catalog (finding one takes about 2^32 tries)";

const FIG = 'runtime/src/status/figures.ts';
const GUARDS = 'runtime/src/pool/rollout/guards.ts';
const SPLIT = 'runtime/src/pool/rollout/split.ts';
const SORTED_RUNS = 'Object.entries(f.runMs).map(([k, n]) => [Number(k), n] as const).sort((x, y) => x[0] - y[0])';
const P99S = 'p99.serving !== null && p99.candidate !== null && p99.serving > 0';
const INTEGER_KEYS_SORTED = 'runMs is keyed by bucket numbers, integer keys, which Object.entries always lists in ascending order: the sort never changes it';
const NAN_AGREEMENT = 'with nothing compared the agreement is 0 / 0 = NaN, and NaN < minAgreementPct is false: no breach either way';
const BOTH_P99 = 'both versions have answered requests here (the texts of each are checked just before), so each has run times counted: both p99s are bucket bounds of at least 0.05 ms, never null nor 0';
const SHARE_ONE = 'at a share of 1 the second test takes every key too: a point is always below 1';
const SHARE_ZERO = 'at a share of 0 the point test takes no key either: a point is never below 0';

export const EQUIVALENT: Equivalent[] = [
  // ---- Hash, Pool, Haproxy
  { file: 'runtime/src/hash.ts', mutator: 'ConditionalExpression', original: 'n === 32', replacement: 'false', reason: ROTL_UNREACHABLE },
  { file: 'runtime/src/hash.ts', mutator: 'BlockStatement', original: '{ rHi = lo; rLo = hi; return; }', replacement: '{}', reason: ROTL_UNREACHABLE },
  { file: 'runtime/src/hash.ts', mutator: 'ConditionalExpression', original: 'n > 32', replacement: 'false', reason: ROTL_UNREACHABLE },
  { file: 'runtime/src/hash.ts', mutator: 'EqualityOperator', original: 'n > 32', replacement: 'n >= 32', reason: ROTL_UNREACHABLE },
  { file: 'runtime/src/hash.ts', mutator: 'BlockStatement', original: '{ const t = hi; hi = lo; lo = t; n -= 32; }', replacement: '{}', reason: ROTL_UNREACHABLE },
  { file: 'runtime/src/hash.ts', mutator: 'AssignmentOperator', original: 'n -= 32', replacement: 'n += 32', reason: ROTL_UNREACHABLE },
  { file: 'runtime/src/hash.ts', mutator: 'ConditionalExpression', original: 's.length * 3 > scratch.length', replacement: 'true', reason: `every string takes the allocating branch: ${ENCODE_SAME}` },
  {
    file: 'runtime/src/hash.ts',
    mutator: 'EqualityOperator',
    original: 's.length * 3 > scratch.length',
    replacement: 's.length * 3 >= scratch.length',
    reason: `s.length * 3 is a multiple of 3 and the scratch buffer 256 bytes long: the two never meet, so > and >= agree for every string (and ${ENCODE_SAME})`,
  },
  {
    file: 'runtime/src/hash.ts',
    mutator: 'ArithmeticOperator',
    original: 'len / 0x100000000',
    replacement: 'len * 0x100000000',
    reason: 'the high half of the length is added modulo 2^32 (>>> 0): len * 2^32 is 0 modulo 2^32, as floor(len / 2^32) is 0 for any input under 4 GiB (larger inputs cannot be hashed from a JavaScript string or Uint8Array here)',
  },
  {
    file: 'runtime/src/pool/processors.ts',
    mutator: 'ConditionalExpression',
    original: 'm.length > 1',
    replacement: 'true',
    reason: 'a match without a group has m.length 1 and m[1] undefined: the other half of the condition (m[1] !== undefined) already decides',
  },
  {
    file: 'runtime/src/pool/processors.ts',
    mutator: 'EqualityOperator',
    original: 'm.length > 1',
    replacement: 'm.length >= 1',
    reason: 'a match has m.length >= 1 always, and with no group m[1] is undefined: the other half of the condition (m[1] !== undefined) already decides',
  },
  {
    file: 'runtime/src/pool/processors.ts',
    mutator: 'ArithmeticOperator',
    original: 'm.index + m[0].length',
    replacement: 'm.index - m[0].length',
    reason: 'the fallback is never used: entity rules compile with the d flag, so RE2 gives indices for the whole match and for group 1 whenever group 1 matched (the only group read)',
  },
  {
    file: 'runtime/src/pool/scheduler.ts',
    mutator: 'EqualityOperator',
    original: '(this.served.get(job.bot) ?? 0) < floor',
    replacement: '(this.served.get(job.bot) ?? 0) <= floor',
    reason: 'when the two are equal, setting the count to the floor writes the value it already has',
  },
  {
    file: 'runtime/src/pool/scheduler.ts',
    mutator: 'ConditionalExpression',
    original: 'least === Infinity',
    replacement: 'false',
    reason: 'leastServed() is only called while some bot waits, so the minimum is a finite count and never Infinity',
  },
  {
    file: 'runtime/src/haproxy/config.ts',
    mutator: 'Regex',
    original: '/  +/g',
    replacement: '/ +/g',
    reason: 'collapsing runs of one or more spaces into one space gives the same text as collapsing runs of two or more',
  },
  {
    file: 'runtime/src/haproxy/config.ts',
    mutator: 'Regex',
    original: '/^ /',
    replacement: '/ /',
    reason: 'every answer line starts with its indentation (collapsed to one space just before): the first space is the leading one',
  },
  {
    file: 'runtime/src/haproxy/config.ts',
    mutator: 'Regex',
    original: '/^\\[|\\]$/g',
    replacement: '/\\[|\\]$/g',
    reason: "a URL's hostname holds [ and ] only as the ends of an IPv6 literal: anchored or not, the same brackets go",
  },
  {
    file: 'runtime/src/haproxy/config.ts',
    mutator: 'Regex',
    original: '/^\\[|\\]$/g',
    replacement: '/^\\[|\\]/g',
    reason: "a URL's hostname holds [ and ] only as the ends of an IPv6 literal: anchored or not, the same brackets go",
  },

  // ---- Catalog: normalize.ts and problems.ts
  { file: N, mutator: "BooleanLiteral", original: "false", replacement: "true", where: "array(v: unknown, path: string, optional = false)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "false", replacement: "true", where: "string(v: unknown, path: string, fallback: string, optional = false)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "false", replacement: "true", where: "memory(v: unknown, path: string, fallback: number, optional = false)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "false", replacement: "true", where: "boolean(v: unknown, path: string, fallback: boolean, optional = false)", reason: BOOLEAN_NEVER_OPTIONAL },
  { file: N, mutator: "ConditionalExpression", original: "v === undefined && optional", replacement: "false", reason: "`optional` changes nothing in the Checker's helpers: an absent value (undefined) gets the same fallback and no problem either way, since each check reports only a value that is there (`if (v !== undefined)`) (this early return is a shortcut)" },
  { file: N, mutator: "ConditionalExpression", original: "v === undefined && opts.optional", replacement: "false", reason: "`optional` changes nothing in the Checker's helpers: an absent value (undefined) gets the same fallback and no problem either way, since each check reports only a value that is there (`if (v !== undefined)`) (this early return is a shortcut)" },
  { file: N, mutator: "LogicalOperator", original: "v === undefined && optional", replacement: "v === undefined || optional", where: "return fallback", reason: BOOLEAN_NEVER_OPTIONAL },
  { file: N, mutator: "ConditionalExpression", original: "v === undefined", replacement: "true", where: "if (v === undefined && optional) return fallback", reason: BOOLEAN_NEVER_OPTIONAL },
  { file: N, mutator: "EqualityOperator", original: "v === undefined", replacement: "v !== undefined", where: "if (v === undefined && optional) return fallback", reason: BOOLEAN_NEVER_OPTIONAL },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "c.string(o.modelRoot, 'platform.modelRoot', 'models', true)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "c.array(o.except, `${p}.except`, true)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "c.string(o.name, `${p}.name`, id, true)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "c.array(v, 'encoders', true)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "c.array(v, p, true)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "c.memory(o.poolOverhead, `${p}.poolOverhead`, 160 * 1024 * 1024, true)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "c.array(o.dedicatedPools, `${p}.dedicatedPools`, true)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "c.array(io.examples, `${ip}.examples`, true)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "c.array(o.preprocess, `${p}.preprocess`, true)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "c.array(post.entities, `${pp}.entities`, true)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "c.string(post.fallback, `${pp}.fallback`, 'fallback', true)", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "port: c.number(o.port", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "maxTokens: c.number(t?.maxTokens", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "const min = c.number(replicas.min", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "const max = c.number(replicas.max", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "fillFactor: c.number(o.fillFactor", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "targetCpuPercent: c.number(o.targetCpuPercent", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "timeoutMs: c.number(o.timeoutMs", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "concurrency: c.number(o.concurrency", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "threshold: c.number(post.threshold", reason: OPTIONAL_SAME },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "const p = this.string(pattern, `${path}.pattern`, '')", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "const s = this.string(v, p, '');", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "return '';", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "const property = c.string(o?.property", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "ConditionalExpression", original: "property", replacement: "true", where: "if (property) return { property }", reason: "the fallback is used only where a problem is reported (the value is missing or invalid), and a catalog with any problem is refused: no caller ever sees it (an empty property is that case)" },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "key: c.string(o.key", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "toleration.value = c.string(o.value", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "out[k] = c.string(val", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "name: c.string(io.name", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "c.string(e, `${ip}.examples[${j}]`, '')", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "const replace = typeof ro.replace === 'string' ? ro.replace : ''", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "return [{ name: c.string(ro.name", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "BooleanLiteral", original: "false", replacement: "true", where: "selector.realtime = c.boolean(o.realtime", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "BooleanLiteral", original: "false", replacement: "true", where: "const realtime = c.boolean(o.realtime, `${p}.realtime`, false)", reason: FALLBACK_WITH_PROBLEM },
  { file: N, mutator: "BooleanLiteral", original: "false", replacement: "true", where: "if (o.warm !== undefined && c.boolean(o.warm", reason: "the fallback is used only where a problem is reported (the value is missing or invalid), and a catalog with any problem is refused: no caller ever sees it; an absent warm never reaches the call" },
  { file: N, mutator: "ConditionalExpression", original: "o.warm !== undefined", replacement: "true", reason: "c.boolean(undefined) returns its fallback, false, without a problem: warm stays unset either way" },
  { file: N, mutator: "ConditionalExpression", original: "p !== ''", replacement: "true", reason: "checkRe2('') accepts the empty pattern: an empty pattern is already reported as an empty string (or a missing field)" },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "if (p !== '')", reason: "only an empty pattern skips the RE2 check, and checkRe2('') finds nothing: checking the marker text instead (a valid pattern) finds nothing either" },
  { file: N, mutator: "ConditionalExpression", original: "s === ''", replacement: "false", reason: "'' goes through the checks that follow without a problem (no scheme, not absolute, no ..) and is returned as is; an empty path is already reported as an empty string (or a missing field)" },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "if (s === '') return s;", reason: "returning early for the marker text instead of '' changes nothing: both pass the checks that follow without a problem and are returned as they are" },
  { file: N, mutator: "StringLiteral", original: "'/'", replacement: "\"\"", reason: "a path with a backslash is refused by s.includes(\"\\\\\") whatever its normalised form; without one, the replace does nothing" },
  { file: N, mutator: "Regex", original: "/^(s3|https):\\/\\/[^/]+\\/.+/", replacement: "/^(s3|https):\\/\\/[^/]+\\/./", reason: "test() only asks for one character after the slash either way" },
  { file: N, mutator: "ConditionalExpression", original: "prefix === undefined", replacement: "false", reason: "/^[0-9]{1,3}$/.test(undefined) tests the text \"undefined\" and fails: the same false" },
  { file: N, mutator: "ConditionalExpression", original: "typeof x === 'number'", replacement: "true", reason: "Number.isFinite() is false for anything but a finite number: the typeof check adds nothing" },
  { file: N, mutator: "EqualityOperator", original: "JSON.stringify(a) < JSON.stringify(b)", replacement: "JSON.stringify(a) <= JSON.stringify(b)", reason: "the values are distinct (a Set) strings, finite numbers and booleans, whose JSON texts differ: the comparator never sees two equal" },
  { file: N, mutator: "ConditionalExpression", original: "bot.id !== ''", replacement: "true", reason: "an empty id then gives id = '', which the next line treats as no id (it is falsy): the same path" },
  { file: N, mutator: "StringLiteral", original: "''", replacement: "\"Stryker was here!\"", where: "bot.id !== ''", reason: "differs only for a bot whose id is the marker text \"Stryker was here!\" itself (not a valid id; its path would read bots[i] instead of bots[i] (Stryker was here!))" },
  { file: N, mutator: "ConditionalExpression", original: "v === undefined", replacement: "false", where: "!values.includes(v)", reason: "a selector's values never hold undefined (only strings, finite numbers and booleans are kept): includes(undefined) is false, as the check it replaces" },
  { file: N, mutator: "EqualityOperator", original: "a.id < b.id", replacement: "a.id <= b.id", reason: "ids are unique by then (duplicates are refused before sorting): the comparator never compares two equal ids" },
  { file: N, mutator: "EqualityOperator", original: "a.id > b.id", replacement: "a.id >= b.id", reason: "ids are unique by then (duplicates are refused before sorting): the comparator never compares two equal ids" },
  { file: N, mutator: "ConditionalExpression", original: "a.id > b.id", replacement: "true", reason: "ids are unique by then (duplicates are refused before sorting): the comparator never compares two equal ids, so 1 is the answer for every pair that is not less" },
  { file: N, mutator: "ConditionalExpression", original: "a.id > b.id", replacement: "false", reason: "Node's sort (V8's TimSort) only asks whether the comparator is below 0: answering 0 instead of 1 for a greater id sorts the same (checked on reversed, interleaved and galloping inputs of 300 ids)" },
  { file: N, mutator: "EqualityOperator", original: "a.id > b.id", replacement: "a.id <= b.id", reason: "ids are unique by then, so a.id <= b.id is false wherever it is asked (a.id < b.id was false): 0 instead of 1, and Node's sort (V8's TimSort) only asks whether the comparator is below 0" },
  { file: N, mutator: "Regex", original: "/-+$/", replacement: "/-$/", before: ".replace(/^[^a-z]+/, '').replace(", reason: "the suggested name is stripped of trailing \"-\" again after it is cut to length, which removes whatever this first strip leaves" },
  { file: "runtime/src/catalog/problems.ts", mutator: "ConditionalExpression", original: "value === undefined", replacement: "false", reason: "JSON.stringify(undefined) is undefined, and String(undefined) is 'undefined': the same text" },
  { file: "runtime/src/catalog/problems.ts", mutator: "ConditionalExpression", original: "best !== undefined", replacement: "true", reason: "best is undefined only without candidates, and then bestDistance is Infinity: the other half of the condition is false" },

  // ---- Catalog: group settings defaulted in normalization (optional: a shortcut only)
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "c.memory(o.poolOverhead", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "quarantineShare: c.number(o.quarantineShare", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "batchWindowMs: c.number(o.batchWindowMs", reason: OPTIONAL_SAME },
  { file: N, mutator: "BooleanLiteral", original: "true", replacement: "false", where: "batchMaxRows: c.number(o.batchMaxRows", reason: OPTIONAL_SAME },

  // ---- Routing
  { file: 'runtime/src/routing/admission.ts', mutator: 'ConditionalExpression', original: 'retryAfterSeconds !== undefined', replacement: 'true', reason: "sets a ProtocolError's retryAfterSeconds to undefined instead of leaving it out: every reader checks `!== undefined` first (oip/replies.ts sendError, oip/grpc.ts), so nothing is sent either way" },

  { file: 'runtime/src/routing/readiness.ts', mutator: 'Regex', original: '/^\\[|\\]$/g', replacement: '/\\[|\\]$/g', reason: "a URL's hostname holds brackets only around an IPv6 literal, at its start and end (URL parsing refuses them anywhere else): the anchors never change what is removed" },
  { file: 'runtime/src/routing/readiness.ts', mutator: 'Regex', original: '/^\\[|\\]$/g', replacement: '/^\\[|\\]/g', reason: "a URL's hostname holds brackets only around an IPv6 literal, at its start and end (URL parsing refuses them anywhere else): the anchors never change what is removed" },

  // ---- Haproxy
  { file: 'runtime/src/haproxy/config.ts', mutator: 'Regex', original: '/  +/g', replacement: '/  /g', where: "http-request return status", reason: 'only differs on three spaces in a row, which no rendered answer holds: the runs of two come from the indent and an empty headers part, and messages have single spaces (a test checks every line has no double space)' },
  { file: 'runtime/src/haproxy/config.ts', mutator: 'StringLiteral', original: "''", replacement: '"Stryker was here!"', where: '.map(([k, v]) => `hdr ${k} ${v} `).join(', reason: "the separator between a refusal's headers: no rule has two (the key refusals have www-authenticate only; rate and concurrency refusals retry-after only)" },

  // ---- Pool: load ordering
  { file: LO, mutator: 'ConditionalExpression', original: "first.payload.type !== 'unload'", replacement: 'false', reason: "withLoad is only given what nextControl returns, always a job of lane.control: for a load, the loop starts with it and returns [first] whatever its state, so the shortcut changes nothing" },
  { file: LO, mutator: 'ArrayDeclaration', original: '[]', replacement: '["Stryker was here"]', where: 'const held = new Set(', reason: 'adds that exact string to the held unload keys: no model key can equal it (head keys are `<bot id>#N`, bot ids lowercase letters, digits and "-"; encoder keys `encoder/<id>/<hash>`)' },
  { file: LO, mutator: 'ConditionalExpression', original: "!lane.control.some((j) => j.payload.type === 'load')", replacement: 'false', reason: 'a shortcut: only loads add entries to `after`; with no load waiting, the full rule blocks nothing and returns the same empty set' },
  { file: LO, mutator: 'ConditionalExpression', original: "j.payload.type === 'load'", replacement: 'true', where: "if (!lane.control.some((j) => j.payload.type === 'load'))", reason: 'a shortcut: with only unloads waiting the full rule that follows returns the same empty set' },
  { file: LO, mutator: 'EqualityOperator', original: 'job.seq > seq', replacement: 'job.seq >= seq', reason: "a request's seq never equals an unload's or 0: Lanes.nextSeq starts at 1 and numbers every job once" },

  // ---- Placement
  { file: BAL, mutator: "ConditionalExpression", original: "a.bot.id < b.bot.id", replacement: "true", where: "a.bot.id < b.bot.id", reason: BAL_ID_TIE },
  { file: PLAN, mutator: "ConditionalExpression", original: "a.bot.id < b.bot.id", replacement: "true", where: "a.bot.id < b.bot.id", reason: PLAN_ID_TIE },
  { file: BAL, mutator: "ConditionalExpression", original: "a.bot.id < b.bot.id", replacement: "false", where: "a.bot.id < b.bot.id", reason: BAL_ID_TIE },
  { file: PLAN, mutator: "ConditionalExpression", original: "a.bot.id < b.bot.id", replacement: "false", where: "a.bot.id < b.bot.id", reason: PLAN_ID_TIE },
  { file: BAL, mutator: "EqualityOperator", original: "a.bot.id < b.bot.id", replacement: "a.bot.id <= b.bot.id", where: "a.bot.id < b.bot.id", reason: BAL_ID_TIE },
  { file: PLAN, mutator: "EqualityOperator", original: "a.bot.id < b.bot.id", replacement: "a.bot.id <= b.bot.id", where: "a.bot.id < b.bot.id", reason: PLAN_ID_TIE },
  { file: BAL, mutator: "EqualityOperator", original: "a.bot.id < b.bot.id", replacement: "a.bot.id >= b.bot.id", where: "a.bot.id < b.bot.id", reason: BAL_ID_TIE },
  { file: PLAN, mutator: "EqualityOperator", original: "a.bot.id < b.bot.id", replacement: "a.bot.id >= b.bot.id", where: "a.bot.id < b.bot.id", reason: PLAN_ID_TIE },
  { file: BAL, mutator: "UnaryOperator", original: "-1", replacement: "+1", where: "a.bot.id < b.bot.id", reason: BAL_ID_TIE },
  { file: PLAN, mutator: "UnaryOperator", original: "-1", replacement: "+1", where: "a.bot.id < b.bot.id", reason: PLAN_ID_TIE },
  { file: BAL, mutator: "ConditionalExpression", original: "a.key.name < b.key.name", replacement: "true", where: "a.key.name < b.key.name", reason: KEY_TIE },
  { file: BAL, mutator: "ConditionalExpression", original: "a.key.name < b.key.name", replacement: "false", where: "a.key.name < b.key.name", reason: KEY_TIE },
  { file: BAL, mutator: "EqualityOperator", original: "a.key.name < b.key.name", replacement: "a.key.name <= b.key.name", where: "a.key.name < b.key.name", reason: KEY_TIE },
  { file: BAL, mutator: "EqualityOperator", original: "a.key.name < b.key.name", replacement: "a.key.name >= b.key.name", where: "a.key.name < b.key.name", reason: KEY_TIE },
  { file: BAL, mutator: "UnaryOperator", original: "-1", replacement: "+1", where: "a.key.name < b.key.name", reason: KEY_TIE },
  { file: BAL, mutator: "ConditionalExpression", original: "amount <= 0", replacement: "false", reason: "take() of 0 or fewer bytes: the check before the loop is repeated after it, and going on with 0 bytes moves nothing and leaves a zero-length segment in which no bot's middle can lie (a middle is strictly inside its bot's bytes), from which later takes get 0" },
  { file: BAL, mutator: "EqualityOperator", original: "amount <= 0", replacement: "amount < 0", reason: "take() of 0 or fewer bytes: the check before the loop is repeated after it, and going on with 0 bytes moves nothing and leaves a zero-length segment in which no bot's middle can lie (a middle is strictly inside its bot's bytes), from which later takes get 0" },
  { file: BAL, mutator: "ConditionalExpression", original: "amount === seg.to - seg.from", replacement: "false", reason: "handing over a whole segment by splitting it instead leaves a zero-length segment with the old pool: no bot's middle lies in it (a middle is strictly inside its bot's bytes), and later takes from it get 0" },
  { file: BAL, mutator: "ArithmeticOperator", original: "seg.to - seg.from", replacement: "seg.to + seg.from", where: "if (amount === seg.to - seg.from)", reason: "handing over a whole segment by splitting it instead leaves a zero-length segment with the old pool: no bot's middle lies in it (a middle is strictly inside its bot's bytes), and later takes from it get 0 (the two agree when the segment starts at 0)" },
  { file: BAL, mutator: "EqualityOperator", original: "p < q", replacement: "p <= q", reason: "pool q holds at most its target, total / (q + 1), which is never above the cap (total / level + a quarter, level <= q + 1): its excess is not positive, so nothing is taken" },
  { file: BAL, mutator: "ConditionalExpression", original: "taken < target", replacement: "true", reason: "once pool q has its target, every later take asks for 0 or fewer bytes (target - taken) and takes nothing; taken never passes the target" },
  { file: BAL, mutator: "EqualityOperator", original: "taken < target", replacement: "taken <= target", reason: "once pool q has its target, every later take asks for 0 or fewer bytes (target - taken) and takes nothing; taken never passes the target" },
  { file: BAL, mutator: "ConditionalExpression", original: "excess > 0", replacement: "true", reason: "take() of 0 or fewer bytes takes nothing: the loops only go on doing nothing" },
  { file: BAL, mutator: "EqualityOperator", original: "excess > 0", replacement: "excess >= 0", reason: "take() of 0 or fewer bytes takes nothing: the loops only go on doing nothing" },
  { file: BAL, mutator: "ConditionalExpression", original: "s < key.segments.length - 1", replacement: "true", reason: LAST_SEGMENT },
  { file: BAL, mutator: "EqualityOperator", original: "s < key.segments.length - 1", replacement: "s <= key.segments.length - 1", reason: LAST_SEGMENT },
  { file: BAL, mutator: "ArithmeticOperator", original: "key.segments.length - 1", replacement: "key.segments.length + 1", reason: LAST_SEGMENT },
  { file: PLAN, mutator: "ArrayDeclaration", original: "[scoreHi(idHash.hi, pools[i].hash.hi, l), l]", replacement: "[]", reason: "only for two pools with equal 64-bit scores for one key (a 64-bit collision): no catalog reaches it" },
  { file: PLAN, mutator: "ConditionalExpression", original: "c !== 0", replacement: "true", reason: "only for two pools with equal 64-bit scores for one key (a 64-bit collision): no catalog reaches it" },
  { file: PLAN, mutator: "EqualityOperator", original: "h > bestHi", replacement: "h >= bestHi", reason: HIGH_SCORE_TIE },
  { file: PLAN, mutator: "ConditionalExpression", original: "h === bestHi && l > bestLo", replacement: "false", reason: HIGH_SCORE_TIE },
  { file: PLAN, mutator: "ConditionalExpression", original: "l > bestLo", replacement: "true", reason: HIGH_SCORE_TIE },
  { file: PLAN, mutator: "EqualityOperator", original: "l > bestLo", replacement: "l >= bestLo", reason: HIGH_SCORE_TIE },
  { file: PLAN, mutator: "EqualityOperator", original: "l > bestLo", replacement: "l <= bestLo", reason: HIGH_SCORE_TIE },
  { file: PLAN, mutator: "UnaryOperator", original: "-1", replacement: "+1", where: "let bestHi = -1;", reason: "the first pool's score is always above -1 (scores are unsigned), so the starting best is replaced at once; with +1 it differs only when that score's 32-bit high half is 0 or 1 (about 1 in 2 billion)" },
  { file: PLAN, mutator: "UnaryOperator", original: "-1", replacement: "+1", where: "let bestLo = -1;", reason: "bestLo is compared only when a pool's high score equals bestHi, which the first pool's cannot (bestHi starts at -1)" },
  { file: PLAN, mutator: "ConditionalExpression", original: "!keyHash", replacement: "true", reason: "performance only: the same ranking is computed again instead of read from the cache (or the fast path skipped), with the same result: a key's hash recomputed gives equal values (a new object, so its ranking is recomputed too)" },
  { file: PLAN, mutator: "ConditionalExpression", original: "!ranking", replacement: "true", reason: "performance only: the same ranking is computed again instead of read from the cache (or the fast path skipped), with the same result" },
  { file: PLAN, mutator: "ConditionalExpression", original: "!shared", replacement: "false", reason: "performance only: the same ranking is computed again instead of read from the cache (or the fast path skipped), with the same result: a bot ranked alone goes to the first pool of its full ranking, the same top pool the fast path picks" },
  { file: PLAN, mutator: "BlockStatement", original: "{ // The common case: the top pool has room, and no full ranking is needed. let best = 0; let bestHi = -1; let bestLo = -1; for (let i = 0; i < n; i++) { const l = scoreLo(kLo, poolLo[i]); const h = scoreHi(kHi, poolHi[i], l); if (h > bestHi || (h === bestHi && l > bestLo)) { best = i; bestHi = h; bestLo = l; } } if (fits(pools[best], bot)) { put(pools[best], bot, costIn(pools[best], bot, encoderBytes)); continue; } }", replacement: "{}", reason: "performance only: the same ranking is computed again instead of read from the cache (or the fast path skipped), with the same result: without the fast path the full ranking picks the same top pool" },
  { file: PLAN, mutator: "ConditionalExpression", original: "fits(pools[best], bot)", replacement: "false", reason: "performance only: the same ranking is computed again instead of read from the cache (or the fast path skipped), with the same result: the full ranking that follows picks the same pool" },
  { file: PLAN, mutator: "BlockStatement", original: "{ put(pools[best], bot, costIn(pools[best], bot, encoderBytes)); continue; }", replacement: "{}", reason: "performance only: the same ranking is computed again instead of read from the cache (or the fast path skipped), with the same result: the full ranking that follows picks the same pool" },
  { file: PLAN, mutator: "ConditionalExpression", original: "shared", replacement: "true", where: "if (shared) rankings.set", reason: "caches the ranking of a bot ranked by its own id, under its own hash object: never read again" },
  { file: PLAN, mutator: "ConditionalExpression", original: "pool.used + bot.model.memory <= limit", replacement: "true", reason: "the head-alone check is a shortcut: the full check after it (head plus encoder, never less than the head) decides the same" },
  { file: PLAN, mutator: "ArithmeticOperator", original: "pool.used + bot.model.memory", replacement: "pool.used - bot.model.memory", reason: "the head-alone check is a shortcut: the full check after it (head plus encoder) decides whatever it lets through" },
  { file: PLAN, mutator: "EqualityOperator", original: "i < n", replacement: "i <= n", before: "^      for (let i = 0; ", reason: "the extra pass writes past the end of the Uint32Arrays (ignored) and rank() reads only the pools there are" },
  { file: PLAN, mutator: "EqualityOperator", original: "n < bots.length", replacement: "n <= bots.length", reason: "at n = bots.length the loop returns n, which is what the line after it returns" },
  { file: PLAN, mutator: "ConditionalExpression", original: "balanced", replacement: "true", where: "if (balanced) shared = fresh();", reason: "when the count is not balanced, shared was just made fresh: making it fresh again changes nothing" },
  { file: PLAN, mutator: "ConditionalExpression", original: "n >= hashed.length", replacement: "false", reason: "with at least as many pools as bots, hashing always places every bot (each fits an empty pool alone, and one is always left), so this throw is never reached" },
  { file: PLAN, mutator: "EqualityOperator", original: "n >= hashed.length", replacement: "n > hashed.length", reason: "with at least as many pools as bots, hashing always places every bot (each fits an empty pool alone, and one is always left), so this throw is never reached" },
  // ---- Rollout: the guards, the canary split, the figures, the catalog's candidate
  { file: FIG, mutator: 'MethodExpression', original: SORTED_RUNS, replacement: "Object.entries(f.runMs).map(([k, n]) => [Number(k), n] as const)", reason: INTEGER_KEYS_SORTED },
  { file: FIG, mutator: 'ArithmeticOperator', original: 'x[0] - y[0]', replacement: 'x[0] + y[0]', reason: INTEGER_KEYS_SORTED },
  { file: FIG, mutator: 'ArrowFunction', original: '(x, y) => x[0] - y[0]', replacement: '() => undefined', reason: INTEGER_KEYS_SORTED },
  { file: FIG, mutator: 'ArithmeticOperator', original: 'entries.length - 1', replacement: 'entries.length + 1', reason: 'unreachable: the loop before it returns once the counted runs reach the rank, which they always do (the rank is at most their total)' },
  { file: FIG, mutator: 'EqualityOperator', original: 'ms > FIRST_MS', replacement: 'ms >= FIRST_MS', reason: 'at ms = FIRST_MS both give bucket 0: the formula gives ceil(log(1) / log(1.1)) = 0 too' },
  { file: 'runtime/src/catalog/candidate.ts', mutator: 'StringLiteral', original: "'shadow'", replacement: '""', where: 'MODES.includes', reason: 'the fallback mode of an invalid `mode`, which is reported: a catalog with any problem is refused, so no caller sees it' },
  { file: 'runtime/src/catalog/candidate.ts', mutator: 'BooleanLiteral', original: 'true', replacement: 'false', where: 'optional: true', reason: OPTIONAL_SAME },
  { file: GUARDS, mutator: 'ConditionalExpression', original: 'candidate.compared > 0', replacement: 'true', reason: NAN_AGREEMENT },
  { file: GUARDS, mutator: 'EqualityOperator', original: 'candidate.compared > 0', replacement: 'candidate.compared >= 0', reason: NAN_AGREEMENT },
  { file: GUARDS, mutator: 'ConditionalExpression', original: 'serving.texts === 0', replacement: 'false', reason: 'the serving version has answered requests here (checked just before), and every answered request has at least one text (N >= 1)' },
  { file: GUARDS, mutator: 'LogicalOperator', original: P99S, replacement: 'p99.serving !== null && p99.candidate !== null || p99.serving > 0', reason: BOTH_P99 },
  { file: GUARDS, mutator: 'ConditionalExpression', original: 'p99.serving !== null && p99.candidate !== null', replacement: 'true', reason: BOTH_P99 },
  { file: GUARDS, mutator: 'LogicalOperator', original: 'p99.serving !== null && p99.candidate !== null', replacement: 'p99.serving !== null || p99.candidate !== null', reason: BOTH_P99 },
  { file: GUARDS, mutator: 'ConditionalExpression', original: 'p99.serving !== null', replacement: 'true', reason: BOTH_P99 },
  { file: GUARDS, mutator: 'ConditionalExpression', original: 'p99.candidate !== null', replacement: 'true', reason: BOTH_P99 },
  { file: GUARDS, mutator: 'ConditionalExpression', original: 'p99.serving > 0', replacement: 'true', reason: BOTH_P99 },
  { file: GUARDS, mutator: 'EqualityOperator', original: 'p99.serving > 0', replacement: 'p99.serving >= 0', reason: BOTH_P99 },
  { file: SPLIT, mutator: 'ConditionalExpression', original: 'share >= 1', replacement: 'false', reason: SHARE_ONE },
  { file: SPLIT, mutator: 'EqualityOperator', original: 'share >= 1', replacement: 'share > 1', reason: SHARE_ONE },
  { file: SPLIT, mutator: 'ConditionalExpression', original: 'share > 0', replacement: 'true', reason: SHARE_ZERO },
  { file: SPLIT, mutator: 'EqualityOperator', original: 'share > 0', replacement: 'share >= 0', reason: SHARE_ZERO },
];

/**
 * Surviving mutants that are neither killed by a test nor shown equivalent: what is known of each. They
 * count against the score like any survivor.
 */
export const NOT_KILLED: Equivalent[] = [
  {
    file: SPLIT,
    mutator: 'ArithmeticOperator',
    original: 'h.hi * 2 ** 21 + (h.lo >>> 11)',
    replacement: 'h.hi * 2 ** 21 - (h.lo >>> 11)',
    reason: 'moves each point by less than 2^-31 (twice the low 21 bits over 2^53): it changes the side of a key only when its point lies that close to the share, about one key in two billion; no test key found does, and the uniformity tests cannot see it',
  },
  {
    file: BAL,
    mutator: 'ArithmeticOperator',
    original: 'target - taken',
    replacement: 'target + taken',
    reason:
      'would let pool q take past its target in the first phase only if the pools before it held more above the cap than its target: with every pool at or below its own target the sum of excesses stays under total / (q + 1), and 7,000 random tight catalogs (2 to 8 pools, fill factors 0.3 to 1) found none where it differs; not proven',
  },
  {
    file: PLAN,
    mutator: 'ArithmeticOperator',
    original: 'group.memory - group.poolOverhead',
    replacement: 'group.memory + group.poolOverhead',
    reason:
      'only used when the fill factor leaves nothing above the overhead; the larger capacity starts the count lower, and the count then grows until hashing fits, which it reaches at the same count unless hashing fits fewer pools than the estimate (encoders landing in fewer pools than counted); 3,000 random catalogs found none; not proven',
  },
];
