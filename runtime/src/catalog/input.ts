/**
 * The catalog as people write it (`*Input`, in bots.config.ts, through `defineCatalog()`). What the
 * platform reads once it is normalised is in types.ts.
 */

/** A memory size: a Kubernetes quantity string such as `"40Mi"`, `"1.5Gi"`, `"512k"`, or bytes. */
export type MemorySize = string | number;

/** How bots are spread over pools: the three approaches of ARCHITECTURE.md. */
export type Strategy = 'sharded' | 'dedicated' | 'single';

/** How a candidate version runs beside the serving one. */
export type RolloutMode = 'shadow' | 'canary';

/** A free bot property value, matched by pool group selectors. */
export type PropertyValue = string | number | boolean;

export interface PlatformInput {
  /** Kubernetes namespace of the platform. @default "botshard" */
  readonly namespace?: string;
  /** How bots are spread over pools. @default "sharded" */
  readonly strategy?: Strategy;
  /** Folder (relative to the catalog's location, or absolute in the container) that model paths are relative to. @default "models" */
  readonly modelRoot?: string;
  /**
   * Where pools may open connections to fetch models (their NetworkPolicy egress, beside DNS). Pools run
   * customer models and rules: they reach nothing else.
   * @default - HTTPS (443) to any address except the instance metadata service when a model or encoder
   * path is s3:// or https://; nothing when every model comes from the model root
   */
  readonly modelStoreEgress?: readonly ModelStoreEgressInput[];
  /**
   * How the router authenticates callers. `"tenant-keys"`: every request needs an API key of the bot's
   * tenant (hashes in the tenant keys Secret); a router without keys is not ready and refuses every
   * request, it never serves unauthenticated. `"none"`: no authentication (a trusted network only).
   * @default "none"
   */
  readonly auth?: Auth;
  /**
   * What carries requests to the pools in the manifests. `"haproxy"`: HAProxy, driven by botshard's control
   * plane (two containers in the router's pods); `"node"`: the Node router (one container, one image).
   * `bench:router` measured HAProxy at 0.95 of direct throughput, the Node router at 0.51.
   * @default "haproxy"
   */
  readonly router?: RouterKind;
  /**
   * The cluster runs the Prometheus Operator: synthesize PodMonitors for pools and router and a
   * PrometheusRule with botshard's alerts (docs/operations.md), besides the scrape annotations.
   * @default false
   */
  readonly prometheusOperator?: boolean;
}

/** Router authentication: API keys per tenant, or none. */
export type Auth = 'none' | 'tenant-keys';

/** The router's data plane. */
export type RouterKind = 'node' | 'haproxy';

/** An address range pools may reach to fetch models. */
export interface ModelStoreEgressInput {
  /** IPv4 or IPv6 range, e.g. "52.216.0.0/15" (S3 in a region) or "10.0.40.0/24" (a VPC endpoint). */
  readonly cidr: string;
  /** Ranges inside `cidr` that stay closed. @default [] */
  readonly except?: readonly string[];
  /** TCP port. @default 443 */
  readonly port?: number;
}

export interface TenantInput {
  /** DNS-label-safe tenant id, referenced by `bots[].tenant`. */
  readonly id: string;
  /** Display name. @default - the id */
  readonly name?: string;
}

export interface TokenizerInput {
  /** Hashing tokenizer: lower-cased words (and word bigrams) hashed into `buckets` token ids. */
  readonly kind: 'hashing';
  /** Vocabulary size of the encoder's embedding table. */
  readonly buckets: number;
  /** Tokens kept per text. @default 64 */
  readonly maxTokens?: number;
}

/** A shared encoder asset: loaded once per pool however many of its bots use it. */
export interface EncoderInput {
  /** Encoder id, referenced by `bots[].model.encoder`. */
  readonly id: string;
  /** ONNX file: relative to the model root, or an s3://bucket/key or https:// URI. */
  readonly path: string;
  /** SHA-256 of the file (64 hex characters): a download that does not match fails the bots using it. @default - not verified */
  readonly sha256?: string;
  /** Memory the loaded encoder takes in a pool. */
  readonly memory: MemorySize;
  /** Tokenizer that turns text into the encoder's input ids. */
  readonly tokenizer: TokenizerInput;
  /** Width of the embedding the encoder outputs. */
  readonly dimensions: number;
}

export interface IntentInput {
  /** Label the bot's head outputs at this index. */
  readonly name: string;
  /** Example utterances (documentation, demo model training, end-to-end tests). @default [] */
  readonly examples?: readonly string[];
}

