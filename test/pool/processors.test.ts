/**
 * A bot's text pipeline around its models (runtime/src/pool/processors.ts), on its own: RE2 rewrites,
 * token ids as the models take them, the decision from a row of probabilities (argmax, threshold,
 * fallback) and entities with their offsets. Real RE2, real tokenizer; no worker.
 */
import { Bot, Tokenizer } from '@botshard/runtime/catalog';
import { BotProcessor, Processing, processingOf } from '@botshard/runtime/pool/processors';
import { DEFAULT_TOKENIZER, tokenize } from '@botshard/runtime/pool/tokenizer';

const TOKENIZER: Tokenizer = { kind: 'hashing', buckets: 1024, maxTokens: 8 };

function processor(o: Partial<Processing> & { threshold?: number; fallback?: string; entities?: Processing['postprocess']['entities'] } = {}): BotProcessor {
  return new BotProcessor({
    preprocess: o.preprocess ?? [],
    postprocess: { threshold: o.threshold ?? 0.5, fallback: o.fallback ?? 'human', entities: o.entities ?? [] },
    labels: o.labels ?? ['greeting', 'billing', 'refund'],
    tokenizer: o.tokenizer ?? TOKENIZER,
  });
}

describe('processingOf', () => {
  const bot = {
    id: 'b',
    tenant: 'acme',
    realtime: true,
    properties: {},
    model: { head: 'heads/b.onnx', memory: 1 },
    intents: [{ name: 'yes', examples: [] }, { name: 'no', examples: [] }],
    preprocess: [{ pattern: 'x', replace: 'y', flags: '' }],
    postprocess: { threshold: 0.3, fallback: 'other', entities: [] },
  } as Bot;

  test("takes the bot's rules and its intents' names in order, with its encoder's tokenizer", () => {
    expect(processingOf(bot, TOKENIZER)).toEqual({ preprocess: bot.preprocess, postprocess: bot.postprocess, labels: ['yes', 'no'], tokenizer: TOKENIZER });
  });

  test('a bot without an encoder tokenizes with the default tokenizer', () => {
    expect(processingOf(bot, undefined).tokenizer).toEqual(DEFAULT_TOKENIZER);
    expect(new BotProcessor(processingOf(bot, undefined)).labels).toEqual(['yes', 'no']);
  });
});

describe('BotProcessor: pre-processing and tokens', () => {
  test('rewrites run in order, each on every match, with the rule\'s flags', () => {
    const p = processor({
      preprocess: [
        { pattern: '[0-9]+', replace: '#', flags: '' },
        { pattern: 'ORDER', replace: 'order', flags: 'i' },
        { pattern: '#\\s*#', replace: 'N', flags: '' },
      ],
    });
    expect(p.preprocess('Order 12 and order 34')).toBe('order # and order #');
    expect(p.preprocess('12 34')).toBe('N');
    expect(p.preprocess('nothing to do')).toBe('nothing to do');
  });

  test('patterns match characters, not UTF-16 units (unicode)', () => {
    const p = processor({ preprocess: [{ pattern: '^.$', replace: 'one', flags: '' }] });
    expect(p.preprocess('😀')).toBe('one');
  });

  test('tokens are the tokenizer\'s ids of the pre-processed text', () => {
    const p = processor({ preprocess: [{ pattern: 'colour', replace: 'color', flags: '' }] });
    expect(p.tokens('my colour')).toEqual(tokenize('my color', TOKENIZER));
    expect(p.tokens('my colour')).not.toEqual(tokenize('my colour', TOKENIZER));
  });

  test('ids: one row per text, 0-padded to the longest, row after row', () => {
    const p = processor();
    const a = p.tokens('hello there friend');
    const b = p.tokens('hi');
    const { ids, tokens } = p.ids(['hello there friend', 'hi']);
    expect(tokens).toBe(a.length);
    expect(a.length).toBeGreaterThan(b.length);
    expect([...ids]).toEqual([...a, ...b, ...new Array(a.length - b.length).fill(0)].map(BigInt));
  });

  test('ids: texts without any token still get one (padding) column', () => {
    const { ids, tokens } = processor().ids(['', '!!!']);
    expect(tokens).toBe(1);
    expect([...ids]).toEqual([0n, 0n]);
  });
});

