/**
 * What a demo head is made of, in plain JS: the seeded embedding tables, the head weights learned from a
 * bot's example utterances, degraded heads (trained with part of their labels shuffled, for trying model
 * rollouts with a bad candidate), and what a head answers for a text as the pool would: the same weights
 * models.ts writes as ONNX, so tests and benchmarks can compute answers offline.
 */
import { Bot, Catalog, Encoder, Intent, Tokenizer } from '../catalog';
import { xxh64 } from '../placement';
import { BotProcessor, Prediction, processingOf } from '../pool/processors';
import { DEFAULT_TOKENIZER, tokenize } from '../pool/tokenizer';
import { mulberry32 } from './random';
import type { TransformerOptions } from './transformer';

/** Width of the embedding bag inside the head of a bot without an encoder. */
export const STANDALONE_DIMENSIONS = 16;

/** A head trained worse on purpose: it loads and runs like the good one, and answers worse. */
export interface Degradation {
  /**
   * Share of the intents (0 to 1) whose training examples go to other intents: a seeded derangement
   * among the chosen ones (at least 2 when above 0), so each of them answers another's examples.
   */
  shuffle: number;
  /** The head's weight scale (DemoModelOptions.temperature for this head): lower is less confident, so more answers fall below the bot's threshold. @default - the options' */
  temperature?: number;
}

/** Degraded heads by head path, model-root-relative as the catalog gives it. */
export type Degradations = ReadonlyMap<string, Degradation> | Readonly<Record<string, Degradation>>;

export interface DemoModelOptions {
  /** @default 1 */
  seed?: number;
  /** Scale of the head's weights: higher means more confident answers. @default 10 */
  temperature?: number;
  /** The encoders' kind: an embedding bag (a fraction of a millisecond a request), or transformer-shaped (milliseconds, for benchmarks). @default "bag" */
  encoder?: 'bag' | { transformer: TransformerOptions };
  /** Heads (a bot's model.head or model.candidate.head) to train degraded. @default - none */
  degraded?: Degradations;
  /**
   * Heads as large as their bots declare (model.memory, or the candidate's): a hidden layer of real
   * weights, multiplied at every run, sized so that the head's file is its declared size (see hiddenLayer).
   * They answer exactly as the small heads do. Encoders keep their size. @default false: heads of a few KiB
   */
  sized?: boolean;
}

/** mulberry32 seeded from a string: the same values in every run. */
export function seededRandom(seed: number, key: string): () => number {
  return mulberry32((xxh64(`${seed}/${key}`).lo ^ seed) >>> 0);
}

/** A seeded embedding table: Gaussian values / sqrt(D) (a random projection of the hashed bag of words), row 0 zeros. */
export function embeddingTable(seed: number, key: string, buckets: number, dimensions: number): Float32Array {
  const next = seededRandom(seed, key);
  const table = new Float32Array(buckets * dimensions);
  const scale = 1 / Math.sqrt(dimensions);
  for (let i = dimensions; i < table.length; i += 2) {
    // Box-Muller: two Gaussian values per pair of uniform ones.
    const u = Math.max(next(), 1e-12);
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u)) * scale;
    table[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < table.length) table[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return table;
}

/** An encoder's demo embedding table. */
export function encoderTable(encoder: Encoder, seed: number): Float32Array {
  return embeddingTable(seed, `encoder/${encoder.id}`, encoder.tokenizer.buckets, encoder.dimensions);
}

/** The embedding bag in JS, as the ONNX encoder computes it: sum of the rows of `ids`, L2-normalised. */
export function embed(ids: readonly number[], table: Float32Array, dimensions: number): Float32Array {
  const out = new Float32Array(dimensions);
  for (const id of ids) for (let d = 0; d < dimensions; d++) out[d] += table[id * dimensions + d];
  return normalise(out);
}

function normalise(v: Float32Array): Float32Array {
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  if (norm > 0) for (let d = 0; d < v.length; d++) v[d] /= norm;
  return v;
}

/** Head weights W[D, L]: column j is the normalised mean embedding of `texts[j]`. */
export function headWeights(texts: readonly string[][], table: Float32Array, tokenizer: Pick<Tokenizer, 'buckets' | 'maxTokens'>, D: number, temperature: number): Float32Array {
  const L = texts.length;
  const W = new Float32Array(D * L);
  texts.forEach((list, j) => {
    const mean = new Float32Array(D);
    for (const text of list) {
      const e = embed(tokenize(text, tokenizer), table, D);
      for (let d = 0; d < D; d++) mean[d] += e[d];
    }
    normalise(mean);
    for (let d = 0; d < D; d++) W[d * L + j] = mean[d] * temperature;
  });
  return W;
}

