/**
 * What the Prometheus Operator needs to watch botshard: a PodMonitor for the pools and one for the router
 * (their metrics ports, with each pool's group as a label), a PrometheusRule with the alerts a person
 * on call acts on (each links its runbook section in docs/operations.md), and a Grafana dashboard as a
 * ConfigMap for Grafana's sidecar. Synthesized when the catalog sets `platform.prometheusOperator: true`.
 */
import { ApiObject } from 'cdk8s';
import * as k8s from 'cdk8s-plus-27/lib/imports/k8s';
import { Construct } from 'constructs';
import { Catalog, PoolGroup } from '@botshard/runtime';
import { LABEL_COMPONENT, LABEL_NAME_KEY, LABEL_PART_OF, LABEL_POOL_GROUP, objectLabels } from './names';

/** The group label a pool's metrics carry once scraped through its PodMonitor (`podTargetLabels`). */
export const GROUP_LABEL = LABEL_POOL_GROUP.replace(/[^a-zA-Z0-9_]/g, '_');
/** Where the runbooks are. */
export const RUNBOOK_BASE = 'https://github.com/botshard/botshard/blob/main/docs/operations.md';

export interface MonitoringProps {
  catalog: Catalog;
  namespace: string;
  platform: string;
  /** The router's data plane: HAProxy exports its own metrics on a second port. */
  haproxy: boolean;
}

/** One alerting rule of a PrometheusRule. */
export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  /** `group`: the pool group of a per-group alert (alerts of one name differ by it). */
  labels: { severity: 'critical' | 'warning'; group?: string };
  annotations: { summary: string; description: string; runbook_url: string };
}

export class Monitoring extends Construct {
  /** The alerting rules, as synthesized. */
  public readonly rules: AlertRule[];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { namespace, platform } = props;
    const pods = (component: 'pool' | 'router') => ({ matchLabels: { [LABEL_NAME_KEY]: 'botshard', [LABEL_PART_OF]: platform, [LABEL_COMPONENT]: component } });
    const endpoint = (port: string) => ({ port, path: '/metrics', interval: '15s', scrapeTimeout: '10s' });
    new ApiObject(this, 'pools', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      metadata: { name: `${platform}-pool-metrics`, namespace, labels: objectLabels(platform, 'pool', `${platform}-pool-metrics`) },
      spec: { selector: pods('pool'), podTargetLabels: [LABEL_POOL_GROUP], podMetricsEndpoints: [endpoint('metrics')] },
    });
    new ApiObject(this, 'router', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      metadata: { name: `${platform}-router-metrics`, namespace, labels: objectLabels(platform, 'router', `${platform}-router-metrics`) },
      spec: { selector: pods('router'), podMetricsEndpoints: [endpoint('metrics'), ...(props.haproxy ? [endpoint('haproxy-metrics')] : [])] },
    });
    this.rules = alertRules(props.catalog.groups, props.haproxy);
    new ApiObject(this, 'rules', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: { name: `${platform}-alerts`, namespace, labels: objectLabels(platform, 'platform', `${platform}-alerts`) },
      spec: { groups: [{ name: 'botshard', rules: this.rules }] },
    });
    // Grafana's dashboard sidecar loads ConfigMaps labelled grafana_dashboard=1, from any namespace it watches.
    new k8s.KubeConfigMap(this, 'dashboard', {
      metadata: { name: `${platform}-dashboard`, namespace, labels: objectLabels(platform, 'platform', `${platform}-dashboard`, { grafana_dashboard: '1' }) },
      data: { 'botshard.json': `${JSON.stringify(dashboard(props.catalog.groups), null, 1)}\n` },
    });
  }
}

const runbook = (anchor: string) => `${RUNBOOK_BASE}#${anchor}`;

