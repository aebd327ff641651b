/** The catalog's `bots` section: each bot with its model, intents and pre- and post-processing rules. */
import { normalizeCandidate, versionLabel } from './candidate';
import { Checker, isObj } from './checker';
import { MAX_BOT_ID } from './names';
import { show } from './problems';
import { PropertyValue } from './input';
import { orNone, postprocessOf } from './plain-bot';
import { Bot, EntityRule, Intent, RewriteRule } from './types';

const BOT_FIELDS = ['id', 'tenant', 'realtime', 'properties', 'model', 'intents', 'preprocess', 'postprocess', 'pin', 'warm'];

/**
 * Where a bot is in the input: its index and, when it has one, its id (`bots[42] (acme-support-en)`):
 * configs build their bots with `.map()`, so an index alone is hard to find.
 */
export function botPath(index: number, bot: unknown): string {
  const id = isObj(bot) && typeof bot.id === 'string' && bot.id !== '' ? bot.id : undefined;
  return id ? `bots[${index}] (${id.slice(0, 80)})` : `bots[${index}]`;
}

/** One bot; problems are reported in the order of its fields below (tests read them in that order). */
export function normalizeBot(c: Checker, b: unknown, p: string): Bot | undefined {
  const o = c.object(b, p, BOT_FIELDS, ['id', 'tenant', 'realtime', 'model', 'intents']);
  if (!o) return undefined;
  const properties = o.properties === undefined ? {} : botProperties(c, o.properties, `${p}.properties`);
  const model = botModel(c, o.model, `${p}.model`);
  const intents = botIntents(c, o.intents, `${p}.intents`);
  const preprocess = rewriteRules(c, o.preprocess, `${p}.preprocess`);
  const pp = `${p}.postprocess`;
  const post = o.postprocess === undefined ? {} : (c.object(o.postprocess, pp, ['threshold', 'fallback', 'entities']) ?? {});
  const entities = entityRules(c, post.entities, `${pp}.entities`);
  const bot: Bot = {
    id: c.dnsLabel(o.id, `${p}.id`, 'bot id', MAX_BOT_ID),
    tenant: c.string(o.tenant, `${p}.tenant`, ''),
    realtime: c.boolean(o.realtime, `${p}.realtime`, false),
    properties,
    model,
    intents,
    preprocess,
    postprocess: postprocessOf(
      c.number(post.threshold, `${pp}.threshold`, 0, { min: 0, max: 1, optional: true }),
      c.string(post.fallback, `${pp}.fallback`, 'fallback', true),
      entities,
    ),
  };
  if (o.pin !== undefined) bot.pin = c.string(o.pin, `${p}.pin`, '');
  if (o.warm !== undefined && c.boolean(o.warm, `${p}.warm`, false)) bot.warm = true;
  return bot;
}

function botProperties(c: Checker, v: unknown, p: string): Record<string, PropertyValue> {
  const properties: Record<string, PropertyValue> = {};
  const props = c.object(v, p, Object.keys(isObj(v) ? v : {}));
  for (const [k, val] of Object.entries(props ?? {})) {
    c.propertyKey(k, `${p}.${k}`);
    if (typeof val === 'string' || typeof val === 'boolean' || (typeof val === 'number' && Number.isFinite(val))) properties[k] = val;
    else c.add(`${p}.${k}`, `must be a string, number or boolean, got ${show(val)}`, 'use a plain value');
  }
  return properties;
}

function botModel(c: Checker, v: unknown, mp: string): Bot['model'] {
  const m = v === undefined ? undefined : c.object(v, mp, ['head', 'sha256', 'memory', 'encoder', 'version', 'candidate'], ['head', 'memory']);
  const sha256 = c.sha256(m?.sha256, `${mp}.sha256`);
  const model: Bot['model'] = {
    head: c.modelPath(m?.head, `${mp}.head`),
    ...(sha256 !== undefined ? { sha256 } : {}),
    memory: c.memory(m?.memory, `${mp}.memory`, 0),
  };
  if (m?.encoder !== undefined) model.encoder = c.string(m.encoder, `${mp}.encoder`, '');
  if (m?.version !== undefined) model.version = versionLabel(c, m.version, `${mp}.version`);
  if (m?.candidate !== undefined) model.candidate = normalizeCandidate(c, m.candidate, `${mp}.candidate`, model.version);
  return model;
}

function botIntents(c: Checker, v: unknown, p: string): Intent[] {
  const intents: Intent[] = [];
  const list = c.array(v, p);
  if (Array.isArray(v) && list.length === 0) c.add(p, 'is empty', 'list the labels of the bot\'s head, in output order');
  list.forEach((t, i) => {
    const ip = `${p}[${i}]`;
    const io = c.object(t, ip, ['name', 'examples'], ['name']);
    if (!io) return;
    intents.push({
      name: c.string(io.name, `${ip}.name`, ''),
      examples: orNone(c.array(io.examples, `${ip}.examples`, true).map((e, j) => c.string(e, `${ip}.examples[${j}]`, ''))),
    });
  });
  c.unique(intents.map((t, i) => ({ id: t.name, path: `${p}[${i}].name` })), 'intent name');
  return intents;
}

function rewriteRules(c: Checker, v: unknown, p: string): RewriteRule[] {
  return orNone(c.array(v, p, true).flatMap((r, i) => {
    const rp = `${p}[${i}]`;
    const ro = c.object(r, rp, ['pattern', 'replace', 'flags'], ['pattern', 'replace']);
    if (!ro) return [];
    const re = c.regex(ro.pattern, ro.flags, rp);
    const replace = typeof ro.replace === 'string' ? ro.replace : '';
    if (ro.replace !== undefined && typeof ro.replace !== 'string') c.add(`${rp}.replace`, `must be a string, got ${show(ro.replace)}`, 'use "" to delete the match');
    return [{ pattern: re.pattern, replace, flags: re.flags }];
  }));
}

function entityRules(c: Checker, v: unknown, p: string): EntityRule[] {
  return orNone(c.array(v, p, true).flatMap((r, i) => {
    const rp = `${p}[${i}]`;
    const ro = c.object(r, rp, ['name', 'pattern', 'flags'], ['name', 'pattern']);
    if (!ro) return [];
    const re = c.regex(ro.pattern, ro.flags, rp);
    return [{ name: c.string(ro.name, `${rp}.name`, ''), pattern: re.pattern, flags: re.flags }];
  }));
}
