/**
 * npm run bench:router
 *
 * The same load (autocannon, in this process) sent straight to a pool and through each way of reaching
 * it, in one run, alternating rounds so that drift on this shared machine hits all alike. Every path is
 * a real process on 127.0.0.1:
 * - direct to the pool;
 * - plain HAProxy and nginx with keep-alive to the pool, the anchors a user would pick instead (skipped
 *   with a printed note when not installed: apt-get install haproxy nginx-light);
 * - a minimal Node forwarder (node:http + an undici Pool for REST, node:http2 both ways for gRPC, buffered,
 *   no features): the floor of any router written in Node;
 * - the botshard Node router, and the HAProxy mode (`botshard haproxy`: HAProxy driven by the control plane).
 * Then gRPC beside REST, both from the same closed loop in this process (grpc-js over 4 HTTP/2 connections,
 * undici keep-alive connections), direct to the pool, through the minimal Node forwarder, the Node router
 * and the HAProxy mode (HAProxy carries gRPC itself).
 * Reports throughput against direct and the p50 each adds. Writes bench/results/router.{json,md}.
 * PROFILE=<folder> writes the botshard processes' CPU profiles.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import autocannon from 'autocannon';
import { CatalogInput, normalizeCatalog, plan, writeCatalogFolder } from '@botshard/runtime';
import { freePort } from '@botshard/runtime/io/free-port';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { GRPC_CHANNELS, grpcInferLoad, inferLoad, installed, treeCpuMsOf } from './processes';

const BIN = path.join(__dirname, '../runtime/bin/botshard.js');
const RESULTS = path.join(__dirname, 'results');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 16;

/** Starts a process and resolves with the port of its "listening" JSON line. */
function startListening(command: string, args: string[]): Promise<{ proc: ChildProcess; port: number; grpcPort?: number }> {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BOTSHARD_LOG_LEVEL: 'warn', BOTSHARD_PARENT_PID: String(process.pid) } });
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${args.slice(0, 2).join(' ')} exited with ${code}`)));
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line);
        if (entry.msg === 'listening') resolve({ proc, port: entry.port, grpcPort: entry.grpcPort });
      } catch {
        // not JSON
      }
    });
  });
}

/** PROFILE=<folder>: the botshard processes write CPU profiles there when they stop (node --cpu-prof). */
const PROFILE = process.env.PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.PROFILE)}`] : [];
const start = (args: string[]) => startListening(process.execPath, [...PROFILE, BIN, ...args]);

/** Plain HAProxy in front of the pool: keep-alive both sides, connection reuse, nothing else. */
async function plainHaproxy(dir: string, poolPort: number): Promise<{ proc: ChildProcess; port: number }> {
  const port = await freePort();
  const cfg = path.join(dir, 'plain-haproxy.cfg');
  fs.writeFileSync(cfg, ['defaults', '  mode http', '  option http-keep-alive', '  http-reuse always', '  timeout connect 2s', '  timeout client 30s', '  timeout server 30s', 'frontend f', `  bind 127.0.0.1:${port}`, '  default_backend pool', 'backend pool', '  balance uri', `  server pool 127.0.0.1:${poolPort} maxconn 256`, ''].join('\n'));
  const proc = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
  await ready(port);
  return { proc, port };
}