/** The degradation of a head, if any, checked. */
export function degradationOf(degraded: Degradations | undefined, head: string): Degradation | undefined {
  const d = degraded instanceof Map ? degraded.get(head) : (degraded as Record<string, Degradation> | undefined)?.[head];
  if (d === undefined) return undefined;
  if (!(Number.isFinite(d.shuffle) && d.shuffle >= 0 && d.shuffle <= 1)) throw new Error(`degraded head ${head}: shuffle must be from 0 to 1, got ${d.shuffle}`);
  if (d.temperature !== undefined && !(Number.isFinite(d.temperature) && d.temperature > 0)) throw new Error(`degraded head ${head}: temperature must be above 0, got ${d.temperature}`);
  return d;
}

/** The heads of a degradation list. */
export function degradedHeads(degraded: Degradations | undefined): string[] {
  return degraded instanceof Map ? [...degraded.keys()] : Object.keys(degraded ?? {});
}

/**
 * Whose examples each label of a degraded head learns: `source[j]` is the intent whose examples train
 * label j. `round(shuffle x labels)` intents (at least 2 when shuffle > 0), picked by a seeded shuffle,
 * are put on one seeded cycle (Sattolo's algorithm): none keeps its own examples. The others keep theirs.
 */
export function intentSources(labels: number, shuffle: number, next: () => number): number[] {
  const source = Array.from({ length: labels }, (_, j) => j);
  if (shuffle <= 0 || labels < 2) return source;
  const k = Math.min(labels, Math.max(2, Math.round(shuffle * labels)));
  const order = [...source];
  for (let i = labels - 1; i > 0; i--) {
    const r = Math.floor(next() * (i + 1));
    [order[i], order[r]] = [order[r], order[i]];
  }
  const chosen = order.slice(0, k);
  const cycle = [...chosen];
  for (let i = k - 1; i > 0; i--) {
    const r = Math.floor(next() * i); // r < i: a single cycle, no fixed point
    [cycle[i], cycle[r]] = [cycle[r], cycle[i]];
  }
  chosen.forEach((label, i) => (source[label] = cycle[i]));
  return source;
}

/** The texts each label of a head learns from: its intent's examples (or name), reassigned when the head is degraded. */
export function trainingTexts(intents: readonly Intent[], degradation: Degradation | undefined, seed: number, head: string): string[][] {
  const own = intents.map((intent) => (intent.examples.length > 0 ? intent.examples : [intent.name.replace(/[_-]+/g, ' ')]));
  if (!degradation) return own;
  return intentSources(intents.length, degradation.shuffle, seededRandom(seed, `degraded/${head}`)).map((j) => own[j]);
}

/** One version of a bot's model: its head path, the encoder it takes embeddings from, its declared bytes. */
export interface HeadVersion {
  head: string;
  encoder?: string;
  /** Its declared bytes (model.memory or model.candidate.memory): a sized head's size. @default - the head at its smallest */
  memory?: number;
}

/** The serving head of a bot, and its candidate's when it has one. */
export function headVersions(bot: Bot): HeadVersion[] {
  const { model } = bot;
  const versions: HeadVersion[] = [{ head: model.head, encoder: model.encoder, memory: model.memory }];
  if (model.candidate) versions.push({ head: model.candidate.head, encoder: model.candidate.encoder, memory: model.candidate.memory });
  return versions;
}

/** A demo head: W[D, L] (bias zero) over the embedding table it reads (its encoder's, or its own bag's). */
export interface DemoHead {
  weights: Float32Array;
  dimensions: number;
  labels: number;
  table: Float32Array;
  tokenizer: Tokenizer;
  /** The encoder it takes embeddings from; absent: it holds its own embedding bag and takes `input_ids`. */
  encoder?: Encoder;
}

/** The demo head of one version of a bot; `tables`: the encoders' tables by id (an unknown encoder: a bag of its own). */
export function demoHead(bot: Bot, version: HeadVersion, tables: ReadonlyMap<string, { encoder: Encoder; table: Float32Array }>, opts: DemoModelOptions): DemoHead {
  const seed = opts.seed ?? 1;
  const degradation = degradationOf(opts.degraded, version.head);
  const temperature = degradation?.temperature ?? opts.temperature ?? 10;
  const shared = version.encoder ? tables.get(version.encoder) : undefined;
  const dimensions = shared?.encoder.dimensions ?? STANDALONE_DIMENSIONS;
  const tokenizer = shared?.encoder.tokenizer ?? DEFAULT_TOKENIZER;
  const table = shared?.table ?? embeddingTable(seed, `head/${bot.id}`, DEFAULT_TOKENIZER.buckets, dimensions);
  const weights = headWeights(trainingTexts(bot.intents, degradation, seed, version.head), table, tokenizer, dimensions, temperature);
  return { weights, dimensions, labels: bot.intents.length, table, tokenizer, ...(shared ? { encoder: shared.encoder } : {}) };
}

