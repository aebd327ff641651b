/**
 * `botshard_router_requests_aborted_total`: the requests the router took and never answered. Against a
 * pool that holds every request until told to answer (REST and gRPC), so a request is in flight for as
 * long as the test wants and no model burns the machine's cores: a client that goes away mid-flight is
 * counted (`client`), a router that exits at its drain limit counts what it cuts (`shutdown`, in its last
 * log line), and nothing is counted when every request is answered.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { parseCatalog, plan } from '@botshard/runtime';
import { inferenceService } from '@botshard/runtime/oip/grpc';
import { GrpcClient, inferRequest } from '../support/grpc';
import { catalogInput, ensureBuilt, listeningLine, supportBot, tempDir, until } from '../pool/support';
import { RunningRouter, runRouter } from './support';

const BIN = path.resolve(__dirname, '../../runtime/bin/botshard.js');

beforeAll(() => ensureBuilt());

const catalog = parseCatalog(catalogInput([supportBot('held')]));
const poolName = plan(catalog).pools[0].name;

/** A pool on REST and gRPC that holds every request until `release()`, then answers each 200 / OK. */
class HoldingPool {
  readonly rest: http.ServerResponse[] = [];
  readonly grpc: Array<grpc.sendUnaryData<unknown>> = [];
  private readonly http = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => this.rest.push(res));
  });
  private readonly grpcServer = new grpc.Server();
  url = '';
  grpcAddress = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
    const service = inferenceService();
    const hold = (_call: unknown, callback: grpc.sendUnaryData<unknown>) => this.grpc.push(callback);
    this.grpcServer.addService(service, { ModelInfer: hold, ModelReady: hold, ModelMetadata: hold });
    const port = await new Promise<number>((resolve, reject) => this.grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    this.grpcAddress = `127.0.0.1:${port}`;
    return this;
  }

  /** Answers every request held so far. */
  release(): void {
    for (const res of this.rest.splice(0)) {
      if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bot: 'held', intent: 'greeting', pool: poolName }));
    }
    for (const callback of this.grpc.splice(0)) callback(null, { model_name: 'held', id: '', outputs: [], raw_output_contents: [] });
  }

  async close(): Promise<void> {
    this.release();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.grpcServer.forceShutdown();
  }
}

/** The aborted counter by `protocol/reason`, every series of it. */
async function aborted(router: RunningRouter): Promise<Record<string, number>> {
  const { values } = await router.app.router.metrics.aborted.get();
  return Object.fromEntries(values.map((v) => [`${v.labels.protocol}/${v.labels.reason}`, v.value]));
}
const none = { 'rest/client': 0, 'rest/shutdown': 0, 'grpc/client': 0, 'grpc/shutdown': 0 };