/** The alerts; per group, thresholds from the group's deadline. */
export function alertRules(groups: readonly PoolGroup[], haproxy: boolean): AlertRule[] {
  const rules: AlertRule[] = [
    {
      alert: 'BotshardPoolNotReady',
      expr: 'botshard_pool_ready == 0',
      for: '5m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Pool {{ $labels.pod }} has not been ready for 5 minutes',
        description: `A pool pod of group {{ $labels.${GROUP_LABEL} }} reports not ready: its bots are served by its other replicas, or not at all.`,
        runbook_url: runbook('pool-not-ready'),
      },
    },
    {
      alert: 'BotshardBotsFailedToLoad',
      expr: 'botshard_pool_bots{state="failed"} > 0',
      for: '10m',
      labels: { severity: 'warning' },
      annotations: {
        summary: '{{ $value }} bots failed to load in {{ $labels.pod }}',
        description: 'Bots assigned to this pool failed to load (their requests get 503); the pool retries with backoff. Its log and /v2/models/{bot}/ready name the error.',
        runbook_url: runbook('bots-failed-to-load'),
      },
    },
    {
      alert: 'BotshardVersionFailedToLoad',
      expr: 'botshard_pool_bots_version_failed > 0',
      for: '10m',
      labels: { severity: 'warning' },
      annotations: {
        summary: '{{ $value }} bots in {{ $labels.pod }} still serve their previous version: the new one failed to load',
        description: "The catalog's new version of these bots could not be loaded (missing, corrupt, failing its checks or its sha256); their previous version keeps serving and the pool loads the new one again with backoff. /v2/models/{bot}/ready (failedVersion) and botshard status name the model file and the error.",
        runbook_url: runbook('version-failed-to-load'),
      },
    },
    // Model rollouts: a candidate's state lasts until the catalog changes the candidate (the pool never
    // retries one), so these fire at once: a `for` would only delay them.
    {
      alert: 'BotshardCandidateRolledBack',
      expr: 'botshard_pool_candidates{state="rolled-back"} > 0',
      for: '0m',
      labels: { severity: 'warning' },
      annotations: {
        summary: '{{ $value }} candidate model versions in {{ $labels.pod }} were rolled back by their guards',
        description: "A bot's candidate version (model.candidate in the catalog) breached one of its guards: this pool replica stopped sending it traffic and unloaded it, and the serving version answers all of the bot's requests. botshard status names the bot, the guard, the candidate's figure against the limit (and the serving version's) and the time. Fix the model, or drop or replace model.candidate in the catalog: the alert lasts until the catalog changes the candidate.",
        runbook_url: runbook('candidate-rolled-back'),
      },
    },
    {
      alert: 'BotshardCandidateFailedToLoad',
      expr: 'botshard_pool_candidates{state="failed"} > 0',
      for: '0m',
      labels: { severity: 'warning' },
      annotations: {
        summary: '{{ $value }} candidate model versions in {{ $labels.pod }} failed to load',
        description: "A bot's candidate version (model.candidate in the catalog) could not be loaded (missing, corrupt, failing its checks or its sha256): it takes no traffic and is not judged, and the serving version is untouched. The pool does not retry it. botshard status and the pool's log (\"candidate failed to load\") name the bot and the error. Fix the file and change the candidate in the catalog (its head, version or sha256), or drop model.candidate.",
        runbook_url: runbook('candidate-failed-to-load'),
      },
    },
    {
      alert: 'BotshardCandidateRefused',
      expr: 'botshard_pool_candidates{state="refused"} > 0',
      for: '0m',
      labels: { severity: 'warning' },
      annotations: {
        summary: '{{ $value }} candidate model versions in {{ $labels.pod }} were refused: the pool has no room for them',
        description: "A bot's candidate version (model.candidate in the catalog) does not fit in its pool's memory budget beside the bots placed there, so it was not loaded: the rollout does not run and will never pass, and the serving version is untouched. The pool does not retry it. botshard status names the bot and the bytes it needs against the pool's free memory. Give the pool group more memory (or its pool fewer bots), check the candidate's declared memory, or drop model.candidate.",
        runbook_url: runbook('candidate-refused'),
      },
    },
    {
      alert: 'BotshardCatalogRejected',
      expr: 'increase(botshard_pool_catalog_reloads_total{result="invalid"}[15m]) > 0 or increase(botshard_router_catalog_reloads_total{result="invalid"}[15m]) > 0 or increase(botshard_haproxy_catalog_reloads_total{result="invalid"}[15m]) > 0',
      for: '0m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'A new catalog generation was rejected by {{ $labels.pod }}',
        description: 'A catalog change could not be used (invalid, or it cannot be placed): the pod keeps serving the previous generation.',
        runbook_url: runbook('catalog-rejected'),
      },
    },
    {
      alert: 'BotshardCatalogGenerationsDiffer',
      expr: 'count(count by (generation) (botshard_pool_catalog_generation)) > 1',
      for: '15m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Pools have served different catalog generations for 15 minutes',
        description: 'A catalog rollout reaches every pod within a minute or two (the kubelet syncs ConfigMaps); pods still on an older generation have not seen the new one.',
        runbook_url: runbook('generations-differ'),
      },
    },
  ];
  for (const g of groups) {
    const sel = `${GROUP_LABEL}="${g.name}"`;
    const requests = `sum(rate(botshard_pool_bot_requests_total{${sel}}[5m]))`;
    const outcome = (o: string) => `sum(rate(botshard_pool_bot_requests_total{${sel},outcome="${o}"}[5m]))`;
    const deadline = g.timeoutMs / 1000;
    rules.push(
      {
        alert: 'BotshardRequestsShed',
        expr: `${outcome('shed')} / ${requests} > 0.05`,
        for: '10m',
        labels: { severity: g.realtime ? 'critical' : 'warning', group: g.name },
        annotations: {
          summary: `Pool group ${g.name} refuses more than 5% of its requests (503)`,
          description: `Requests are shed because queues are full or could not finish within the group's ${deadline} s deadline: the group needs more pools or replicas.`,
          runbook_url: runbook('requests-shed'),
        },
      },
      {
        alert: 'BotshardDeadlineExceeded',
        expr: `${outcome('timeout')} / ${requests} > 0.01`,
        for: '10m',
        labels: { severity: g.realtime ? 'critical' : 'warning', group: g.name },
        annotations: {
          summary: `Pool group ${g.name} answers more than 1% of its requests with 504`,
          description: `Requests pass the group's ${deadline} s deadline in the pools: a slow bot or an overloaded pool.`,
          runbook_url: runbook('deadline-exceeded'),
        },
      },
      {
        alert: 'BotshardLatencyNearDeadline',
        expr: `histogram_quantile(0.99, sum by (le) (rate(botshard_pool_request_seconds_bucket{${sel},route=~".*(infer|predict)"}[5m]))) > ${Math.round(deadline * 0.8 * 1000) / 1000}`,
        for: '10m',
        labels: { severity: 'warning', group: g.name },
        annotations: {
          summary: `Pool group ${g.name}: p99 above 80% of its ${deadline} s deadline`,
          description: 'The slowest requests come close to being cut off at the deadline.',
          runbook_url: runbook('latency-near-deadline'),
        },
      },
    );
  }
  rules.push(
    haproxy
      ? {
          alert: 'BotshardRouterPoolDown',
          expr: 'haproxy_backend_active_servers == 0',
          for: '5m',
          labels: { severity: 'critical' },
          annotations: {
            summary: 'The router reaches no ready replica of pool {{ $labels.proxy }}',
            description: "HAProxy's health checks on the pool's Service fail: its bots get 503.",
            runbook_url: runbook('router-upstream-errors'),
          },
        }
      : {
          alert: 'BotshardRouterUpstreamErrors',
          expr: 'sum by (pool, kind) (rate(botshard_router_upstream_errors_total{kind!="not_ready"}[5m])) > 0.1',
          for: '5m',
          labels: { severity: 'critical' },
          annotations: {
            summary: 'The router fails to reach pool {{ $labels.pool }} ({{ $labels.kind }})',
            description: 'Connections to the pool fail, time out or are reset, or its circuit is open: its bots get 503 or 504.',
            runbook_url: runbook('router-upstream-errors'),
          },
        },
    haproxy
      ? {
          alert: 'BotshardRouterMovesStuck',
          expr: 'botshard_haproxy_pending_moves > 0',
          for: '10m',
          labels: { severity: 'warning' },
          annotations: {
            summary: '{{ $value }} moved bots still go to their old pool after 10 minutes',
            description: 'Their new pool has not reported them ready: they are served by the old pool while its grace period lasts.',
            runbook_url: runbook('router-fallbacks'),
          },
        }
      : {
          alert: 'BotshardRouterFallbacks',
          expr: 'sum by (group) (rate(botshard_router_fallbacks_total[5m])) > 0',
          for: '15m',
          labels: { severity: 'warning' },
          annotations: {
            summary: 'Requests of group {{ $labels.group }} are still served by the previous pool of their bots',
            description: 'Moved bots are not ready in their new pool 15 minutes after a catalog change.',
            runbook_url: runbook('router-fallbacks'),
          },
        },
  );
  return rules;
}

