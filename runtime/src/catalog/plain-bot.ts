/**
 * A bot that breaks no rule, read in one pass: no field path is built, nothing is reported, and each
 * value is tested by the same rule the Checker applies (checker.ts, names.ts, memory.ts, regex.ts).
 * At the first thing that is not plainly valid (or not plain data: a class instance, a candidate
 * version), `plainBot` gives up and the bot is read again by `normalizeBot`, which reports every
 * problem with its path and fix. So it changes no report; for a valid bot it gives what `normalizeBot`
 * gives, field for field and in the same key order (test/catalog/plain-bot.test.ts holds it to that).
 */
import { MAX_BOT_ID, MODEL_VERSION, isDnsLabel } from './names';
import { inRange, isPropertyKey, isRegexFlags, isSha256, modelPathFault } from './checker';
import { parseMemory } from './memory';
import { checkRe2 } from './regex';
import { PropertyValue } from './input';
import { Bot, EntityRule, Intent, Model, Postprocess, RewriteRule } from './types';

type Plain = Record<string, unknown>;

/** The empty list bots share (frozen: see Catalog). */
export const NONE: never[] = Object.freeze([]) as never[];

/** The list, or the shared empty one. */
export function orNone<T>(list: T[]): T[] {
  return list.length === 0 ? NONE : list;
}

/** The postprocess bots without one share (frozen: see Catalog). */
const NO_POSTPROCESS: Postprocess = Object.freeze({ threshold: 0, fallback: 'fallback', entities: NONE });

/** A postprocess, the shared one when it is the default. */
export function postprocessOf(threshold: number, fallback: string, entities: EntityRule[]): Postprocess {
  return threshold === 0 && fallback === 'fallback' && entities.length === 0 ? NO_POSTPROCESS : { threshold, fallback, entities };
}

/** A step in the lists of shared intents seen: the list so far, and the steps on by each next intent. */
interface ListNode {
  list?: Intent[];
  next?: Map<Intent, ListNode>;
}
/** Lists of shared intents kept at most (a catalog of bots built from templates has a few). */
const LISTS_MAX = 100_000;

/**
 * What bots of one catalog share: one frozen intent per name without examples (bots reuse label names),
 * one frozen list of such intents per sequence of them (bots built from one template have the same
 * labels), and the one string of each tenant and encoder id (a bot that names one holds the catalog's
 * string, not a copy of its own: less to keep once the input is dropped, and each lookup by it finds a
 * hash already computed).
 */
export class Shared {
  private readonly intents = new Map<string, Intent>();
  private readonly lists: ListNode = {};
  private listSteps = 0;
  private readonly ids: Map<string, string>;

  constructor(ids: Iterable<string> = []) {
    this.ids = new Map([...ids].map((id) => [id, id]));
  }

  /** The catalog's own string for a tenant or encoder id (the given one if it names none). */
  id(s: string): string {
    return this.ids.get(s) ?? s;
  }

  intent(name: string): Intent {
    let intent = this.intents.get(name);
    if (!intent) this.intents.set(name, (intent = Object.freeze({ name, examples: NONE })));
    return intent;
  }

  /** The shared list of the same shared intents in the same order (found step by step, by identity). */
  intentList(intents: Intent[]): Intent[] {
    let node = this.lists;
    for (const intent of intents) {
      let step = node.next?.get(intent);
      if (!step) {
        if (this.listSteps >= LISTS_MAX) return intents;
        (node.next ??= new Map()).set(intent, (step = {}));
        this.listSteps++;
      }
      node = step;
    }
    return (node.list ??= Object.freeze(intents) as Intent[]);
  }
}

const BOT = new Set(['id', 'tenant', 'realtime', 'properties', 'model', 'intents', 'preprocess', 'postprocess', 'pin', 'warm']);
const MODEL = new Set(['head', 'sha256', 'memory', 'encoder', 'version']);
const INTENT = new Set(['name', 'examples']);
const REWRITE = new Set(['pattern', 'replace', 'flags']);
const POSTPROCESS = new Set(['threshold', 'fallback', 'entities']);
const ENTITY = new Set(['name', 'pattern', 'flags']);
const FIELDS = [BOT, MODEL, INTENT, REWRITE, POSTPROCESS, ENTITY].flatMap((s) => [...s]);

/**
 * Whether plain objects read as `plainBot` assumes: `Object.prototype` has no enumerable key (so `for
 * ... in` lists an object's own keys, as `Object.keys` does) and none of the fields (so a field that
 * reads as set is the object's own, as the Checker's "is required" asks). Checked once per catalog.
 */
export function plainObjectsAreOwn(): boolean {
  for (const _ in Object.prototype) return false;
  return FIELDS.every((k) => !(k in Object.prototype));
}

/** An object literal or JSON object whose every key is in `known`. */
function plain(v: unknown, known: ReadonlySet<string>): v is Plain {
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) return false;
  for (const key in v) if (!known.has(key)) return false;
  return true;
}

const text = (v: unknown): v is string => typeof v === 'string' && v !== '';