/** A REST request to the router over its own connection, which the test can close or reset mid-flight. */
function rawPredict(url: string): { req: http.ClientRequest; answer: Promise<number> } {
  const req = http.request(`${url}/v1/bots/held/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false });
  const answer = new Promise<number>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
  });
  req.end(JSON.stringify({ text: 'hello there' }));
  return { req, answer };
}

describe('a router in this process', () => {
  let pool: HoldingPool;
  let router: RunningRouter;
  let client: GrpcClient;

  beforeEach(async () => {
    pool = await new HoldingPool().start();
    router = await runRouter({ catalog, urls: new Map([[poolName, pool.url]]), grpcs: new Map([[poolName, pool.grpcAddress]]) });
    client = new GrpcClient(router.grpc);
  });
  afterEach(async () => {
    client.close();
    await pool.close();
    await router.close();
  });

  test('counts nothing when every request is answered, refusals and unknown bots included', async () => {
    expect(await aborted(router)).toEqual(none); // every series exists from the start, at 0
    const rest = [rawPredict(router.url), rawPredict(router.url)];
    const call = client.call('ModelInfer', inferRequest('held', ['hello there']));
    await until(() => pool.rest.length === 2 && pool.grpc.length === 1, 10_000, 'the pool to hold three requests');
    pool.release();
    expect(await Promise.all(rest.map((r) => r.answer))).toEqual([200, 200]);
    expect((await call).code).toBe(grpc.status.OK);
    expect((await fetch(`${router.url}/v1/bots/nobody/predict`, { method: 'POST', body: '{"text":"hi"}' })).status).toBe(404);
    expect((await fetch(`${router.url}/v1/bots/Bad%20Id/predict`, { method: 'POST', body: '{"text":"hi"}' })).status).toBe(400);
    expect((await client.call('ModelInfer', inferRequest('nobody', ['hi']))).code).toBe(grpc.status.NOT_FOUND);
    expect(await aborted(router)).toEqual(none);
  });

  test('a REST client that closes or resets its connection before the answer is counted once each, whatever the pool does later', async () => {
    const closed = rawPredict(router.url);
    const reset = rawPredict(router.url);
    const kept = rawPredict(router.url);
    await until(() => pool.rest.length === 3, 10_000, 'the pool to hold three requests');
    expect(await aborted(router)).toEqual(none); // in flight is not aborted
    closed.req.destroy();
    reset.req.socket!.resetAndDestroy();
    await until(async () => (await aborted(router))['rest/client'] === 2, 10_000, 'the router to count two aborted requests');
    pool.release();
    expect(await kept.answer).toBe(200);
    expect([await closed.answer, await reset.answer]).toEqual([0, 0]);
    // The pool's late answers to the two that went away change nothing.
    await new Promise((r) => setTimeout(r, 200));
    expect(await aborted(router)).toEqual({ ...none, 'rest/client': 2 });
  });

  test('a gRPC call its client cancels before the answer is counted', async () => {
    const cancelled = new Promise<grpc.status>((resolve) => {
      const call = client.client.ModelInfer(inferRequest('held', ['hello there']), (err: grpc.ServiceError | null) => resolve(err ? err.code : grpc.status.OK));
      void until(() => pool.grpc.length === 1, 10_000, 'the pool to hold the call').then(() => call.cancel());
    });
    expect(await cancelled).toBe(grpc.status.CANCELLED);
    await until(async () => (await aborted(router))['grpc/client'] === 1, 10_000, 'the router to count the cancelled call');
    // Answered calls after it are not counted.
    const answered = client.call('ModelInfer', inferRequest('held', ['hello there']));
    await until(() => pool.grpc.length === 2, 10_000, 'the pool to hold the next call');
    pool.release();
    expect((await answered).code).toBe(grpc.status.OK);
    expect(await aborted(router)).toEqual({ ...none, 'grpc/client': 1 });
  });

  test('gRPC calls whose deadline passes before the pool answers are counted, every one (the client stopped waiting)', async () => {
    for (let i = 0; i < 3; i++) expect((await client.call('ModelInfer', inferRequest('held', ['hello there']), { deadlineMs: 300 })).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await until(async () => (await aborted(router))['grpc/client'] === 3, 10_000, 'the router to count three calls');
    expect(pool.grpc).toHaveLength(3); // each reached the pool: in flight when the deadline passed
    expect(await aborted(router)).toEqual({ ...none, 'grpc/client': 3 });
  });
});

describe('the router process stopping', () => {
  let pool: HoldingPool;
  let proc: ChildProcess | undefined;
  beforeEach(async () => {
    pool = await new HoldingPool().start();
  });
  afterEach(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await pool.close();
  });

  /** `botshard router` against the holding pool, drain limit `drainSeconds`: its URLs, its JSON log lines, its end. */
  async function startRouter(drainSeconds: number) {
    const dir = tempDir('aborted');
    fs.writeFileSync(path.join(dir, 'catalog.json'), JSON.stringify(catalog));
    fs.writeFileSync(path.join(dir, 'pools.json'), JSON.stringify({ [poolName]: pool.url }));
    fs.writeFileSync(path.join(dir, 'pools-grpc.json'), JSON.stringify({ [poolName]: pool.grpcAddress }));
    const child = spawn(process.execPath, [BIN, 'router', '--catalog', path.join(dir, 'catalog.json'), '--pool-urls', path.join(dir, 'pools.json'), '--pool-grpc-urls', path.join(dir, 'pools-grpc.json'), '--port', '0', '--grpc-port', '0', '--metrics-port', '0', '--host', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BOTSHARD_DRAIN_SECONDS: String(drainSeconds) },
    });
    proc = child;
    const logs: any[] = [];
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    const listening = await listeningLine(child, logs, 'router');
    const url = `http://127.0.0.1:${listening.port}`;
    await until(async () => (await fetch(`${url}/v2/health/ready`).catch(() => undefined))?.status === 200, 20_000, 'the router to be ready');
    return { child, url, grpc: `127.0.0.1:${listening.grpcPort}`, metrics: `http://127.0.0.1:${listening.metricsPort}/metrics`, logs, ended };
  }

  test('its "drained" line says how many requests it did not answer while draining: one whose client left, not one answered', async () => {
    const router = await startRouter(30);
    const kept = rawPredict(router.url);
    const left = rawPredict(router.url);
    await until(() => pool.rest.length === 2, 10_000, 'the pool to hold both requests');
    router.child.kill('SIGTERM');
    await until(() => router.logs.some((l) => l.msg === 'signal received: draining'), 10_000, 'the router to start draining');
    left.req.destroy();
    // Its metrics port still answers while it drains: the count is there before the pool answers.
    await until(async () => /^botshard_router_requests_aborted_total\{protocol="rest",reason="client"\} 1$/m.test(await (await fetch(router.metrics)).text()), 10_000, 'the router to count the request whose client left');
    pool.release();
    expect(await kept.answer).toBe(200);
    expect(await router.ended).toEqual({ code: 0, signal: null });
    expect(router.logs.find((l) => l.msg === 'drained: exiting')).toMatchObject({ aborted: 1, unfinished: 1 });
  }, 60_000);

  test('past its drain limit it counts every request still in flight, REST and gRPC, in its last line, and exits', async () => {
    const router = await startRouter(1);
    const rest = rawPredict(router.url);
    const grpcClient = new GrpcClient(router.grpc);
    try {
      const call = grpcClient.call('ModelInfer', inferRequest('held', ['hello there']));
      await until(() => pool.rest.length === 1 && pool.grpc.length === 1, 10_000, 'the pool to hold both requests');
      router.child.kill('SIGTERM');
      expect(await router.ended).toEqual({ code: null, signal: 'SIGTERM' }); // the drain limit's exit
      expect(router.logs.find((l) => l.msg?.startsWith('drain took longer'))).toMatchObject({ drainSeconds: 1, aborted: 2 });
      expect(router.logs.some((l) => l.msg === 'drained: exiting')).toBe(false);
      expect(await rest.answer).toBe(0);
      expect((await call).code).not.toBe(grpc.status.OK);
    } finally {
      grpcClient.close();
    }
  }, 60_000);
});
