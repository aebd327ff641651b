/** Shared by the end-to-end tests: free ports, process and port checks, the table `botshard up` prints, and traffic through a stop. */
import type { ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';

export { freePort } from '@botshard/runtime/io/free-port';

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface UpRow {
  pool: string;
  group: string;
  port: number;
  /** Its gRPC port ('-' in the table: none). */
  grpcPort?: number;
  pid: number;
}

/** The last table `botshard up` printed: one row per pool, then the router. */
export function parseUpTable(output: string): UpRow[] {
  const last = output.lastIndexOf('POOL ');
  const lines = output.slice(last).split('\n').slice(1);
  const parsed: UpRow[] = [];
  for (const line of lines) {
    const cells = line.trim().split(/\s+/);
    if (cells.length < 6 || !/^\d+$/.test(cells[cells.length - 1])) break;
    const grpc = cells[cells.length - 2];
    parsed.push({ pool: cells[0], group: cells[1], port: Number(cells[cells.length - 3]), grpcPort: grpc === '-' ? undefined : Number(grpc), pid: Number(cells[cells.length - 1]) });
  }
  return parsed;
}

/** After a failed test: kills the top process and every process of its last table, so none is left running. */
export function killLeftovers(top: ChildProcess | undefined, rows: readonly UpRow[]): void {
  if (top && top.exitCode === null && top.signalCode === null) top.kill('SIGKILL');
  for (const r of rows) if (alive(r.pid)) process.kill(r.pid, 'SIGKILL');
}

/** How one request ended: its HTTP status, or 0 and the error code when no HTTP answer came. */
export interface Outcome {
  bot: string;
  /** When it was sent, and when its answer (or error) came, on performance.now()'s clock. */
  sentAt: number;
  endedAt: number;
  status: number;
  /** The error code of a request without an HTTP answer (ECONNREFUSED, ECONNRESET, EPIPE, ...). */
  code?: string;
  /** The answer's body (the error's message without one). */
  body: string;
  /** x-botshard-pool of the answer. */
  pool: string;
}

/** One POST with a JSON body over `agent`: the answer, or a rejection with the socket error (its `code`). */
function post(url: string, body: string, agent: http.Agent): Promise<{ status: number; body: string; pool: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, pool: String(res.headers['x-botshard-pool'] ?? '') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * `predict` requests to the router from `workers` loops until `stop()` (or `maxMs`), every one recorded
 * with when it was sent and how it ended. The loops have their own kept-alive connections (an http.Agent
 * with at most `workers` of them: no connection of an earlier test is reused, and at most `workers` are
 * open at once). A loop ends at its first refused connection (the router no longer listens).
 */
export function traffic(url: string, bots: string[], workers = 4, maxMs = 30_000) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
  const outcomes: Outcome[] = [];
  let running = true;
  const end = Date.now() + maxMs;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = w; running && Date.now() < end; i += workers) {
      const bot = bots[i % bots.length];
      const sentAt = performance.now();
      try {
        const res = await post(`${url}/v1/bots/${bot}/predict`, JSON.stringify({ text: 'I forgot my password' }), agent);
        outcomes.push({ bot, sentAt, endedAt: performance.now(), ...res });
      } catch (e) {
        const err = e as Error & { code?: string };
        outcomes.push({ bot, sentAt, endedAt: performance.now(), status: 0, code: err.code ?? 'none', body: err.message, pool: '' });
        if (err.code === 'ECONNREFUSED') return;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });
  return {
    outcomes,
    get failures(): Outcome[] {
      return outcomes.filter((o) => o.status !== 200);
    },
    /** The pool that last answered each bot. */
    get pools(): Map<string, string> {
      return new Map(outcomes.filter((o) => o.status === 200).map((o) => [o.bot, o.pool]));
    },
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

/**
 * A request the router has in flight for as long as the test wants: its headers go with `Expect:
 * 100-continue` (the router's 100 Continue says it has taken the request), then half its body; the rest
 * goes on `finish()`. A stop that cuts what is in flight cuts this one.
 */
export async function slowUpload(url: string, bot: string): Promise<{ finish(): void; outcome: Promise<Outcome> }> {
  const body = Buffer.from(JSON.stringify({ text: 'I forgot my password' }));
  const sentAt = performance.now();
  const req = http.request(`${url}/v1/bots/${bot}/predict`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': body.length, expect: '100-continue' } });
  const outcome = new Promise<Outcome>((resolve) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ bot, sentAt, endedAt: performance.now(), status: res.statusCode ?? 0, body: text, pool: String(res.headers['x-botshard-pool'] ?? '') }));
    });
    req.on('error', (err: Error & { code?: string }) => resolve({ bot, sentAt, endedAt: performance.now(), status: 0, code: err.code ?? 'none', body: err.message, pool: '' }));
  });
  const taken = new Promise<void>((resolve, reject) => {
    req.once('continue', () => resolve());
    req.once('error', reject);
  });
  req.flushHeaders();
  await taken;
  req.write(body.subarray(0, body.length >> 1));
  return { finish: () => req.end(body.subarray(body.length >> 1)), outcome };
}

