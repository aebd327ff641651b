/**
 * Demo heads as large as their bots declare (`DemoModelOptions.sized`, `botshard models --sized`): each
 * head's file is its declared size, its weights are real (a hidden layer computing the same e W), and it
 * answers every example of its bot as the small head does, in a real pool with onnxruntime-node sessions.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Catalog, parseCatalog, plan } from '@botshard/runtime';
import { main } from '@botshard/runtime/cli';
import { hiddenLayer, hiddenWidth, seededRandom } from '@botshard/runtime/local/demo-heads';
import { demoAnswer, demoModels, writeDemoModels } from '@botshard/runtime/local/models';
import { RunningPool, catalogInput, ensureBuilt, postJson, runPool, standaloneBot, supportBot, tempDir } from '../pool/support';

const MiB = 1024 * 1024;
const input = catalogInput([
  supportBot('support'),
  standaloneBot('yesno'),
  supportBot('canary', { model: { head: 'heads/canary.onnx', memory: '5Mi', encoder: 'encoder-en', candidate: { version: 'v2', head: 'heads/canary-v2.onnx', memory: '3Mi', mode: 'shadow' } } }),
]);
const catalog: Catalog = parseCatalog(input);
const sized = demoModels(catalog, { sized: true });
const small = demoModels(catalog);
/** Declared bytes by head path: the bots' and the candidate's. */
const declared = new Map(catalog.bots.flatMap((b) => [[b.model.head, b.model.memory] as const, ...(b.model.candidate ? [[b.model.candidate.head, b.model.candidate.memory] as const] : [])]));
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

describe('sized demo heads', () => {
  test('each head file is its declared size (within 1%, never above), the encoders unchanged', () => {
    expect([...sized.keys()].sort()).toEqual([...small.keys()].sort());
    expect(declared.size).toBe(4);
    for (const [head, bytes] of declared) {
      const size = sized.get(head)!.length;
      expect([head, size <= bytes, Math.abs(size - bytes) / bytes < 0.01]).toEqual([head, true, true]);
      expect(small.get(head)!.length).toBeLessThan(300_000); // the small heads stay small (yesno's own bag: 256 KiB)
    }
    expect(same(sized.get('encoders/en.onnx')!, small.get('encoders/en.onnx')!)).toBe(true);
  });

  test('are written deterministically: the same bytes every time, rewritten over small demo heads', () => {
    const again = demoModels(catalog, { sized: true });
    for (const [file, bytes] of sized) expect([file, same(bytes, again.get(file)!)]).toEqual([file, true]);
    expect(same(demoModels(catalog, { sized: true, seed: 2 }).get('heads/support.onnx')!, sized.get('heads/support.onnx')!)).toBe(false);
    const dir = tempDir('sized-write');
    try {
      expect(writeDemoModels(catalog, dir).written).toHaveLength(5);
      const r = writeDemoModels(catalog, dir, { sized: true });
      expect([r.updated.sort(), r.unchanged]).toEqual([[...declared.keys()].sort(), ['encoders/en.onnx']]);
      expect(writeDemoModels(catalog, dir, { sized: true }).unchanged).toHaveLength(5);
      for (const head of declared.keys()) expect(same(fs.readFileSync(path.join(dir, head)), sized.get(head)!)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the hidden layer computes e W exactly: W1 = [I, -I, R], W2 = [W; -W; 0]', () => {
    const [D, L, H] = [8, 3, 40];
    const next = seededRandom(3, 'test');
    const W = Float32Array.from({ length: D * L }, () => next() - 0.5);
    const { input: W1, output: W2 } = hiddenLayer(W, D, L, H, next);
    expect(W1.slice(2 * D, H).some((x) => x !== 0)).toBe(true); // the units beyond 2D have weights of their own
    expect(W2.slice(2 * D * L).every((x) => x === 0)).toBe(true); // and add nothing to the logits
    for (let t = 0; t < 5; t++) {
      const e = Array.from({ length: D }, () => next() - 0.5);
      const h = Array.from({ length: H }, (_, k) => Math.max(0, e.reduce((s, x, d) => s + x * W1[d * H + k], 0)));
      for (let j = 0; j < L; j++) {
        const through = h.reduce((s, x, k) => s + x * W2[k * L + j], 0);
        expect(through).toBeCloseTo(e.reduce((s, x, d) => s + x * W[d * L + j], 0), 12);
      }
    }
    expect(() => hiddenLayer(W, D, L, 2 * D - 1, next)).toThrow(/at least 16/);
    expect(hiddenWidth(100, D, L, 0)).toBe(2 * D); // declared smaller than the smallest head: written at its smallest
    expect(hiddenWidth(MiB, 64, 4, 0)).toBe(Math.floor(MiB / 272));
  });

  test('botshard models --sized writes them', () => {
    const dir = tempDir('sized-cli');
    const config = path.join(dir, 'catalog.json');
    fs.writeFileSync(config, JSON.stringify(input));
    const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(main(['models', '--config', config, '--models', path.join(dir, 'models'), '--sized'])).toBe(0);
      expect(String(out.mock.calls[0][0])).toMatch(/^demo models \(heads at their declared size\) for generation \w+ in .*: 5 written/);
      for (const [head, bytes] of sized) expect(same(fs.readFileSync(path.join(dir, 'models', head)), bytes)).toBe(true);
    } finally {
      out.mockRestore();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a pool with sized demo heads (onnxruntime-node sessions)', () => {
  const dirs = { sized: tempDir('sized-pool'), small: tempDir('small-pool') };
  let pools: Record<'sized' | 'small', RunningPool>;

  beforeAll(async () => {
    ensureBuilt();
    writeDemoModels(catalog, dirs.sized, { sized: true });
    writeDemoModels(catalog, dirs.small);
    const name = plan(catalog).pools[0].name;
    pools = {
      sized: await runPool({ pool: name, catalog, modelRoot: dirs.sized, workers: 1 }),
      small: await runPool({ pool: name, catalog, modelRoot: dirs.small, workers: 1 }),
    };
  }, 60_000);

  afterAll(async () => {
    await Promise.all(Object.values(pools ?? {}).map((p) => p.close()));
    for (const dir of Object.values(dirs)) fs.rmSync(dir, { recursive: true, force: true });
  });

  const infer = async (pool: RunningPool, bot: string, texts: string[]) => {
    const res = await postJson(`${pool.url}/v2/models/${bot}/infer`, { inputs: [{ name: 'text', shape: [texts.length], datatype: 'BYTES', data: texts }] });
    expect(res.status).toBe(200);
    const [intent, , probabilities] = res.body.outputs;
    return { intents: intent.data as string[], probabilities: probabilities.data as number[] };
  };

  test.each(['support', 'yesno', 'canary'])('%s answers every example as its small head does, and as demoAnswer computes', async (id) => {
    const bot = catalog.bots.find((b) => b.id === id)!;
    const texts = bot.intents.flatMap((i) => i.examples);
    const [big, little] = await Promise.all([infer(pools.sized, id, texts), infer(pools.small, id, texts)]);
    expect(big.intents).toEqual(little.intents);
    expect(big.intents).toEqual(texts.map((t) => demoAnswer(catalog, bot, bot.model.head, t).intent));
    expect(big.intents).toEqual(bot.intents.flatMap((i) => i.examples.map(() => i.name)));
    big.probabilities.forEach((p, k) => expect(Math.abs(p - little.probabilities[k])).toBeLessThan(1e-5));
  });
});
