/**
 * One naming convention for every process's metrics, checked by Prometheus's own linter: botshard's
 * metrics are `botshard_<process>_...`, Node's process metrics keep their standard names in both. When
 * `promtool` (Debian package `prometheus`) is not installed the lint is skipped with a printed note.
 */
import { spawnSync } from 'node:child_process';
import { parseCatalog, plan } from '@botshard/runtime';
import { ControlMetrics } from '@botshard/runtime/haproxy/control';
import { catalogInput, ensureBuilt, postJson, runPool, supportBot, withModels } from './pool/support';
import { runRouter } from './router/support';

beforeAll(() => ensureBuilt());

const promtool = spawnSync('promtool', ['--version']).status === 0;
if (!promtool) console.warn('SKIPPED: promtool is not installed (apt-get install prometheus): the metrics are not linted here; .ci/run installs it');

/** What `promtool check metrics` says about an exposition, one problem per line. */
function lint(text: string): string[] {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
}

test('pool, router and HAProxy control plane: botshard_ names, standard Node names, and nothing of ours promtool objects to', async () => {
  const catalog = parseCatalog(catalogInput([supportBot('lint-bot')]));
  const pool = await runPool({ pool: plan(catalog).pools[0].name, catalog, modelRoot: withModels(catalog), workers: 1, processMetrics: true });
  const router = await runRouter({ catalog, urls: new Map([[plan(catalog).pools[0].name, pool.url]]), processMetrics: true });
  try {
    // Requests first, so that labelled series exist.
    expect((await postJson(`${router.url}/v1/bots/lint-bot/predict`, { text: 'hi' })).status).toBe(200);
    expect((await postJson(`${router.url}/v1/bots/no-bot/predict`, { text: 'hi' })).status).toBe(404);
    const control = new ControlMetrics();
    control.generation.set({ generation: catalog.generation }, 1);
    const texts = {
      pool: await pool.app.poolMetrics.registry.metrics(),
      router: await router.app.router.metrics.registry.metrics(),
      haproxy: await control.registry.metrics(),
    };
    for (const [name, text] of Object.entries(texts)) {
      const ours = text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]);
      // Every metric is botshard's own (prefixed by its process) or one of Node's standard process metrics.
      for (const metric of ours) expect([name, metric]).toEqual([name, expect.stringMatching(new RegExp(`^(botshard_${name}_|process_|nodejs_)`))]);
      if (name !== 'haproxy') expect(ours).toContain('process_resident_memory_bytes');
      if (promtool) expect([name, lint(text).filter((l) => l.includes('botshard_'))]).toEqual([name, []]);
    }
    // The linter did run and read the metrics: it flags prom-client's own `nodejs_active_*_total` gauges.
    if (promtool) expect(lint(texts.router)).toContainEqual(expect.stringMatching(/^nodejs_active_handles_total /));
  } finally {
    await router.close();
    await pool.close();
  }
}, 60_000);