/** What fastify answers, itself, to a request that reaches a server that is closing (the router's drain). */
const DRAINING = '{"error":"Service Unavailable","message":"Service Unavailable","statusCode":503}';
/** A connection closed under a request (node:http's names: "socket hang up" is ECONNRESET; fetch would say UND_ERR_SOCKET). */
const RESETS = ['ECONNRESET', 'EPIPE'];

/**
 * Judges the requests around a SIGTERM sent at `signalAt` (performance.now()) to `up` or npm, by when each
 * was sent. Before the signal: answered, by the pool (200) or by the router's drain (503 "Service
 * Unavailable": it reached the router after the drain began), never reset and never without an answer.
 * After it, also: refused (the router no longer listens), and at most `workers` resets: a request written
 * onto a kept-alive connection in the instant the router closes it as idle, or onto a connection still in
 * its listen backlog when it stops listening, never reaches the router (nothing in flight is cut); each
 * connection can meet that once, and the client holds at most `workers` (traffic()'s http.Agent).
 * Returns the problems (none when all is well) and the counts.
 */
export function judgeStop(outcomes: readonly Outcome[], signalAt: number, workers: number) {
  const problems: string[] = [];
  // inFlight: sent before the signal and ended after it (what a stop must not cut).
  const counts = { before: 0, beforeAnswered: 0, inFlight: 0, after: 0, drained503: 0, refused: 0, resets: 0 };
  for (const o of outcomes) {
    const before = o.sentAt < signalAt;
    counts[before ? 'before' : 'after'] += 1;
    if (before && o.endedAt > signalAt) counts.inFlight += 1;
    const when = `${o.bot} sent ${Math.abs(Math.round(signalAt - o.sentAt))} ms ${before ? 'before' : 'after'} the signal`;
    if (o.status === 200) {
      if (before) counts.beforeAnswered += 1;
    } else if (o.status === 503 && o.body === DRAINING) counts.drained503 += 1;
    else if (o.status !== 0) problems.push(`${when}: ${o.status} ${o.body.slice(0, 200)}`);
    else if (before) problems.push(`${when}: no answer (${o.code}: ${o.body})`);
    else if (o.code === 'ECONNREFUSED') counts.refused += 1;
    else if (RESETS.includes(o.code!)) counts.resets += 1;
    else problems.push(`${when}: no answer (${o.code}: ${o.body})`);
  }
  if (counts.resets > workers) problems.push(`${counts.resets} requests sent after the signal were reset: more than one per client connection (${workers})`);
  return { problems, counts };
}

/**
 * Asserts a clean stop of `up` (directly or through npm): the exit status, the stopping line, up's drain
 * line (every process drained, none cut a response off, the router aborted no request: its
 * botshard_router_requests_aborted_total, from its "drained" line), the request held open across the
 * signal answered by a pool, and no problem in what the clients saw (judgeStop). All in one assertion,
 * so that a failure shows every part that went wrong.
 */
export function expectCleanStop(o: { exit: unknown; output: string; stopping: RegExp; outcomes: readonly Outcome[]; held: Outcome; signalAt: number; workers: number }): void {
  const { problems, counts } = judgeStop([...o.outcomes, o.held], o.signalAt, o.workers);
  expect({
    exit: o.exit,
    stopping: o.stopping.test(o.output),
    drainLine: /\n\[up\] stopped: [^\n]*\n/.exec(o.output)?.[0],
    held: { status: o.held.status, code: o.held.code, answeredBy: o.held.pool },
    problems,
  }).toEqual({
    exit: { code: 0, signal: null },
    stopping: true,
    drainLine: expect.stringMatching(/^\n\[up\] stopped: router and [1-9]\d* pools drained, 0 responses cut off, 0 requests aborted by the router\n$/),
    held: { status: 200, code: undefined, answeredBy: expect.stringMatching(/./) },
    problems: [],
  });
  expect(counts.beforeAnswered).toBeGreaterThan(30);
  expect(counts.inFlight).toBeGreaterThan(0); // the signal did come with requests in flight
}

/** The router's botshard_router_requests_aborted_total, every series by `protocol/reason`, scraped from its metrics port. */
export async function routerAborted(metricsBase: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${metricsBase}/metrics`)).text();
  const series: Record<string, number> = {};
  for (const m of text.matchAll(/^botshard_router_requests_aborted_total\{protocol="(\w+)",reason="(\w+)"\} (\S+)$/gm)) series[`${m[1]}/${m[2]}`] = Number(m[3]);
  return series;
}

/** Every series of the aborted counter at 0: what a router that cut nothing shows. */
export const NOTHING_ABORTED = { 'rest/client': 0, 'rest/shutdown': 0, 'grpc/client': 0, 'grpc/shutdown': 0 };
