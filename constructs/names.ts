/**
 * Kubernetes naming rules, checked on every name and label the constructs generate, and the
 * `app.kubernetes.io/*` labels that selectors are built from (explicit, never derived from a construct path).
 */
import { DNS_LABEL } from '@botshard/runtime';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** What a Kubernetes name must be: which rule applies depends on the kind. */
export type NameRule = 'dns-1123-label' | 'dns-1035-label' | 'dns-1123-subdomain';

/** A generated name or label that Kubernetes would reject. The message names the value and the fix. */
export class InvalidNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidNameError';
  }
}

/** Why `value` breaks `rule`, or undefined when it is valid. */
export function nameProblem(value: string, rule: NameRule): string | undefined {
  const max = rule === 'dns-1123-subdomain' ? 253 : 63;
  if (value.length === 0) return 'is empty';
  if (value.length > max) return `is ${value.length} characters long, more than the ${max} a ${rule} name may have`;
  const re = rule === 'dns-1123-subdomain' ? DNS1123_SUBDOMAIN : rule === 'dns-1035-label' ? DNS_LABEL : DNS1123_LABEL;
  if (!re.test(value)) {
    return rule === 'dns-1035-label'
      ? 'is not a DNS-1035 label (lower-case letters, digits and "-", starting with a letter, ending with a letter or digit)'
      : `is not a ${rule} name (lower-case letters, digits and "-"${rule === 'dns-1123-subdomain' ? ' and "."' : ''}, starting and ending with a letter or digit)`;
  }
  return undefined;
}

/** Throws an InvalidNameError when `value` breaks `rule`; `what` says which name it is, `fix` how to repair it. */
export function checkName(value: string, rule: NameRule, what: string, fix: string): string {
  const problem = nameProblem(value, rule);
  if (problem) throw new InvalidNameError(`${what} ${JSON.stringify(value)} ${problem}: ${fix}`);
  return value;
}

/** Why a label key/value pair is invalid, or undefined when Kubernetes accepts it. */
export function labelProblem(key: string, value: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && nameProblem(prefix, 'dns-1123-subdomain')) return `label key ${JSON.stringify(key)} has an invalid prefix (a DNS subdomain of at most 253 characters)`;
  if (name.length > 63 || !LABEL_NAME.test(name)) return `label key ${JSON.stringify(key)} has an invalid name (at most 63 letters, digits, "-", "_", "." starting and ending with a letter or digit)`;
  if (value.length > 63) return `label ${key} value ${JSON.stringify(value)} is ${value.length} characters long, more than 63`;
  if (!LABEL_VALUE.test(value)) return `label ${key} value ${JSON.stringify(value)} is invalid (letters, digits, "-", "_", "." starting and ending with a letter or digit)`;
  return undefined;
}

/** Throws when any label is invalid; returns the labels. */
export function checkLabels(labels: Readonly<Record<string, string>>, what: string): Record<string, string> {
  for (const [key, value] of Object.entries(labels)) {
    const problem = labelProblem(key, value);
    if (problem) throw new InvalidNameError(`${what}: ${problem}: shorten or rename the value it comes from`);
  }
  return { ...labels };
}

/** The name rule of a kind's `metadata.name` (Services are DNS-1035 labels; namespaces DNS-1123 labels). */
export function nameRuleOf(kind: string): NameRule {
  if (kind === 'Service') return 'dns-1035-label';
  if (kind === 'Namespace') return 'dns-1123-label';
  return 'dns-1123-subdomain';
}

export const LABEL_NAME_KEY = 'app.kubernetes.io/name';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
export const LABEL_PART_OF = 'app.kubernetes.io/part-of';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_VERSION = 'app.kubernetes.io/version';
export const LABEL_POOL_GROUP = 'botshard.io/pool-group';
export const LABEL_GENERATION = 'botshard.io/catalog-generation';

/** The application name in `app.kubernetes.io/name` on every object. */
export const APP_NAME = 'botshard';

/** What a workload is within the platform. */
export type Component = 'pool' | 'router' | 'catalog' | 'platform';

/**
 * The selector labels of one workload: fixed by platform, component and instance name, so renaming or
 * moving a construct never changes a selector (selectors of a Deployment are immutable).
 */
export function selectorLabels(platform: string, component: Component, instance: string): Record<string, string> {
  return checkLabels(
    { [LABEL_NAME_KEY]: APP_NAME, [LABEL_PART_OF]: platform, [LABEL_COMPONENT]: component, [LABEL_INSTANCE]: instance },
    `selector of ${component} "${instance}"`,
  );
}

/** Selector labels plus the informational ones (`managed-by`, extra labels such as the pool group). */
export function objectLabels(platform: string, component: Component, instance: string, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return checkLabels(
    { ...selectorLabels(platform, component, instance), [LABEL_MANAGED_BY]: 'cdk8s', ...extra },
    `labels of ${component} "${instance}"`,
  );
}