/** nginx in front of the pool with a keep-alive upstream. */
async function nginx(dir: string, poolPort: number): Promise<{ proc: ChildProcess; port: number }> {
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `worker_processes 1;\nerror_log ${dir}/nginx-error.log warn;\npid ${dir}/nginx.pid;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n  client_body_temp_path ${dir};\n  proxy_temp_path ${dir};\n  upstream pool { server 127.0.0.1:${poolPort}; keepalive 32; }\n  server {\n    listen 127.0.0.1:${port};\n    location / { proxy_pass http://pool; proxy_http_version 1.1; proxy_set_header Connection ""; }\n  }\n}\n`,
  );
  const proc = spawn('nginx', ['-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'inherit'] });
  await ready(port);
  return { proc, port };
}

/**
 * The floor of each protocol in Node: a bare fastify route and a bare grpc-js method answering a fixed
 * message of the pool's answer's size, no model, one process.
 */
function protocolFloors(): Promise<{ proc: ChildProcess; port: number; grpcPort?: number }> {
  const code = `
    const grpc = require(${JSON.stringify(require.resolve('@grpc/grpc-js'))});
    const app = require(${JSON.stringify(require.resolve('fastify'))})({ logger: false });
    const json = JSON.stringify({ model_name: 'bot-0', outputs: [{ name: 'intent', shape: [1], datatype: 'BYTES', data: ['password_reset'] }, { name: 'confidence', shape: [1], datatype: 'FP32', data: [0.99] }, { name: 'probabilities', shape: [1, 2], datatype: 'FP32', data: [0.99, 0.01] }] });
    app.post('/v2/models/:bot/infer', async (request, reply) => reply.type('application/json').send(json));
    const server = new grpc.Server();
    const same = (b) => b;
    const answer = Buffer.alloc(110, 1);
    server.register('/inference.GRPCInferenceService/ModelInfer', (call, callback) => callback(null, answer), same, same, 'unary');
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, grpcPort) =>
      app.listen({ port: 0, host: '127.0.0.1' }).then(() => console.log(JSON.stringify({ msg: 'listening', port: app.server.address().port, grpcPort }))));`;
  return startListening(process.execPath, ['-e', code]);
}

/**
 * The floor of a Node router, each protocol: node:http in and an undici Pool out for REST; node:http2 in
 * and 4 node:http2 sessions out for gRPC (the message's bytes as they came, the answer's trailers relayed).
 * Bodies buffered, no checks at all.
 */
function nodeFloor(poolPort: number, poolGrpcPort: number): Promise<{ proc: ChildProcess; port: number; grpcPort?: number }> {
  const code = `
    const http = require('node:http');
    const http2 = require('node:http2');
    const { Pool } = require(${JSON.stringify(require.resolve('undici'))});
    const upstream = new Pool('http://127.0.0.1:${poolPort}', { connections: 32 });
    const server = http.createServer(async (req, res) => {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const r = await upstream.request({ method: req.method, path: req.url, headers: { 'content-type': req.headers['content-type'] ?? 'application/json' }, body: Buffer.concat(chunks) });
      const body = Buffer.from(await r.body.arrayBuffer());
      res.writeHead(r.statusCode, { 'content-type': r.headers['content-type'], 'content-length': body.length });
      res.end(body);
    });
    server.keepAliveTimeout = 75000;
    // gRPC: 4 sessions used in turn, each opened again once the pool's GOAWAY (its max connection age) ends it.
    const connect = () => http2.connect('http://127.0.0.1:${poolGrpcPort}').on('error', () => {}).on('goaway', function () { this.close(); });
    const sessions = Array.from({ length: 4 }, connect);
    let turn = 0;
    const session = () => {
      const i = turn++ % sessions.length;
      if (sessions[i].closed || sessions[i].destroyed) sessions[i] = connect();
      return sessions[i];
    };
    // One call to the pool; a stream that closed unanswered (refused by the GOAWAY of the pool's max
    // connection age) goes once more on a new session, as any gRPC client does.
    const forward = (stream, path, body, retried) => {
      const call = session().request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
      const answer = [];
      let answered = false;
      call.on('error', () => {});
      call.on('response', (h) => {
        if (h['grpc-status'] === undefined) return;
        answered = true;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': h['grpc-status'], 'grpc-message': h['grpc-message'] ?? '' }, { endStream: true });
      });
      call.on('data', (c) => answer.push(c));
      call.on('trailers', (t) => {
        answered = true;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': t['grpc-status'], 'grpc-message': t['grpc-message'] ?? '' }));
        stream.end(Buffer.concat(answer));
      });
      call.on('close', () => {
        if (answered) return;
        if (!retried) return forward(stream, path, body, true);
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      });
      call.end(body);
    };
    const grpcServer = http2.createServer();
    grpcServer.on('session', (s) => s.on('error', () => {}));
    grpcServer.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => forward(stream, headers[':path'], Buffer.concat(chunks), false));
    });
    server.listen(0, '127.0.0.1', () => grpcServer.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ msg: 'listening', port: server.address().port, grpcPort: grpcServer.address().port }))));`;
  return startListening(process.execPath, ['-e', code]);
}

async function ready(port: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/health/ready`);
      if (res.status === 200) return;
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} never became ready`);
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function run(url: string, bots: string[]): Promise<Figures> {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: SECONDS,
    requests: bots.map((bot) => ({
      method: 'POST',
      path: `/v2/models/${bot}/infer`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: ['I forgot my password'] }] }),
    })),
  });
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}

type Loop = Awaited<ReturnType<typeof inferLoad>>;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r2 = (x: number) => Math.round(x * 100) / 100;

