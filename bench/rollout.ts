/**
 * npm run bench:rollout
 *
 * Model rollouts (issue #31) on one real `botshard pool` process on 127.0.0.1 (2 inference workers, the
 * catalog a mounted-style folder the pool polls every 100 ms), two bots of 10 intents on one shared bag
 * encoder: `main` (the bot whose versions change) and `mate` (a pool-mate that never changes). Every
 * request is `POST /v2/models/{bot}/infer` with one text from a seeded corpus (the intents' examples with
 * 0-3 filler words added), so every answer carries its `model_version`. In order:
 *
 * 1. capacity: the pool's requests/s on `main` (closed loop, 16 connections, no candidate);
 * 2. swap: under steady load (4 connections on `main`, 2 on `mate`) the catalog points `main`'s head at a
 *    new good file (version "2"): requests that did not answer 200, and when version 2 first answered;
 * 3. bad version: same load, the catalog points the head at a corrupt file (version "3") until the pool
 *    has failed to load it twice (with its backoff), then back to version 2: requests that did not answer 200;
 * 4. shadow cost: `main` with a good shadow candidate (share 1) against no candidate, alternating rounds
 *    (ABBA, catalog edits between them), each driven open loop at half the capacity measured in step 1
 *    (requests sent at a fixed rate whatever the answers): the serving answers' p99 per round, and the
 *    ratio of the medians over rounds (as bench:isolation), beside the p99 of all answers pooled;
 * 5. canary rollback: a degraded candidate (labels partly shuffled, its temperature tuned offline so its
 *    fallback rate on this corpus is about 30 points above the serving version's) as a canary with share
 *    0.5 and guards.minRequests 200, under load with a distinct conversation key per request, until the
 *    pool rolls it back: the candidate's requests in the pool's figures, and the fallback rise measured;
 * 6. canary share: a good canary with share 0.3 (judging disabled: minRequests 1,000,000, so only the
 *    split is measured), 5,000 distinct `x-conversation-id`s: the observed share of answers from the
 *    candidate, and whether 500 of those conversations, asked again, stay on their side;
 * 7. shadow agreement: the degraded head as a shadow (share 1, guards that never roll it back), texts sent
 *    one after the other, each copy run before the next (a dropped copy's text is sent again): the pool's agreement against demoAgreement (the same
 *    heads computed offline in JS) on the same texts.
 *
 * Headline: rolloutSwapFailedRequests, rolloutBadVersionFailedRequests, shadowServingP99OverNoShadow,
 * canaryRollbackRequests, canaryShareErrorPp, shadowAgreementPct (with shadowAgreementOfflinePct and
 * shadowAgreementDiffPp), plus the figures they come from. Writes bench/results/rollout.{json,md}.
 * Bounded: about 2 minutes on 2 cores; every phase has a request and a time cap.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool as HttpPool } from 'undici';
import { Catalog, parseCatalog, plan, writeCatalogFolder } from '@botshard/runtime';
import type { BotInput, CandidateInput, CatalogInput } from '@botshard/runtime/catalog';
import { DemoModelOptions, demoAgreement, demoAnswerer, writeDemoModels } from '@botshard/runtime/local/models';
import { Figures, RawFigures, figuresOf } from '@botshard/runtime/status/figures';
import { Child, CORES, log, machine, percentile, rng, round, sleep, SMOKE, spread, startPool, stopAll, tempDir, writeResult } from './processes';

// ---------------------------------------------------------------- settings

const CAPACITY_S = SMOKE ? 1 : 4;
const CAPACITY_CONNECTIONS = 16;
/** Steady load during the swap and the bad version: connections on `main` and on `mate` (as in issue #31). */
const STEADY = { main: 4, mate: 2 };
const P99_ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 24));
const P99_SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const P99_WARMUP_S = 0.3;
/** Open-loop connections (enough that the offered rate never waits for a free one). */
const OPEN_CONNECTIONS = 64;
const CANARY_SHARE_ROLLBACK = 0.5;
const CANARY_CONNECTIONS = 8;
const SHARE = 0.3;
const SHARE_CONVERSATIONS = SMOKE ? 500 : 5000;
const STICKY_CONVERSATIONS = SMOKE ? 50 : 500;
const AGREEMENT_TEXTS = Number(process.env.BENCH_AGREEMENT_TEXTS ?? (SMOKE ? 100 : 1000));
/** The degraded candidate: this share of its intents learn another intent's examples; its temperature is tuned for the fallback rise. */
const DEGRADED_SHUFFLE = 0.3;
const TARGET_FALLBACK_RISE_PP = 30;
const THRESHOLD = 0.5;
const CORPUS = 2000;
/** The degraded head is tuned on the corpus's first texts: what the canary phase sends (from the start of the corpus, about 450 requests). */
const TUNE_TEXTS = 500;

/** The issue's targets (#31, "Benchmark"). */
const TARGETS = {
  rolloutSwapFailedRequests: { max: 0 },
  rolloutBadVersionFailedRequests: { max: 0 },
  shadowServingP99OverNoShadow: { max: 1.1 },
  canaryRollbackRequests: { max: 260 },
  canaryShareErrorPp: { max: 2 },
  shadowAgreementDiffPp: { max: 1 },
} as const;

// ---------------------------------------------------------------- catalog, models, texts

/** Ten intents with three examples each: the demo bots of these benchmarks and of test/local/degraded-head.test.ts. */
export const INTENTS = [
  { name: 'password_reset', examples: ['I forgot my password', 'reset my password please', 'cannot log in to my account'] },
  { name: 'billing', examples: ['why was I charged twice', 'question about my invoice', 'my bill is wrong'] },
  { name: 'cancel_subscription', examples: ['cancel my subscription', 'I want to stop my plan', 'end my membership'] },
  { name: 'greeting', examples: ['hello there', 'hi good morning', 'hey'] },
  { name: 'balance', examples: ['what is my balance', 'how much money do I have', 'show my account balance'] },
  { name: 'transfer', examples: ['send money to my sister', 'transfer 50 euros to savings', 'make a bank transfer'] },
  { name: 'card_lost', examples: ['I lost my card', 'my credit card was stolen', 'block my card'] },
  { name: 'book_flight', examples: ['book a flight to paris', 'I need a plane ticket', 'find flights to berlin tomorrow'] },
  { name: 'cancel_booking', examples: ['cancel my booking', 'I cannot travel please cancel', 'refund my trip'] },
  { name: 'baggage', examples: ['how many bags can I take', 'my luggage is lost', 'baggage allowance'] },
];
const FILLER = ['please', 'today', 'now', 'again', 'thanks', 'quickly', 'the', 'for', 'me', 'can', 'you', 'help', 'with', 'this', 'urgent', 'still', 'asap', 'hi'];
const FALLBACK = 'fallback';
const MAIN = 'main';
const MATE = 'mate';

