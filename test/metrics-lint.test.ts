/**
 * One naming convention for every process's metrics, checked by Prometheus's own linter: botshard's
 * metrics are `botshard_<process>_...`, Node's process metrics keep their standard names in both. When
 * `promtool` (Debian package `prometheus`) is not installed the lint is a visible skip with a printed note
 * (a failure under CI, where .ci/run installs it: test/support/tools.ts).
 */
import { spawnSync } from 'node:child_process';
import { parseCatalog, plan } from '@botshard/runtime';
import { ControlMetrics } from '@botshard/runtime/haproxy/control';
import { catalogInput, ensureBuilt, postJson, runPool, supportBot, withModels } from './pool/support';
import { runRouter } from './router/support';
import { promtool } from './support/tools';

beforeAll(() => ensureBuilt());

const linter = promtool();

/** What `promtool check metrics` says about an exposition, one problem per line. */
function lint(text: string): string[] {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
}

/** The expositions of a pool, a router and the HAProxy control plane, after requests (so labelled series exist). */
const texts: Record<'pool' | 'router' | 'haproxy', string> = { pool: '', router: '', haproxy: '' };

beforeAll(async () => {
  const catalog = parseCatalog(catalogInput([supportBot('lint-bot')]));
  const pool = await runPool({ pool: plan(catalog).pools[0].name, catalog, modelRoot: withModels(catalog), workers: 1, processMetrics: true });
  const router = await runRouter({ catalog, urls: new Map([[plan(catalog).pools[0].name, pool.url]]), processMetrics: true });
  try {
    expect((await postJson(`${router.url}/v1/bots/lint-bot/predict`, { text: 'hi' })).status).toBe(200);
    expect((await postJson(`${router.url}/v1/bots/no-bot/predict`, { text: 'hi' })).status).toBe(404);
    const control = new ControlMetrics();
    control.generation.set({ generation: catalog.generation }, 1);
    texts.pool = await pool.app.poolMetrics.registry.metrics();
    texts.router = await router.app.router.metrics.registry.metrics();
    texts.haproxy = await control.registry.metrics();
  } finally {
    await router.close();
    await pool.close();
  }
}, 60_000);

test('pool, router and HAProxy control plane: botshard_ names and standard Node names only', () => {
  for (const [name, text] of Object.entries(texts)) {
    const ours = text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]);
    expect([name, ours.some((m) => m.startsWith(`botshard_${name}_`))]).toEqual([name, true]);
    // Every metric is botshard's own (prefixed by its process) or one of Node's standard process metrics.
    for (const metric of ours) expect([name, metric]).toEqual([name, expect.stringMatching(new RegExp(`^(botshard_${name}_|process_|nodejs_)`))]);
    if (name !== 'haproxy') expect(ours).toContain('process_resident_memory_bytes');
  }
});

linter.test('promtool check metrics finds nothing of ours to object to', () => {
  for (const [name, text] of Object.entries(texts)) expect([name, lint(text).filter((l) => l.includes('botshard_'))]).toEqual([name, []]);
  // The linter did run and read the metrics: it flags prom-client's own `nodejs_active_*_total` gauges.
  expect(lint(texts.router)).toContainEqual(expect.stringMatching(/^nodejs_active_handles_total /));
});
