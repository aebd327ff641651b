/**
 * Model rollouts in `botshard diff` (issue #31 rule 7): a bot's candidate started, changed, stopped or promoted is
 * a rollout of its own (TopologyDiff.rollouts), never a move, and never a reload of the serving version (a
 * promotion changes the serving model, so it reloads too, for the serving fields only). Checked on diffTopologies,
 * and on the command's text and JSON (diffCommand on catalog files, as the CLI runs it).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseCatalog } from '@botshard/runtime/catalog';
import { describeRollout, diffCommand } from '@botshard/runtime/commands/diff';
import { Rollout, diffTopologies, plan } from '@botshard/runtime/placement';
import { smallCatalog } from '../support/catalogs';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

/** A candidate input of acme-support (the bot smallCatalog() lists first). */
const candidate = (o: Record<string, unknown> = {}) => ({ version: '2026-12-06', head: 'heads/acme-support-2026-12-06.onnx', memory: '9Mi', encoder: 'encoder-en', mode: 'canary', ...o });
const planned = (input: any) => {
  const catalog = parseCatalog(input);
  return { catalog, topology: plan(catalog) };
};
/** smallCatalog() with acme-support's model changed by `edit`. */
const withModel = (edit: (model: any) => void) => {
  const input = smallCatalog();
  edit(input.bots[0].model);
  return input;
};
const diffOf = (before: any, after: any) => {
  const a = planned(before);
  const b = planned(after);
  return { d: diffTopologies(a, b), pool: b.topology.assignment.get('acme-support')!, oldPool: a.topology.assignment.get('acme-support')! };
};