const HEADS = {
  v1: 'heads/main.onnx',
  v2: 'heads/main-v2.onnx',
  corrupt: 'heads/main-corrupt.onnx',
  shadowGood: 'heads/main-shadow.onnx',
  canaryGood: 'heads/main-canary.onnx',
  degraded: 'heads/main-degraded.onnx',
};
const VERSIONS = { v1: '1', v2: '2', corrupt: '3', shadowGood: '3-shadow', degradedCanary: '3-degraded', canaryGood: '3-canary', degradedShadow: '3-degraded-shadow' };

/** Guards that never roll a candidate back (the phase measures something else). */
const NEVER = { minAgreementPct: 0, maxFallbackRisePp: 100, maxP99Ratio: 1000, maxErrorRate: 1 };

function bot(id: string, model: BotInput['model']): BotInput {
  return { id, tenant: 'acme', realtime: true, model, intents: INTENTS, postprocess: { threshold: THRESHOLD, fallback: FALLBACK, entities: [] } };
}

/** `main` at a head and version, with an optional candidate; `mate` unchanged. */
function catalogOf(head: string, version: string, candidate?: CandidateInput): Catalog {
  const input: CatalogInput = {
    tenants: [{ id: 'acme' }],
    encoders: [{ id: 'encoder-en', path: 'encoders/en.onnx', memory: '4Mi', tokenizer: { kind: 'hashing', buckets: 4096 }, dimensions: 64 }],
    groups: [{ name: 'rt', realtime: true, memory: '1Gi', pools: 1, poolOverhead: '100Mi', locality: 'none' }],
    bots: [
      bot(MAIN, { head, version, memory: '2Mi', encoder: 'encoder-en', ...(candidate ? { candidate } : {}) }),
      bot(MATE, { head: 'heads/mate.onnx', memory: '2Mi', encoder: 'encoder-en' }),
    ],
  };
  return parseCatalog(input);
}

const candidateOf = (version: string, head: string, mode: 'shadow' | 'canary', share: number, guards: CandidateInput['guards']): CandidateInput => ({ version, head, memory: '2Mi', encoder: 'encoder-en', mode, share, guards });


/** The traffic: an intent's example with 0-3 filler words inserted (some fall below the threshold). */
function corpus(n: number, seed: number): string[] {
  const random = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
  return Array.from({ length: n }, () => {
    const words = pick(pick(INTENTS).examples).split(' ');
    const extra = Math.floor(random() * 4);
    for (let k = 0; k < extra; k++) words.splice(Math.floor(random() * (words.length + 1)), 0, pick(FILLER));
    return words.join(' ');
  });
}

const fallbackPct = (answers: Array<{ intent: string }>) => (100 * answers.filter((a) => a.intent === FALLBACK).length) / answers.length;

/**
 * The degraded head's temperature: the one (4.0 to 8.0 by 0.1) whose fallback rate on the canary's traffic, computed
 * offline as the pool answers, is closest to TARGET_FALLBACK_RISE_PP above the serving version's.
 */
function tuneDegradation(catalog: Catalog, all: string[]) {
  const texts = all.slice(0, TUNE_TEXTS);
  const serving = texts.map(demoAnswerer(catalog, MAIN, HEADS.v2));
  const servingPct = fallbackPct(serving);
  let best = { temperature: 0, risePp: Infinity, agreementPct: 0 };
  for (let t = 40; t <= 80; t++) {
    const temperature = t / 10;
    const answers = texts.map(demoAnswerer(catalog, MAIN, HEADS.degraded, degradedOptions(temperature)));
    const risePp = fallbackPct(answers) - servingPct;
    if (Math.abs(risePp - TARGET_FALLBACK_RISE_PP) < Math.abs(best.risePp - TARGET_FALLBACK_RISE_PP)) {
      best = { temperature, risePp, agreementPct: (100 * answers.filter((a, i) => a.intent === serving[i].intent).length) / texts.length };
    }
  }
  return { shuffle: DEGRADED_SHUFFLE, temperature: best.temperature, texts: texts.length, servingFallbackPct: round(servingPct, 2), offlineRisePp: round(best.risePp, 2), offlineAgreementPct: round(best.agreementPct, 2) };
}

const degradedOptions = (temperature: number): DemoModelOptions => ({ degraded: { [HEADS.degraded]: { shuffle: DEGRADED_SHUFFLE, temperature } } });

// ---------------------------------------------------------------- talking to the pool

interface Reply {
  status: number;
  version?: string;
  intent?: string;
}

async function infer(client: HttpPool, bot: string, text: string, conversation?: string): Promise<Reply> {
  try {
    const res = await client.request({
      method: 'POST',
      path: `/v2/models/${bot}/infer`,
      headers: { 'content-type': 'application/json', ...(conversation ? { 'x-conversation-id': conversation } : {}) },
      body: JSON.stringify({ inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: [text] }] }),
    });
    const body = (await res.body.json()) as any;
    if (res.statusCode !== 200) return { status: res.statusCode, intent: body?.error };
    return { status: 200, version: body.model_version, intent: body.outputs?.find((o: any) => o.name === 'intent')?.data?.[0] };
  } catch (e) {
    return { status: 0, intent: (e as Error).message };
  }
}

/** Answers of a phase: how many, which failed (by status, with a few messages), which version answered. */
class Tally {
  sent = 0;
  failed = 0;
  byStatus: Record<string, number> = {};
  byVersion: Record<string, number> = {};
  errors: string[] = [];
  add(r: Reply): void {
    this.sent++;
    this.byStatus[r.status] = (this.byStatus[r.status] ?? 0) + 1;
    if (r.status !== 200) {
      this.failed++;
      if (this.errors.length < 5) this.errors.push(`${r.status}: ${r.intent ?? ''}`.slice(0, 300));
      return;
    }
    this.byVersion[r.version ?? '?'] = (this.byVersion[r.version ?? '?'] ?? 0) + 1;
  }
  json() {
    return { sent: this.sent, failed: this.failed, byStatus: this.byStatus, byVersion: this.byVersion, ...(this.errors.length ? { firstErrors: this.errors } : {}) };
  }
}