/** A Grafana panel: a time series (or a table) of PromQL queries. */
interface Panel {
  id: number;
  type: 'timeseries' | 'table';
  title: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource: { type: 'prometheus'; uid: '${datasource}' };
  fieldConfig: { defaults: { unit?: string }; overrides: [] };
  targets: Array<{ refId: string } & Query>;
}

/** One PromQL query of a panel. */
interface Query {
  expr: string;
  legendFormat?: string;
  instant?: boolean;
  format?: 'table';
}

/**
 * botshard's Grafana dashboard: per pool group, requests, p50/p99 against the group's deadline, shed and
 * error rates; per pool, bots loaded and failed, memory against its budget, and the catalog generation;
 * model rollouts per bot and version (fallback, error and shadow agreement rates) and candidates by state.
 */
export function dashboard(groups: readonly PoolGroup[]): object {
  const panels: Panel[] = [];
  const add = (title: string, targets: Query[], o: { unit?: string; description?: string; type?: Panel['type']; w?: number } = {}) => {
    const w = o.w ?? 12;
    const x = panels.length === 0 ? 0 : (panels[panels.length - 1].gridPos.x + panels[panels.length - 1].gridPos.w) % 24;
    const y = panels.length === 0 ? 0 : panels[panels.length - 1].gridPos.y + (x === 0 ? 8 : 0);
    panels.push({
      id: panels.length + 1,
      type: o.type ?? 'timeseries',
      title,
      ...(o.description ? { description: o.description } : {}),
      gridPos: { x, y, w, h: 8 },
      datasource: { type: 'prometheus', uid: '${datasource}' },
      fieldConfig: { defaults: o.unit ? { unit: o.unit } : {}, overrides: [] },
      targets: targets.map((t, i) => ({ ...t, refId: String.fromCharCode(65 + i) })),
    });
  };
  const g = GROUP_LABEL;
  add('Requests per second, by pool group', [{ expr: `sum by (${g}) (rate(botshard_pool_bot_requests_total[5m]))`, legendFormat: `{{${g}}}` }], { unit: 'reqps' });
  add('Shed (503) and deadline (504) share, by pool group', [
    { expr: `sum by (${g}) (rate(botshard_pool_bot_requests_total{outcome="shed"}[5m])) / sum by (${g}) (rate(botshard_pool_bot_requests_total[5m]))`, legendFormat: `{{${g}}} shed` },
    { expr: `sum by (${g}) (rate(botshard_pool_bot_requests_total{outcome="timeout"}[5m])) / sum by (${g}) (rate(botshard_pool_bot_requests_total[5m]))`, legendFormat: `{{${g}}} 504` },
    { expr: `sum by (${g}) (rate(botshard_pool_bot_requests_total{outcome="error"}[5m])) / sum by (${g}) (rate(botshard_pool_bot_requests_total[5m]))`, legendFormat: `{{${g}}} 500` },
  ], { unit: 'percentunit' });
  for (const group of groups) {
    const sel = `${g}="${group.name}",route=~".*(infer|predict)"`;
    add(`Latency of ${group.name} against its ${group.timeoutMs / 1000} s deadline`, [
      { expr: `histogram_quantile(0.5, sum by (le) (rate(botshard_pool_request_seconds_bucket{${sel}}[5m])))`, legendFormat: 'p50' },
      { expr: `histogram_quantile(0.99, sum by (le) (rate(botshard_pool_request_seconds_bucket{${sel}}[5m])))`, legendFormat: 'p99' },
      { expr: `vector(${group.timeoutMs / 1000})`, legendFormat: 'deadline' },
    ], { unit: 's' });
  }
  add('Bots per pool pod, by state', [{ expr: 'sum by (pod, state) (botshard_pool_bots)', legendFormat: '{{pod}} {{state}}' }], { description: 'failed: requests for these bots get 503 until a retry loads them' });
  add('Memory per pool pod against its budget', [
    { expr: `sum by (pod, ${g}) (process_resident_memory_bytes{${g}!=""})`, legendFormat: '{{pod}}' },
    ...groups.map((group) => ({ expr: `vector(${group.memory})`, legendFormat: `${group.name} budget` })),
  ], { unit: 'bytes' });
  // Model rollouts, summed over the pools' replicas (each judges its own traffic; the guards read the same figures per replica).
  const byVersion = (metric: string, sel = '') => `sum by (bot, version) (rate(${metric}${sel}[5m]))`;
  add('Model rollouts', [
    { expr: `${byVersion('botshard_pool_version_fallback_texts_total')} / ${byVersion('botshard_pool_version_texts_total')}`, legendFormat: '{{bot}} {{version}} fallback' },
    { expr: `${byVersion('botshard_pool_version_requests_total', '{outcome="error"}')} / ${byVersion('botshard_pool_version_requests_total')}`, legendFormat: '{{bot}} {{version}} errors' },
    { expr: 'sum by (bot) (rate(botshard_pool_shadow_texts_total{result="agreed"}[5m])) / sum by (bot) (rate(botshard_pool_shadow_texts_total{result=~"agreed|disagreed"}[5m]))', legendFormat: '{{bot}} shadow agreement' },
  ], {
    unit: 'percentunit',
    description: 'Bots with a candidate version, per version (serving, candidate): the fallback rate (texts answered below the bot\'s threshold), the error rate, and for a shadow the agreement (texts where the candidate chose the serving version\'s intent). Summed over pool replicas; botshard status shows them side by side with the guards\' verdict.',
  });
  add('Model rollouts: candidates by state', [{ expr: 'sum by (state) (botshard_pool_candidates)', legendFormat: '{{state}}' }], {
    description: 'Candidate versions per rollout state, summed over pool pods (each replica of a pool holds its own copy of a rollout). rolled-back, failed and refused alert; botshard status names the bots.',
  });
  add('Catalog generation per pool pod', [{ expr: 'max by (pod, generation) (botshard_pool_catalog_generation)', instant: true, format: 'table' as const }], { type: 'table', w: 24 });
  return {
    title: 'botshard',
    uid: 'botshard',
    tags: ['botshard'],
    timezone: 'browser',
    schemaVersion: 39,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    templating: { list: [{ name: 'datasource', type: 'datasource', query: 'prometheus', current: {} }] },
    panels,
  };
}