describe('rollouts in diffTopologies', () => {
  test('started: a bot that gets a candidate; no move and no reload for it', () => {
    const { d, pool, oldPool } = diffOf(smallCatalog(), withModel((m) => (m.candidate = candidate({ share: 0.1 }))));
    expect(pool).toBe(oldPool);
    expect(d.rollouts).toEqual([{ bot: 'acme-support', pool, change: 'started', candidate: { version: '2026-12-06', mode: 'canary', share: 0.1 } }]);
    expect(d.moves).toEqual([]);
    expect(d.reloads).toEqual([]);
    expect(d.unchanged).toBe(3);
  });

  test('changed: share, mode, version, guards or the candidate\'s size differ; never a move or a reload', () => {
    const before = withModel((m) => (m.candidate = candidate({ share: 0.1 })));
    const share = diffOf(before, withModel((m) => (m.candidate = candidate({ share: 0.5 }))));
    expect(share.d.rollouts).toEqual([
      { bot: 'acme-support', pool: share.pool, change: 'changed', candidate: { version: '2026-12-06', mode: 'canary', share: 0.5 }, from: { version: '2026-12-06', mode: 'canary', share: 0.1 }, fields: ['share'] },
    ]);
    const next = diffOf(before, withModel((m) => (m.candidate = candidate({ version: '2026-12-07', head: 'heads/next.onnx', mode: 'shadow', share: 1 }))));
    expect(next.d.rollouts).toEqual([
      { bot: 'acme-support', pool: next.pool, change: 'changed', candidate: { version: '2026-12-07', mode: 'shadow', share: 1 }, from: { version: '2026-12-06', mode: 'canary', share: 0.1 }, fields: ['head', 'mode', 'share', 'version'] },
    ]);
    const guards = diffOf(before, withModel((m) => (m.candidate = candidate({ share: 0.1, guards: { maxErrorRate: 0.5 } }))));
    expect(guards.d.rollouts.map((r) => [r.change, r.fields])).toEqual([['changed', ['guards']]]);
    // A candidate far larger than its pool's room still moves nothing: placement reads the serving version only.
    const huge = diffOf(before, withModel((m) => (m.candidate = candidate({ share: 0.1, memory: '4Gi' }))));
    expect(huge.d.rollouts.map((r) => [r.change, r.fields])).toEqual([['changed', ['memory']]]);
    for (const { d } of [share, next, guards, huge]) {
      expect(d.moves).toEqual([]);
      expect(d.reloads).toEqual([]);
      expect(d.unchanged).toBe(3);
    }
  });

  test('changed: the candidate\'s own encoder changed (the serving version, on another encoder, does not reload)', () => {
    const input = (dimensions: number) => {
      const i = withModel((m) => (m.candidate = candidate({ encoder: 'encoder-next' })));
      i.encoders.push({ id: 'encoder-next', path: 'encoders/next.onnx', memory: '40Mi', tokenizer: { kind: 'hashing', buckets: 512 }, dimensions });
      return i;
    };
    const { d } = diffOf(input(16), input(32));
    expect(d.rollouts.map((r) => [r.bot, r.change, r.fields])).toEqual([['acme-support', 'changed', ['encoder encoder-next']]]);
    expect(d.reloads).toEqual([]);
    expect(diffOf(input(16), input(16)).d.rollouts).toEqual([]);
  });

  test('a new version label alone is no reload (the pool relabels the loaded model); beside another change it is listed', () => {
    expect(diffOf(smallCatalog(), withModel((m) => (m.version = 'v7'))).d.reloads).toEqual([]);
    const both = diffOf(smallCatalog(), withModel((m) => Object.assign(m, { version: 'v7', head: 'heads/v7.onnx' })));
    expect(both.d.reloads).toEqual([{ bot: 'acme-support', pool: both.pool, changed: ['model.head', 'model.version'] }]);
  });

  test('stopped: the candidate dropped, the serving model as it was; no reload', () => {
    const { d, pool } = diffOf(withModel((m) => (m.candidate = candidate({ share: 0.25 }))), smallCatalog());
    expect(d.rollouts).toEqual([{ bot: 'acme-support', pool, change: 'stopped', from: { version: '2026-12-06', mode: 'canary', share: 0.25 } }]);
    expect(d.moves).toEqual([]);
    expect(d.reloads).toEqual([]);
  });

  test('promoted: the new serving model is the old candidate (head, sha256, encoder, version); it reloads without model.candidate', () => {
    const before = withModel((m) => (m.candidate = candidate({ sha256: SHA_A })));
    const promote = (m: any) => Object.assign(m, { head: 'heads/acme-support-2026-12-06.onnx', sha256: SHA_A, memory: '9Mi', version: '2026-12-06', candidate: undefined });
    const { d, pool } = diffOf(before, withModel(promote));
    expect(d.rollouts).toEqual([{ bot: 'acme-support', pool, change: 'promoted', from: { version: '2026-12-06', mode: 'canary', share: 0.1 } }]);
    expect(d.reloads).toEqual([{ bot: 'acme-support', pool, changed: ['model.head', 'model.memory', 'model.sha256', 'model.version'] }]);
    expect(d.moves).toEqual([]);
    // Promoted with the next candidate started at once.
    const again = diffOf(before, withModel((m) => (promote(m), (m.candidate = candidate({ version: '2026-12-07', head: 'heads/next.onnx', mode: 'shadow' })))));
    expect(again.d.rollouts).toEqual([
      { bot: 'acme-support', pool: again.pool, change: 'promoted', candidate: { version: '2026-12-07', mode: 'shadow', share: 1 }, from: { version: '2026-12-06', mode: 'canary', share: 0.1 } },
    ]);
    expect(again.d.reloads.map((r) => r.changed)).toEqual([['model.head', 'model.memory', 'model.sha256', 'model.version']]);
  });

  test('not promoted when the new serving model differs from the candidate in head, sha256, encoder or version: stopped', () => {
    const before = withModel((m) => (m.candidate = candidate({ sha256: SHA_A })));
    const serving = { head: 'heads/acme-support-2026-12-06.onnx', sha256: SHA_A, encoder: 'encoder-en', version: '2026-12-06' };
    const variants = [{ head: 'heads/other.onnx' }, { sha256: SHA_B }, { encoder: undefined }, { version: '2026-12-07' }];
    for (const variant of variants) {
      const { d } = diffOf(before, withModel((m) => Object.assign(m, serving, variant, { candidate: undefined })));
      expect(d.rollouts.map((r) => r.change)).toEqual(['stopped']);
      expect(d.reloads.map((r) => r.changed.includes('model.candidate'))).toEqual([false]);
    }
    // A model without a version is version "1": promoting a candidate labelled "1" needs no label.
    const one = withModel((m) => Object.assign(m, { version: 'v0', candidate: candidate({ version: '1' }) }));
    const { d } = diffOf(one, withModel((m) => Object.assign(m, { head: 'heads/acme-support-2026-12-06.onnx', memory: '9Mi' })));
    expect(d.rollouts.map((r) => r.change)).toEqual(['promoted']);
  });

  test('a bot added or removed with a candidate is a move, not a rollout; an unchanged candidate is nothing', () => {
    const withBot = smallCatalog();
    withBot.bots.push({ ...withBot.bots[0], id: 'acme-new', model: { ...withBot.bots[0].model, candidate: candidate() } });
    const added = diffOf(smallCatalog(), withBot).d;
    expect(added.moves.map((m) => [m.bot, m.reason])).toEqual([['acme-new', 'bot added']]);
    expect(added.rollouts).toEqual([]);
    const removed = diffOf(withBot, smallCatalog()).d;
    expect(removed.moves.map((m) => [m.bot, m.reason])).toEqual([['acme-new', 'bot removed']]);
    expect(removed.rollouts).toEqual([]);
    const same = diffOf(withBot, withBot).d;
    expect([same.moves, same.reloads, same.rollouts, same.unchanged]).toEqual([[], [], [], 4]);
  });

  test('a bot that moves for another reason still lists its rollout, with its new pool', () => {
    const after = smallCatalog();
    delete after.bots[2].pin;
    after.bots[2].model.candidate = candidate({ head: 'heads/acme-vip-2.onnx' });
    const a = planned(smallCatalog());
    const b = planned(after);
    const d = diffTopologies(a, b);
    const to = b.topology.assignment.get('acme-vip')!;
    expect(to).not.toBe('vip');
    expect(d.moves).toEqual([{ bot: 'acme-vip', from: 'vip', to, reason: 'pin changed' }]);
    expect(d.rollouts).toEqual([{ bot: 'acme-vip', pool: to, change: 'started', candidate: { version: '2026-12-06', mode: 'canary', share: 0.1 } }]);
  });
});

