/**
 * The supervisor of `botshard up` (runtime/src/local/supervisor.ts) with real child processes: a tiny
 * Node server stands in for a pool or the router (it answers /v2/health/ready and prints the lines
 * the real ones print), so restarts, backoff, a child that cannot start and the stop order are the
 * supervisor's own.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SettingsError } from '@botshard/runtime/commands/failure';
import { stopSummary } from '@botshard/runtime/local/console';
import { Child, FIRST_BACKOFF_MS, MAX_BACKOFF_MS, STEADY_RUN_MS, Supervisor, nextBackoff } from '@botshard/runtime/local/supervisor';

/**
 * argv: name, port, folder, mode. Modes: "once" exits with code 1 half a second after its first start
 * (a crash after it was ready), then stays up; "bad" writes to stderr and exits with code 2 at once;
 * "up" stays up. On SIGTERM it appends its name to folder/stopped and prints its "drained" line.
 */
const CHILD = `
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const [name, port, dir, mode] = process.argv.slice(2);
if (mode === 'bad') { console.error('--bogus is not a flag'); process.exit(2); }
const server = http.createServer((req, res) => res.writeHead(req.url === '/v2/health/ready' ? 200 : 404).end());
server.listen(Number(port), '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'listening', port: server.address().port, level: 30 }));
  const marker = path.join(dir, name + '.started');
  if (mode === 'once' && !fs.existsSync(marker)) { fs.writeFileSync(marker, ''); setTimeout(() => process.exit(1), 500); }
});
process.on('SIGTERM', () => {
  fs.appendFileSync(path.join(dir, 'stopped'), name + '\\n');
  console.log(JSON.stringify({ msg: 'drained: exiting', unfinished: 0, level: 30 }));
  server.close(() => process.exit(0));
});
`;

let dir: string;
let script: string;
const running: Supervisor[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-supervisor-'));
  fs.mkdirSync(path.join(dir, 'logs'));
  script = path.join(dir, 'child.js');
  fs.writeFileSync(script, CHILD);
});

afterEach(async () => {
  for (const s of running.splice(0)) await s.stop(2000);
  fs.rmSync(dir, { recursive: true, force: true });
});

function supervisor(modes: Record<string, string>): { supervisor: Supervisor; lines: string[] } {
  const lines: string[] = [];
  const s = new Supervisor({
    logDir: path.join(dir, 'logs'),
    say: (line) => lines.push(line),
    args: (child: Child) => [script, child.name, String(child.port), dir, modes[child.name]],
    env: process.env,
  });
  running.push(s);
  return { supervisor: s, lines };
}

async function until(what: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('the backoff doubles from its first wait up to its longest, and starts over after a steady run', () => {
  expect(FIRST_BACKOFF_MS).toBe(500);
  expect(nextBackoff(FIRST_BACKOFF_MS, 100)).toBe(1000);
  expect(nextBackoff(4000, STEADY_RUN_MS)).toBe(8000);
  expect(nextBackoff(8000, 0)).toBe(MAX_BACKOFF_MS);
  expect(nextBackoff(MAX_BACKOFF_MS, 0)).toBe(MAX_BACKOFF_MS);
  expect(nextBackoff(MAX_BACKOFF_MS, STEADY_RUN_MS + 1)).toBe(FIRST_BACKOFF_MS);
});

test('a child that exits after it was ready restarts after its backoff, on the port it had', async () => {
  const { supervisor: s, lines } = supervisor({ p: 'once' });
  const child = s.start({ name: 'p', kind: 'pool', port: 0, grpcPort: 0 });
  await s.waitReady([child], 10_000);
  const port = child.port;
  expect(port).toBeGreaterThan(0);
  const firstPid = child.proc!.pid;
  await until(() => lines.some((l) => l.startsWith('[up] pool p is back')));
  expect(lines).toEqual([`[up] pool p exited (code 1); restart 1 in 1000 ms`, `[up] pool p is back on port ${port}`]);
  expect(child.restarts).toBe(1);
  expect(child.proc!.pid).not.toBe(firstPid);
  expect(fs.readFileSync(path.join(dir, 'logs', 'p.log'), 'utf8').match(/"listening"/g)).toHaveLength(2);
});

test('a child that exits with code 2 is not restarted, and waiting for it fails with its last error', async () => {
  const { supervisor: s, lines } = supervisor({ p: 'bad' });
  const child = s.start({ name: 'p', kind: 'pool', port: 0, grpcPort: 0 });
  const waited = s.waitReady([child], 10_000);
  await expect(waited).rejects.toThrow(SettingsError);
  await expect(waited).rejects.toThrow('pool p could not start (exit code 2): --bogus is not a flag');
  expect(lines).toEqual(['[p] --bogus is not a flag', '[up] pool p could not start (exit code 2); not restarting it']);
  expect(child.retired).toBe(true);
  await new Promise((r) => setTimeout(r, 1200)); // longer than a first backoff: nothing restarted it
  expect(child.restarts).toBe(0);
});

test('stop ends the router before the pools and reports their drains', async () => {
  const { supervisor: s } = supervisor({ a: 'up', b: 'up', router: 'up' });
  const children = [s.start({ name: 'a', kind: 'pool', port: 0, grpcPort: 0 }), s.start({ name: 'router', kind: 'router', port: 0, grpcPort: 0 }), s.start({ name: 'b', kind: 'pool', port: 0, grpcPort: 0 })];
  await s.waitReady(children, 10_000);
  const stopped = await s.stop(5000);
  expect(s.stopping).toBe(true);
  expect(stopped.map((c) => c.name).sort()).toEqual(['a', 'b', 'router']);
  expect(fs.readFileSync(path.join(dir, 'stopped'), 'utf8').split('\n')[0]).toBe('router');
  expect(stopSummary(stopped)).toBe('router and 2 pools drained, 0 responses cut off');
  expect(children.every((c) => !Supervisor.running(c))).toBe(true);
});
