/**
 * The router's calls to pools over node:http2 (routing/grpc-call.ts, channels.ts, grpc.ts `callPool`),
 * against real servers on loopback: a grpc-js server with raw handlers (what pools run), and a bare
 * node:http2 server where a test needs the wire itself (a GOAWAY that refuses a stream).
 */
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { methodPath } from '@botshard/runtime/oip/grpc';
import { PoolChannels } from '@botshard/runtime/routing/channels';
import { UpstreamError } from '@botshard/runtime/routing/forward';
import { callPool } from '@botshard/runtime/routing/grpc';
import { Cancel, unaryCall } from '@botshard/runtime/routing/grpc-call';
import { until } from '../pool/support';
import { refusedPort } from '../support/refused';

const same = (b: Buffer) => b;
const soon = () => Date.now() + 10_000;
/** A cancel of its own per call, as the router gives each call (never aborted). */
const never = () => new Cancel();

/** What the pool saw of one call. */
interface Seen {
  metadata: Record<string, unknown>;
  deadline: number;
  cancelled: boolean;
  peer: string;
}

/** A grpc-js server answering ModelInfer and ModelReady from the request's first word (raw bytes both ways). */
async function startPool(options: grpc.ServerOptions = {}) {
  const server = new grpc.Server(options);
  const seen: Seen[] = [];
  const handle = (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
    const d = call.getDeadline();
    const entry: Seen = { metadata: call.metadata.getMap(), deadline: d instanceof Date ? d.getTime() : d, cancelled: false, peer: call.getPeer() };
    seen.push(entry);
    call.on('cancelled', () => (entry.cancelled = true));
    const word = call.request.toString('latin1').split(' ')[0];
    const named = (pool: string, extra: Record<string, string> = {}) => {
      const m = new grpc.Metadata();
      m.set('x-botshard-pool', pool);
      for (const [k, v] of Object.entries(extra)) m.set(k, v);
      return m;
    };
    switch (word) {
      case 'echo': {
        call.sendMetadata(named('pool-a', { 'botshard-residency': 'warm', 'x-internal': 'not for callers' }));
        return callback(null, Buffer.from(call.request).reverse());
      }
      case 'not-ready': return callback(null, Buffer.alloc(0));
      case 'held': return callback({ code: grpc.status.NOT_FOUND, details: 'bot "b-1" is on pool-b: 100% sure ✓', metadata: named('pool-b', { 'retry-after': '1' }) });
      case 'full': return callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'queue full', metadata: named('pool-a') });
      case 'invalid': return callback({ code: grpc.status.INVALID_ARGUMENT, details: 'bad tensor' });
      case 'anonymous-unavailable': return callback({ code: grpc.status.UNAVAILABLE, details: 'somewhere in between' });
      case 'slow': return void setTimeout(() => callback(null, Buffer.from('late')), 3000).unref();
      default: return callback(null, call.request);
    }
  };
  for (const m of ['ModelInfer', 'ModelReady']) server.register(methodPath(m), handle, same, same, 'unary');
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { address: `127.0.0.1:${port}`, seen, close: () => server.forceShutdown() };
}

