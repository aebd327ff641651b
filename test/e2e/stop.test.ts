/**
 * Stopping the local platform the way a container runtime, systemd, a CI timeout or a process manager
 * does: SIGTERM to the top process (`npm start`), which npm may not pass on. Nothing may be left behind:
 * no process, no port, no temp folder; and no request may be cut: those sent before the signal are
 * answered, the router aborts none (its own count, in up's drain line), npm exits 0.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureBuilt, until } from '../pool/support';
import { NOTHING_ABORTED, UpRow, alive, expectCleanStop, killLeftovers, freePort, listening, parseUpTable, routerAborted, slowUpload, traffic } from './support';

const ROOT = path.resolve(__dirname, '../..');

describe('npm start, stopped by SIGTERM to npm', () => {
  let npm: ChildProcess;
  let rows: UpRow[] = [];
  afterAll(() => killLeftovers(npm, rows)); // only when the test failed: nothing is left running

  test('answers every request sent before it, the router aborting none; npm exits 0 after up\'s drain line; ends every process, frees every port and removes its temp folder', async () => {
    ensureBuilt();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-stop-'));
    const port = await freePort();
    let output = '';
    npm = spawn('npm', ['start', '--', '--port', String(port), '--grpc-port', '0'], { cwd: ROOT, env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
    npm.stdout!.on('data', (d) => (output += d));
    npm.stderr!.on('data', (d) => (output += d));
    await until(() => output.includes('try it:'), 150_000, () => `npm start to be up; output so far:\n${output}`);
    rows = parseUpTable(output);
    expect(rows.length).toBeGreaterThan(2);
    expect(rows.find((r) => r.pool === 'router')!.port).toBe(port);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('botshard-up-'))).toHaveLength(1);
    for (const r of rows) expect([r.pool, alive(r.pid), await listening(r.port), await listening(r.grpcPort!)]).toEqual([r.pool, true, true, true]);

    // Requests in flight when npm gets the signal, as from a client of the platform, and one surely in
    // flight at the router when it starts draining (its body ends only after that).
    const workers = 4;
    const bots = ['acme-support-en', 'globex-banking-de', 'hooli-retail-en'];
    const url = `http://127.0.0.1:${port}`;
    const load = traffic(url, bots, workers, 60_000);
    const statusUrl = output.split('\n').find((l) => l.startsWith('status: npx botshard status --url '))!.split('--url ')[1].trim();
    try {
      await until(() => load.outcomes.length > 30, 20_000, 'load to start');
      const slow = await slowUpload(url, bots[0]);
      expect(await routerAborted(statusUrl)).toEqual(NOTHING_ABORTED); // the router's metrics port is its status URL
      // 'close': npm has exited and every holder of its output (up, which writes to it directly) has too.
      let end: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      npm.once('close', (code, signal) => (end = { code, signal }));
      const signalAt = performance.now();
      npm.kill('SIGTERM');
      await until(async () => (await fetch(`${url}/v2/health/ready`).then((r) => r.status, () => 0)) !== 200, 10_000, 'the router to start draining');
      slow.finish();
      // Within the drain time (5 s locally) plus the time to start draining.
      await until(async () => {
        for (const r of rows) if (alive(r.pid) || (await listening(r.port)) || (await listening(r.grpcPort!))) return false;
        return true;
      }, 30_000, `every process to end and every port to close; output:\n${output}`);
      await until(() => end !== undefined, 10_000, 'npm to exit');
      await load.stop();
      const slowEnd = await slow.outcome;
      // npm passes the signal on and exits with up's status (had it not passed it on, up would stop when npm is gone).
      expectCleanStop({ exit: end, output, stopping: /\n\[up\] (SIGTERM|the process that started botshard up has ended): stopping the router, then the pools/, outcomes: load.outcomes, held: slowEnd, signalAt, workers });
    } finally {
      await load.stop();
    }
    await until(() => fs.readdirSync(tmp).every((f) => !f.startsWith('botshard-up-')), 10_000, 'the temp folder to be removed');
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 200_000);
});
