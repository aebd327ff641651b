/**
 * The pool over gRPC (a real `@grpc/grpc-js` client, the protocol's .proto) and REST with the binary tensor
 * data extension: the same answers as REST JSON, the same validation, statuses mapped from the REST ones.
 */
import * as grpc from '@grpc/grpc-js';
import { parseCatalog } from '@botshard/runtime';
import { encodeRaw } from '@botshard/runtime/oip/tensors';
import { healthService } from '@botshard/runtime/oip/grpc';
import { GrpcClient, inferRequest, malformedInfer, rawModelInfer } from '../support/grpc';
import { RunningPool, catalogInput, ensureBuilt, getJson, placement, postJson, runPool, slowModels, standaloneBot, supportBot, until, withModels } from './support';

beforeAll(() => ensureBuilt());

const TEXTS = ['I forgot my password', 'why was I charged twice', 'hello there'];

/** A BYTES tensor's raw bytes: each element's 4-byte little-endian length, then the element. */
const rawBytes = (texts: string[]) => encodeRaw('BYTES', texts);

/** Splits a binary-extension body into its JSON part and its binary tail. */
function splitBinary(body: Buffer, headerLength: number): { json: any; tail: Buffer } {
  return { json: JSON.parse(body.toString('utf8', 0, headerLength)), tail: body.subarray(headerLength) };
}