/** `connections` loops sending one request after another until `stop()` (or `maxMs`), each with the next index. */
async function closedLoop(connections: number, stop: () => boolean, maxMs: number, call: (i: number) => Promise<void>): Promise<number> {
  let i = 0;
  const started = performance.now();
  const end = started + maxMs;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (!stop() && performance.now() < end) await call(i++);
    }),
  );
  return (performance.now() - started) / 1000;
}

/**
 * Open loop: requests scheduled every 1000/rate ms for `seconds` (sent on 1-2 ms ticks) whatever the
 * answers; latency counted from each request's scheduled time, so a stalled pool cannot hide its delay.
 */
async function paced(rate: number, seconds: number, call: (i: number, scheduled: number) => Promise<void>): Promise<void> {
  const gap = 1000 / rate;
  const start = performance.now();
  const total = Math.floor(rate * seconds);
  const pending: Array<Promise<void>> = [];
  let i = 0;
  while (i < total) {
    const now = performance.now();
    while (i < total && start + i * gap <= now) {
      pending.push(call(i, start + i * gap));
      i++;
    }
    if (i < total) await sleep(Math.max(0, Math.min(2, start + i * gap - performance.now())));
  }
  await Promise.all(pending);
}

interface RolloutView {
  bot: string;
  serving: string;
  candidate: string;
  mode: string;
  share: number;
  state: string;
  rolledBack?: { guard: string; candidate: number; limit: number; serving?: number; reason: string; at: string };
  figures: { serving: RawFigures; candidate: RawFigures };
}

async function status(url: string): Promise<any> {
  const res = await fetch(`${url}/botshard/status`);
  return res.json();
}
const rolloutOf = (s: any): RolloutView | undefined => s.rollouts?.find((r: RolloutView) => r.bot === MAIN);