describe('BotProcessor: decide', () => {
  const p = processor({ threshold: 0.5 });

  test('the label of the highest probability of the row', () => {
    const probs = Float32Array.from([0.1, 0.7, 0.2, /* row 1 */ 0.05, 0.15, 0.8]);
    expect(p.decide(probs, 0)).toEqual({ intent: 'billing', confidence: expect.closeTo(0.7, 5) });
    expect(p.decide(probs, 1)).toEqual({ intent: 'refund', confidence: expect.closeTo(0.8, 5) });
    expect(p.decide(Float32Array.from([0.9, 0.05, 0.05]), 0).intent).toBe('greeting');
  });

  test('a row is read alone: never the next row\'s values, whatever they are', () => {
    // Row 0's best is 0.5; row 1 starts with 0.9.
    const probs = Float32Array.from([0.2, 0.5, 0.3, /* row 1 */ 0.9, 0.05, 0.05]);
    expect(p.decide(probs, 0)).toEqual({ intent: 'billing', confidence: 0.5 });
    // In row 1, each label is compared with the row's best so far, not with row 0's values.
    const probs2 = Float32Array.from([0.1, 0.1, 0.05, /* row 1 */ 0.05, 0.5, 0.45]);
    expect(p.decide(probs2, 1)).toEqual({ intent: 'billing', confidence: 0.5 });
  });

  test('equal probabilities: the first label', () => {
    expect(p.decide(Float32Array.from([0.2, 0.6, 0.6]), 0).intent).toBe('billing');
  });

  test('below the threshold: the fallback intent, with the confidence; at the threshold: the label', () => {
    expect(p.decide(Float32Array.from([0.3, 0.4, 0.3]), 0)).toEqual({ intent: 'human', confidence: expect.closeTo(0.4, 5) });
    expect(p.decide(Float32Array.from([0.25, 0.5, 0.25]), 0)).toEqual({ intent: 'billing', confidence: 0.5 });
  });
});

describe('BotProcessor: entities', () => {
  test('group 1 when the pattern has one, else the whole match, with offsets into the text as sent', () => {
    const p = processor({
      preprocess: [{ pattern: 'ticket', replace: 'T', flags: '' }],
      entities: [
        { name: 'ticket', pattern: 'ticket #([0-9]+)', flags: '' },
        { name: 'email', pattern: '[a-z]+@[a-z]+\\.com', flags: '' },
      ],
    });
    const text = 'ticket #123 and ticket #45, mail bob@acme.com';
    expect(p.entities(text)).toEqual([
      { name: 'ticket', value: '123', start: 8, end: 11 },
      { name: 'ticket', value: '45', start: 24, end: 26 },
      { name: 'email', value: 'bob@acme.com', start: 33, end: 45 },
    ]);
    // The same again: each call starts from the beginning of the text.
    expect(p.entities(text)).toHaveLength(3);
  });

  test("an optional group that did not take part: the whole match; the rule's flags apply", () => {
    const p = processor({ entities: [{ name: 'code', pattern: 'code(-[0-9]+)?', flags: 'i' }] });
    expect(p.entities('CODE and code-7')).toEqual([
      { name: 'code', value: 'CODE', start: 0, end: 4 },
      { name: 'code', value: '-7', start: 13, end: 15 },
    ]);
  });

  test('offsets count UTF-16 units of the text as sent (JavaScript string indices)', () => {
    const p = processor({ entities: [{ name: 'n', pattern: '[0-9]+', flags: '' }] });
    expect(p.entities('😀 42')).toEqual([{ name: 'n', value: '42', start: 3, end: 5 }]);
  });

  test('an empty match moves on instead of looping', () => {
    const p = processor({ entities: [{ name: 'x', pattern: 'x*', flags: '' }] });
    const found = p.entities('axxb');
    expect(found.filter((e) => e.value !== '')).toEqual([{ name: 'x', value: 'xx', start: 1, end: 3 }]);
    expect(found.length).toBeLessThan(10);
  });

  test('at most 100 entities per text, across rules', () => {
    const p = processor({
      entities: [
        { name: 'a', pattern: 'a', flags: '' },
        { name: 'b', pattern: 'b', flags: '' },
      ],
    });
    const found = p.entities(`${'a'.repeat(60)}${'b'.repeat(60)}`);
    expect(found).toHaveLength(100);
    expect(found.filter((e) => e.name === 'b')).toHaveLength(40);
    expect(processor({ entities: [{ name: 'a', pattern: 'a', flags: '' }] }).entities('a'.repeat(99))).toHaveLength(99);
  });
});
