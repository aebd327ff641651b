/**
 * The Prometheus Operator objects of `platform.prometheusOperator`: PodMonitors on the metrics ports (the
 * pools' group as a label), and alerts (model rollouts' included) that name existing metrics, carry a summary,
 * a description and a runbook section that exists, with thresholds from each group's deadline. `promtool check
 * rules` (Debian package `prometheus`) checks the rules when installed; without it those checks are visible
 * skips (failures under CI).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ControlMetrics } from '@botshard/runtime/haproxy/control';
import { PoolMetrics } from '@botshard/runtime/pool/metrics';
import { CANDIDATE_STATES } from '@botshard/runtime/pool/rollout/rollouts';
import { RouterMetrics } from '@botshard/runtime/routing/metrics';
import { ensureBuilt, tempDir } from '../pool/support';
import { promtool } from '../support/tools';
import { exampleCatalogInput, synthInput } from './support';

beforeAll(() => ensureBuilt());

const ROOT = path.resolve(__dirname, '../..');
const linter = promtool();

describe('platform.prometheusOperator', () => {
  const example = synthInput(exampleCatalogInput());
  const ofKind = (kind: string) => example.objects.filter((o) => o.kind === kind);

  test('the example turns it on; off by default, nothing of the Prometheus Operator is synthesized', () => {
    expect(example.catalog.platform.prometheusOperator).toBe(true);
    const input = exampleCatalogInput();
    delete input.platform.prometheusOperator;
    expect(synthInput(input).objects.filter((o) => o.apiVersion.startsWith('monitoring.coreos.com/'))).toEqual([]);
    input.platform.prometheusOperator = 'yes';
    expect(() => synthInput(input)).toThrow(/platform\.prometheusOperator: must be true or false, got "yes"/);
  });

  test('PodMonitors scrape the pools (with their group as a label) and the router (and HAProxy\'s exporter)', () => {
    const [pools, router] = ofKind('PodMonitor');
    expect(pools.spec).toEqual({
      selector: { matchLabels: { 'app.kubernetes.io/name': 'botshard', 'app.kubernetes.io/part-of': 'botshard', 'app.kubernetes.io/component': 'pool' } },
      podTargetLabels: ['botshard.io/pool-group'],
      podMetricsEndpoints: [{ port: 'metrics', path: '/metrics', interval: '15s', scrapeTimeout: '10s' }],
    });
    expect(router.spec.podMetricsEndpoints.map((e: any) => e.port)).toEqual(['metrics', 'haproxy-metrics']);
    // The ports they name exist on the pods they select.
    const deployments = ofKind('Deployment');
    const portsOf = (component: string) => deployments.filter((d) => d.metadata.labels!['app.kubernetes.io/component'] === component).map((d) => d.spec.template.spec.containers.flatMap((c: any) => c.ports.map((p: any) => p.name)));
    for (const ports of portsOf('pool')) expect(ports).toContain('metrics');
    for (const ports of portsOf('router')) expect(ports).toEqual(expect.arrayContaining(['metrics', 'haproxy-metrics']));
  });

  test('every alert has a summary, a description and a runbook section that exists; group thresholds follow the deadline', () => {
    const rules = ofKind('PrometheusRule')[0].spec.groups[0].rules;
    const runbook = fs.readFileSync(path.join(ROOT, 'docs/operations.md'), 'utf8');
    const anchors = new Set([...runbook.matchAll(/^#+ (.+)$/gm)].map((m) => m[1].toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));
    for (const r of rules) {
      expect(r.annotations.summary.length).toBeGreaterThan(10);
      expect(r.annotations.description.length).toBeGreaterThan(10);
      expect([r.alert, anchors.has(r.annotations.runbook_url.split('#')[1])]).toEqual([r.alert, true]);
      expect(['critical', 'warning']).toContain(r.labels.severity);
    }
    const batch = example.catalog.groups.find((g) => g.name === 'batch')!;
    const latency = rules.find((r: any) => r.alert === 'BotshardLatencyNearDeadline' && r.expr.includes('"batch"'));
    expect(latency.expr).toMatch(new RegExp(`> ${(batch.timeoutMs / 1000) * 0.8}$`));
    expect(rules.map((r: any) => r.alert)).toEqual(expect.arrayContaining(['BotshardPoolNotReady', 'BotshardBotsFailedToLoad', 'BotshardVersionFailedToLoad', 'BotshardCandidateRolledBack', 'BotshardCandidateFailedToLoad', 'BotshardCandidateRefused', 'BotshardRequestsShed', 'BotshardDeadlineExceeded', 'BotshardCatalogRejected', 'BotshardCatalogGenerationsDiffer', 'BotshardRouterPoolDown', 'BotshardRouterMovesStuck']));
    // With the Node router, its own upstream and fallback metrics instead of HAProxy's.
    const input = exampleCatalogInput();
    input.platform.router = 'node';
    const node = synthInput(input).objects.find((o) => o.kind === 'PrometheusRule')!.spec.groups[0].rules.map((r: any) => r.alert);
    expect(node).toEqual(expect.arrayContaining(['BotshardRouterUpstreamErrors', 'BotshardRouterFallbacks']));
  });

  test('model rollouts alert at once on a candidate rolled back, failed to load or refused (states that last until the catalog changes it)', () => {
    const rules = ofKind('PrometheusRule')[0].spec.groups[0].rules;
    const alert = (name: string) => rules.find((r: any) => r.alert === name);
    for (const [name, state, anchor] of [
      ['BotshardCandidateRolledBack', 'rolled-back', 'candidate-rolled-back'],
      ['BotshardCandidateFailedToLoad', 'failed', 'candidate-failed-to-load'],
      ['BotshardCandidateRefused', 'refused', 'candidate-refused'],
    ]) {
      expect(alert(name)).toMatchObject({
        expr: `botshard_pool_candidates{state="${state}"} > 0`,
        for: '0m',
        labels: { severity: 'warning' },
        annotations: { runbook_url: `https://github.com/botshard/botshard/blob/main/docs/operations.md#${anchor}` },
      });
      expect(CANDIDATE_STATES).toContain(state);
    }
    // What on-call reads: what happened, where to see why, and what ends it.
    const rolledBack = alert('BotshardCandidateRolledBack').annotations.description;
    for (const words of ['stopped sending it traffic and unloaded it', 'botshard status', 'the guard', 'the time', 'Fix the model', 'drop or replace model.candidate']) expect(rolledBack).toContain(words);
    expect(alert('BotshardCandidateFailedToLoad').annotations.description).toMatch(/serving version is untouched.*does not retry/);
    expect(alert('BotshardCandidateRefused').annotations.description).toMatch(/memory budget.*does not retry/);
    // A serving version blocked by a failed load keeps its own alert (retried with backoff, hence its `for`).
    expect(alert('BotshardVersionFailedToLoad')).toMatchObject({ expr: 'botshard_pool_bots_version_failed > 0', for: '10m' });
  });

  test('alerts and dashboard queries name metrics the pools, the router and the HAProxy control plane export', () => {
    const rules = ofKind('PrometheusRule')[0].spec.groups[0].rules;
    const board = JSON.parse(ofKind('ConfigMap').find((c) => c.metadata.name === 'botshard-dashboard')!.data['botshard.json']);
    const exprs: string[] = [...rules.map((r: any) => r.expr), ...board.panels.flatMap((p: any) => p.targets.map((t: any) => t.expr))];
    const exported = new Set<string>();
    for (const registry of [new PoolMetrics('lint').registry, new RouterMetrics().registry, new ControlMetrics().registry]) {
      for (const m of registry.getMetricsAsArray()) {
        const { name, type } = m as unknown as { name: string; type: string };
        exported.add(name);
        if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${name}${suffix}`);
      }
    }
    // Metric names, once label matchers and grouping labels are taken out (the pool group label starts with botshard_ too).
    const named = new Set(exprs.flatMap((e) => [...e.replace(/\{[^}]*\}/g, '').replace(/\b(by|without) \([^)]*\)/g, '').matchAll(/\b(?:botshard|process)_[a-z0-9_]+/g)].map((m) => m[0])));
    expect(named).toContain('botshard_pool_candidates');
    expect(named).toContain('botshard_pool_version_fallback_texts_total');
    expect([...named].filter((n) => !exported.has(n))).toEqual([]);
  });

  test('a Grafana dashboard ConfigMap for the sidecar: per-group traffic and latency against each deadline, per-pool bots, memory and generation', () => {
    const cm = ofKind('ConfigMap').find((c) => c.metadata.name === 'botshard-dashboard')!;
    expect(cm.metadata.labels!.grafana_dashboard).toBe('1');
    const board = JSON.parse(cm.data['botshard.json']);
    expect(board).toMatchObject({ uid: 'botshard', title: 'botshard' });
    const titles = board.panels.map((p: any) => p.title);
    for (const g of example.catalog.groups) {
      const latency = board.panels.find((p: any) => p.title === `Latency of ${g.name} against its ${g.timeoutMs / 1000} s deadline`);
      expect(latency.targets.map((t: any) => t.legendFormat)).toEqual(['p50', 'p99', 'deadline']);
      expect(latency.targets[2].expr).toBe(`vector(${g.timeoutMs / 1000})`);
    }
    expect(titles).toEqual(expect.arrayContaining(['Requests per second, by pool group', 'Bots per pool pod, by state', 'Memory per pool pod against its budget', 'Model rollouts', 'Model rollouts: candidates by state', 'Catalog generation per pool pod']));
    // Model rollouts: per bot and version, rates of counters summed over the pools' replicas.
    const rollouts = board.panels.find((p: any) => p.title === 'Model rollouts');
    expect(rollouts.fieldConfig.defaults.unit).toBe('percentunit');
    expect(rollouts.targets.map((t: any) => [t.expr, t.legendFormat])).toEqual([
      ['sum by (bot, version) (rate(botshard_pool_version_fallback_texts_total[5m])) / sum by (bot, version) (rate(botshard_pool_version_texts_total[5m]))', '{{bot}} {{version}} fallback'],
      ['sum by (bot, version) (rate(botshard_pool_version_requests_total{outcome="error"}[5m])) / sum by (bot, version) (rate(botshard_pool_version_requests_total[5m]))', '{{bot}} {{version}} errors'],
      ['sum by (bot) (rate(botshard_pool_shadow_texts_total{result="agreed"}[5m])) / sum by (bot) (rate(botshard_pool_shadow_texts_total{result=~"agreed|disagreed"}[5m]))', '{{bot}} shadow agreement'],
    ]);
    const states = board.panels.find((p: any) => p.title === 'Model rollouts: candidates by state');
    expect(states.targets.map((t: any) => t.expr)).toEqual(['sum by (state) (botshard_pool_candidates)']);
    // Panels never overlap: each (x, y) cell of the 24-column grid is used once.
    const cells = board.panels.flatMap((p: any) => Array.from({ length: p.gridPos.w }, (_, i) => `${p.gridPos.x + i},${p.gridPos.y}`));
    expect(new Set(cells).size).toBe(cells.length);
    expect(board.panels.every((p: any) => p.gridPos.x + p.gridPos.w <= 24)).toBe(true);
  });

  linter.test('promtool parses every dashboard query (as recording rules)', () => {
    const board = JSON.parse(ofKind('ConfigMap').find((c) => c.metadata.name === 'botshard-dashboard')!.data['botshard.json']);
    const exprs: string[] = board.panels.flatMap((p: any) => p.targets.map((t: any) => t.expr));
    const file = path.join(tempDir('dashboard'), 'queries.json');
    fs.writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `botshard:dashboard_query_${i}`, expr })) }] }));
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect([r.status, `${r.stdout}${r.stderr}`]).toEqual([0, expect.stringMatching(new RegExp(`SUCCESS: ${exprs.length} rules found`))]);
  });

  linter.test('promtool check rules accepts the rules', () => {
    const rules = ofKind('PrometheusRule')[0].spec;
    const file = path.join(tempDir('rules'), 'rules.json'); // YAML is a superset of JSON: promtool reads it
    fs.writeFileSync(file, JSON.stringify(rules));
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect([r.status, `${r.stdout}${r.stderr}`]).toEqual([0, expect.stringMatching(/SUCCESS: \d+ rules found/)]);
  });
});