/** Waits (polling the pool's status) until `ok` holds; fails after `ms` with what it waited for and the last status. */
async function waitFor(url: string, ok: (s: any) => boolean, ms: number, what: string): Promise<any> {
  const end = Date.now() + ms;
  for (;;) {
    const s = await status(url);
    if (ok(s)) return s;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; last status: ${JSON.stringify({ generation: s.generation, rollouts: s.rollouts?.map((r: any) => ({ ...r, figures: { serving: { ...r.figures.serving, runMs: undefined }, candidate: { ...r.figures.candidate, runMs: undefined } } })), versionsFailed: s.versionsFailed })}`);
    await sleep(25);
  }
}

/** Writes a catalog into the folder the pool follows and waits until the pool serves its generation (and `also`). */
async function apply(url: string, folder: string, catalog: Catalog, also: (s: any) => boolean = () => true, what = 'the catalog'): Promise<number> {
  const t = performance.now();
  writeCatalogFolder(folder, catalog);
  await waitFor(url, (s) => s.generation === catalog.generation && also(s), 30_000, `${what} (generation ${catalog.generation})`);
  return performance.now() - t;
}

const candidateIs = (state: string) => (s: any) => rolloutOf(s)?.state === state;
/** The candidate takes traffic: loaded, not rolled back (judging, or passing once its guards have enough requests). */
const candidateActive = (s: any) => ['judging', 'passing'].includes(rolloutOf(s)?.state ?? '');
const noRollout = (s: any) => rolloutOf(s) === undefined;
const readable = (f: RawFigures): Figures => figuresOf(f);

// ---------------------------------------------------------------- phases

async function capacity(url: string, texts: string[]) {
  const client = new HttpPool(url, { connections: CAPACITY_CONNECTIONS, pipelining: 1 });
  try {
    const warm = new Tally();
    await closedLoop(CAPACITY_CONNECTIONS, () => false, 1000, async (i) => warm.add(await infer(client, MAIN, texts[i % texts.length])));
    const t = new Tally();
    const lat: number[] = [];
    const seconds = await closedLoop(CAPACITY_CONNECTIONS, () => false, CAPACITY_S * 1000, async (i) => {
      const s = performance.now();
      const r = await infer(client, MAIN, texts[i % texts.length]);
      if (r.status === 200) lat.push(performance.now() - s);
      t.add(r);
    });
    const rps = Math.round((t.sent - t.failed) / seconds);
    log(`capacity: ${rps} req/s on ${MAIN} (${CAPACITY_CONNECTIONS} connections, ${CAPACITY_S} s, p50 ${round(percentile(lat, 50), 2)} ms, ${t.failed} failed)`);
    return { rps, connections: CAPACITY_CONNECTIONS, seconds: round(seconds, 2), p50Ms: round(percentile(lat, 50), 2), p99Ms: round(percentile(lat, 99), 2), ...t.json() };
  } finally {
    await client.close();
  }
}

/**
 * Steady load on `main` and `mate` (closed loops of STEADY connections) while `during` edits the catalog;
 * returns both bots' tallies and what `during` returned.
 */
async function underSteadyLoad<T>(url: string, texts: string[], during: (main: Tally, firstSeen: Map<string, number>) => Promise<T>) {
  const clients = { main: new HttpPool(url, { connections: STEADY.main, pipelining: 1 }), mate: new HttpPool(url, { connections: STEADY.mate, pipelining: 1 }) };
  const tallies = { main: new Tally(), mate: new Tally() };
  const firstSeen = new Map<string, number>(); // version -> performance.now() of its first answer
  let done = false;
  const loops = Promise.all(
    (['main', 'mate'] as const).map((b) =>
      closedLoop(STEADY[b], () => done, 120_000, async (i) => {
        const r = await infer(clients[b], b === 'main' ? MAIN : MATE, texts[i % texts.length]);
        tallies[b].add(r);
        if (b === 'main' && r.version && !firstSeen.has(r.version)) firstSeen.set(r.version, performance.now());
      }),
    ),
  );
  try {
    const out = await during(tallies.main, firstSeen);
    return { out, tallies };
  } finally {
    done = true;
    await loops;
    await Promise.all([clients.main.close(), clients.mate.close()]);
  }
}

async function swap(url: string, folder: string, texts: string[]) {
  const { out, tallies } = await underSteadyLoad(url, texts, async (main, firstSeen) => {
    await sleep(SMOKE ? 500 : 2000);
    const before = main.sent;
    const editedAt = performance.now();
    writeCatalogFolder(folder, catalogOf(HEADS.v2, VERSIONS.v2));
    const end = Date.now() + 30_000;
    while (!firstSeen.has(VERSIONS.v2) && Date.now() < end) await sleep(10);
    const newVersionAfterMs = firstSeen.has(VERSIONS.v2) ? Math.round(firstSeen.get(VERSIONS.v2)! - editedAt) : null;
    await sleep(SMOKE ? 500 : 2000); // the new version under the same load for a while
    return { newVersionAfterMs, requestsBeforeEdit: before };
  });
  const failed = tallies.main.failed + tallies.mate.failed;
  log(`swap to a good version under load: ${failed} of ${tallies.main.sent + tallies.mate.sent} requests failed; version 2 answered ${out.newVersionAfterMs} ms after the edit; main by version ${JSON.stringify(tallies.main.byVersion)}`);
  return { failedRequests: failed, newVersionAfterMs: out.newVersionAfterMs, main: tallies.main.json(), mate: tallies.mate.json() };
}

async function badVersion(url: string, folder: string, texts: string[]) {
  const good = catalogOf(HEADS.v2, VERSIONS.v2);
  const { out, tallies } = await underSteadyLoad(url, texts, async () => {
    await sleep(SMOKE ? 300 : 1000);
    const bad = catalogOf(HEADS.corrupt, VERSIONS.corrupt);
    const editedAt = performance.now();
    writeCatalogFolder(folder, bad);
    // The pool tries the corrupt file, fails, and tries again after its backoff (5 s, jittered): two failed loads.
    const failedTwice = await waitFor(url, (s) => s.generation === bad.generation && (s.versionsFailed ?? []).some((v: any) => v.bot === MAIN && v.failures >= (SMOKE ? 1 : 2)), 30_000, 'the corrupt version to fail to load');
    const seenFailing = failedTwice.versionsFailed.find((v: any) => v.bot === MAIN);
    const failingForMs = Math.round(performance.now() - editedAt);
    await sleep(SMOKE ? 200 : 1000);
    const backMs = await apply(url, folder, good, (s) => !(s.versionsFailed ?? []).some((v: any) => v.bot === MAIN), 'the failed version to be forgotten');
    await sleep(SMOKE ? 200 : 1000);
    return { versionFailed: { head: seenFailing.head, failures: seenFailing.failures, error: seenFailing.error }, corruptInCatalogMs: failingForMs, backToGoodMs: Math.round(backMs) };
  });
  const failed = tallies.main.failed + tallies.mate.failed;
  log(`corrupt version under load: ${failed} of ${tallies.main.sent + tallies.mate.sent} requests failed over ${out.corruptInCatalogMs} ms with the corrupt file in the catalog (${out.versionFailed.failures} failed loads: ${out.versionFailed.error}); main by version ${JSON.stringify(tallies.main.byVersion)}`);
  return { failedRequests: failed, ...out, main: tallies.main.json(), mate: tallies.mate.json() };
}

interface P99Round {
  setting: 'noCandidate' | 'shadow';
  round: number;
  sent: number;
  failed: number;
  p50Ms: number;
  /** From sending each request to its answer. */
  p99Ms: number;
  /** From each request's scheduled time (includes this process's own lag in sending it: it shares the 2 cores with the pool). */
  p99FromScheduledMs: number;
  /** Shadow rounds: the copies the pool ran and dropped during the round. */
  shadowRuns?: number;
  shadowDropped?: number;
  candidateState?: string;
}

async function shadowCost(url: string, folder: string, texts: string[], rate: number) {
  const none = catalogOf(HEADS.v2, VERSIONS.v2);
  const shadow = catalogOf(HEADS.v2, VERSIONS.v2, candidateOf(VERSIONS.shadowGood, HEADS.shadowGood, 'shadow', 1, NEVER));
  const client = new HttpPool(url, { connections: OPEN_CONNECTIONS, pipelining: 1 });
  const rounds: P99Round[] = [];
  const all: Record<P99Round['setting'], number[]> = { noCandidate: [], shadow: [] };
  try {
    for (let r = 0; r < P99_ROUNDS; r++) {
      // ABBA: no candidate first in even rounds, shadow first in odd ones (drift falls on both alike).
      const order: Array<P99Round['setting']> = r % 2 === 0 ? ['noCandidate', 'shadow'] : ['shadow', 'noCandidate'];
      for (const setting of order) {
        if (setting === 'shadow') await apply(url, folder, shadow, candidateActive, 'the shadow candidate to load');
        else await apply(url, folder, none, noRollout, 'no candidate');
        let j = 0;
        await paced(rate, P99_WARMUP_S, async () => void (await infer(client, MAIN, texts[j++ % texts.length])));
        const before = setting === 'shadow' ? rolloutOf(await status(url))!.figures.candidate : undefined;
        const lat: number[] = [];
        const late: number[] = [];
        const t = new Tally();
        await paced(rate, P99_SECONDS, async (i, scheduled) => {
          const sent = performance.now();
          const reply = await infer(client, MAIN, texts[(r * 7919 + i) % texts.length]);
          t.add(reply);
          if (reply.status !== 200) return;
          const now = performance.now();
          lat.push(now - sent);
          late.push(now - scheduled);
        });
        all[setting].push(...lat);
        const row: P99Round = {
          setting,
          round: r,
          sent: t.sent,
          failed: t.failed,
          p50Ms: round(percentile(lat, 50), 2),
          p99Ms: round(percentile(lat, 99), 2),
          p99FromScheduledMs: round(percentile(late, 99), 2),
        };
        if (setting === 'shadow') {
          const after = rolloutOf(await status(url))!;
          row.shadowRuns = after.figures.candidate.requests - before!.requests;
          row.shadowDropped = after.figures.candidate.dropped - before!.dropped;
          row.candidateState = after.state;
        }
        rounds.push(row);
        log(`  ${setting} round ${r}: ${row.sent} requests at ${rate}/s, ${row.failed} failed, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms (${row.p99FromScheduledMs} ms from the scheduled time)${setting === 'shadow' ? `, shadow copies run ${row.shadowRuns}, dropped ${row.shadowDropped} (${row.candidateState})` : ''}`);
      }
    }
  } finally {
    await client.close();
  }
  await apply(url, folder, none, noRollout, 'no candidate');
  // As bench:isolation does: each setting's p99 per round, the median over rounds, and their ratio.
  const p99Of = (setting: P99Round['setting'], k: 'p99Ms' | 'p99FromScheduledMs' = 'p99Ms') => spread(rounds.filter((x) => x.setting === setting).map((x) => x[k]), 2);
  const p99 = { noCandidate: p99Of('noCandidate'), shadow: p99Of('shadow') };
  const fromScheduled = { noCandidate: p99Of('noCandidate', 'p99FromScheduledMs'), shadow: p99Of('shadow', 'p99FromScheduledMs') };
  const ratio = round(p99.shadow.median / p99.noCandidate.median, 3);
  // The same from every answer of each setting pooled, and round by round (a burst of other work on this shared machine lands in one round).
  const pooled = { noCandidate: round(percentile(all.noCandidate, 99), 2), shadow: round(percentile(all.shadow, 99), 2) };
  const perRound = Array.from({ length: P99_ROUNDS }, (_, r) => {
    const of = (s: string) => rounds.find((x) => x.round === r && x.setting === s)!.p99Ms;
    return round(of('shadow') / of('noCandidate'), 3);
  });
  const shadowRuns = rounds.reduce((n, x) => n + (x.shadowRuns ?? 0), 0);
  const shadowDropped = rounds.reduce((n, x) => n + (x.shadowDropped ?? 0), 0);
  log(
    `shadow cost at ${rate} req/s: serving p99 ${p99.shadow.median} ms (${p99.shadow.min}-${p99.shadow.max}) with a full shadow, ${p99.noCandidate.median} ms (${p99.noCandidate.min}-${p99.noCandidate.max}) without (medians over ${P99_ROUNDS} rounds): ${ratio}x; ` +
      `all answers pooled ${pooled.shadow} / ${pooled.noCandidate} ms = ${round(pooled.shadow / pooled.noCandidate, 3)}x; round by round ${perRound.join(', ')}; shadow copies run ${shadowRuns}, dropped ${shadowDropped}`,
  );
  return {
    rate,
    p99Ms: p99,
    p50Ms: { noCandidate: round(percentile(all.noCandidate, 50), 2), shadow: round(percentile(all.shadow, 50), 2) },
    ratio,
    p99FromScheduledMs: fromScheduled,
    ratioFromScheduled: round(fromScheduled.shadow.median / fromScheduled.noCandidate.median, 3),
    pooledP99Ms: pooled,
    pooledRatio: round(pooled.shadow / pooled.noCandidate, 3),
    ratioPerRound: perRound,
    shadowCopies: { run: shadowRuns, dropped: shadowDropped },
    rounds,
  };
}

async function canaryRollback(url: string, folder: string, texts: string[], tuned: ReturnType<typeof tuneDegradation>, opts: DemoModelOptions) {
  const catalog = catalogOf(HEADS.v2, VERSIONS.v2, candidateOf(VERSIONS.degradedCanary, HEADS.degraded, 'canary', CANARY_SHARE_ROLLBACK, { minRequests: 200 }));
  await apply(url, folder, catalog, candidateIs('judging'), 'the degraded canary to load');
  const client = new HttpPool(url, { connections: CANARY_CONNECTIONS, pipelining: 1 });
  const t = new Tally();
  let rolledBack = false;
  let polls = 0;
  const started = performance.now();
  const watch = (async () => {
    while (!rolledBack && performance.now() - started < 60_000) {
      const r = rolloutOf(await status(url));
      polls++;
      if (r?.state === 'rolled-back') rolledBack = true;
      else await sleep(20);
    }
  })();
  // Until the pool rolls it back: at most 20,000 requests or 60 s.
  const answeredBy: Record<'serving' | 'candidate', string[]> = { serving: [], candidate: [] };
  await closedLoop(CANARY_CONNECTIONS, () => rolledBack || t.sent >= 20_000, 60_000, async (i) => {
    const text = texts[i % texts.length];
    const reply = await infer(client, MAIN, text, `rollback-${i}`);
    t.add(reply);
    if (reply.version === VERSIONS.degradedCanary) answeredBy.candidate.push(text);
    else if (reply.version === VERSIONS.v2) answeredBy.serving.push(text);
  });
  rolledBack = true;
  await watch;
  await client.close();
  const s = await status(url);
  const r = rolloutOf(s)!;
  const serving = readable(r.figures.serving);
  const candidate = readable(r.figures.candidate);
  const risePp = candidate.fallbackRatePct !== null && serving.fallbackRatePct !== null ? round(candidate.fallbackRatePct - serving.fallbackRatePct, 2) : null;
  // Offline, on the texts each version answered in this phase (the client's view): what the pool should have counted.
  // The pool stops counting at the rollback while the client keeps sending for a moment: the first
  // `requests` answers of each version (in the order the client got them) are the ones the pool counted.
  const offline = {
    serving: round(fallbackPct(answeredBy.serving.slice(0, serving.requests).map(demoAnswerer(catalog, MAIN, HEADS.v2, opts))), 2),
    candidate: round(fallbackPct(answeredBy.candidate.slice(0, candidate.requests).map(demoAnswerer(catalog, MAIN, HEADS.degraded, opts))), 2),
  };
  log(`degraded canary (share ${CANARY_SHARE_ROLLBACK}, minRequests 200): ${r.state} after ${candidate.requests} candidate requests (${t.byVersion[VERSIONS.degradedCanary] ?? 0} answers from it seen by the client); ${r.rolledBack ? `${r.rolledBack.guard}: ${r.rolledBack.reason}` : 'not rolled back'}; fallback ${candidate.fallbackRatePct}% against ${serving.fallbackRatePct}% (+${risePp} pp; offline on the texts each answered ${offline.candidate}% against ${offline.serving}%, +${round(offline.candidate - offline.serving, 2)} pp; the tuning's +${tuned.offlineRisePp} pp on the first ${tuned.texts} texts); ${t.failed} of ${t.sent} requests failed`);
  return {
    declaredShare: CANARY_SHARE_ROLLBACK,
    guards: { minRequests: 200, others: 'defaults' },
    state: r.state,
    rolledBack: r.rolledBack ?? null,
    candidateRequests: candidate.requests,
    candidateAnswersSeenByClient: t.byVersion[VERSIONS.degradedCanary] ?? 0,
    servingRequests: serving.requests,
    fallbackRatePct: { serving: serving.fallbackRatePct, candidate: candidate.fallbackRatePct },
    measuredFallbackRisePp: risePp,
    offlineFallbackRatePctOnTheSameTexts: offline,
    offlineFallbackRisePpOnTheSameTexts: round(offline.candidate - offline.serving, 2),
    figures: { serving, candidate },
    requests: t.json(),
  };
}

async function canaryShare(url: string, folder: string, texts: string[]) {
  const catalog = catalogOf(HEADS.v2, VERSIONS.v2, candidateOf(VERSIONS.canaryGood, HEADS.canaryGood, 'canary', SHARE, { minRequests: 1_000_000 }));
  await apply(url, folder, catalog, candidateIs('judging'), 'the good canary to load');
  const client = new HttpPool(url, { connections: CAPACITY_CONNECTIONS, pipelining: 1 });
  const t = new Tally();
  const side = new Map<string, string>();
  let next = 0;
  await closedLoop(CAPACITY_CONNECTIONS, () => next >= SHARE_CONVERSATIONS, 120_000, async () => {
    const i = next++;
    if (i >= SHARE_CONVERSATIONS) return;
    const conversation = `conversation-${i}`;
    const r = await infer(client, MAIN, texts[i % texts.length], conversation);
    t.add(r);
    if (r.version) side.set(conversation, r.version);
  });
  // Some of the same conversations again, with other texts: each must stay with the version it had.
  let flipped = 0;
  let again = 0;
  let k = 0;
  await closedLoop(CAPACITY_CONNECTIONS, () => k >= STICKY_CONVERSATIONS, 60_000, async () => {
    const i = k++;
    if (i >= STICKY_CONVERSATIONS) return;
    const conversation = `conversation-${i * Math.floor(SHARE_CONVERSATIONS / STICKY_CONVERSATIONS)}`;
    const r = await infer(client, MAIN, texts[(i + 977) % texts.length], conversation);
    if (r.version && side.has(conversation)) {
      again++;
      if (r.version !== side.get(conversation)) flipped++;
    }
  });
  await client.close();
  const r = rolloutOf(await status(url))!;
  const answered = t.sent - t.failed;
  const observed = (t.byVersion[VERSIONS.canaryGood] ?? 0) / answered;
  const errorPp = round(100 * Math.abs(observed - SHARE), 2);
  log(`canary share ${SHARE}: ${t.byVersion[VERSIONS.canaryGood] ?? 0} of ${answered} conversations answered by the candidate (${round(100 * observed, 2)}%, error ${errorPp} pp); ${flipped} of ${again} conversations asked again changed version; state ${r.state}; ${t.failed} failed`);
  return {
    conversations: SHARE_CONVERSATIONS,
    declaredPct: 100 * SHARE,
    observedPct: round(100 * observed, 2),
    errorPp,
    candidateAnswers: t.byVersion[VERSIONS.canaryGood] ?? 0,
    answered,
    poolCounted: { serving: r.figures.serving.requests, candidate: r.figures.candidate.requests },
    sticky: { askedAgain: again, changedVersion: flipped },
    state: r.state,
    requests: t.json(),
  };
}

async function shadowAgreement(url: string, folder: string, texts: string[], opts: DemoModelOptions) {
  const catalog = catalogOf(HEADS.v2, VERSIONS.v2, candidateOf(VERSIONS.degradedShadow, HEADS.degraded, 'shadow', 1, NEVER));
  await apply(url, folder, catalog, candidateIs('judging'), 'the degraded shadow to load');
  const client = new HttpPool(url, { connections: 1, pipelining: 1 });
  const t = new Tally();
  const servingIntents: string[] = [];
  // One after the other, each request's copy run before the next is sent: a copy the pool dropped (its
  // shadow time budget spent) is sent again after a pause, so the pool compares exactly these texts.
  let seen = { runs: 0, dropped: 0 };
  for (const text of texts) {
    for (;;) {
      if (t.sent > 20 * texts.length) throw new Error(`the pool dropped the shadow copies of ${t.sent} requests for ${texts.length} texts: its shadow budget does not refill`);
      const r = await infer(client, MAIN, text);
      t.add(r);
      let c = rolloutOf(await status(url))!.figures.candidate;
      for (const end = Date.now() + 10_000; c.requests + c.dropped <= seen.runs + seen.dropped && Date.now() < end; ) {
        await sleep(1);
        c = rolloutOf(await status(url))!.figures.candidate;
      }
      const dropped = c.dropped > seen.dropped;
      seen = { runs: c.requests, dropped: c.dropped };
      if (!dropped) {
        servingIntents.push(r.intent ?? '');
        break;
      }
      await sleep(20);
    }
  }
  await client.close();
  // Every answered request's copy is run (or dropped, and counted): wait for the last ones (a copy's deadline is the pool's timeout).
  const answered = t.sent - t.failed;
  let s = await status(url);
  const end = Date.now() + 35_000;
  for (;;) {
    const c = rolloutOf(s)?.figures.candidate;
    if (!c || c.requests + c.dropped >= answered || Date.now() > end) break;
    await sleep(50);
    s = await status(url);
  }
  const r = rolloutOf(s)!;
  const c = r.figures.candidate;
  const poolPct = c.compared > 0 ? (100 * c.agreed) / c.compared : NaN;
  const offlinePct = 100 * demoAgreement(catalog, MAIN, [HEADS.v2, HEADS.degraded], texts, opts);
  // The serving answers the client saw, against what the serving head answers offline: the offline model is the pool's.
  const servingOffline = texts.map(demoAnswerer(catalog, MAIN, HEADS.v2, opts));
  const servingMismatches = servingOffline.filter((a, i) => a.intent !== servingIntents[i]).length;
  const diffPp = round(Math.abs(poolPct - offlinePct), 2);
  log(`degraded shadow, ${texts.length} texts one after the other: the pool measured ${round(poolPct, 2)}% agreement on ${c.compared} texts compared (${c.dropped} copies dropped, ${answered - c.requests - c.dropped} unaccounted), offline ${round(offlinePct, 2)}% on the same texts: ${diffPp} pp apart; serving answers unlike the offline serving head: ${servingMismatches}; ${t.failed} failed; state ${r.state}`);
  return {
    texts: texts.length,
    compared: c.compared,
    agreed: c.agreed,
    dropped: c.dropped,
    shadowRuns: c.requests,
    shadowErrors: c.errors,
    poolAgreementPct: round(poolPct, 2),
    offlineAgreementPct: round(offlinePct, 2),
    diffPp,
    servingAnswersUnlikeOffline: servingMismatches,
    /** Answered requests whose shadow copy the pool neither counted as run nor as dropped (35 s after the last answer). */
    copiesUnaccounted: answered - c.requests - c.dropped,
    state: r.state,
    requests: t.json(),
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const started = Date.now();
  const work = tempDir('rollout');
  const folder = path.join(work, 'catalog');
  const models = path.join(work, 'models');
  const texts = corpus(CORPUS, 20261206);

  // Every head any phase names; the degraded one tuned offline on the corpus first.
  const start = catalogOf(HEADS.v1, VERSIONS.v1);
  const probe = catalogOf(HEADS.v2, VERSIONS.v2, candidateOf(VERSIONS.degradedCanary, HEADS.degraded, 'canary', CANARY_SHARE_ROLLBACK, { minRequests: 200 }));
  const tuned = tuneDegradation(probe, texts);
  log(`degraded head: shuffle ${tuned.shuffle}, temperature ${tuned.temperature}: offline on the first ${tuned.texts} texts, fallback +${tuned.offlineRisePp} pp over the serving head's ${tuned.servingFallbackPct}%, agreement ${tuned.offlineAgreementPct}%`);
  const degraded = degradedOptions(tuned.temperature);
  writeDemoModels(start, models);
  writeDemoModels(probe, models, degraded);
  writeDemoModels(catalogOf(HEADS.v2, VERSIONS.v2, candidateOf(VERSIONS.shadowGood, HEADS.shadowGood, 'shadow', 1, NEVER)), models);
  writeDemoModels(catalogOf(HEADS.v2, VERSIONS.v2, candidateOf(VERSIONS.canaryGood, HEADS.canaryGood, 'canary', SHARE, {})), models);
  fs.writeFileSync(path.join(models, HEADS.corrupt), Buffer.from('not an onnx model: a truncated upload'));
  writeCatalogFolder(folder, start);

  const poolName = plan(start).pools[0].name;
  const children: Child[] = [];
  let result: any;
  try {
    const pool = await startPool({ pool: poolName, catalog: folder, models, workers: CORES, env: { BOTSHARD_POLL_MS: '100' } });
    children.push(pool);
    log(`pool ${poolName} ready in ${Math.round(pool.readyMs)} ms (${CORES} inference workers)`);
    const url = pool.url;

    const cap = await capacity(url, texts);
    const swapped = await swap(url, folder, texts);
    const bad = await badVersion(url, folder, texts);
    const rate = Math.max(1, Math.round(cap.rps / 2));
    const shadow = await shadowCost(url, folder, texts, rate);
    const canary = await canaryRollback(url, folder, texts, tuned, degraded);
    const share = await canaryShare(url, folder, texts);
    const agreement = await shadowAgreement(url, folder, texts.slice(0, AGREEMENT_TEXTS), degraded);

    const headline = {
      rolloutSwapFailedRequests: swapped.failedRequests,
      rolloutBadVersionFailedRequests: bad.failedRequests,
      shadowServingP99OverNoShadow: shadow.ratio,
      canaryRollbackRequests: canary.candidateRequests,
      canaryShareErrorPp: share.errorPp,
      shadowAgreementPct: agreement.poolAgreementPct,
      shadowAgreementOfflinePct: agreement.offlineAgreementPct,
      shadowAgreementDiffPp: agreement.diffPp,
      capacityRequestsPerSecond: cap.rps,
      shadowOfferedRequestsPerSecond: rate,
      servingP99MsNoShadow: shadow.p99Ms.noCandidate.median,
      servingP99MsShadow: shadow.p99Ms.shadow.median,
      shadowServingP99OverNoShadowPooled: shadow.pooledRatio,
      canaryFallbackRisePp: canary.measuredFallbackRisePp,
      canaryFallbackRiseOfflinePp: canary.offlineFallbackRisePpOnTheSameTexts,
      canaryShareDeclaredPct: share.declaredPct,
      canaryShareObservedPct: share.observedPct,
      swapNewVersionAfterMs: swapped.newVersionAfterMs,
    };
    const met = Object.fromEntries(Object.entries(TARGETS).map(([k, t]) => [k, (headline as any)[k] !== null && (headline as any)[k] <= t.max]));
    result = {
      benchmark: 'rollout',
      date: new Date().toISOString(),
      headline,
      targets: TARGETS,
      met,
      setup: {
        command: 'npm run bench:rollout',
        pool: { name: poolName, process: 'botshard pool on 127.0.0.1', workers: CORES, env: { BOTSHARD_POLL_MS: '100', BOTSHARD_TIMEOUT_MS: '30000', BOTSHARD_CONCURRENCY: '256' }, catalog: 'a mounted-style catalog folder (writeCatalogFolder) the pool polls' },
        bots: { [MAIN]: 'the bot whose versions change', [MATE]: 'a pool-mate that never changes (steady load during swap and bad version)', intents: INTENTS.length, threshold: THRESHOLD, encoder: 'shared bag encoder, 4,096 buckets x 64' },
        requests: 'POST /v2/models/{bot}/infer, one text each, from a corpus of intent examples with 0-3 filler words (deterministic)',
        corpus: CORPUS,
        capacity: { connections: CAPACITY_CONNECTIONS, seconds: CAPACITY_S, loop: 'closed' },
        steadyLoad: { connections: STEADY, loop: 'closed' },
        shadowCost: { rate: '0.5 x measured capacity', rounds: P99_ROUNDS, secondsPerRound: P99_SECONDS, warmupSecondsPerRound: P99_WARMUP_S, order: 'ABBA (no candidate / shadow alternating), catalog edit between settings', ratio: 'median over rounds of the shadow rounds\' p99 / the same for the rounds without a candidate (as bench:isolation); pooledRatio: p99 of all answers of each setting', shadow: 'good head (same weights as serving), share 1, guards that never roll back', latency: 'open loop at a fixed rate; p99 from sending each request to its answer (p99FromScheduledMs: from its scheduled time, which adds this process\'s own lag)', connections: OPEN_CONNECTIONS },
        degradedHead: tuned,
        canaryRollback: { share: CANARY_SHARE_ROLLBACK, guards: { minRequests: 200 }, connections: CANARY_CONNECTIONS, conversationKey: 'x-conversation-id, distinct per request', headlineFrom: 'figures.candidate.requests in GET /botshard/status after the rollback (requests in flight when it was rolled back included)' },
        canaryShare: { share: SHARE, conversations: SHARE_CONVERSATIONS, guards: { minRequests: 1_000_000 }, why: 'judging disabled so a noisy p99 cannot roll a good canary back mid-count', stickyChecked: STICKY_CONVERSATIONS },
        shadowAgreement: { texts: AGREEMENT_TEXTS, share: 1, sent: 'one after the other, one connection', guards: NEVER, offline: 'demoAgreement(catalog, main, [serving head, degraded head], the same texts)' },
      },
      machine: machine(),
      capacity: cap,
      swap: swapped,
      badVersion: bad,
      shadowCost: shadow,
      canaryRollback: canary,
      canaryShare: share,
      shadowAgreement: agreement,
      seconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    await stopAll(children);
    fs.rmSync(work, { recursive: true, force: true });
  }
  writeResult('rollout', result, report(result));
  summary(result);
}

export function report(r: any): string {
  const h = r.headline;
  const mark = (k: string) => (r.met[k] ? 'met' : '**missed**');
  return [
    '# Model rollouts',
    '',
    `${r.date}, ${r.machine.cpus} cores (${r.machine.cpuModel}), Node ${r.machine.node}. Command: \`npm run bench:rollout\`; ${r.seconds} s.`,
    '',
    `One real \`botshard pool\` process on 127.0.0.1 (${r.setup.pool.workers} inference workers, catalog folder polled every 100 ms), bots \`main\` and \`mate\` (${r.setup.bots.intents} intents, threshold ${r.setup.bots.threshold}, demo models on a shared bag encoder). Requests: \`POST /v2/models/{bot}/infer\`, one text each from a seeded corpus. The degraded head: shuffle ${r.setup.degradedHead.shuffle}, temperature ${r.setup.degradedHead.temperature} (tuned offline: fallback +${r.setup.degradedHead.offlineRisePp} pp over the serving head's ${r.setup.degradedHead.servingFallbackPct}% on the first ${r.setup.degradedHead.texts} texts, the canary phase's traffic).`,
    '',
    '| figure | value | target | |',
    '|---|---:|---:|---|',
    `| requests failed while a good version replaced another under load (\`rolloutSwapFailedRequests\`) | ${h.rolloutSwapFailedRequests} of ${r.swap.main.sent + r.swap.mate.sent} | 0 | ${mark('rolloutSwapFailedRequests')} |`,
    `| requests failed while a corrupt version was tried (\`rolloutBadVersionFailedRequests\`) | ${h.rolloutBadVersionFailedRequests} of ${r.badVersion.main.sent + r.badVersion.mate.sent} | 0 | ${mark('rolloutBadVersionFailedRequests')} |`,
    `| serving p99 with a full shadow / without a candidate, at ${h.shadowOfferedRequestsPerSecond} req/s (half of ${h.capacityRequestsPerSecond}) (\`shadowServingP99OverNoShadow\`) | ${h.shadowServingP99OverNoShadow} (${h.servingP99MsShadow} / ${h.servingP99MsNoShadow} ms, medians over ${r.setup.shadowCost.rounds} rounds each; all answers pooled: ${h.shadowServingP99OverNoShadowPooled}) | <= 1.1 | ${mark('shadowServingP99OverNoShadow')} |`,
    `| candidate requests before a degraded canary was rolled back, minRequests 200 (\`canaryRollbackRequests\`) | ${h.canaryRollbackRequests} (fallback +${h.canaryFallbackRisePp} pp measured) | <= 260 | ${mark('canaryRollbackRequests')} |`,
    `| canary share over ${r.canaryShare.conversations} conversations, observed against declared (\`canaryShareErrorPp\`) | ${h.canaryShareErrorPp} pp (${h.canaryShareObservedPct}% / ${h.canaryShareDeclaredPct}%) | <= 2 pp | ${mark('canaryShareErrorPp')} |`,
    `| shadow agreement measured by the pool against offline (\`shadowAgreementPct\`, \`shadowAgreementOfflinePct\`) | ${h.shadowAgreementPct}% / ${h.shadowAgreementOfflinePct}% (${h.shadowAgreementDiffPp} pp apart) | within 1 pp | ${mark('shadowAgreementDiffPp')} |`,
    '',
    `Swap: version 2 answered ${h.swapNewVersionAfterMs} ms after the catalog edit. Bad version: the pool failed to load the corrupt file ${r.badVersion.versionFailed.failures} times over ${r.badVersion.corruptInCatalogMs} ms while version 2 kept answering (${r.badVersion.versionFailed.error}).`,
    `Shadow cost: p99 per round ${r.shadowCost.p99Ms.shadow.min}-${r.shadowCost.p99Ms.shadow.max} ms with the shadow, ${r.shadowCost.p99Ms.noCandidate.min}-${r.shadowCost.p99Ms.noCandidate.max} ms without; the ratio of rounds run back to back spans ${Math.min(...r.shadowCost.ratioPerRound)}-${Math.max(...r.shadowCost.ratioPerRound)} (this shared machine's stalls land in single rounds), so one run's ratio is not a precise figure. The pool ran ${r.shadowCost.shadowCopies.run} shadow copies and dropped ${r.shadowCost.shadowCopies.dropped} (its worker was busy).`,
    `Canary rollback: ${r.canaryRollback.rolledBack ? `${r.canaryRollback.rolledBack.guard}: ${r.canaryRollback.rolledBack.reason}` : `state ${r.canaryRollback.state}, not rolled back`}; the client saw ${r.canaryRollback.candidateAnswersSeenByClient} answers from the candidate.`,
    `Canary share: ${r.canaryShare.sticky.changedVersion} of ${r.canaryShare.sticky.askedAgain} conversations asked again changed version. Shadow agreement: ${r.shadowAgreement.compared} texts compared, ${r.shadowAgreement.dropped} copies dropped.`,
    '',
    `Headline: ${JSON.stringify(h)}`,
    '',
  ].join('\n');
}

function summary(r: any): void {
  if (process.env.BENCH_QUIET === '1') return;
  const lines = Object.entries(r.headline).map(([k, v]) => {
    const t = (TARGETS as any)[k];
    return `  ${k.padEnd(34)} ${String(v).padStart(10)}${t ? `   target <= ${t.max}: ${r.met[k] ? 'met' : 'MISSED'}` : ''}`;
  });
  process.stdout.write(`\nbench:rollout (${r.seconds} s)\n${lines.join('\n')}\nwrote bench/results/rollout.json and rollout.md\n`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
