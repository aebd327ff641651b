/**
 * Tenant API keys read from a folder laid out as a mounted Kubernetes Secret (runtime/src/routing/tenants.ts):
 * what counts as a key, which tenant a key belongs to, when a change is reported, following the folder,
 * and the token bucket's arithmetic. Real files in a temp folder; the rate limiter on an injected clock.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RateLimiter, TenantKeys, hashKey } from '@botshard/runtime/routing/tenants';

const temp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-keys-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `check` holds (a poll, a watch event), at most 5 s. */
async function until(check: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(10);
  }
}

describe('TenantKeys: reading the folder', () => {
  test('hashKey is the hex SHA-256 of the key', () => {
    expect(hashKey('acme-secret')).toBe(createHash('sha256').update('acme-secret').digest('hex'));
    expect(hashKey('acme-secret')).toMatch(/^[0-9a-f]{64}$/);
  });

  test('one file per tenant, one hash per line: upper case, spaces and CRLF are fine, anything else is skipped', () => {
    const dir = temp();
    fs.writeFileSync(path.join(dir, 'acme'), `  ${hashKey('a1').toUpperCase()}  \r\n\r\nnot a hash\n${hashKey('a2')}\n${hashKey('a3').slice(1)}\n${hashKey('a4')}0\n`);
    fs.writeFileSync(path.join(dir, 'globex'), hashKey('g1'));
    // What a mounted Secret also holds: hidden entries and the timestamped folder behind them.
    fs.writeFileSync(path.join(dir, '.hidden'), hashKey('h1'));
    fs.mkdirSync(path.join(dir, '..2024_01_01'));
    fs.writeFileSync(path.join(dir, '..2024_01_01', 'acme'), hashKey('h2'));
    fs.mkdirSync(path.join(dir, 'sub'));
    const keys = new TenantKeys(dir);
    expect(keys.problem).toBeUndefined();
    expect(keys.size).toBe(3);
    expect(keys.entries()).toEqual([
      { tenant: 'acme', hash: hashKey('a1') },
      { tenant: 'acme', hash: hashKey('a2') },
      { tenant: 'globex', hash: hashKey('g1') },
    ]);
    expect([keys.tenantOf('a1'), keys.tenantOf('a2'), keys.tenantOf('g1')]).toEqual(['acme', 'acme', 'globex']);
    for (const k of ['a3', 'a4', 'h1', 'h2', '', 'A1']) expect(keys.tenantOf(k)).toBeUndefined();
  });

  test('a key listed for two tenants belongs to the first file (in folder order)', () => {
    const dir = temp();
    fs.writeFileSync(path.join(dir, 'acme'), hashKey('shared'));
    fs.writeFileSync(path.join(dir, 'globex'), hashKey('shared'));
    const keys = new TenantKeys(dir);
    expect(keys.tenantOf('shared')).toBe(fs.readdirSync(dir)[0]);
  });

  test('a missing folder or one without a key leaves no keys and says why', () => {
    const missing = path.join(temp(), 'absent');
    const none = new TenantKeys(missing);
    expect([none.size, none.problem]).toEqual([0, `the tenant keys folder ${missing} cannot be read (ENOENT)`]);
    expect(none.tenantOf('anything')).toBeUndefined();
    const dir = temp();
    fs.writeFileSync(path.join(dir, 'acme'), 'no hash here\n');
    const empty = new TenantKeys(dir);
    expect([empty.size, empty.problem]).toEqual([0, `the tenant keys folder ${dir} holds no API key hashes (one file per tenant, one SHA-256 per line)`]);
    // A file where a folder should be: not readable as a folder.
    const file = path.join(dir, 'acme');
    expect(new TenantKeys(file).problem).toBe(`the tenant keys folder ${file} cannot be read (ENOTDIR)`);
  });
});

