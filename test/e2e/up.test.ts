/**
 * End to end: `botshard up` as a child process, the way a user runs it, with real pool and router
 * processes on loopback. Every load here is bounded in count and time and sent to 127.0.0.1 only.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureBuilt, until } from '../pool/support';
import { NOTHING_ABORTED, UpRow, alive, expectCleanStop, killLeftovers, freePort, listening, parseUpTable, routerAborted, slowUpload, traffic as load } from './support';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'runtime/bin/botshard.js');

describe('botshard up', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-e2e-'));
  const config = path.join(dir, 'bots.config.ts');
  let up: ChildProcess;
  let output = '';
  let port: number;
  let rows: UpRow[] = [];
  const url = () => `http://127.0.0.1:${port}`;
  const parseTable = () => parseUpTable(output);
  /** The router's metrics port, from the status command up prints. */
  const routerMetrics = () => output.split('\n').find((l) => l.startsWith('status: npx botshard status --url '))!.split('--url ')[1].trim();

  beforeAll(async () => {
    ensureBuilt();
    // The config imports @botshard/runtime: resolve it from the repository's node_modules.
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    fs.copyFileSync(path.join(ROOT, 'bots.config.ts'), config);
    port = await freePort();
    up = spawn(process.execPath, [BIN, 'up', '--config', config, '--port', String(port), '--grpc-port', '0', '--models', path.join(dir, 'models')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    up.stdout!.on('data', (d) => (output += d));
    up.stderr!.on('data', (d) => (output += d));
    // The "logs:" line comes last: the table, the curl and the status command are all printed by then.
    await until(() => output.includes('botshard is up') && output.includes('\nlogs: '), 150_000, () => `botshard up to be ready; output so far:\n${output}`);
    rows = parseTable();
  }, 180_000);

  afterAll(() => {
    if (up && up.exitCode === null) killLeftovers(up, rows);
  });

  test('prints a table of pools and the router, and a curl that works', async () => {
    const plan = JSON.parse(execFileSync(process.execPath, [BIN, 'plan', '--config', config, '--json'], { cwd: dir, encoding: 'utf8' }));
    expect(rows.map((r) => r.pool).sort()).toEqual([...plan.pools.map((p: { name: string }) => p.name), 'router'].sort());
    for (const r of rows) expect(alive(r.pid)).toBe(true);
    // The printed curl, run as printed.
    const curl = output.split('\n').find((l) => l.trim().startsWith('curl -s'))!.trim();
    const [, bot, text] = /\/v1\/bots\/([a-z0-9-]+)\/predict .* -d '(.*)'$/.exec(curl)!;
    const res = await fetch(`${url()}/v1/bots/${bot}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
    expect(res.status).toBe(200);
    // ps shows which process is which pool.
    const ps = execFileSync('ps', ['-o', 'args=', '-p', rows.map((r) => r.pid).join(',')], { encoding: 'utf8' });
    for (const r of rows.filter((x) => x.pool !== 'router')) expect(ps).toContain(r.pool);
  });

  test('botshard status, as up prints it, shows every pool ready with its bots on the router\'s generation', async () => {
    const command = output.split('\n').find((l) => l.startsWith('status: npx botshard status --url '))!;
    const statusUrl = command.split('--url ')[1].trim();
    const plan = JSON.parse(execFileSync(process.execPath, [BIN, 'plan', '--config', config, '--json'], { cwd: dir, encoding: 'utf8' }));
    const json = JSON.parse(execFileSync(process.execPath, [BIN, 'status', '--url', statusUrl, '--json'], { cwd: dir, encoding: 'utf8' }));
    expect(json.router.dataPlane).toBe('node');
    expect(json.pools.map((p: any) => p.pool)).toEqual(plan.pools.map((p: { name: string }) => p.name).sort());
    for (const p of json.pools) {
      expect([p.pool, p.ready, p.generation, p.bots.failed]).toEqual([p.pool, true, json.router.generation, 0]);
      expect(p.bots.ready).toBe(plan.pools.find((q: any) => q.name === p.pool).bots.length);
      expect(p.memoryBytes).toBeGreaterThan(0);
    }
    const text = execFileSync(process.execPath, [BIN, 'status', '--url', statusUrl], { cwd: dir, encoding: 'utf8' });
    expect(text).toContain(`router: catalog generation ${json.router.generation}, data plane node`);
    expect(text).toMatch(/^POOL +READY +BOTS +LOADING +FAILED +LEAVING +QUEUE +GENERATION +DECLARED +MEASURED +MEMORY \/ BUDGET$/m);
    for (const p of json.pools) expect(text).toMatch(new RegExp(`^${p.pool} +yes +${p.bots.ready} +0 +0 `, 'm'));
    // Not the metrics port: a clear error and exit 1.
    let failed: any;
    try {
      execFileSync(process.execPath, [BIN, 'status', '--url', url()], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      failed = e;
    }
    expect(failed?.status).toBe(1);
    expect(String(failed?.stderr)).toContain("--url must be the router's metrics port");
  });

  test('every bot answers its example utterances with their intent, from the pool botshard plan names', async () => {
    const catalog = JSON.parse(execFileSync(process.execPath, [BIN, 'catalog', '--config', config], { cwd: dir, encoding: 'utf8' }));
    const plan = JSON.parse(execFileSync(process.execPath, [BIN, 'plan', '--config', config, '--json'], { cwd: dir, encoding: 'utf8' }));
    const poolOf = new Map<string, string>();
    for (const p of plan.pools) for (const b of p.bots) poolOf.set(b, p.name);
    const wrong: string[] = [];
    let asked = 0;
    for (const bot of catalog.bots) {
      for (const intent of bot.intents) {
        for (const text of intent.examples) {
          const res = await fetch(`${url()}/v1/bots/${bot.id}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
          const body = (await res.json()) as { pool: string; intent: string; confidence: number };
          asked += 1;
          expect([bot.id, res.status, body.pool]).toEqual([bot.id, 200, poolOf.get(bot.id)]);
          if (body.intent !== intent.name) wrong.push(`${bot.id}: "${text}" -> ${body.intent} (${body.confidence.toFixed(2)}), expected ${intent.name}`);
        }
      }
    }
    expect(asked).toBeGreaterThan(400);
    expect(wrong).toEqual([]);
  }, 120_000);

  test('a killed pool fails only its own bots, only until up restarts it', async () => {
    const plan = JSON.parse(execFileSync(process.execPath, [BIN, 'plan', '--config', config, '--json'], { cwd: dir, encoding: 'utf8' }));
    const victim = plan.pools.find((p: { bots: string[] }) => p.bots.length > 3);
    const victimRow = rows.find((r) => r.pool === victim.name)!;
    const bots: string[] = plan.pools.flatMap((p: { bots: string[] }) => p.bots);
    const traffic = load(url(), bots, 4, 60_000);
    let recovered = 0;
    try {
      await until(() => traffic.outcomes.length > 50, 20_000, 'load to start');
      process.kill(victimRow.pid, 'SIGKILL');
      await until(() => output.includes(`pool ${victim.name} exited`), 10_000, 'up to see the pool exit');
      await until(() => output.includes(`pool ${victim.name} is back`), 60_000, 'up to restart the pool');
      // Back means the router serves its bots again (a pool's circuit stays open for a short cooldown).
      const backAt = traffic.outcomes.length;
      await until(() => victim.bots.every((b: string) => traffic.outcomes.slice(backAt).some((o) => o.bot === b && o.status === 200)), 30_000, 'the router to serve the pool again');
      recovered = traffic.outcomes.length;
      await until(() => traffic.outcomes.length > recovered + 200, 30_000, 'requests after the recovery');
    } finally {
      await traffic.stop();
    }
    expect(traffic.failures.length).toBeGreaterThan(0); // the kill was felt...
    expect(traffic.failures.filter((f) => !victim.bots.includes(f.bot))).toEqual([]); // ...by its own bots only
    // ...as the router's 503: a pool dying under the router never costs a client its connection (no reset,
    // no request without an answer), and the router aborted nothing.
    expect(traffic.failures.filter((f) => f.status !== 503)).toEqual([]);
    expect(await routerAborted(routerMetrics())).toEqual(NOTHING_ABORTED);
    expect(traffic.outcomes.slice(recovered).filter((o) => o.status !== 200)).toEqual([]); // ...and not once it was back
  }, 120_000);

  test('a pool added by editing the config takes over its bots with no failed request', async () => {
    const before = JSON.parse(execFileSync(process.execPath, [BIN, 'plan', '--config', config, '--json'], { cwd: dir, encoding: 'utf8' }));
    const realtime = before.pools.filter((p: { group: string; dedicated: boolean }) => p.group === 'realtime' && !p.dedicated).length;
    const text = fs.readFileSync(config, 'utf8').replace("pools: 'auto',\n      memory: '512Mi',", `pools: ${realtime + 1},\n      memory: '512Mi',`);
    expect(text).not.toBe(fs.readFileSync(config, 'utf8'));
    const bots: string[] = before.pools.flatMap((p: { bots: string[] }) => p.bots);
    const traffic = load(url(), bots, 4, 60_000);
    let after: { pools: Array<{ name: string; bots: string[] }> };
    try {
      await until(() => traffic.outcomes.length > 50, 20_000, 'load to start');
      fs.writeFileSync(config, text);
      await until(() => output.includes('pools added: realtime-'), 20_000, 'up to re-plan');
      after = JSON.parse(execFileSync(process.execPath, [BIN, 'plan', '--config', config, '--json'], { cwd: dir, encoding: 'utf8' }));
      const added = after.pools.find((p) => !before.pools.some((q: { name: string }) => q.name === p.name))!;
      await until(() => added.bots.every((b) => traffic.pools.get(b) === added.name), 60_000, `bots to reach ${added.name}`);
    } finally {
      await traffic.stop();
    }
    expect(traffic.failures).toEqual([]);
    expect(traffic.outcomes.length).toBeGreaterThan(100);
    rows = parseTable();
  }, 120_000);

  test('SIGTERM under load: every request sent before it is answered, the router aborts none, up exits 0 after its drain line, no process or port is left', async () => {
    const bots = ['acme-support-en', 'globex-banking-de', 'hooli-retail-en'];
    const workers = 4;
    const traffic = load(url(), bots, workers, 30_000);
    await until(() => traffic.outcomes.length > 30, 20_000, 'load to start');
    // One request surely in flight at the router when it starts draining: its body ends only after that.
    const slow = await slowUpload(url(), bots[0]);
    // The router's own count, all run long (every test above, and this load so far): no request aborted.
    expect(await routerAborted(routerMetrics())).toEqual(NOTHING_ABORTED);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => up.once('close', (code, signal) => resolve({ code, signal })));
    const signalAt = performance.now();
    up.kill('SIGTERM');
    await until(async () => (await fetch(`${url()}/v2/health/ready`).then((r) => r.status, () => 0)) !== 200, 10_000, 'the router to start draining');
    slow.finish();
    const end = await exited;
    await traffic.stop();
    const slowEnd = await slow.outcome;
    expectCleanStop({ exit: end, output, stopping: /\n\[up\] SIGTERM: stopping the router, then the pools/, outcomes: traffic.outcomes, held: slowEnd, signalAt, workers });
    for (const r of rows) {
      expect([r.pool, alive(r.pid)]).toEqual([r.pool, false]);
      expect([r.pool, await listening(r.port)]).toEqual([r.pool, false]);
    }
  }, 60_000);
});