describe('rollouts in botshard diff', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-diff-rollouts-'));
  const write = (name: string, value: unknown) => {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, JSON.stringify(value));
    return file;
  };
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('describeRollout words each kind', () => {
    const r = (o: Partial<Rollout>): Rollout => ({ bot: 'b', pool: 'p', change: 'started', ...o });
    const canary = { version: '2026-12-06', mode: 'canary' as const, share: 0.1 };
    expect(describeRollout(r({ candidate: canary }))).toBe('candidate 2026-12-06 started, canary 10%');
    expect(describeRollout(r({ change: 'changed', candidate: { ...canary, share: 0.5 }, from: canary, fields: ['share'] }))).toBe('candidate 2026-12-06 changed (share), canary 50% (was canary 10%)');
    expect(describeRollout(r({ change: 'changed', candidate: { version: 'v3', mode: 'shadow', share: 0.005 }, from: canary, fields: ['head', 'version'] }))).toBe(
      'candidate v3 changed (head, version), shadow 0.5% (was 2026-12-06, canary 10%)',
    );
    expect(describeRollout(r({ change: 'stopped', from: canary }))).toBe('candidate 2026-12-06 stopped (was canary 10%)');
    expect(describeRollout(r({ change: 'promoted', from: canary }))).toBe('promoted 2026-12-06 (was candidate, canary 10%)');
    expect(describeRollout(r({ change: 'promoted', from: canary, candidate: { version: 'v3', mode: 'shadow', share: 1 } }))).toBe(
      'promoted 2026-12-06 (was candidate, canary 10%); candidate v3 started, shadow 100%',
    );
  });

  test('text: a rollouts section, one row per bot, and no reload or move for a candidate-only change', () => {
    const before = smallCatalog();
    before.bots[1].model.candidate = { version: 'v2', head: 'heads/globex-batch-v2.onnx', memory: '2Mi', mode: 'shadow' };
    const after = smallCatalog();
    after.bots[0].model.candidate = candidate();
    const out = diffCommand({ before: write('before.json', before), after: write('after.json', after), json: false });
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^[0-9a-f]{16} -> [0-9a-f]{16}: 0 of 3 bots change pool, 3 stay, 2 rollouts$/);
    const at = lines.indexOf('rollouts (candidates started, changed, stopped or promoted; no bot moves for them):');
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 1)).toEqual([
      expect.stringMatching(/^BOT {11}POOL {12}ROLLOUT$/),
      expect.stringMatching(/^acme-support {2}realtime-[a-z0-9]{5} {2}candidate 2026-12-06 started, canary 10%$/),
      expect.stringMatching(/^globex-batch {2}batch-[a-z0-9]{5} {5}candidate v2 stopped \(was shadow 100%\)$/),
    ]);
    expect(out).not.toMatch(/reload|BOT +FROM/);
  });

  test('text: a promotion is a rollout and a reload of the serving fields; --json carries the rollouts', () => {
    const before = withModel((m) => (m.candidate = candidate()));
    const after = withModel((m) => Object.assign(m, { head: 'heads/acme-support-2026-12-06.onnx', memory: '9Mi', version: '2026-12-06' }));
    const files = [write('promote-before.json', before), write('promote-after.json', after)] as const;
    const out = diffCommand({ before: files[0], after: files[1], json: false });
    expect(out.split('\n')[0]).toMatch(/: 0 of 3 bots change pool, 3 stay \(1 of them reload with a new definition\), 1 rollout$/);
    expect(out).toMatch(/^acme-support {2}realtime-[a-z0-9]{5} {2}model\.head, model\.memory, model\.version$/m);
    expect(out).toMatch(/^acme-support {2}realtime-[a-z0-9]{5} {2}promoted 2026-12-06 \(was candidate, canary 10%\)$/m);
    const json = JSON.parse(diffCommand({ before: files[0], after: files[1], json: true }));
    expect(json.rollouts).toEqual([{ bot: 'acme-support', pool: expect.stringMatching(/^realtime-/), change: 'promoted', from: { version: '2026-12-06', mode: 'canary', share: 0.1 } }]);
    expect(json.reloads).toEqual([{ bot: 'acme-support', pool: json.rollouts[0].pool, changed: ['model.head', 'model.memory', 'model.version'] }]);
    expect(json.moves).toEqual([]);
  });
});
