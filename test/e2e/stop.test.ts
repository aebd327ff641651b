/**
 * Stopping the local platform the way a container runtime, systemd, a CI timeout or a process manager
 * does: SIGTERM to the top process (`npm start`), which npm may not pass on. Nothing may be left behind:
 * no process, no port, no temp folder.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureBuilt, until } from '../pool/support';
import { UpRow, alive, killLeftovers, freePort, listening, parseUpTable } from './support';

const ROOT = path.resolve(__dirname, '../..');

describe('npm start, stopped by SIGTERM to npm', () => {
  let npm: ChildProcess;
  let rows: UpRow[] = [];
  afterAll(() => killLeftovers(npm, rows)); // only when the test failed: nothing is left running

  test('ends every pool and the router, frees every port and removes its temp folder', async () => {
    ensureBuilt();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-stop-'));
    const port = await freePort();
    let output = '';
    npm = spawn('npm', ['start', '--', '--port', String(port), '--grpc-port', '0'], { cwd: ROOT, env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
    npm.stdout!.on('data', (d) => (output += d));
    npm.stderr!.on('data', (d) => (output += d));
    await until(() => output.includes('try it:'), 150_000, `npm start to be up; output so far:\n${output}`);
    rows = parseUpTable(output);
    expect(rows.length).toBeGreaterThan(2);
    expect(rows.find((r) => r.pool === 'router')!.port).toBe(port);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('botshard-up-'))).toHaveLength(1);
    for (const r of rows) expect([r.pool, alive(r.pid), await listening(r.port), await listening(r.grpcPort!)]).toEqual([r.pool, true, true, true]);

    npm.kill('SIGTERM');
    // Within the drain time (5 s locally) plus the time to start draining.
    await until(async () => {
      for (const r of rows) if (alive(r.pid) || (await listening(r.port)) || (await listening(r.grpcPort!))) return false;
      return true;
    }, 30_000, `every process to end and every port to close; output:\n${output}`);
    await until(() => fs.readdirSync(tmp).every((f) => !f.startsWith('botshard-up-')), 10_000, 'the temp folder to be removed');
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 200_000);
});
