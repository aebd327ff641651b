import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseCatalog, xxh64 } from '@botshard/runtime';
import { buildHeadModel, demoModels, embed, embeddingTable, writeDemoModels } from '@botshard/runtime/local/models';
import { DEFAULT_TOKENIZER, tokenize } from '@botshard/runtime/pool/tokenizer';
import { words } from '@botshard/runtime/pool/tokenizer';
import { catalogInput, runOnnx, standaloneBot, supportBot, tempDir } from './support';

describe('hashing tokenizer', () => {
  test('NFKC-normalises, lower-cases and splits on letters and digits', () => {
    expect(words('Ｈｅｌｌｏ, WORLD! café-42 ß')).toEqual(['hello', 'world', 'café', '42', 'ß']);
  });

  test('ids are the words then the bigrams, hashed into 1..buckets-1', () => {
    const ids = tokenize('Reset my password', { buckets: 4096, maxTokens: 64 });
    const id = (t: string) => 1 + (xxh64(t).lo % 4095);
    expect(ids).toEqual([id('reset'), id('my'), id('password'), id('reset my'), id('my password')]);
  });

  test('any standard XXH64 reproduces the ids (checked against xxhash-wasm)', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { h64Raw } = await (require('xxhash-wasm') as () => Promise<{ h64Raw(b: Uint8Array, seed?: bigint): bigint }>)();
    const tokens = ['passwort', 'zurücksetzen', 'passwort zurücksetzen', 'ß', '42'];
    const expected = tokens.map((t) => 1 + Number((h64Raw(new TextEncoder().encode(t), 0n) & 0xffffffffn) % 4095n));
    expect(tokenize('Passwort ZURÜCKSETZEN', { buckets: 4096, maxTokens: 64 })).toEqual(expected.slice(0, 3));
    expect(tokenize('ß 42', { buckets: 4096, maxTokens: 2 })).toEqual(expected.slice(3));
  });

  test('keeps the first maxTokens tokens; 0 is never an id', () => {
    const ids = tokenize(Array.from({ length: 100 }, (_, i) => `w${i}`).join(' '), { buckets: 2, maxTokens: 10 });
    expect(ids).toHaveLength(10);
    expect(ids.every((i) => i === 1)).toBe(true);
    expect(tokenize('', DEFAULT_TOKENIZER)).toEqual([]);
  });
});

function batch(texts: string[], buckets: number) {
  const rows = texts.map((t) => tokenize(t, { buckets, maxTokens: 64 }));
  const width = Math.max(1, ...rows.map((r) => r.length));
  const data = new Array<number>(texts.length * width).fill(0);
  rows.forEach((r, i) => r.forEach((id, j) => (data[i * width + j] = id)));
  return { type: 'int64' as const, data, dims: [texts.length, width] };
}