describe('TenantKeys: changes', () => {
  test('onChange is called when the keys or the problem change, and only then', () => {
    const dir = temp();
    fs.writeFileSync(path.join(dir, 'acme'), hashKey('a1'));
    const seen: Array<{ size: number; problem?: string }> = [];
    const keys = new TenantKeys(dir, (k) => seen.push({ size: k.size, problem: k.problem }));
    expect(seen).toEqual([{ size: 1, problem: undefined }]);
    keys.reload();
    expect(seen).toHaveLength(1);
    // Another key of the same count: a change.
    fs.writeFileSync(path.join(dir, 'acme'), hashKey('a2'));
    keys.reload();
    expect(seen).toHaveLength(2);
    expect(keys.tenantOf('a2')).toBe('acme');
    // The same key under another tenant: a change.
    fs.rmSync(path.join(dir, 'acme'));
    fs.writeFileSync(path.join(dir, 'globex'), hashKey('a2'));
    keys.reload();
    expect(seen).toHaveLength(3);
    expect(keys.tenantOf('a2')).toBe('globex');
    // One more key: a change.
    fs.writeFileSync(path.join(dir, 'globex'), `${hashKey('a2')}\n${hashKey('a3')}`);
    keys.reload();
    expect(seen).toHaveLength(4);
    // No key left: a change (the problem), then the same problem again: none.
    fs.writeFileSync(path.join(dir, 'globex'), '');
    keys.reload();
    expect(seen[4]).toEqual({ size: 0, problem: expect.stringContaining('holds no API key hashes') });
    keys.reload();
    expect(seen).toHaveLength(5);
    // Another problem with no keys either way: still a change.
    fs.rmSync(dir, { recursive: true });
    keys.reload();
    expect(seen[5]).toEqual({ size: 0, problem: expect.stringContaining('cannot be read (ENOENT)') });
    expect(seen).toHaveLength(6);
  });

  test('a folder unreadable at the start is reported to onChange at construction', () => {
    const seen: string[] = [];
    const keys = new TenantKeys(path.join(temp(), 'absent'), (k) => seen.push(k.problem ?? 'none'));
    expect(seen).toEqual([expect.stringContaining('cannot be read')]);
    expect(keys.size).toBe(0);
  });

  test('follow() picks up a key added to the folder (by polling, whatever watch reports); stop() stops', async () => {
    const dir = temp();
    fs.writeFileSync(path.join(dir, 'acme'), hashKey('a1'));
    const keys = new TenantKeys(dir);
    keys.follow(20);
    try {
      fs.writeFileSync(path.join(dir, 'acme'), `${hashKey('a1')}\n${hashKey('a2')}`);
      await until(() => keys.tenantOf('a2') === 'acme');
    } finally {
      keys.stop();
    }
    fs.writeFileSync(path.join(dir, 'acme'), hashKey('a3'));
    await sleep(200);
    expect([keys.tenantOf('a2'), keys.tenantOf('a3')]).toEqual(['acme', undefined]);
    keys.stop(); // twice: harmless
  });

  test('follow() on a folder that does not exist yet finds it when it appears', async () => {
    const dir = path.join(temp(), 'later');
    const keys = new TenantKeys(dir);
    keys.follow(20);
    try {
      expect(keys.size).toBe(0);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'acme'), hashKey('a1'));
      await until(() => keys.tenantOf('a1') === 'acme');
      expect(keys.problem).toBeUndefined();
    } finally {
      keys.stop();
    }
  });

  test('follow() reacts to the folder changing at once (fs.watch), not only at the next poll', async () => {
    const dir = temp();
    fs.writeFileSync(path.join(dir, 'acme'), hashKey('a1'));
    const keys = new TenantKeys(dir);
    keys.follow(600_000);
    try {
      fs.writeFileSync(path.join(dir, 'globex'), hashKey('g1'));
      await until(() => keys.tenantOf('g1') === 'globex');
    } finally {
      keys.stop();
    }
  });

  test('an error of the folder watch (inotify limits, say) does not bring the process down; polling goes on', async () => {
    const dir = temp();
    fs.writeFileSync(path.join(dir, 'acme'), hashKey('a1'));
    const keys = new TenantKeys(dir);
    keys.follow(20);
    try {
      const watcher = (keys as unknown as { watcher: fs.FSWatcher }).watcher;
      expect(() => watcher.emit('error', Object.assign(new Error('watch failed'), { code: 'ENOSPC' }))).not.toThrow();
      fs.writeFileSync(path.join(dir, 'acme'), `${hashKey('a1')}\n${hashKey('a2')}`);
      await until(() => keys.tenantOf('a2') === 'acme');
    } finally {
      keys.stop();
    }
  });

  test('following again replaces the previous timer (one stop() ends it all)', async () => {
    const dir = temp();
    fs.writeFileSync(path.join(dir, 'acme'), hashKey('a1'));
    let reloads = 0;
    const keys = new TenantKeys(dir, () => reloads++);
    keys.follow(20);
    keys.follow(20);
    keys.stop();
    fs.writeFileSync(path.join(dir, 'acme'), hashKey('a2'));
    await sleep(150);
    expect(keys.tenantOf('a2')).toBeUndefined();
    expect(reloads).toBe(1);
  });
});

describe('RateLimiter', () => {
  test('a bucket starts full at the burst and refills at the rate, to the burst and no further', () => {
    const clock = { t: 5000 };
    const r = new RateLimiter(4, 2, () => clock.t);
    expect([r.take('a'), r.take('a'), r.take('a')]).toEqual([0, 0, 1]);
    clock.t += 250; // one token back at 4/s
    expect([r.take('a'), r.take('a')]).toEqual([0, 1]);
    clock.t += 60_000;
    expect([r.take('a'), r.take('a'), r.take('a')]).toEqual([0, 0, 1]);
  });

  test('the wait is the time to the next whole token, rounded up to whole seconds, at least 1', () => {
    const clock = { t: 0 };
    const r = new RateLimiter(0.1, 1, () => clock.t);
    expect([r.take('a'), r.take('a')]).toEqual([0, 10]);
    clock.t += 5000; // half a token back
    expect(r.take('a')).toBe(5);
    clock.t += 4500; // 0.95 of a token
    expect(r.take('a')).toBe(1);
    const fast = new RateLimiter(1000, 1, () => clock.t);
    expect([fast.take('b'), fast.take('b')]).toEqual([0, 1]);
  });

  test('a refused request takes no token: waiting the time it was told is enough', () => {
    const clock = { t: 0 };
    const r = new RateLimiter(1, 1, () => clock.t);
    r.take('a');
    const wait = r.take('a');
    expect(r.take('a')).toBe(wait);
    clock.t += wait * 1000;
    expect(r.take('a')).toBe(0);
  });

  test('by default it runs on a real clock: a burst, then a refusal', () => {
    const r = new RateLimiter(1, 2);
    expect([r.take('a'), r.take('a'), r.take('a')]).toEqual([0, 0, 1]);
  });
});