export interface RewriteRuleInput {
  /** RE2 pattern (linear time: no backreferences, no lookaround). */
  readonly pattern: string;
  /** Replacement; `$1`, `$<name>` refer to groups. */
  readonly replace: string;
  /** RE2 flags among `i`, `m`, `s`. @default "" */
  readonly flags?: string;
}

export interface EntityRuleInput {
  /** Entity name in the response. */
  readonly name: string;
  /** RE2 pattern; the whole match (or group 1 when present) is the entity value. */
  readonly pattern: string;
  /** RE2 flags among `i`, `m`, `s`. @default "" */
  readonly flags?: string;
}

export interface PostprocessInput {
  /** Below this confidence the fallback intent is answered. @default 0 */
  readonly threshold?: number;
  /** Intent answered below the threshold. @default "fallback" */
  readonly fallback?: string;
  /** Entities extracted from the text. @default [] */
  readonly entities?: readonly EntityRuleInput[];
}

export interface ModelInput {
  /** The bot's own head: ONNX file relative to the model root (or an s3:// or https:// URI). */
  readonly head: string;
  /** SHA-256 of the head file (64 hex characters): a download that does not match fails this bot only. @default - not verified */
  readonly sha256?: string;
  /** Memory the loaded head takes in a pool. */
  readonly memory: MemorySize;
  /** Shared encoder id from `encoders`. @default - the head takes the tokenizer's ids directly (no encoder) */
  readonly encoder?: string;
  /**
   * The version's label: shown in model metadata (`versions`) and every answer's `model_version`, and
   * addressable as `/v2/models/{bot}/versions/{version}`. Letters, digits, ".", "_" and "-". @default "1"
   */
  readonly version?: string;
  /**
   * A new version tried beside this one on live traffic, judged by its guards and rolled back
   * automatically when one is breached. Promote it by making it the model (a catalog edit).
   * @default - none
   */
  readonly candidate?: CandidateInput;
}

/** A new version of a bot's model on trial (see README "Rolling out a new model"). */
export interface CandidateInput {
  /** Its label, other than the serving version's. */
  readonly version: string;
  /** Its head: ONNX file relative to the model root (or an s3:// or https:// URI), with the bot's intents in order. */
  readonly head: string;
  /** SHA-256 of the head file. @default - not verified */
  readonly sha256?: string;
  /** Memory the loaded head takes (loaded into the pool's headroom: placement reads the serving version only). */
  readonly memory: MemorySize;
  /** Shared encoder id from `encoders`. @default - none (the head takes the tokenizer's ids) */
  readonly encoder?: string;
  /**
   * `"shadow"`: requests also run on the candidate after their answer is sent (only when the bot's worker
   * has room; dropped and counted under load), and the two answers are compared. `"canary"`: the candidate
   * answers a share of requests, sticky per conversation key.
   */
  readonly mode: RolloutMode;
  /** Share of requests: copied to a shadow, answered by a canary. From 0 to 1. @default 1 for shadow, 0.1 for canary */
  readonly share?: number;
  /** When the pool rolls the candidate back. @default - see GuardsInput */
  readonly guards?: GuardsInput;
}

/** What rolls a candidate back. Each pool replica judges its own traffic. */
export interface GuardsInput {
  /** Candidate requests seen before it is judged. @default 200 */
  readonly minRequests?: number;
  /** Most requests failing on the candidate, as a share (0.02: 2%). @default 0.02 */
  readonly maxErrorRate?: number;
  /** Most its fallback rate (answers below the bot's threshold) may exceed the serving version's, in percentage points. @default 5 */
  readonly maxFallbackRisePp?: number;
  /** Shadow only: least share of requests where both versions choose the same intent, in percent. @default 90 */
  readonly minAgreementPct?: number;
  /** Most its p99 run time may be, as a multiple of the serving version's. @default 1.5 */
  readonly maxP99Ratio?: number;
  /**
   * A p99 run time at most this many milliseconds above the serving version's never breaches maxP99Ratio:
   * sub-millisecond runs vary by more than 1.5x with the machine's other work alone. @default 5
   */
  readonly p99ToleranceMs?: number;
}

export interface BotInput {
  /** DNS-label-safe id, unique in the catalog, at most 40 characters. */
  readonly id: string;
  /** Tenant id from `tenants`. */
  readonly tenant: string;
  /** Whether the bot answers live traffic (matched by pool group selectors). */
  readonly realtime: boolean;
  /** Free properties (language, model family, tier...), matched by pool group selectors. @default {} */
  readonly properties?: Readonly<Record<string, PropertyValue>>;
  readonly model: ModelInput;
  /** The head's labels, in output order. */
  readonly intents: readonly IntentInput[];
  /** Rewrites applied to the text before tokenizing, in order. @default [] */
  readonly preprocess?: readonly RewriteRuleInput[];
  /** @default - threshold 0, fallback "fallback", no entities */
  readonly postprocess?: PostprocessInput;
  /** Name of a dedicated pool (from a group's `dedicatedPools`) that must hold this bot. @default - placed by hashing */
  readonly pin?: string;
  /**
   * In a group with `overcommit`: loaded when the pool starts (the pool is ready once its warm bots are),
   * not on its first request. Pinned bots are warm too. @default false
   */
  readonly warm?: boolean;
}

