/**
 * `botshard plan --sizes STATUS`: the `memory` to declare per bot and encoder from the sizes the pools
 * measured (a saved `botshard status --json`), and a clear failure naming the file and the fix when the
 * file is not one. (test/pool/measured.test.ts runs it on a real pool's status.)
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sizesCommand } from '@botshard/runtime/commands/plan';
import type { PlatformStatus, PoolStatus } from '@botshard/runtime/status';
import { measuredModels, quantity, suggestedBytes } from '@botshard/runtime/status/sizes';

const ROOT = path.join(__dirname, '../..');
const botshard = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'runtime/bin/botshard.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-sizes-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const write = (name: string, text: string) => {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
};

const MiB = 1024 * 1024;
const KiB = 1024;

/** A pool's status as a pool answers it, with its models' sizes. */
function pool(name: string, generation: string, sizes: Pick<NonNullable<PoolStatus['sizes']>, 'bots' | 'encoders'>): PoolStatus {
  const all = [...sizes.bots, ...sizes.encoders];
  return {
    pool: name,
    ready: true,
    generation,
    bots: { loading: 0, ready: sizes.bots.length, failed: 0, leaving: 0 },
    failed: [],
    queue: [0],
    memoryBytes: 150 * MiB,
    budgetBytes: 512 * MiB,
    sizes: { declared: all.reduce((s, m) => s + m.declared, 0), measured: all.reduce((s, m) => s + m.measured, 0), ...sizes },
  };
}

const status: PlatformStatus = {
  router: { generation: 'g2', dataPlane: 'node' },
  pools: [
    pool('rt-a', 'g2', {
      bots: [
        { bot: 'fits', declared: 4 * MiB, measured: 3 * MiB + 200 * KiB }, // x 1.2 = 3.84 MiB: 4Mi, as declared
        { bot: 'too-small', declared: 2 * MiB, measured: 9 * MiB + 100 * KiB },
        { bot: 'too-large', declared: 32 * MiB, measured: 12 * KiB },
      ],
      encoders: [{ encoder: 'encoder-en', declared: 48 * MiB, measured: 1400 * KiB }],
    }),
    // A replica on an older generation: its (larger) figures are left aside, the pools on the router's generation count.
    pool('rt-b', 'g1', { bots: [{ bot: 'too-small', declared: 2 * MiB, measured: 90 * MiB }], encoders: [] }),
    { pool: 'rt-c', unreachable: 'ECONNREFUSED' },
  ],
};

describe('botshard plan --sizes', () => {
  test('measured x 1.2 rounded up to a whole Mi (at least 1Mi), a whole Gi when it is one', () => {
    expect(quantity(suggestedBytes(9 * MiB + 100 * KiB))).toBe('11Mi'); // 10.92 MiB
    expect(quantity(suggestedBytes(12 * KiB))).toBe('1Mi');
    expect(quantity(suggestedBytes(3 * MiB + 200 * KiB))).toBe('4Mi');
    expect(quantity(suggestedBytes(Math.floor((1024 * MiB) / 1.2)))).toBe('1Gi');
    expect(quantity(suggestedBytes(1024 * MiB))).toBe('1229Mi');
  });

  test('the models measured: each one once, from the pools on the router\'s generation', () => {
    expect(measuredModels(status).map((m) => [m.kind, m.id, m.pool, m.measured])).toEqual([
      ['bot', 'fits', 'rt-a', 3 * MiB + 200 * KiB],
      ['bot', 'too-large', 'rt-a', 12 * KiB],
      ['bot', 'too-small', 'rt-a', 9 * MiB + 100 * KiB],
      ['encoder', 'encoder-en', 'rt-a', 1400 * KiB],
    ]);
  });

  test('one line per bot whose suggestion differs from its declared memory, ready to paste', () => {
    const file = write('status.json', JSON.stringify(status));
    const r = botshard('plan', '--sizes', file);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(
      [
        '// model.memory from the sizes the pools measured (catalog generation g2): measured x 1.2, rounded up to a whole Mi.',
        '// 2 of 3 bots measured differ from their declared memory; in bots.config.ts, give each bot `memory: MEMORY[id] ?? ...`:',
        'const MEMORY: Record<string, string> = {',
        "  'too-large': '1Mi',  // declared 32Mi, measured 12Ki",
        "  'too-small': '11Mi', // declared 2Mi, measured 9.1Mi",
        '};',
        "// 1 of 1 encoders measured differ from their declared memory (an encoder's `memory`):",
        'const ENCODER_MEMORY: Record<string, string> = {',
        "  'encoder-en': '2Mi', // declared 48Mi, measured 1.4Mi",
        '};',
        '',
      ].join('\n'),
    );
    expect(JSON.parse(sizesCommand({ file, json: true }))).toEqual({
      generation: 'g2',
      margin: 1.2,
      bots: [
        { id: 'too-large', declared: 32 * MiB, measured: 12 * KiB, suggested: '1Mi' },
        { id: 'too-small', declared: 2 * MiB, measured: 9 * MiB + 100 * KiB, suggested: '11Mi' },
      ],
      encoders: [{ id: 'encoder-en', declared: 48 * MiB, measured: 1400 * KiB, suggested: '2Mi' }],
    });
  });

  test('nothing to change: says so', () => {
    const fine: PlatformStatus = { router: status.router, pools: [pool('rt-a', 'g2', { bots: [{ bot: 'fits', declared: 4 * MiB, measured: 3 * MiB }], encoders: [] })] };
    const r = botshard('plan', '--sizes', write('fine.json', JSON.stringify(fine)));
    expect([r.status, r.stdout]).toEqual([0, '// model.memory from the sizes the pools measured (catalog generation g2): measured x 1.2, rounded up to a whole Mi.\n// 0 of 1 bots measured differ from their declared memory.\n']);
  });

  test.each([
    ['a missing file', () => path.join(tmp, 'absent.json'), /cannot be read \(ENOENT\)/],
    ['a file that is not JSON', () => write('text.json', 'POOL  READY\nrt-a  yes\n'), /is not JSON \(/],
    ['JSON that is not a status', () => write('catalog.json', JSON.stringify({ apiVersion: 'botshard/v1', bots: [] })), /is not a botshard status \(an object with "router" and "pools"\)/],
    ['a status without measured sizes', () => write('old.json', JSON.stringify({ router: status.router, pools: [{ pool: 'rt-c', unreachable: 'ECONNREFUSED' }] })), /no pool in it reports measured sizes/],
  ])('%s: exit 1, the file named and how to get a good one', (_what, file, problem) => {
    const f = file();
    const r = botshard('plan', '--sizes', f);
    expect([r.status, r.stdout]).toEqual([1, '']);
    expect(r.stderr).toMatch(problem);
    expect(r.stderr).toContain(`botshard: --sizes ${f}: `);
    expect(r.stderr).toContain(`save one with \`botshard status --json > ${f}\``);
    expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
  });
});