describe('callPool over node:http2', () => {
  let pool: Awaited<ReturnType<typeof startPool>>;
  const channels = new PoolChannels();
  const metadata = { 'x-request-id': 'req-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
  const call = (method: 'ModelInfer' | 'ModelReady', message: Buffer, o: { deadline?: number; signal?: Cancel; address?: string } = {}) =>
    callPool(channels.client('pool-a', o.address ?? pool.address), 'pool-a', method, message, metadata, o.deadline ?? soon(), o.signal ?? never());

  beforeAll(async () => {
    pool = await startPool();
  });
  afterAll(() => {
    channels.close();
    pool.close();
  });

  test('an answer: the message bytes as the pool sent them, the returned metadata, the forwarded metadata and deadline', async () => {
    // Larger than HTTP/2's first flow-control window (64 KiB): several DATA frames each way.
    const message = Buffer.concat([Buffer.from('echo '), Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256))]);
    const before = Date.now();
    const res = await call('ModelInfer', message);
    expect('message' in res.answer && res.answer.message.equals(Buffer.from(message).reverse())).toBe(true);
    expect([res.code, res.unavailable, res.holder]).toEqual([200, false, undefined]);
    expect('metadata' in res.answer && res.answer.metadata.getMap()).toEqual({ 'x-botshard-pool': 'pool-a', 'botshard-residency': 'warm' });
    const seen = pool.seen.at(-1)!;
    expect(seen.metadata).toMatchObject({ 'x-request-id': 'req-1', traceparent: metadata.traceparent });
    expect(seen.deadline).toBeGreaterThan(before + 9000);
    expect(seen.deadline).toBeLessThanOrEqual(Date.now() + 10_000);
  });

  test('ModelReady answered with an empty message is a pool not ready for the bot (503)', async () => {
    const res = await call('ModelReady', Buffer.from('not-ready'));
    expect([res.code, res.unavailable, 'message' in res.answer && res.answer.message.length]).toEqual([503, true, 0]);
  });

  test("a trailers-only error status carrying the pool's name is the pool's answer: NOT_FOUND names the holder", async () => {
    const cancel = never();
    const raw = await unaryCall(channels.client('pool-a', pool.address), methodPath('ModelInfer'), Buffer.from('held'), metadata, soon(), cancel);
    expect([raw.code, raw.headers, raw.trailers['x-botshard-pool']]).toEqual([grpc.status.NOT_FOUND, {}, 'pool-b']); // no headers before the status
    expect(cancel.onAbort).toBeUndefined(); // the ended attempt is no longer the cancel's to end
    const held = await call('ModelInfer', Buffer.from('held'));
    expect([held.code, held.holder, held.unavailable]).toEqual([404, 'pool-b', false]);
    expect('status' in held.answer && held.answer.status).toEqual({ code: grpc.status.NOT_FOUND, details: 'bot "b-1" is on pool-b: 100% sure ✓', metadata: expect.any(grpc.Metadata) });
    expect('status' in held.answer && held.answer.status.metadata!.getMap()).toEqual({ 'x-botshard-pool': 'pool-b', 'retry-after': '1' });
    const full = await call('ModelInfer', Buffer.from('full'));
    expect([full.code, full.holder, full.unavailable]).toEqual([429, undefined, true]);
    // Without the pool's name: relayed as it came, or (UNAVAILABLE) the pool was not reached.
    const invalid = await call('ModelInfer', Buffer.from('invalid'));
    expect([invalid.code, 'status' in invalid.answer && invalid.answer.status.code, invalid.unavailable]).toEqual([400, grpc.status.INVALID_ARGUMENT, false]);
    await expect(call('ModelInfer', Buffer.from('anonymous-unavailable'))).rejects.toMatchObject({ kind: 'connect', pool: 'pool-a' });
  });

  test('an address nothing listens on: UpstreamError connect', async () => {
    const address = `127.0.0.1:${await refusedPort()}`;
    const err = await call('ModelInfer', Buffer.from('echo'), { address }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ kind: 'connect', pool: 'pool-a', message: expect.stringContaining('is unreachable over gRPC (') });
  });

  test("a deadline shorter than the pool's answer: UpstreamError timeout, and the pool knew the deadline and saw the call cancelled", async () => {
    const started = Date.now();
    await expect(call('ModelInfer', Buffer.from('slow'), { deadline: started + 200 })).rejects.toMatchObject({ kind: 'timeout', pool: 'pool-a' });
    expect(Date.now() - started).toBeLessThan(1500);
    const seen = pool.seen.at(-1)!;
    expect(seen.deadline).toBeLessThanOrEqual(started + 250);
    await until(() => seen.cancelled, 5000, 'the pool sees the call cancelled');
    // A deadline already past: nothing is sent.
    const calls = pool.seen.length;
    await expect(call('ModelInfer', Buffer.from('echo'), { deadline: Date.now() - 1 })).rejects.toMatchObject({ kind: 'timeout' });
    expect(pool.seen.length).toBe(calls);
  });

  test("the caller's cancel (the router's Cancel) cancels the call at the pool: UpstreamError timeout", async () => {
    const caller = new Cancel();
    const started = Date.now();
    setTimeout(() => caller.abort(), 100);
    await expect(call('ModelInfer', Buffer.from('slow'), { signal: caller })).rejects.toMatchObject({ kind: 'timeout' });
    expect(Date.now() - started).toBeLessThan(1500);
    const seen = pool.seen.at(-1)!;
    await until(() => seen.cancelled, 5000, 'the pool sees the call cancelled');
    // Cancelled already: nothing is sent, and the outcome is CANCELLED.
    const calls = pool.seen.length;
    const raw = await unaryCall(channels.client('pool-a', pool.address), methodPath('ModelInfer'), Buffer.from('echo'), metadata, soon(), caller);
    expect([raw.code, raw.details]).toEqual([grpc.status.CANCELLED, 'Call cancelled']);
    expect(pool.seen.length).toBe(calls);
  });

  test('a Cancel calls what is set once, on the first abort, and nothing once it is cleared', () => {
    const heard: string[] = [];
    const first = new Cancel();
    first.onAbort = () => heard.push('first');
    first.abort();
    first.abort();
    const second = new Cancel();
    second.onAbort = () => heard.push('second');
    second.onAbort = undefined;
    second.abort();
    expect([heard, first.aborted, second.aborted, first.onAbort]).toEqual([['first'], true, true, undefined]);
  });

  test('calls spread over 4 connections per pool; a new address replaces them', async () => {
    const other = new PoolChannels();
    try {
      const first = other.client('pool-a', pool.address);
      await Promise.all(Array.from({ length: 8 }, (_, i) => callPool(other.client('pool-a', pool.address), 'pool-a', 'ModelInfer', Buffer.from(`spread ${i}`), metadata, soon(), never())));
      expect(new Set(pool.seen.slice(-8).map((s) => s.peer)).size).toBe(4);
      const moved = `localhost:${pool.address.split(':')[1]}`;
      expect(other.client('pool-a', moved)).not.toBe(first);
      const res = await callPool(other.client('pool-a', moved), 'pool-a', 'ModelInfer', Buffer.from('echo'), metadata, soon(), never());
      expect(res.code).toBe(200);
    } finally {
      other.close();
    }
  });
});

