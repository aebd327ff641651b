/**
 * The catalog as the platform reads it, normalised: defaults filled, memory in bytes, sorted, with
 * `apiVersion` and `generation`. What the ConfigMaps hold and pools and router read. The form people
 * write is in input.ts.
 */
import { PropertyValue, RolloutMode, RouterKind, Strategy } from './input';

export const CATALOG_API_VERSION = 'botshard.io/v1alpha1';

export interface Platform {
  namespace: string;
  strategy: Strategy;
  modelRoot: string;
  /** Present only when the catalog sets it (constructs fill the default). */
  modelStoreEgress?: ModelStoreEgress[];
  /** Present only when authentication is on (absent: "none", so existing generations keep their hash). */
  auth?: 'tenant-keys';
  /** Present only when the catalog sets it (constructs fill the default). */
  router?: RouterKind;
  /** Present only when on. */
  prometheusOperator?: true;
}
export interface ModelStoreEgress {
  cidr: string;
  except: string[];
  port: number;
}
export interface Tenant {
  id: string;
  name: string;
}
export interface Tokenizer {
  kind: 'hashing';
  buckets: number;
  maxTokens: number;
}
export interface Encoder {
  id: string;
  path: string;
  /** Lower-case hex SHA-256 of the file, when the catalog gives one. */
  sha256?: string;
  memory: number;
  tokenizer: Tokenizer;
  dimensions: number;
}
export interface Intent {
  name: string;
  examples: string[];
}
export interface RewriteRule {
  pattern: string;
  replace: string;
  flags: string;
}
export interface EntityRule {
  name: string;
  pattern: string;
  flags: string;
}
export interface Postprocess {
  threshold: number;
  fallback: string;
  entities: EntityRule[];
}
export interface Model {
  head: string;
  /** Lower-case hex SHA-256 of the head file, when the catalog gives one. */
  sha256?: string;
  memory: number;
  encoder?: string;
  /** The version label, when the catalog gives one (absent: "1", so existing generations keep their hash). */
  version?: string;
  /** A new version tried beside this one on live traffic (see Candidate). */
  candidate?: Candidate;
}
/** When a candidate is rolled back: every field filled (catalog/defaults.ts has the defaults). */
export interface Guards {
  minRequests: number;
  maxErrorRate: number;
  maxFallbackRisePp: number;
  minAgreementPct: number;
  maxP99Ratio: number;
  p99ToleranceMs: number;
}
/** A bot's new version on trial: its own head (and encoder), judged against the serving version. */
export interface Candidate {
  version: string;
  head: string;
  sha256?: string;
  memory: number;
  encoder?: string;
  mode: RolloutMode;
  /** Share of the bot's requests it runs on (shadow) or answers (canary), from 0 to 1. */
  share: number;
  guards: Guards;
}
export interface Bot {
  id: string;
  tenant: string;
  realtime: boolean;
  properties: Record<string, PropertyValue>;
  model: Model;
  intents: Intent[];
  preprocess: RewriteRule[];
  postprocess: Postprocess;
  pin?: string;
  /** Only when true. */
  warm?: true;
}
export interface Selector {
  realtime?: boolean;
  properties: Record<string, PropertyValue[]>;
}
export type Locality = 'none' | 'encoder' | { property: string };
export interface Toleration {
  key: string;
  operator: 'Equal' | 'Exists';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}
export interface PoolGroup {
  name: string;
  realtime: boolean;
  selector: Selector;
  pools: number | 'auto';
  memory: number;
  fillFactor: number;
  poolOverhead: number;
  locality: Locality;
  dedicatedPools: string[];
  replicas: { min: number; max: number };
  targetCpuPercent: number;
  timeoutMs: number;
  concurrency: number;
  quarantineShare: number;
  batchWindowMs: number;
  batchMaxRows: number;
  /** Only when set in the config: cold bots load on demand (see PoolGroupInput.overcommit). */
  overcommit?: number;
  priorityClassName?: string;
  tolerations: Toleration[];
  nodeSelector: Record<string, string>;
}

/**
 * What placement and routing read of a bot, and all the compact placement index carries of it (with
 * where its full definition is). A Bot is one.
 */
export interface IndexBot {
  id: string;
  tenant: string;
  realtime: boolean;
  /** In the index: only the properties that pool group selectors or localities read. */
  properties: Record<string, PropertyValue>;
  model: { memory: number; encoder?: string };
  pin?: string;
}

/** A catalog as placement and routing see it: every setting, each bot as an IndexBot. A Catalog is one. */
export interface CatalogIndex extends Omit<Catalog, 'bots'> {
  bots: IndexBot[];
}

/**
 * The normalised catalog. `generation` is the hash of everything else, in canonical form. Read it, never
 * edit it in place: bots share what they hold alike (empty lists, intents of a name and no examples and
 * lists of them), frozen, so that bots do not each hold a copy (edit the input and normalise again).
 */
export interface Catalog {
  apiVersion: typeof CATALOG_API_VERSION;
  kind: 'Catalog';
  generation: string;
  platform: Platform;
  tenants: Tenant[];
  encoders: Encoder[];
  groups: PoolGroup[];
  bots: Bot[];
}