export interface SelectorInput {
  /** Bots whose `realtime` equals this. @default - any */
  readonly realtime?: boolean;
  /** Bots whose properties equal these (an array: any of its values). @default - any */
  readonly properties?: Readonly<Record<string, PropertyValue | readonly PropertyValue[]>>;
}

/** What bots sharing a key have in common, so that they rank pools alike and land together. */
export type LocalityInput = 'none' | 'encoder' | { readonly property: string };

export interface ReplicasInput {
  /** @default 2 for real-time groups, 1 otherwise */
  readonly min?: number;
  /** @default 10 for real-time groups, 4 otherwise */
  readonly max?: number;
}

export interface TolerationInput {
  readonly key: string;
  readonly operator?: 'Equal' | 'Exists';
  readonly value?: string;
  readonly effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

export interface PoolGroupInput {
  /** DNS-label-safe name, at most 20 characters; pools are named `<name>-<suffix>`. */
  readonly name: string;
  /** Latency class: real-time groups get tight timeouts and at least 2 replicas. */
  readonly realtime: boolean;
  /** Which bots the group takes; the first group whose selector matches a bot takes it. @default - `{ realtime: <the group's realtime> }` */
  readonly selector?: SelectorInput;
  /** Number of pools, or the fewest that fit the memory budget at the fill factor. @default "auto" */
  readonly pools?: number | 'auto';
  /** Memory budget of one pool (its container's memory request and limit). */
  readonly memory: MemorySize;
  /** Average share of a pool's budget that `auto` plans to use; the rest absorbs hashing imbalance. @default 0.75 */
  readonly fillFactor?: number;
  /** Memory of an idle pool process (Node, server, onnxruntime), counted once per pool. @default "160Mi" */
  readonly poolOverhead?: MemorySize;
  /** Co-location key for bots of this group. @default "encoder" */
  readonly locality?: LocalityInput;
  /** Names of dedicated pools that take only the bots pinned to them. @default [] */
  readonly dedicatedPools?: readonly string[];
  readonly replicas?: ReplicasInput;
  /** Target average CPU utilisation for the autoscaler, in percent. @default 70 */
  readonly targetCpuPercent?: number;
  /** Request timeout at the router and the pool, in milliseconds. @default 2000 for real-time, 60000 otherwise */
  readonly timeoutMs?: number;
  /** Concurrent inferences per pool replica. @default 32 for real-time, 8 otherwise */
  readonly concurrency?: number;
  /**
   * A bot whose average run takes more than this share of `timeoutMs` is confined to a lane of its own
   * (one extra inference thread in its pool) until its runs are under half of that again, so that it
   * cannot hold up the bots it shares a worker with. @default 0.1 (200 ms for a real-time group's 2 s)
   */
  readonly quarantineShare?: number;
  /**
   * How long the next message to a busy worker may wait for more requests, so that requests of bots
   * sharing an encoder go through it as one batch (an idle worker never waits). A request waits at most this long.
   * @default 0 for real-time groups (batch only what is already waiting), 2 otherwise
   */
  readonly batchWindowMs?: number;
  /** Most texts in one batch (1: no batching across requests). @default 32 */
  readonly batchMaxRows?: number;
  /**
   * Cold bots load on demand: placement gives each pool up to this many times its memory in bots, and
   * the pool keeps a resident set within its real memory (at the fill factor), loading a bot on its
   * first request and evicting the bot asked least lately when it needs room. Warm and pinned bots load at
   * start. E.g. 3 for a catalog where most bots are idle for hours. @default - off (every bot resident)
   */
  readonly overcommit?: number;
  /** Kubernetes PriorityClass of the group's pods. @default - none */
  readonly priorityClassName?: string;
  /** @default [] */
  readonly tolerations?: readonly TolerationInput[];
  /** @default {} */
  readonly nodeSelector?: Readonly<Record<string, string>>;
}

/** What `bots.config.ts` exports through `defineCatalog()`. */
export interface CatalogInput {
  readonly platform?: PlatformInput;
  readonly tenants: readonly TenantInput[];
  /** @default [] */
  readonly encoders?: readonly EncoderInput[];
  readonly groups: readonly PoolGroupInput[];
  readonly bots: readonly BotInput[];
}
