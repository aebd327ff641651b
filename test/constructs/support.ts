import { App, Chart, Testing } from 'cdk8s';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { PriorityClass } from 'kubernetes-models/scheduling.k8s.io/v1/PriorityClass';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import exampleInput from '../../bots.config';
import { BotPlatformProps, buildPlatformApp } from '../../constructs/index';

/** A synthesized Kubernetes object, as plain JSON. */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any };

/** The example catalog of bots.config.ts, as a fresh deep copy (mutate freely). */
export function exampleCatalogInput(): any {
  return JSON.parse(JSON.stringify(exampleInput));
}

/** Every chart of an app, synthesized: chart id -> objects. */
export function synthCharts(app: App): Map<string, K8sObject[]> {
  return new Map(app.charts.map((c: Chart) => [c.node.id, Testing.synth(c) as K8sObject[]]));
}

/** Builds and synthesizes a catalog input. */
export function synthInput(input: unknown, props: Omit<BotPlatformProps, 'catalog'> = {}) {
  const built = buildPlatformApp(input, props, { outdir: Testing.app().outdir });
  const charts = synthCharts(built.app);
  return { ...built, charts, objects: [...charts.values()].flat() };
}

const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'scheduling.k8s.io/v1/PriorityClass': PriorityClass,
  // The Prometheus Operator's CRDs (their schemas from @kubernetes-models/prometheus-operator).
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

/** Validates an object against its Kubernetes schema (kubernetes-models v4); throws on an unknown kind. */
export function validateSchema(obj: K8sObject): void {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

export const ofKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
/** The catalog's ConfigMaps (not the dashboard's). */
export const catalogMaps = (objects: K8sObject[]) => ofKind(objects, 'ConfigMap').filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'catalog');