describe('a pool over gRPC', () => {
  const bots = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'].map((id) => supportBot(id));
  const catalog = parseCatalog(catalogInput([...bots, standaloneBot('yesno')], 2));
  const where = placement(catalog);
  const here = where.get('alpha')!;
  const elsewhere = [...where].find(([, p]) => p !== here)!;
  let pool: RunningPool;
  let client: GrpcClient;

  beforeAll(async () => {
    pool = await runPool({ pool: here, catalog, modelRoot: withModels(catalog), maxBatch: 8, maxTextLength: 200 });
    client = new GrpcClient(pool.grpc);
  });
  afterAll(async () => {
    client.close();
    await pool.close();
  });

  test('health, server metadata, model metadata and readiness', async () => {
    expect(await client.call('ServerLive', {})).toMatchObject({ code: grpc.status.OK, response: { live: true } });
    expect(await client.call('ServerReady', {})).toMatchObject({ code: grpc.status.OK, response: { ready: true } });
    expect((await client.call('ServerMetadata', {})).response).toEqual({ name: 'botshard-pool', version: expect.any(String), extensions: ['binary_tensor_data'] });
    // REST's metadata (server.test.ts checks it field by field), without what the .proto has no field for.
    const meta = await client.call('ModelMetadata', { name: 'alpha' });
    const rest = (await getJson(`${pool.url}/v2/models/alpha`)).body;
    const tensor = ({ name, datatype, shape }: { name: string; datatype: string; shape: number[] }) => ({ name, datatype, shape });
    expect(rest.outputs.map((t: { shape: number[] }) => t.shape)).toEqual([[-1], [-1], [-1, 3]]);
    const { parameters, ...header } = meta.response;
    expect(header).toEqual({ name: 'alpha', versions: rest.versions, platform: rest.platform, inputs: rest.inputs.map(tensor), outputs: rest.outputs.map(tensor) });
    // REST's parameters (the model's sizes among them), each in its InferParameter field.
    expect(Object.fromEntries(Object.entries(parameters as Record<string, any>).map(([k, v]) => [k, v[v.parameter_choice]]))).toEqual(rest.parameters);
    expect(rest.parameters).toMatchObject({ declared_bytes: 2 * 1024 * 1024, measured_bytes: expect.any(Number) });
    expect(meta.metadata['x-botshard-pool']).toBe(here);
    expect((await client.call('ModelReady', { name: 'alpha' })).response).toEqual({ ready: true });
    // gRPC's standard health check (what Kubernetes gRPC probes ask) says the same as ServerReady.
    const health = new (healthService())(pool.grpc, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
    const check = (service: string) => new Promise<{ code: grpc.status; status?: string }>((resolve) => health.Check({ service }, (err: grpc.ServiceError | null, r: any) => resolve({ code: err?.code ?? grpc.status.OK, status: r?.status })));
    try {
      expect(await check('')).toEqual({ code: grpc.status.OK, status: 'SERVING' });
      expect(await check('inference.GRPCInferenceService')).toEqual({ code: grpc.status.OK, status: 'SERVING' });
      expect((await check('something.Else')).code).toBe(grpc.status.NOT_FOUND);
      pool.app.pool.draining = true;
      expect(await check('')).toEqual({ code: grpc.status.OK, status: 'NOT_SERVING' });
      expect((await client.call('ServerReady', {})).response).toEqual({ ready: false });
    } finally {
      pool.app.pool.draining = false;
      health.close();
    }
    expect((await client.call('ModelReady', { name: 'alpha', version: '1' })).response).toEqual({ ready: true });
  });

  test('ModelInfer gives what REST gives, with texts as bytes_contents or as raw_input_contents', async () => {
    const rest = await postJson(`${pool.url}/v2/models/alpha/infer`, { inputs: [{ name: 'text', shape: [3], datatype: 'BYTES', data: TEXTS }] });
    const [intent, confidence, probabilities] = rest.body.outputs;
    const typed = await client.call('ModelInfer', inferRequest('alpha', TEXTS, { id: 'g-1' }));
    expect(typed.code).toBe(grpc.status.OK);
    expect(typed.metadata['x-botshard-pool']).toBe(here);
    expect(typed.response).toMatchObject({ model_name: 'alpha', model_version: '1', id: 'g-1', raw_output_contents: [] });
    const [ti, tc, tp] = typed.response.outputs;
    expect(ti).toMatchObject({ name: 'intent', datatype: 'BYTES', shape: [3] });
    expect(ti.contents.bytes_contents.map((b: Buffer) => b.toString())).toEqual(intent.data);
    expect(tc).toMatchObject({ name: 'confidence', datatype: 'FP32', shape: [3] });
    tc.contents.fp32_contents.forEach((c: number, i: number) => expect(c).toBeCloseTo(confidence.data[i], 5));
    expect(tp).toMatchObject({ name: 'probabilities', shape: [3, 3] });
    expect(tp.contents.fp32_contents).toHaveLength(probabilities.data.length);

    const raw = await client.call('ModelInfer', inferRequest('alpha', TEXTS, { raw: true, outputs: ['intent', 'confidence'] }));
    expect(raw.code).toBe(grpc.status.OK);
    expect(raw.response.outputs.map((o: any) => [o.name, o.contents])).toEqual([['intent', null], ['confidence', null]]);
    const [rawIntent, rawConfidence] = raw.response.raw_output_contents as Buffer[];
    expect(rawIntent.equals(rawBytes(intent.data))).toBe(true);
    expect(rawConfidence).toHaveLength(12);
    for (let i = 0; i < 3; i++) expect(rawConfidence.readFloatLE(i * 4)).toBeCloseTo(confidence.data[i], 5);
  });

  test('bad requests get the REST checks and their statuses: INVALID_ARGUMENT, NOT_FOUND naming the holder', async () => {
    const cases: Array<[object, grpc.status, string]> = [
      [{ ...inferRequest('alpha', TEXTS), inputs: [{ name: 'text', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }] }, grpc.status.INVALID_ARGUMENT, 'datatype "FP32"'],
      [{ ...inferRequest('alpha', TEXTS), inputs: [{ name: 'words', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from('x')] } }] }, grpc.status.INVALID_ARGUMENT, 'unknown input "words"'],
      [inferRequest('alpha', Array(9).fill('hi')), grpc.status.INVALID_ARGUMENT, 'shape [9]'],
      [inferRequest('alpha', ['x'.repeat(201)]), grpc.status.INVALID_ARGUMENT, 'at most 200'],
      [{ ...inferRequest('alpha', TEXTS), inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], contents: { bytes_contents: [Buffer.from('x')] } }] }, grpc.status.INVALID_ARGUMENT, 'but 1 strings'],
      [inferRequest('alpha', TEXTS, { outputs: ['logits'] }), grpc.status.INVALID_ARGUMENT, 'unknown output "logits"'],
      [{ ...inferRequest('alpha', TEXTS, { raw: true }), raw_input_contents: [Buffer.from([5, 0, 0, 0, 104])] }, grpc.status.INVALID_ARGUMENT, 'runs past the end'],
      [{ ...inferRequest('alpha', TEXTS, { raw: true }), raw_input_contents: [] , inputs: [{ name: 'text', datatype: 'TEXT', shape: [1] }] }, grpc.status.INVALID_ARGUMENT, 'datatype "TEXT"'],
      [inferRequest('nobody', TEXTS), grpc.status.NOT_FOUND, 'not in the catalog'],
      [{ ...inferRequest('alpha', TEXTS), model_version: '2' }, grpc.status.NOT_FOUND, 'no version "2"'],
      [{ ...inferRequest('alpha', TEXTS), inputs: [{ name: 'text', datatype: 'FP16', shape: [1], contents: {} }] }, grpc.status.INVALID_ARGUMENT, 'send it as raw_input_contents'],
    ];
    for (const [request, code, message] of cases) {
      const out = await client.call('ModelInfer', request);
      expect([out.code, out.details]).toEqual([code, expect.stringContaining(message)]);
      expect(out.metadata['x-botshard-pool']).toBe(here);
    }
    // A message only a full decoder finds malformed: a 400 from the pool, with its name, like any other.
    const malformed = await rawModelInfer(client, malformedInfer('alpha'));
    expect([malformed?.code, malformed?.details, malformed?.metadata.get('x-botshard-pool')[0]]).toEqual([grpc.status.INVALID_ARGUMENT, expect.stringContaining('not a valid message'), here]);
    const other = await client.call('ModelInfer', inferRequest(elsewhere[0], TEXTS));
    expect([other.code, other.details, other.metadata['x-botshard-pool']]).toEqual([grpc.status.NOT_FOUND, expect.stringContaining(`pool "${elsewhere[1]}" holds it`), elsewhere[1]]);
    expect((await client.call('ModelReady', { name: elsewhere[0] })).code).toBe(grpc.status.NOT_FOUND);
  });

  test('calls are counted in the request metrics by method and status (as its HTTP equivalent), and per bot', async () => {
    const count = async (code: string) => {
      const metrics = await pool.app.poolMetrics.registry.getMetricsAsJSON();
      const values = metrics.find((m) => m.name === 'botshard_pool_request_seconds')!.values as any[];
      return values.find((v) => v.metricName === 'botshard_pool_request_seconds_count' && v.labels.route === 'grpc ModelInfer' && v.labels.code === code)?.value ?? 0;
    };
    const badOf = async () => (await pool.app.poolMetrics.botRequests.get()).values.find((v) => v.labels.bot === 'alpha' && v.labels.outcome === 'bad_request')?.value ?? 0;
    const before = { ok: await count('200'), bad: await count('400'), missing: await count('404'), perBot: await badOf() };
    expect((await client.call('ModelInfer', inferRequest('alpha', ['hi']))).code).toBe(grpc.status.OK);
    expect((await client.call('ModelInfer', inferRequest('alpha', ['hi'], { outputs: ['nope'] }))).code).toBe(grpc.status.INVALID_ARGUMENT);
    // Tensors that cannot be decoded never reach the bot's checks (as REST's schema errors): not counted per bot.
    expect((await client.call('ModelInfer', { ...inferRequest('alpha', ['hi'], { raw: true }), raw_input_contents: [Buffer.from([9])] })).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await client.call('ModelInfer', inferRequest('nobody', ['hi']))).code).toBe(grpc.status.NOT_FOUND);
    expect({ ok: await count('200'), bad: await count('400'), missing: await count('404'), perBot: await badOf() }).toEqual({ ok: before.ok + 1, bad: before.bad + 2, missing: before.missing + 1, perBot: before.perBot + 1 });
  });
});