async function main(): Promise<void> {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-bench-router-'));
  const intents = [
    { name: 'password_reset', examples: ['I forgot my password', 'reset my password'] },
    { name: 'billing', examples: ['my bill is wrong', 'question about my invoice'] },
  ];
  const input: CatalogInput = {
    tenants: [{ id: 'bench' }],
    encoders: [{ id: 'encoder-en', path: 'encoders/en.onnx', memory: '8Mi', tokenizer: { kind: 'hashing', buckets: 4096 }, dimensions: 64 }],
    groups: [{ name: 'rt', realtime: true, memory: '1Gi', pools: 1, concurrency: 256 }],
    bots: Array.from({ length: 8 }, (_, i) => ({ id: `bot-${i}`, tenant: 'bench', realtime: true, model: { head: `heads/bot-${i}.onnx`, memory: '2Mi', encoder: 'encoder-en' }, intents })),
  };
  const normal = normalizeCatalog(input);
  if (!normal.ok) throw new Error(JSON.stringify(normal.problems));
  const catalog = normal.catalog;
  const models = path.join(state, 'models');
  writeDemoModels(catalog, models);
  const catalogDir = path.join(state, 'catalog');
  writeCatalogFolder(catalogDir, catalog);
  const poolName = plan(catalog).pools[0].name;
  const children: ChildProcess[] = [];
  try {
    const pool = await start(['pool', '--pool', poolName, '--catalog', catalogDir, '--models', models, '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1']);
    children.push(pool.proc);
    await ready(pool.port);
    const urls = path.join(state, 'pools.json');
    fs.writeFileSync(urls, JSON.stringify({ [poolName]: `http://127.0.0.1:${pool.port}` }));
    const grpcUrls = path.join(state, 'pools-grpc.json');
    fs.writeFileSync(grpcUrls, JSON.stringify({ [poolName]: `127.0.0.1:${pool.grpcPort}` }));
    const router = await start(['router', '--catalog', catalogDir, '--pool-urls', urls, '--pool-grpc-urls', grpcUrls, '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1']);
    children.push(router.proc);
    await ready(router.port);
    // `pid`: the process whose CPU per request is reported (the forwarder's; the pool's when direct).
    const protocolPaths: Array<{ key: string; label: string; port: number; grpcPort: number; pid: number }> = [
      { key: 'direct', label: 'direct to the pool', port: pool.port, grpcPort: pool.grpcPort!, pid: pool.proc.pid! },
      { key: 'router', label: 'botshard Node router', port: router.port, grpcPort: router.grpcPort!, pid: router.proc.pid! },
    ];
    const floors = await protocolFloors();
    children.push(floors.proc);
    protocolPaths.push({ key: 'floor', label: 'bare fastify route / bare grpc-js method answering a fixed message (no model: the floor of each protocol in Node)', port: floors.port, grpcPort: floors.grpcPort!, pid: floors.proc.pid! });
    const paths: Array<{ key: string; label: string; port: number }> = [
      { key: 'direct', label: 'direct to the pool', port: pool.port },
      { key: 'router', label: 'botshard Node router', port: router.port },
    ];
    const floor = await nodeFloor(pool.port, pool.grpcPort!);
    children.push(floor.proc);
    await ready(floor.port);
    paths.push({ key: 'nodeFloor', label: 'minimal Node forwarder (node:http + undici Pool, buffered, no features)', port: floor.port });
    protocolPaths.push({ key: 'nodeFloor', label: 'minimal Node forwarder (REST: node:http + undici Pool; gRPC: node:http2 both ways; buffered, no features)', port: floor.port, grpcPort: floor.grpcPort!, pid: floor.proc.pid! });
    const notes: string[] = [];
    if (installed('haproxy', ['-v'])) {
      const mode = await start(['haproxy', '--catalog', catalogDir, '--pool-urls', urls, '--pool-grpc-urls', grpcUrls, '--port', '0', '--metrics-port', '0', '--haproxy-metrics-port', '0', '--host', '127.0.0.1']);
      children.push(mode.proc);
      await ready(mode.port);
      paths.push({ key: 'haproxyMode', label: 'botshard HAProxy mode (botshard haproxy)', port: mode.port });
      protocolPaths.push({ key: 'haproxyMode', label: 'botshard HAProxy mode (HAProxy carries REST and gRPC; CPU: HAProxy and its control plane)', port: mode.port, grpcPort: mode.grpcPort!, pid: mode.proc.pid! });
      const plain = await plainHaproxy(state, pool.port);
      children.push(plain.proc);
      paths.push({ key: 'haproxy', label: 'plain HAProxy, keep-alive, balance uri', port: plain.port });
    } else {
      notes.push('HAProxy is not installed: its rows are missing (apt-get install haproxy).');
    }
    if (installed('nginx', ['-v'])) {
      const n = await nginx(state, pool.port);
      children.push(n.proc);
      paths.push({ key: 'nginx', label: 'nginx, keep-alive upstream', port: n.port });
    } else {
      notes.push('nginx is not installed: its row is missing (apt-get install nginx-light).');
    }
    for (const note of notes) console.log(`SKIPPED: ${note}`);
    const bots = catalog.bots.map((b) => b.id);
    // Warm-up: connections, JIT, model caches.
    for (const p of paths) await run(`http://127.0.0.1:${p.port}`, bots);
    const runs = new Map<string, Figures[]>(paths.map((p) => [p.key, []]));
    for (let i = 0; i < ROUNDS; i++) for (const p of paths) runs.get(p.key)!.push(await run(`http://127.0.0.1:${p.port}`, bots));
    const summary = (xs: Figures[]) => ({
      rps: { median: median(xs.map((x) => x.rps)), min: Math.min(...xs.map((x) => x.rps)), max: Math.max(...xs.map((x) => x.rps)) },
      p50: median(xs.map((x) => x.p50)),
      p99: median(xs.map((x) => x.p99)),
      errors: xs.reduce((s, x) => s + x.errors + x.non2xx, 0),
    });
    const figures = Object.fromEntries(paths.map((p) => [p.key, { label: p.label, ...summary(runs.get(p.key)!), runs: runs.get(p.key)! }]));

    // gRPC beside REST: the same closed loop for both, alternating rounds.
    const protocolRuns = new Map<string, Array<Loop & { cpuUs: number }>>();
    const measured = async (pid: number, run: () => Promise<Loop>) => {
      const before = treeCpuMsOf(pid);
      const r = await run();
      return { ...r, cpuUs: ((treeCpuMsOf(pid) - before) * 1000) / Math.max(1, r.requests) };
    };
    const loops = (key: string) => protocolRuns.get(key) ?? protocolRuns.set(key, []).get(key)!;
    for (const p of protocolPaths) await grpcInferLoad(`127.0.0.1:${p.grpcPort}`, bots, 1, CONNECTIONS); // warm-up: channels, JIT
    for (let i = 0; i < ROUNDS; i++) {
      for (const p of protocolPaths) {
        loops(`${p.key}:rest`).push(await measured(p.pid, () => inferLoad(`http://127.0.0.1:${p.port}`, bots, SECONDS, CONNECTIONS)));
        loops(`${p.key}:grpc`).push(await measured(p.pid, () => grpcInferLoad(`127.0.0.1:${p.grpcPort}`, bots, SECONDS, CONNECTIONS)));
      }
    }
    const protocols = Object.fromEntries(
      protocolPaths.map((p) => {
        const of = (proto: string) => {
          const xs = loops(`${p.key}:${proto}`);
          return { rps: median(xs.map((x) => x.rps)), p50: r2(median(xs.map((x) => x.p50))), p99: r2(median(xs.map((x) => x.p99))), cpuUsPerRequest: Math.round(median(xs.map((x) => x.cpuUs))), errors: xs.reduce((s, x) => s + x.errors, 0) };
        };
        return [p.key, { label: p.label, rest: of('rest'), grpc: of('grpc') }];
      }),
    );
    const grpcOver = (key: string) => (protocols[key] ? r2(protocols[key].grpc.rps / protocols[key].rest.rps) : undefined);
    const d = figures.direct;
    const over = (key: string) => (figures[key] ? { [`${key}ThroughputOverDirect`]: r2(figures[key].rps.median / d.rps.median), [`${key}AddedP50Ms`]: r2(figures[key].p50 - d.p50) } : {});
    const headline: Record<string, number> = {
      ...over('router'),
      ...over('nodeFloor'),
      ...over('haproxyMode'),
      ...over('haproxy'),
      ...over('nginx'),
      // The Node router against the floor of any router written in Node, in the same run.
      routerOverNodeFloor: r2(figures.router.rps.median / figures.nodeFloor.rps.median),
      directRequestsPerSecond: Math.round(d.rps.median),
      // gRPC / REST through the Node router, the same closed loop; and direct to the pool, and through the HAProxy mode.
      grpcThroughputOverRest: grpcOver('router')!,
      grpcDirectThroughputOverRest: grpcOver('direct')!,
      grpcFloorThroughputOverRest: grpcOver('floor')!,
      // gRPC through each data plane against gRPC straight to the same pool.
      ...(protocols.haproxyMode ? { grpcHaproxyModeThroughputOverRest: grpcOver('haproxyMode')!, grpcHaproxyModeOverGrpcDirect: r2(protocols.haproxyMode.grpc.rps / protocols.direct.grpc.rps) } : {}),
      grpcRouterOverGrpcDirect: r2(protocols.router.grpc.rps / protocols.direct.grpc.rps),
      // The floor of any gRPC router written in Node (node:http2 both ways, no features), and the Node router against it.
      grpcNodeFloorOverGrpcDirect: r2(protocols.nodeFloor.grpc.rps / protocols.direct.grpc.rps),
      grpcRouterOverGrpcNodeFloor: r2(protocols.router.grpc.rps / protocols.nodeFloor.grpc.rps),
      grpcRouterAddedP50Ms: r2(protocols.router.grpc.p50 - protocols.direct.grpc.p50),
      // The router's own CPU per forwarded call, gRPC over REST (the load generator shares the two cores).
      grpcRouterCpuPerRequestOverRest: r2(protocols.router.grpc.cpuUsPerRequest / protocols.router.rest.cpuUsPerRequest),
      failedRequests:
        paths.filter((p) => p.key !== 'direct').reduce((n, p) => n + figures[p.key].errors, 0) +
        Object.values(protocols).reduce((n, p) => n + p.rest.errors + p.grpc.errors, 0),
    };
    const result = {
      benchmark: 'router',
      date: new Date().toISOString(),
      // loadAverage: others' work on this shared machine when the results were written.
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, loadAverage: os.loadavg().map((x) => r2(x)) },
      load: { connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS, bots: bots.length, request: 'POST /v2/models/{bot}/infer, one text' },
      headline,
      paths: figures,
      protocols,
      skipped: notes,
    };
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'router.json'), `${JSON.stringify(result, null, 2)}\n`);
    const md = [
      '# Router benchmark',
      '',
      `${result.date}, ${result.machine.cpus} cores (${result.machine.cpu}), ${result.machine.memoryGiB} GiB, Node ${result.machine.node}. Command: \`npm run bench:router\`.`,
      `Load: autocannon, ${CONNECTIONS} connections, ${SECONDS} s per run, ${ROUNDS} rounds alternating every path, ${bots.length} bots in one pool process; every path is its own process; all on 127.0.0.1.`,
      '',
      '| path | requests/s median (min-max) | / direct | p50 ms | added p50 ms | p99 ms | errors |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...paths.map((p) => {
        const f = figures[p.key];
        return `| ${f.label} | ${f.rps.median.toFixed(0)} (${f.rps.min.toFixed(0)}-${f.rps.max.toFixed(0)}) | ${(f.rps.median / d.rps.median).toFixed(2)} | ${f.p50} | ${(f.p50 - d.p50).toFixed(2)} | ${f.p99} | ${f.errors} |`;
      }),
      '',
      `gRPC beside REST (\`ModelInfer\` with the text as \`raw_input_contents\`, and \`POST /v2/models/{bot}/infer\` JSON), the same closed loop in this process: ${CONNECTIONS} in flight, grpc-js over ${GRPC_CHANNELS} HTTP/2 connections, undici keep-alive connections; ${ROUNDS} rounds of ${SECONDS} s alternating.`,
      '',
      '| path | REST req/s | REST p50 ms | REST CPU us/req | gRPC req/s | gRPC p50 ms | gRPC CPU us/req | gRPC / REST | errors |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...Object.values(protocols).map((p) => `| ${p.label} | ${p.rest.rps} | ${p.rest.p50} | ${p.rest.cpuUsPerRequest} | ${p.grpc.rps} | ${p.grpc.p50} | ${p.grpc.cpuUsPerRequest} | ${(p.grpc.rps / p.rest.rps).toFixed(2)} | ${p.rest.errors + p.grpc.errors} |`),
      '',
      'CPU us/req: the CPU time of the forwarding process (the pool itself when direct; HAProxy mode: HAProxy and its control plane) per answered request.',
      '',
      ...notes.map((n) => `Skipped: ${n}`),
      'On a 2-core machine every forwarder, the pool (with its inference worker threads) and the load generator share two cores, so throughput through a forwarder also pays for the CPU it takes from the pool.',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(RESULTS, 'router.md'), md);
    process.stdout.write(md);
  } finally {
    for (const c of children) c.kill('SIGTERM');
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
