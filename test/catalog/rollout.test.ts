/**
 * A bot model's `version` and `candidate` in the catalog (runtime/src/catalog/candidate.ts): the defaults a
 * candidate gets, the problems a user sees, and rule 5 of model rollouts: placement reads the serving
 * version only, so adding, changing or dropping a candidate moves no bot (asserted on the golden vectors).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { normalizeCatalog, parseCatalog } from '@botshard/runtime/catalog/normalize';
import { GUARD_DEFAULTS } from '@botshard/runtime/catalog/defaults';
import { Problem, formatProblems } from '@botshard/runtime/catalog/problems';
import { plan } from '@botshard/runtime/placement';
import { syntheticCatalog } from '../../bench/synthetic';
import { GOLDEN_CATALOGS } from '../golden/generate';

function base(model: Record<string, unknown> = {}): any {
  return {
    tenants: [{ id: 'acme' }],
    encoders: [{ id: 'enc', path: 'e.onnx', memory: '1Mi', tokenizer: { kind: 'hashing', buckets: 8 }, dimensions: 4 }],
    groups: [{ name: 'rt', realtime: true, memory: '1Gi' }],
    bots: [{ id: 'a-bot', tenant: 'acme', realtime: true, model: { head: 'heads/a.onnx', memory: '1Mi', ...model }, intents: [{ name: 'x' }] }],
  };
}
const B = 'bots[0] (a-bot).model';

function problems(model: Record<string, unknown>): Problem[] {
  const r = normalizeCatalog(base(model));
  if (r.ok) throw new Error('expected problems');
  return r.problems;
}
function valid(model: Record<string, unknown>) {
  const r = normalizeCatalog(base(model));
  if (!r.ok) throw new Error(formatProblems(r.problems));
  return r.catalog.bots[0].model;
}

describe('model versions and candidates', () => {
  test('a model without a version keeps its normalized form (and every generation its hash)', () => {
    expect(valid({})).toEqual({ head: 'heads/a.onnx', memory: 1024 * 1024 });
    expect(valid({ version: 'v2' }).version).toBe('v2');
  });

  test('a candidate gets its mode\'s share and every guard\'s default', () => {
    expect(valid({ candidate: { version: '2', head: 'heads/b.onnx', memory: '2Mi', mode: 'shadow' } }).candidate).toEqual({
      version: '2', head: 'heads/b.onnx', memory: 2 * 1024 * 1024, mode: 'shadow', share: 1, guards: GUARD_DEFAULTS,
    });
    const canary = valid({ version: '1.0', candidate: { version: '1.1', head: 'heads/b.onnx', memory: '2Mi', mode: 'canary', encoder: 'enc', guards: { minRequests: 50 } } }).candidate!;
    expect([canary.share, canary.encoder, canary.guards]).toEqual([0.1, 'enc', { ...GUARD_DEFAULTS, minRequests: 50 }]);
  });

  test('each wrong field is named with its fix', () => {
    const at = (ps: Problem[]) => ps.map((p) => `${p.path}: ${p.message}`);
    expect(at(problems({ version: 'v 2' }))).toEqual([`${B}.version: "v 2" is not a version label`]);
    expect(at(problems({ candidate: { version: '1', head: 'b.onnx', memory: '1Mi', mode: 'shadow' } }))).toEqual([
      `${B}.candidate.version: is "1", the serving version's label (a model without a version is "1")`,
    ]);
    expect(at(problems({ version: 'v3', candidate: { version: 'v3', head: 'b.onnx', memory: '1Mi', mode: 'canary' } }))).toEqual([
      `${B}.candidate.version: is "v3", the serving version's label`,
    ]);
    expect(at(problems({ candidate: { version: '2', head: '../b.onnx', memory: 'lots', mode: 'blue', share: 2, encoder: 'encx', guards: { minRequests: 0.5, maxP99Ratio: 0.9, nope: 1 } } }))).toEqual([
      `${B}.candidate.mode: must be "shadow" or "canary", got "blue"`,
      `${B}.candidate.head: "../b.onnx" escapes the model root`,
      `${B}.candidate.memory: is not a memory size: "lots"`,
      `${B}.candidate.share: must be a number from 0 to 1, got 2`,
      `${B}.candidate.guards.nope: is not a known field`,
      `${B}.candidate.guards.minRequests: must be an integer from 1 to 1000000000, got 0.5`,
      `${B}.candidate.guards.maxP99Ratio: must be a number from 1 to 1000, got 0.9`,
      `${B}.candidate.encoder: unknown encoder "encx"`,
    ]);
    expect(problems({ candidate: { head: 'b.onnx', memory: '1Mi' } }).map((p) => p.path)).toEqual([`${B}.candidate.version`, `${B}.candidate.mode`]);
    expect(problems({ candidate: { version: '2', head: 'b.onnx', memory: '1Mi', mode: 'shadow', encoder: 'encx' } })[0].hint).toBe('did you mean "enc"? or add it to encoders');
  });
});

describe('a rollout moves no bot (placement reads the serving version only)', () => {
  test('golden catalogs with a candidate on every third bot (larger than the serving head, on other encoders) place every bot where the catalog without them does', () => {
    const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '../golden/placement.json'), 'utf8'));
    for (const [name, opts] of Object.entries(GOLDEN_CATALOGS)) {
      const input = syntheticCatalog(opts) as any;
      const encoders: string[] = (input.encoders ?? []).map((e: { id: string }) => e.id);
      input.bots.forEach((bot: any, i: number) => {
        if (i % 3 !== 0) return;
        bot.model.candidate = { version: 'next', head: `heads/next-${bot.id}.onnx`, memory: '64Mi', mode: i % 2 ? 'shadow' : 'canary', ...(encoders.length ? { encoder: encoders[i % encoders.length] } : {}) };
      });
      const withCandidates = parseCatalog(input);
      const topology = plan(withCandidates);
      expect(withCandidates.generation).not.toBe(golden.catalogs[name].generation);
      expect([name, topology.pools.map((p) => p.name)]).toEqual([name, golden.catalogs[name].pools]);
      expect([name, Object.fromEntries(topology.assignment)]).toEqual([name, golden.catalogs[name].assignment]);
    }
  });
});

describe('a candidate\'s fields at their edges (each assertion kills a mutant the cases above leave)', () => {
  const cand = (o: Record<string, unknown>) => ({ candidate: { version: '2', head: 'heads/b.onnx', memory: '1Mi', mode: 'canary', ...o } });
  const one = (model: Record<string, unknown>) => {
    const ps = problems(model);
    expect(ps).toHaveLength(1);
    return ps[0];
  };

  test('every problem names its field, the value and the fix', () => {
    expect(one({ version: 'v 2' })).toEqual({ path: `${B}.version`, message: '"v 2" is not a version label', hint: 'use up to 64 letters, digits, ".", "_" and "-", starting with a letter or digit (e.g. "2026-12-06" or "v3")' });
    expect(one(cand({ version: '1' }))).toEqual({ path: `${B}.candidate.version`, message: 'is "1", the serving version\'s label (a model without a version is "1")', hint: 'give the candidate a label of its own, e.g. the date it was trained' });
    expect(one(cand({ mode: 'blue' }))).toEqual({ path: `${B}.candidate.mode`, message: 'must be "shadow" or "canary", got "blue"', hint: '"shadow" runs copies of requests after they are answered; "canary" answers a share of them' });
    expect(one(cand({ sha256: 'xyz' })).path).toBe(`${B}.candidate.sha256`);
    expect(one(cand({ encoder: '' })).path).toBe(`${B}.candidate.encoder`);
    expect(one(cand({ zzzzzzzz: 1 }))).toEqual({ path: `${B}.candidate.zzzzzzzz`, message: 'is not a known field', hint: 'remove it; known fields are version, head, sha256, memory, encoder, mode, share, guards' });
    expect(one(cand({ guards: 'strict' }))).toEqual({ path: `${B}.candidate.guards`, message: 'must be an object, got "strict"', hint: `write ${B}.candidate.guards as { ... }` });
    expect(one({ candidate: 'v2' }).path).toBe(`${B}.candidate`);
    expect(one(cand({ version: 'v 2' }))).toMatchObject({ path: `${B}.candidate.version`, message: '"v 2" is not a version label' });
    // An empty serving label and a candidate without one: two problems, not a third about equal labels.
    expect(problems({ version: '', candidate: { head: 'heads/b.onnx', memory: '1Mi', mode: 'canary' } }).map((p) => p.path)).toEqual([`${B}.version`, `${B}.candidate.version`]);
    for (const [k, bad] of [['maxErrorRate', 2], ['maxFallbackRisePp', 101], ['minAgreementPct', -1], ['p99ToleranceMs', -1], ['minRequests', 0], ['maxP99Ratio', 0.5]] as const) {
      expect(one(cand({ guards: { [k]: bad } })).path).toBe(`${B}.candidate.guards.${k}`);
    }
  });

  test('the values a candidate keeps: its sha256 lower-cased, its encoder, the share and every guard given', () => {
    const sha = 'AB'.repeat(32);
    const c = valid({ ...cand({ sha256: sha, encoder: 'enc', share: 0, guards: { minRequests: 1, maxErrorRate: 0, maxFallbackRisePp: 100, minAgreementPct: 0, maxP99Ratio: 1, p99ToleranceMs: 0 } }) }).candidate!;
    expect(c).toEqual({ version: '2', head: 'heads/b.onnx', sha256: 'ab'.repeat(32), memory: 1024 * 1024, encoder: 'enc', mode: 'canary', share: 0, guards: { minRequests: 1, maxErrorRate: 0, maxFallbackRisePp: 100, minAgreementPct: 0, maxP99Ratio: 1, p99ToleranceMs: 0 } });
    expect('sha256' in valid(cand({})).candidate!).toBe(false);
    expect(valid(cand({ share: 1, mode: 'shadow' })).candidate!.share).toBe(1);
  });
});