describe('REST with the binary tensor data extension', () => {
  const catalog = parseCatalog(catalogInput([supportBot('support')]));
  let pool: RunningPool;

  beforeAll(async () => {
    pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: withModels(catalog) });
  });
  afterAll(() => pool.close());

  const binaryInfer = (json: object, tail: Buffer, headerLength?: number) => {
    const header = Buffer.from(JSON.stringify(json));
    return fetch(`${pool.url}/v2/models/support/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength ?? header.length) },
      body: Buffer.concat([header, tail]),
    });
  };

  test('binary inputs are read as their JSON equivalent; binary outputs come back when asked', async () => {
    const json = await postJson(`${pool.url}/v2/models/support/infer`, { inputs: [{ name: 'text', shape: [3], datatype: 'BYTES', data: TEXTS }] });
    const input = { name: 'text', shape: [3], datatype: 'BYTES', parameters: { binary_data_size: rawBytes(TEXTS).length } };

    const plain = await binaryInfer({ inputs: [input] }, rawBytes(TEXTS));
    expect(plain.status).toBe(200);
    expect(plain.headers.get('inference-header-content-length')).toBeNull();
    expect(await plain.json()).toEqual(json.body);

    const all = await binaryInfer({ inputs: [input], parameters: { binary_data_output: true } }, rawBytes(TEXTS));
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toBe('application/octet-stream');
    const { json: header, tail } = splitBinary(Buffer.from(await all.arrayBuffer()), Number(all.headers.get('inference-header-content-length')));
    expect(header.outputs.map((o: any) => [o.name, o.data, o.parameters.binary_data_size])).toEqual([['intent', undefined, expect.any(Number)], ['confidence', undefined, 12], ['probabilities', undefined, 36]]);
    const intentBytes = tail.subarray(0, header.outputs[0].parameters.binary_data_size);
    expect(intentBytes.equals(rawBytes(json.body.outputs[0].data))).toBe(true);
    const confidence = tail.subarray(intentBytes.length, intentBytes.length + 12);
    for (let i = 0; i < 3; i++) expect(confidence.readFloatLE(i * 4)).toBeCloseTo(json.body.outputs[1].data[i], 5);

    // One output binary, the other JSON.
    const mixed = await fetch(`${pool.url}/v2/models/support/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'text', shape: [3], datatype: 'BYTES', data: TEXTS }], outputs: [{ name: 'intent' }, { name: 'confidence', parameters: { binary_data: true } }] }) });
    const split = splitBinary(Buffer.from(await mixed.arrayBuffer()), Number(mixed.headers.get('inference-header-content-length')));
    expect(split.json.outputs[0].data).toEqual(json.body.outputs[0].data);
    expect(split.json.outputs[1].parameters.binary_data_size).toBe(12);
    expect(split.tail).toHaveLength(12);
  });

  test('binary bodies that do not add up are 400 naming what is wrong', async () => {
    const input = (size: number) => ({ name: 'text', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: size } });
    const cases: Array<[Promise<Response>, string]> = [
      [binaryInfer({ inputs: [input(9)] }, Buffer.concat([rawBytes(['hello']), Buffer.from('xyz')])), '3 bytes after the JSON part'],
      [binaryInfer({ inputs: [input(20)] }, rawBytes(['hello'])), 'declares 20 binary bytes'],
      [binaryInfer({ inputs: [input(7)] }, rawBytes(['hello']).subarray(0, 7)), 'runs past the end'],
      [binaryInfer({ inputs: [input(9)] }, rawBytes(['hello']), 10_000), 'inference-header-content-length'],
      [binaryInfer({ inputs: [{ ...input(9), data: ['x'] }] }, rawBytes(['hello'])), 'both "data" and'],
      [binaryInfer({ inputs: [{ ...input(4), datatype: 'FP32' }] }, Buffer.alloc(4)), 'datatype must be "BYTES"'],
    ];
    for (const [response, message] of cases) {
      const res = await response;
      const body = (await res.json()) as { error?: string };
      expect([res.status, body.error]).toEqual([400, expect.stringContaining(message)]);
    }
  });
});

