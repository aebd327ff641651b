/**
 * The protocol's schemas as botshard's servers read them (createApp's fastify: validation by ajv, strict,
 * serialization by fast-json-stringify): what each accepts and refuses, and what json-schema.ts emits.
 */
import { ModelReadyResponse, Parameters, textInferenceRequest, withErrors } from '@botshard/runtime/oip';
import { predictRequest } from '@botshard/runtime/oip/predict';
import { object, optional, string, tuple } from '@botshard/runtime/oip/json-schema';
import { createApp } from '@botshard/runtime/serve/app';

async function appWith(body: object) {
  const app = createApp({ name: 'schemas', ready: () => true, body: 'json', logger: false });
  app.post('/in', { schema: { body } }, async () => ({ ok: true }));
  app.get('/ready', { schema: { response: withErrors(ModelReadyResponse) } }, async () => ({ name: 'b', ready: true, extra: 'dropped', failedVersion: { head: 'h.onnx', error: 'bad', since: 'now', failures: 2 } }));
  await app.ready();
  return app;
}

describe('json-schema builders', () => {
  it('requires every property but the optional ones, and says nothing of `required` when none is', () => {
    expect(object({ a: string(), b: optional(string()) })).toMatchObject({ type: 'object', required: ['a'] });
    expect(object({ b: optional(string()) })).not.toHaveProperty('required');
    expect(object({ a: string() }, { additionalProperties: false })).toMatchObject({ additionalProperties: false });
  });

  it('a tuple is an array of exactly its items', () => {
    expect(tuple([string(), string()])).toEqual({ type: 'array', items: [{ type: 'string' }, { type: 'string' }], additionalItems: false, minItems: 2, maxItems: 2 });
  });

  it('the optional mark is no JSON: the schemas serialize as plain JSON Schema', () => {
    expect(JSON.parse(JSON.stringify(object({ b: optional(Parameters) })))).toEqual({
      type: 'object',
      properties: { b: { type: 'object', patternProperties: { '^(.*)$': { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] } } } },
    });
  });
});

describe('the text inference request, as fastify validates it', () => {
  const text = (data: unknown, shape: unknown = [Array.isArray(data) ? data.length : 1], extra: object = {}) => ({
    inputs: [{ name: 'text', shape, datatype: 'BYTES', data, ...extra }],
  });
  let app: Awaited<ReturnType<typeof appWith>>;
  beforeAll(async () => {
    app = await appWith(textInferenceRequest({ maxBatch: 2, maxTextLength: 5 }));
  });
  afterAll(() => app.close());
  const post = (payload: object) => app.inject({ method: 'POST', url: '/in', payload });

  it.each([
    ['flat texts', text(['hi', 'yo'])],
    ['nested texts, shape [N, 1]', text([['hi'], ['yo']], [2, 1])],
    ['an id, parameters and requested outputs', { id: 'r1', parameters: { a: 1, b: 'x', c: true }, ...text(['hi']), outputs: [{ name: 'intent' }] }],
  ])('accepts %s', async (_, payload) => {
    expect((await post(payload)).statusCode).toBe(200);
  });

  it.each([
    ['no inputs', {}, 'inputs'],
    ['an input not named text', { inputs: [{ name: 'other', shape: [1], datatype: 'BYTES', data: ['hi'] }] }, 'name'],
    ['more texts than maxBatch', text(['a', 'b', 'c']), 'shape'],
    ['a text longer than maxTextLength', text(['toolong']), 'data'],
    ['a third dimension', text([['hi']], [1, 1, 1]), 'shape'],
    ['a second dimension other than 1', text([['hi']], [1, 2]), 'shape'],
    ['a FP32 tensor', { inputs: [{ name: 'text', shape: [1], datatype: 'FP32', data: ['hi'] }] }, 'datatype'],
    ['a parameter that is an object', { parameters: { a: {} }, ...text(['hi']) }, 'parameters'],
  ])('refuses %s, naming the field', async (_, payload, field) => {
    const res = await post(payload);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toContain(field);
  });
});

describe('the other schemas', () => {
  it('predict takes one text and nothing else', async () => {
    const app = await appWith(predictRequest(5));
    try {
      expect((await app.inject({ method: 'POST', url: '/in', payload: { text: 'hi' } })).statusCode).toBe(200);
      expect((await app.inject({ method: 'POST', url: '/in', payload: { text: 'hi', more: 1 } })).statusCode).toBe(400);
      expect((await app.inject({ method: 'POST', url: '/in', payload: { text: 'toolong' } })).statusCode).toBe(400);
    } finally {
      await app.close();
    }
  });

  it('a response keeps its schema\'s fields, nested ones included, and drops the others', async () => {
    const app = await appWith({});
    try {
      expect((await app.inject({ method: 'GET', url: '/ready' })).json()).toEqual({ name: 'b', ready: true, failedVersion: { head: 'h.onnx', error: 'bad', since: 'now', failures: 2 } });
    } finally {
      await app.close();
    }
  });
});