describe('GOAWAY', () => {
  test('a stream the pool refused with GOAWAY goes again on a new connection: the caller gets the answer', async () => {
    // Answers every call, except the second call of its first connection: a GOAWAY that takes the first
    // stream only (its last stream id), as a server past its max connection age refuses calls in flight.
    const server = http2.createServer();
    let sessions = 0;
    server.on('session', (s) => {
      sessions++;
      s.on('error', () => undefined);
    });
    server.on('stream', (stream) => {
      stream.on('error', () => undefined);
      if (sessions === 1 && stream.id === 3) return void stream.session!.goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-botshard-pool': 'pool-g' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.concat(chunks)); // the request's frame, as the answer
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(server.address() as { port: number }).port}`;
    const channels = new PoolChannels(1);
    try {
      const ask = (text: string) => callPool(channels.client('pool-g', address), 'pool-g', 'ModelInfer', Buffer.from(text), {}, soon(), never());
      const one = await ask('first');
      const two = await ask('second');
      expect(['message' in one.answer && one.answer.message.toString(), 'message' in two.answer && two.answer.message.toString()]).toEqual(['first', 'second']);
      expect(sessions).toBe(2);
    } finally {
      channels.close();
      server.close();
    }
  });

  test("a grpc-js pool's max connection age under load: every call answered", async () => {
    const pool = await startPool({ 'grpc.max_connection_age_ms': 100, 'grpc.max_connection_age_grace_ms': 10_000 });
    const channels = new PoolChannels();
    try {
      const failures: unknown[] = [];
      let answered = 0;
      const end = Date.now() + 1500;
      await Promise.all(
        Array.from({ length: 16 }, async (_, w) => {
          while (Date.now() < end) {
            await callPool(channels.client('pool-a', pool.address), 'pool-a', 'ModelInfer', Buffer.from(`echo ${w}`), {}, soon(), never()).then(() => answered++, (e: unknown) => failures.push(e));
          }
        }),
      );
      expect(failures).toEqual([]);
      expect(answered).toBeGreaterThan(100);
      // The pool closed connections all along: calls went over many.
      expect(new Set(pool.seen.map((s) => s.peer)).size).toBeGreaterThan(8);
    } finally {
      channels.close();
      pool.close();
    }
  });
});