/** The bot, or undefined when anything in it needs the Checker (`plainObjectsAreOwn()` must hold). */
export function plainBot(b: unknown, shared: Shared): Bot | undefined {
  if (!plain(b, BOT) || typeof b.id !== 'string' || !isDnsLabel(b.id, MAX_BOT_ID) || !text(b.tenant) || typeof b.realtime !== 'boolean') return undefined;
  const properties = b.properties === undefined ? {} : plainProperties(b.properties);
  const model = plainModel(b.model, shared);
  const intents = plainIntents(b.intents, shared);
  const preprocess = b.preprocess === undefined ? NONE : plainList(b.preprocess, plainRewrite);
  const post = b.postprocess === undefined ? {} : b.postprocess;
  if (!properties || !model || !intents || !preprocess || !plain(post, POSTPROCESS)) return undefined;
  const entities = post.entities === undefined ? NONE : plainList(post.entities, plainEntity);
  const threshold = post.threshold === undefined ? 0 : post.threshold;
  const fallback = post.fallback === undefined ? 'fallback' : post.fallback;
  if (!entities || !inRange(threshold, { min: 0, max: 1 }) || !text(fallback)) return undefined;
  if ((b.pin !== undefined && !text(b.pin)) || (b.warm !== undefined && typeof b.warm !== 'boolean')) return undefined;
  const bot: Bot = { id: b.id, tenant: shared.id(b.tenant), realtime: b.realtime, properties, model, intents, preprocess, postprocess: postprocessOf(threshold, fallback, entities) };
  if (b.pin !== undefined) bot.pin = b.pin as string;
  if (b.warm === true) bot.warm = true;
  return bot;
}

function plainProperties(v: unknown): Record<string, PropertyValue> | undefined {
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) return undefined;
  const properties: Record<string, PropertyValue> = {};
  for (const k in v) {
    const val = (v as Plain)[k];
    if (!isPropertyKey(k)) return undefined;
    if (typeof val === 'string' || typeof val === 'boolean' || (typeof val === 'number' && Number.isFinite(val))) properties[k] = val;
    else return undefined;
  }
  return properties;
}

function plainModel(m: unknown, shared: Shared): Model | undefined {
  if (!plain(m, MODEL) || !text(m.head) || modelPathFault(m.head) !== undefined) return undefined;
  const memory = parseMemory(m.memory);
  if (memory === undefined || (m.sha256 !== undefined && !isSha256(m.sha256))) return undefined;
  if ((m.encoder !== undefined && !text(m.encoder)) || (m.version !== undefined && !(text(m.version) && MODEL_VERSION.test(m.version)))) return undefined;
  const model: Model = m.sha256 === undefined ? { head: m.head, memory } : { head: m.head, sha256: (m.sha256 as string).toLowerCase(), memory };
  if (m.encoder !== undefined) model.encoder = shared.id(m.encoder as string);
  if (m.version !== undefined) model.version = m.version as string;
  return model;
}

function plainIntents(v: unknown, shared: Shared): Intent[] | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  const intents: Intent[] = [];
  let examplesSeen = false;
  for (let i = 0; i < v.length; i++) {
    const t: unknown = v[i];
    if (!plain(t, INTENT) || !text(t.name)) return undefined;
    for (let j = 0; j < i; j++) if (intents[j].name === t.name) return undefined;
    const examples = t.examples === undefined ? NONE : t.examples;
    if (!Array.isArray(examples)) return undefined;
    for (let j = 0; j < examples.length; j++) if (!text(examples[j])) return undefined;
    examplesSeen ||= examples.length > 0;
    intents.push(examples.length === 0 ? shared.intent(t.name) : { name: t.name, examples: examples.slice() });
  }
  return examplesSeen ? intents : shared.intentList(intents);
}

/** Each element read by `read`, or undefined when `v` is not an array or one of them is not plain. */
function plainList<T>(v: unknown, read: (r: unknown) => T | undefined): T[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: T[] = [];
  for (let i = 0; i < v.length; i++) {
    const r = read(v[i]);
    if (r === undefined) return undefined;
    out.push(r);
  }
  return orNone(out);
}

/** A pattern and flags RE2 accepts, the flags as the Checker fills them (""), or undefined. */
function plainRegex(pattern: unknown, flags: unknown): { pattern: string; flags: string } | undefined {
  if (!text(pattern) || (flags !== undefined && !isRegexFlags(flags))) return undefined;
  const f = flags === undefined ? '' : flags;
  return checkRe2(pattern, f) === undefined ? { pattern, flags: f } : undefined;
}

function plainRewrite(r: unknown): RewriteRule | undefined {
  if (!plain(r, REWRITE) || typeof r.replace !== 'string') return undefined;
  const re = plainRegex(r.pattern, r.flags);
  return re && { pattern: re.pattern, replace: r.replace, flags: re.flags };
}

function plainEntity(r: unknown): EntityRule | undefined {
  if (!plain(r, ENTITY) || !text(r.name)) return undefined;
  const re = plainRegex(r.pattern, r.flags);
  return re && { name: r.name, pattern: re.pattern, flags: re.flags };
}