describe('gRPC deadlines and timeouts', () => {
  const catalog = parseCatalog(catalogInput([standaloneBot('slow', { model: { head: 'heads/slow.onnx', memory: '1Mi' } })]));
  let pool: RunningPool;
  let client: GrpcClient;

  beforeAll(async () => {
    pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: slowModels(catalog, 400), timeoutMs: 200 });
    client = new GrpcClient(pool.grpc);
  });
  afterAll(async () => {
    client.close();
    await pool.close();
  });

  test("the pool's timeout is DEADLINE_EXCEEDED with the pool's message", async () => {
    const out = await client.call('ModelInfer', inferRequest('slow', ['yes']));
    expect([out.code, out.details]).toEqual([grpc.status.DEADLINE_EXCEEDED, expect.stringContaining('did not answer within')]);
    expect(out.metadata['x-botshard-pool']).toBe(pool.app.pool.topology!.pools[0].name);
  });
});

describe('gRPC and drain', () => {
  const catalog = parseCatalog(catalogInput([standaloneBot('slow', { model: { head: 'heads/slow.onnx', memory: '1Mi' } })]));

  test('a call in flight when the pool drains is answered before the workers stop; then no new call is taken', async () => {
    const pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: slowModels(catalog, 30), timeoutMs: 20_000 });
    const client = new GrpcClient(pool.grpc);
    try {
      expect((await client.call('ServerReady', {})).response).toEqual({ ready: true });
      const inFlight = client.call('ModelInfer', inferRequest('slow', ['yes']));
      await until(() => pool.app.pool.queueDepths().some((d) => d > 0), 5_000, 'the call to reach a worker');
      const drained = pool.app.drain();
      const answer = await inFlight;
      expect([answer.code, answer.details]).toEqual([grpc.status.OK, undefined]);
      expect(answer.response.outputs[0].contents.bytes_contents).toHaveLength(1);
      await drained;
      const after = await client.call('ServerLive', {}, { deadlineMs: 1000 });
      expect(after.code).not.toBe(grpc.status.OK);
    } finally {
      client.close();
      await pool.close().catch(() => undefined);
    }
  });
});
