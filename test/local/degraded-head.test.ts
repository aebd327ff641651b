/**
 * Demo candidate heads and degraded heads (#31 rule 7): a candidate's head is written beside the serving
 * one; a degraded head loads and runs like a good one (same inputs, outputs and label count) and answers
 * worse; demoAnswer computes offline what the pool answers, checked against onnxruntime-node.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BotInput, Catalog, CatalogInput, parseCatalog } from '@botshard/runtime';
import { main } from '@botshard/runtime/cli';
import { UsageError } from '@botshard/runtime/commands/failure';
import { modelsCommand, parseDegraded } from '@botshard/runtime/local/command';
import { intentSources, seededRandom } from '@botshard/runtime/local/demo-heads';
import { DEMO_RECORD, DemoModelOptions, demoAgreement, demoAnswer, demoAnswerer, demoModels, writeDemoModels } from '@botshard/runtime/local/models';
import { BotProcessor, Prediction, processingOf } from '@botshard/runtime/pool/processors';
import { INTENTS } from '../../bench/rollout';
import { runOnnx, tempDir } from '../pool/support';

const EXAMPLES = INTENTS.flatMap((i) => i.examples);
const BOT = 'acme-support-en';
const SERVING = 'heads/acme-support-en.onnx';
const CANDIDATE = 'heads/acme-support-en-v2.onnx';
const POSTPROCESS = { threshold: 0.35, fallback: 'fallback', entities: [] };
const PREPROCESS = [{ pattern: '[\\w.+-]+@[\\w-]+\\.[\\w.]+', replace: ' email ' }, { pattern: '\\s+', replace: ' ' }];

function bot(id: string, model: BotInput['model'], intents = INTENTS): BotInput {
  return { id, tenant: 'acme', realtime: true, model, intents, preprocess: PREPROCESS, postprocess: POSTPROCESS };
}

function input(): CatalogInput {
  const candidate = (head: string, encoder?: string) => ({ version: 'v2', head, memory: '2Mi', mode: 'shadow' as const, ...(encoder ? { encoder } : {}) });
  const yesno = [{ name: 'yes', examples: ['yes please', 'sure thing', 'absolutely yes'] }, { name: 'no', examples: ['no thanks', 'not at all', 'absolutely not'] }];
  return {
    tenants: [{ id: 'acme' }],
    encoders: [
      { id: 'encoder-en', path: 'encoders/en.onnx', memory: '4Mi', tokenizer: { kind: 'hashing', buckets: 1024 }, dimensions: 64 },
      { id: 'encoder-next', path: 'encoders/next.onnx', memory: '4Mi', tokenizer: { kind: 'hashing', buckets: 2048 }, dimensions: 32 },
    ],
    groups: [{ name: 'rt', realtime: true, memory: '1Gi', pools: 1, poolOverhead: '100Mi', locality: 'none' }],
    bots: [
      bot(BOT, { head: SERVING, memory: '2Mi', encoder: 'encoder-en', candidate: candidate(CANDIDATE, 'encoder-en') }),
      bot('acme-next', { head: 'heads/acme-next.onnx', memory: '2Mi', encoder: 'encoder-en', candidate: candidate('heads/acme-next-v2.onnx', 'encoder-next') }),
      bot('acme-yesno', { head: 'heads/acme-yesno.onnx', memory: '1Mi', candidate: candidate('heads/acme-yesno-v2.onnx') }, yesno),
      bot('acme-remote', { head: 'heads/acme-remote.onnx', memory: '2Mi', encoder: 'encoder-en', candidate: candidate('s3://acme-models/heads/acme-remote-v2.onnx', 'encoder-en') }),
    ],
  };
}

const catalog: Catalog = parseCatalog(input());
const bytesEqual = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
const answers = (head: string, opts: DemoModelOptions, texts = EXAMPLES, id = BOT) => texts.map(demoAnswerer(catalog, id, head, opts));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const degraded = (d: { shuffle: number; temperature?: number }, head = CANDIDATE): DemoModelOptions => ({ seed: 7, degraded: new Map([[head, d]]) });
/** The intents whose examples get another answer from the two heads. */
function changedIntents(a: Prediction[], b: Prediction[]): string[] {
  return INTENTS.filter((intent) => intent.examples.some((e) => a[EXAMPLES.indexOf(e)].intent !== b[EXAMPLES.indexOf(e)].intent)).map((i) => i.name);
}