/**
 * The hidden layer of a sized head, W1[D, H] and W2[H, L], such that Relu(e W1) W2 = e W for every e:
 * W1 = [I, -I, R] and W2 = [W; -W; 0], since Relu(x) - Relu(-x) = x. The first 2D hidden units carry the
 * embedding's positive and negative parts; the other H - 2D have seeded random weights R in W1 (real
 * activations, computed at every run) and zero rows in W2, so they add exactly nothing to the logits.
 * Every weight is multiplied at every run: onnxruntime folds only nodes whose inputs are all constant,
 * and both MatMuls take the request's embedding (or what it became); zeros are multiplied like any value.
 */
export function hiddenLayer(W: Float32Array, D: number, L: number, H: number, next: () => number): { input: Float32Array; output: Float32Array } {
  if (H < 2 * D) throw new Error(`a hidden layer of ${H} units cannot carry an embedding of ${D} (at least ${2 * D})`);
  const input = new Float32Array(D * H);
  const scale = 1 / Math.sqrt(D);
  for (let d = 0; d < D; d++) {
    const row = d * H;
    input[row + d] = 1;
    input[row + D + d] = -1;
    for (let k = 2 * D; k < H; k++) input[row + k] = (2 * next() - 1) * scale;
  }
  const output = new Float32Array(H * L); // rows 2D.. stay zero
  for (let d = 0; d < D; d++) {
    for (let j = 0; j < L; j++) {
      output[d * L + j] = W[d * L + j];
      output[(D + d) * L + j] = -W[d * L + j];
    }
  }
  return { input, output };
}

/**
 * The hidden width H that makes a head's file `bytes` long: its float32 weights are H (D + L) values,
 * beside `fixedBytes` (the bias, its own embedding table, the graph). At least 2D (a head declared
 * smaller than that is written at its smallest).
 */
export function hiddenWidth(bytes: number, D: number, L: number, fixedBytes: number): number {
  return Math.max(2 * D, Math.floor((bytes - fixedBytes) / (4 * (D + L))));
}

/**
 * A head's probabilities for an embedding: softmax(e W), rounded to float32 as the ONNX head outputs them.
 * A sized head computes the same e W through its hidden layer (hiddenLayer), so this is its answer too.
 */
export function headProbabilities(head: DemoHead, embedding: Float32Array): Float32Array {
  const { weights: W, labels: L, dimensions: D } = head;
  const logits = new Array<number>(L).fill(0);
  for (let d = 0; d < D; d++) for (let j = 0; j < L; j++) logits[j] += embedding[d] * W[d * L + j];
  const max = Math.max(...logits);
  const exps = logits.map((x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return Float32Array.from(exps, (x) => x / sum);
}

/**
 * What a demo head answers, as the pool does: the bot's rewrite rules, its tokenizer, the bag encoder,
 * the head, then its threshold and fallback. `head`: the bot's model.head or model.candidate.head.
 * Computed in JS from the weights demoModels writes with the same options (bag encoders only; sized heads
 * or not: they answer alike).
 */
export function demoAnswerer(catalog: Catalog, bot: Bot | string, head: string, opts: DemoModelOptions = {}): (text: string) => Prediction {
  const b = typeof bot === 'string' ? catalog.bots.find((x) => x.id === bot) : bot;
  if (!b) throw new Error(`no bot "${String(bot)}" in the catalog`);
  const version = headVersions(b).find((v) => v.head === head);
  if (!version) throw new Error(`"${head}" is not a head of bot ${b.id}: its heads are ${headVersions(b).map((v) => v.head).join(', ')}`);
  if (version.encoder && opts.encoder !== undefined && opts.encoder !== 'bag') throw new Error('demo answers are computed through bag encoders only (opts.encoder "bag")');
  const encoder = catalog.encoders.find((e) => e.id === version.encoder);
  const tables = new Map(encoder ? [[encoder.id, { encoder, table: encoderTable(encoder, opts.seed ?? 1) }]] : []);
  const model = demoHead(b, version, tables, opts);
  const processor = new BotProcessor(processingOf(b, model.encoder?.tokenizer));
  return (text) => processor.decide(headProbabilities(model, embed(processor.tokens(text), model.table, model.dimensions)), 0);
}

/** What a demo head answers for one text (see demoAnswerer, quicker for many texts). */
export function demoAnswer(catalog: Catalog, bot: Bot | string, head: string, text: string, opts: DemoModelOptions = {}): Prediction {
  return demoAnswerer(catalog, bot, head, opts)(text);
}

/** Share of `texts` where two heads of a bot answer the same intent (after threshold and fallback): 1 for no texts. */
export function demoAgreement(catalog: Catalog, bot: Bot | string, heads: readonly [string, string], texts: readonly string[], opts: DemoModelOptions = {}): number {
  if (texts.length === 0) return 1;
  const [a, b] = heads.map((head) => demoAnswerer(catalog, bot, head, opts));
  return texts.filter((t) => a(t).intent === b(t).intent).length / texts.length;
}