describe('demo models', () => {
  const catalog = parseCatalog(catalogInput([supportBot('support'), standaloneBot('yesno')]));
  const files = demoModels(catalog, { seed: 7 });

  test('are deterministic and small', () => {
    const again = demoModels(catalog, { seed: 7 });
    expect([...files.keys()].sort()).toEqual(['encoders/en.onnx', 'heads/support.onnx', 'heads/yesno.onnx']);
    for (const [name, bytes] of files) expect(Buffer.compare(Buffer.from(bytes), Buffer.from(again.get(name)!))).toBe(0);
    expect(files.get('heads/support.onnx')!.length).toBeLessThan(10_000);
    expect(files.get('encoders/en.onnx')!.length).toBeLessThan(300_000); // 1024 x 64 float32
  });

  test('the ONNX encoder computes the JS embedding bag (padding adds nothing, empty text gives zeros)', async () => {
    const ids = tokenize('reset my password please', { buckets: 1024, maxTokens: 64 });
    const padded = [...ids, 0, 0, 0];
    const run = await runOnnx(files.get('encoders/en.onnx')!, [{ input_ids: { type: 'int64', data: padded, dims: [1, padded.length] } }, { input_ids: { type: 'int64', data: [0], dims: [1, 1] } }]);
    expect(run.inputs).toEqual(['input_ids']);
    expect(run.outputs).toEqual(['embedding']);
    const [out, empty] = run.results.map((r) => r.embedding);
    expect(out.dims).toEqual([1, 64]);
    const expected = embed(ids, embeddingTable(7, 'encoder/encoder-en', 1024, 64), 64);
    out.data.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
    expect(empty.data.every((v) => v === 0)).toBe(true);
  });

  test('an example utterance gets its intent with high confidence, through encoder and head', async () => {
    const texts = ['I forgot my password', 'why was I charged twice', 'hello there'];
    const enc = await runOnnx(files.get('encoders/en.onnx')!, [{ input_ids: batch(texts, 1024) }]);
    const { embedding } = enc.results[0];
    const head = await runOnnx(files.get('heads/support.onnx')!, [{ embedding: { type: 'float32', ...embedding } }]);
    expect(head.inputs).toEqual(['embedding']);
    expect(head.outputs).toEqual(['probabilities']);
    const { dims, data } = head.results[0].probabilities;
    expect(dims).toEqual([3, 3]);
    for (let i = 0; i < 3; i++) {
      const row = data.slice(i * 3, i * 3 + 3);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(row.indexOf(Math.max(...row))).toBe(i);
      expect(row[i]).toBeGreaterThan(0.8);
    }
  });

  test('a bot without an encoder gets a head that takes input_ids', async () => {
    const run = await runOnnx(files.get('heads/yesno.onnx')!, [{ input_ids: batch(['no thanks', 'yes please'], DEFAULT_TOKENIZER.buckets) }]);
    expect(run.inputs).toEqual(['input_ids']);
    const [noYes, noNo, yesYes, yesNo] = run.results[0].probabilities.data;
    expect(noNo).toBeGreaterThan(noYes);
    expect(yesYes).toBeGreaterThan(yesNo);
  });

  test('a slow head gives the same answer as the plain one', async () => {
    const weights = new Float32Array([1, -1, 0.5, 0.25]);
    const feeds = [{ embedding: { type: 'float32' as const, data: [0.6, 0.8], dims: [1, 2] } }];
    const plain = await runOnnx(buildHeadModel({ weights, dimensions: 2, labels: 2 }), feeds);
    const slow = await runOnnx(buildHeadModel({ weights, dimensions: 2, labels: 2, slow: { size: 64, rounds: 3 } }), feeds);
    slow.results[0].probabilities.data.forEach((v, i) => expect(v).toBeCloseTo(plain.results[0].probabilities.data[i], 6));
  });

  test('writeDemoModels writes at the catalog paths and skips unchanged files', () => {
    const dir = tempDir('write');
    const first = writeDemoModels(catalog, dir, { seed: 7 });
    expect(first.written.sort()).toEqual(['encoders/en.onnx', 'heads/support.onnx', 'heads/yesno.onnx']);
    expect(fs.existsSync(path.join(dir, 'heads/support.onnx'))).toBe(true);
    const second = writeDemoModels(catalog, dir, { seed: 7 });
    expect(second.written).toEqual([]);
    expect(second.unchanged).toHaveLength(3);
    // Demo models it wrote are refreshed when the catalog changes them...
    expect(writeDemoModels(catalog, dir, { seed: 8 }).updated).toHaveLength(3);
    // ...but a file it did not write is the user's own model: never overwritten.
    fs.writeFileSync(path.join(dir, 'heads/support.onnx'), 'my own model');
    const third = writeDemoModels(catalog, dir, { seed: 9 });
    expect(third.kept).toEqual(['heads/support.onnx']);
    expect(fs.readFileSync(path.join(dir, 'heads/support.onnx'), 'utf8')).toBe('my own model');
    expect(third.updated.sort()).toEqual(['encoders/en.onnx', 'heads/yesno.onnx']);
  });
});

describe('the transformer-shaped demo encoder', () => {
  const catalog = parseCatalog(catalogInput([supportBot('support')]));
  const files = demoModels(catalog, { seed: 7, encoder: { transformer: { layers: 2, hidden: 64 } } });
  const encoder = files.get('encoders/en.onnx')!;

  test('keeps the encoder contract, and padding (in the row or from a batch) changes no result', async () => {
    const ids = tokenize('reset my password please', { buckets: 1024, maxTokens: 64 });
    const other = tokenize('why was I charged twice for my order last week', { buckets: 1024, maxTokens: 64 });
    const width = other.length;
    const alone = { input_ids: { type: 'int64' as const, data: ids, dims: [1, ids.length] } };
    const padded = { input_ids: { type: 'int64' as const, data: [...ids, ...new Array(width - ids.length).fill(0), ...other], dims: [2, width] } };
    const run = await runOnnx(encoder, [alone, padded]);
    expect(run.inputs).toEqual(['input_ids']);
    expect(run.outputs).toEqual(['embedding']);
    const a = run.results[0].embedding;
    const b = run.results[1].embedding;
    expect(a.dims).toEqual([1, 64]);
    expect(b.dims).toEqual([2, 64]);
    a.data.forEach((v, i) => expect(b.data[i]).toBeCloseTo(v, 5));
    expect(Math.hypot(...a.data)).toBeCloseTo(1, 5);
  });

  test('does real work: its embedding differs from the bag of words, and the demo head still classifies through it', async () => {
    const bag = demoModels(catalog, { seed: 7 }).get('encoders/en.onnx')!;
    const texts = ['I forgot my password', 'why was I charged twice', 'hello there'];
    const [viaBag, viaTransformer] = await Promise.all([runOnnx(bag, [{ input_ids: batch(texts, 1024) }]), runOnnx(encoder, [{ input_ids: batch(texts, 1024) }])]);
    const diff = viaBag.results[0].embedding.data.reduce((m, v, i) => Math.max(m, Math.abs(v - viaTransformer.results[0].embedding.data[i])), 0);
    expect(diff).toBeGreaterThan(1e-5);
    expect(encoder.length).toBeGreaterThan(bag.length); // its layers' weights
    const head = await runOnnx(files.get('heads/support.onnx')!, [{ embedding: { type: 'float32', ...viaTransformer.results[0].embedding } }]);
    const { data } = head.results[0].probabilities;
    for (let i = 0; i < 3; i++) {
      const row = data.slice(i * 3, i * 3 + 3);
      expect(row.indexOf(Math.max(...row))).toBe(i);
    }
  });
});