/** What the pool answers with onnxruntime-node: the bot's rules and tokenizer, encoder then head (or the head alone), threshold and fallback. */
async function onnxAnswers(files: Map<string, Uint8Array>, id: string, head: string, encoder: string | undefined, texts: string[]): Promise<{ answers: Prediction[]; inputs: string[]; outputs: string[]; dims: number[] }> {
  const b = catalog.bots.find((x) => x.id === id)!;
  const enc = catalog.encoders.find((e) => e.id === encoder);
  const processor = new BotProcessor(processingOf(b, enc?.tokenizer));
  const { ids, tokens } = processor.ids(texts);
  const idsFeed = { input_ids: { type: 'int64' as const, data: Array.from(ids, Number), dims: [texts.length, tokens] } };
  const feeds = enc ? { embedding: { type: 'float32' as const, ...(await runOnnx(files.get(enc.path)!, [idsFeed])).results[0].embedding } } : idsFeed;
  const run = await runOnnx(files.get(head)!, [feeds]);
  const { data, dims } = run.results[0].probabilities;
  const probabilities = Float32Array.from(data);
  return { answers: texts.map((_, i) => processor.decide(probabilities, i)), inputs: run.inputs, outputs: run.outputs, dims };
}

describe('candidate heads', () => {
  const files = demoModels(catalog, { seed: 7 });

  test('every local candidate head is written (not s3:// ones), beside the serving heads', () => {
    expect([...files.keys()].filter((f) => f.startsWith('heads/')).sort()).toEqual([
      'heads/acme-next-v2.onnx', 'heads/acme-next.onnx', 'heads/acme-remote.onnx', 'heads/acme-support-en-v2.onnx', 'heads/acme-support-en.onnx', 'heads/acme-yesno-v2.onnx', 'heads/acme-yesno.onnx',
    ]);
  });

  test('a good candidate on the serving encoder answers like the serving version; one on its own encoder takes its width and agrees on the examples', async () => {
    expect(bytesEqual(files.get(CANDIDATE)!, files.get(SERVING)!)).toBe(true);
    expect(answers(CANDIDATE, { seed: 7 })).toEqual(answers(SERVING, { seed: 7 }));
    expect(bytesEqual(files.get('heads/acme-next-v2.onnx')!, files.get('heads/acme-next.onnx')!)).toBe(false);
    const serving = await onnxAnswers(files, 'acme-next', 'heads/acme-next.onnx', 'encoder-en', EXAMPLES);
    const next = await onnxAnswers(files, 'acme-next', 'heads/acme-next-v2.onnx', 'encoder-next', EXAMPLES);
    expect(next.inputs).toEqual(['embedding']);
    expect(next.answers.map((a) => a.intent)).toEqual(answers('heads/acme-next-v2.onnx', { seed: 7 }, EXAMPLES, 'acme-next').map((a) => a.intent));
    // A narrower encoder is less sure of a few examples (fallback), never wrong.
    const truth = EXAMPLES.map((e) => INTENTS.find((i) => i.examples.includes(e))!.name);
    expect(serving.answers.map((a) => a.intent)).toEqual(truth);
    expect(next.answers.filter((a, i) => a.intent !== truth[i] && a.intent !== POSTPROCESS.fallback)).toEqual([]);
    expect(next.answers.filter((a, i) => a.intent === truth[i]).length).toBeGreaterThanOrEqual(0.9 * EXAMPLES.length);
    const yesno = await onnxAnswers(files, 'acme-yesno', 'heads/acme-yesno-v2.onnx', undefined, ['no thanks', 'yes please']);
    expect(yesno.inputs).toEqual(['input_ids']);
    expect(yesno.answers.map((a) => a.intent)).toEqual(['no', 'yes']);
  });
});

describe('degraded heads', () => {
  const half = degraded({ shuffle: 0.5 });
  const files = demoModels(catalog, half);

  test('load in onnxruntime-node with the serving head\'s inputs, outputs and label count, and demoAnswer is what they answer', async () => {
    const texts = [...EXAMPLES, 'reset the password for me@example.com', 'book a flight and block my card', '', 'zzz qqq'];
    for (const opts of [half, degraded({ shuffle: 0.5, temperature: 2 })]) {
      const models = demoModels(catalog, opts);
      for (const head of [SERVING, CANDIDATE]) {
        const onnx = await onnxAnswers(models, BOT, head, 'encoder-en', texts);
        expect(onnx.inputs).toEqual(['embedding']);
        expect(onnx.outputs).toEqual(['probabilities']);
        expect(onnx.dims).toEqual([texts.length, INTENTS.length]);
        const js = answers(head, opts, texts);
        expect(js.map((a) => a.intent)).toEqual(onnx.answers.map((a) => a.intent));
        js.forEach((a, i) => expect(a.confidence).toBeCloseTo(onnx.answers[i].confidence, 5));
      }
    }
    expect(bytesEqual(files.get(CANDIDATE)!, files.get(SERVING)!)).toBe(false);
    // A head without an encoder, degraded: the same through its own embedding bag.
    const yesOpts = degraded({ shuffle: 1 }, 'heads/acme-yesno-v2.onnx');
    const yes = await onnxAnswers(demoModels(catalog, yesOpts), 'acme-yesno', 'heads/acme-yesno-v2.onnx', undefined, ['no thanks', 'yes please']);
    expect(yes.answers.map((a) => a.intent)).toEqual(['yes', 'no']);
    expect(['no thanks', 'yes please'].map(demoAnswerer(catalog, 'acme-yesno', 'heads/acme-yesno-v2.onnx', yesOpts))).toEqual(yes.answers.map((a) => ({ intent: a.intent, confidence: expect.closeTo(a.confidence, 5) })));
  });

  test('answer other intents on about the shuffled share of the bot\'s examples', () => {
    const serving = answers(SERVING, half);
    expect(serving.map((a) => a.intent)).toEqual(EXAMPLES.map((e) => INTENTS.find((i) => i.examples.includes(e))!.name));
    const agreement = (shuffle: number) => demoAgreement(catalog, BOT, [SERVING, CANDIDATE], EXAMPLES, degraded({ shuffle }));
    const changed = changedIntents(serving, answers(CANDIDATE, half));
    console.log(`shuffle 0.5: agreement ${agreement(0.5).toFixed(3)}, changed intents ${changed.length}/${INTENTS.length} (${changed.join(', ')}); shuffle 0.2: ${agreement(0.2).toFixed(3)}; shuffle 1: ${agreement(1).toFixed(3)}`);
    expect(1 - agreement(0.5)).toBeGreaterThanOrEqual(0.3);
    expect(1 - agreement(0.5)).toBeLessThanOrEqual(0.7);
    expect(changed.length).toBeGreaterThanOrEqual(4);
    expect(changed.length).toBeLessThanOrEqual(6);
    expect(agreement(0)).toBe(1);
    expect(1 - agreement(0.2)).toBeGreaterThan(0.1);
    expect(1 - agreement(0.2)).toBeLessThan(0.35);
    expect(agreement(1)).toBeLessThan(0.1);
  });

  test('a lower temperature gives lower confidence, and more answers fall back', () => {
    const serving = answers(SERVING, { seed: 7 });
    const cold = answers(CANDIDATE, degraded({ shuffle: 0, temperature: 3 }));
    const fallbacks = (xs: Prediction[]) => xs.filter((a) => a.intent === POSTPROCESS.fallback).length;
    console.log(`mean confidence on the examples: temperature 10 ${mean(serving.map((a) => a.confidence)).toFixed(3)}, temperature 3 ${mean(cold.map((a) => a.confidence)).toFixed(3)}; fallbacks ${fallbacks(serving)} -> ${fallbacks(cold)} of ${EXAMPLES.length}`);
    expect(mean(cold.map((a) => a.confidence))).toBeLessThan(mean(serving.map((a) => a.confidence)) - 0.2);
    expect(fallbacks(cold)).toBeGreaterThan(fallbacks(serving));
  });

  test('are deterministic, seeded by the seed and the head path', () => {
    expect(bytesEqual(demoModels(catalog, half).get(CANDIDATE)!, files.get(CANDIDATE)!)).toBe(true);
    const picks = [1, 2, 3, 4, 5].map((seed) => JSON.stringify(intentSources(10, 0.5, seededRandom(seed, `degraded/${CANDIDATE}`))));
    expect(new Set(picks).size).toBeGreaterThan(1);
    const byPath = [CANDIDATE, SERVING].map((head) => JSON.stringify(intentSources(10, 0.5, seededRandom(7, `degraded/${head}`))));
    expect(byPath[0]).not.toBe(byPath[1]);
    for (const source of picks.map((p) => JSON.parse(p) as number[])) {
      const moved = source.filter((s, j) => s !== j);
      expect(moved).toHaveLength(5);
      expect([...source].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // each intent's examples train one label
    }
  });

  test('unknown or remote heads and bad values are refused', () => {
    expect(() => demoModels(catalog, degraded({ shuffle: 0.5 }, 'heads/nope.onnx'))).toThrow(/degraded heads heads\/nope\.onnx are not local heads/);
    expect(() => demoModels(catalog, degraded({ shuffle: 0.5 }, 's3://acme-models/heads/acme-remote-v2.onnx'))).toThrow(/not local heads/);
    expect(() => demoModels(catalog, degraded({ shuffle: 1.5 }))).toThrow(/shuffle must be from 0 to 1, got 1.5/);
    expect(() => demoModels(catalog, degraded({ shuffle: 0.5, temperature: 0 }))).toThrow(/temperature must be above 0, got 0/);
    expect(() => demoAnswer(catalog, BOT, 'heads/acme-next.onnx', 'hi')).toThrow(/is not a head of bot acme-support-en/);
  });

  test('writeDemoModels records a degraded head as degraded: a later run without --degraded (botshard up) leaves it; removed, it comes back good', () => {
    const dir = tempDir('degraded');
    const first = writeDemoModels(catalog, dir, half);
    expect(first.written).toContain(CANDIDATE);
    const record = JSON.parse(fs.readFileSync(path.join(dir, DEMO_RECORD), 'utf8'));
    expect(Buffer.from(fs.readFileSync(path.join(dir, CANDIDATE))).equals(Buffer.from(files.get(CANDIDATE)!))).toBe(true);
    expect(record[CANDIDATE]).toMatch(/^degraded:[0-9a-f]{64}$/);
    const again = writeDemoModels(catalog, dir, { seed: 7 });
    expect([again.updated, again.kept, again.unchanged.includes(CANDIDATE)]).toEqual([[], [], true]);
    expect(Buffer.from(fs.readFileSync(path.join(dir, CANDIDATE))).equals(Buffer.from(files.get(CANDIDATE)!))).toBe(true);
    // Degraded again with other values: rewritten (it is still botshard's file).
    expect(writeDemoModels(catalog, dir, { ...half, degraded: { [CANDIDATE]: { shuffle: 1 } } }).updated).toEqual([CANDIDATE]);
    fs.rmSync(path.join(dir, CANDIDATE));
    const good = writeDemoModels(catalog, dir, { seed: 7 });
    expect(good.written).toEqual([CANDIDATE]);
    expect(JSON.parse(fs.readFileSync(path.join(dir, DEMO_RECORD), 'utf8'))[CANDIDATE]).toMatch(/^[0-9a-f]{64}$/);
    expect(bytesEqual(fs.readFileSync(path.join(dir, CANDIDATE)), fs.readFileSync(path.join(dir, SERVING)))).toBe(true);
  });
});

describe('botshard models --degraded', () => {
  const dir = tempDir('degraded-cli');
  const config = path.join(dir, 'catalog.json');
  fs.writeFileSync(config, JSON.stringify(input()));

  test('parses HEAD[=SHUFFLE[,TEMPERATURE]], repeatable', () => {
    expect(parseDegraded(['heads/a.onnx', 'heads/b.onnx=0.25', 'heads/c.onnx=1,2.5'])).toEqual(
      new Map([['heads/a.onnx', { shuffle: 0.5 }], ['heads/b.onnx', { shuffle: 0.25 }], ['heads/c.onnx', { shuffle: 1, temperature: 2.5 }]]),
    );
    expect(parseDegraded(undefined).size).toBe(0);
  });

  test.each([
    ['heads/a.onnx=2', /--degraded "heads\/a\.onnx=2": the shuffle "2" is not a number from 0 to 1 \(fix: --degraded HEAD\[=SHUFFLE\[,TEMPERATURE\]\]/],
    ['heads/a.onnx=half', /the shuffle "half" is not a number from 0 to 1/],
    ['heads/a.onnx=', /the shuffle "" is not a number/],
    ['heads/a.onnx=0.5,0', /the temperature "0" is not a number above 0/],
    ['heads/a.onnx=0.5,', /the temperature "" is not a number above 0/],
    ['heads/a.onnx=0.5,3,1', /3 numbers after "=", at most 2/],
    ['=0.5', /no head path before "="/],
  ])('refuses %s with the flag, the value and the fix', (value, message) => {
    expect(() => parseDegraded([value])).toThrow(UsageError);
    expect(() => parseDegraded([value])).toThrow(message);
  });

  test('refuses a head given twice, and a head the catalog does not have (with a suggestion)', () => {
    expect(() => parseDegraded(['heads/a.onnx=0.1', 'heads/a.onnx=0.2'])).toThrow(/heads\/a\.onnx is given twice/);
    expect(() => modelsCommand({ config, models: dir, degraded: ['heads/acme-support-en-v3.onnx=0.5'] })).toThrow(
      /--degraded heads\/acme-support-en-v3\.onnx: no bot of the catalog has this local head or candidate head \(fix: did you mean heads\/acme-support-en-v2\.onnx\?/,
    );
    expect(() => modelsCommand({ config, models: dir, degraded: ['s3://acme-models/heads/acme-remote-v2.onnx'] })).toThrow(/an s3:\/\/ or https:\/\/ head is not generated/);
  });

  test('the command exits 2 on a bad value and writes the degraded heads on good ones', () => {
    const out: string[] = [];
    const err: string[] = [];
    const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((s) => out.push(String(s)) > 0);
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((s) => err.push(String(s)) > 0);
    try {
      expect(main(['models', '--config', config, '--models', dir, '--degraded', `${CANDIDATE}=1.5`])).toBe(2);
      expect(err.join('')).toMatch(/^botshard: --degraded "heads\/acme-support-en-v2\.onnx=1\.5": the shuffle "1\.5" is not a number from 0 to 1 \(fix: /);
      expect(err.join('')).toContain('--degraded HEAD[=SHUFFLE[,TEMPERATURE]]'); // the usage follows
      expect(fs.existsSync(path.join(dir, CANDIDATE))).toBe(false);
      expect(main(['models', '--config', config, '--models', dir, '--degraded', `${CANDIDATE}=0.5`, '--degraded', 'heads/acme-yesno-v2.onnx=1,4'])).toBe(0);
      expect(out.join('')).toMatch(/: 9 written, 0 updated, 0 unchanged; degraded: heads\/acme-support-en-v2\.onnx \(shuffle 0\.5\), heads\/acme-yesno-v2\.onnx \(shuffle 1, temperature 4\)\n$/);
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
    const expected = demoModels(catalog, { degraded: new Map([[CANDIDATE, { shuffle: 0.5 }], ['heads/acme-yesno-v2.onnx', { shuffle: 1, temperature: 4 }]]) });
    for (const head of [CANDIDATE, 'heads/acme-yesno-v2.onnx']) expect(bytesEqual(fs.readFileSync(path.join(dir, head)), expected.get(head)!)).toBe(true);
    expect(bytesEqual(fs.readFileSync(path.join(dir, CANDIDATE)), fs.readFileSync(path.join(dir, SERVING)))).toBe(false);
  });
});
