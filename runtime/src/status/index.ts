/** What `GET /botshard/status` answers: a pool about itself, the router about every pool of its catalog. */
import { promises as dns } from 'node:dns';
import { RawFigures, addFigures } from './figures';

export { CONTROL_LIVE_PATH, CONTROL_READY_PATH } from './probes';

/**
 * A bot's model rollout as one pool replica sees it (each replica judges its own traffic): its candidate,
 * the rollout's state, and both versions' figures as sums (summed over replicas by `rolloutsOf`).
 */
export interface RolloutStatus {
  bot: string;
  serving: string;
  candidate: string;
  mode: 'shadow' | 'canary';
  share: number;
  /** loading, judging, passing, rolled-back, failed, refused or waiting (see pool/rollout/rollouts.ts). */
  state: string;
  /** When the state last changed. */
  since: string;
  /** Why it failed to load or was refused. */
  error?: string;
  /** The guard it breached: its figure, the limit, the serving version's figure, why, and when. */
  rolledBack?: { guard: string; candidate: number; limit: number; serving?: number; reason: string; at: string };
  figures: { serving: RawFigures; candidate: RawFigures };
}

/** A model's size in bytes: what the catalog declares (`memory`), and what the pool measured when it loaded it. */
export interface ModelSize {
  declared: number;
  measured: number;
}

/**
 * The models a pool holds, declared against measured: summed over the models loaded (each encoder once,
 * candidate versions included), then per bot (its head) and per encoder. The pool's budget counts the
 * declared sizes (placement must stay deterministic); `botshard plan --sizes` suggests sizes from these.
 */
export interface PoolSizes extends ModelSize {
  bots: Array<ModelSize & { bot: string }>;
  encoders: Array<ModelSize & { encoder: string }>;
}

/** One pool's state, as the pool reports it. */
export interface PoolStatus {
  pool: string;
  /** The replica that answered (its host name: the pod's name in Kubernetes). */
  replica?: string;
  ready: boolean;
  /** Catalog generation the pool serves. */
  generation: string | null;
  /** `cold`: in an overcommitted pool, assigned and not resident (loaded on its first request). */
  bots: { loading: number; ready: number; failed: number; leaving: number; cold?: number };
  /** Failed bots and why (the first 50). */
  failed: Array<{ bot: string; error: string }>;
  /**
   * Bots whose new version failed to load while their previous version serves (the first 50): the model
   * file the catalog names, why it failed, since when, and how many loads failed in a row.
   */
  versionsFailed?: Array<{ bot: string; head: string; error: string; since: string; failures: number }>;
  /** Inference requests waiting or running, per worker thread (the quarantine lane last). */
  queue: number[];
  /** Bots with a candidate version, as this replica sees them. */
  rollouts?: RolloutStatus[];
  /** Resident memory of the pool process. */
  memoryBytes: number;
  /** The pool's memory budget from its group, when known. */
  budgetBytes: number | null;
  /** Its models' declared and measured sizes (absent from pools older than these figures). */
  sizes?: PoolSizes;
}

/** The router's view: its own catalog generation, and each pool of it (or why it could not be asked). */
export interface PlatformStatus {
  router: { generation: string; dataPlane: 'node' | 'haproxy' };
  pools: Array<PoolStatus | { pool: string; unreachable: string }>;
  /**
   * Every pool replica's own status, when the router knows where they answer (`--pool-replicas`: in
   * Kubernetes the pools' headless Service): what rollouts are summed over, each replica judging its own traffic.
   */
  replicas?: PoolStatus[];
}

export const STATUS_PATH = '/botshard/status';

/**
 * Where every pool replica answers: the addresses a URL's host resolves to (a headless Service's pod IPs),
 * each on the URL's port; a replica's status names its pool.
 */
export function replicasAt(url: string): () => Promise<string[]> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return async () => {
    const found = await dns.lookup(host, { all: true });
    return found.map((a) => `${u.protocol}//${a.family === 6 ? `[${a.address}]` : a.address}${u.port ? `:${u.port}` : ''}`);
  };
}

/** Asks each replica for its status, all at once (at most `timeoutMs` each); a replica that does not answer is left out. */
async function replicaStatuses(replicas: () => Promise<string[]>, timeoutMs = 2000): Promise<PoolStatus[]> {
  const urls = await replicas().catch(() => [] as string[]);
  const answers = await Promise.all(
    urls.map(async (url) => {
      try {
        const res = await fetch(`${url}${STATUS_PATH}`, { signal: AbortSignal.timeout(timeoutMs) });
        return res.status === 200 ? ((await res.json()) as PoolStatus) : undefined;
      } catch {
        return undefined;
      }
    }),
  );
  return answers.filter((a): a is PoolStatus => a !== undefined).sort((a, b) => (a.pool === b.pool ? ((a.replica ?? '') < (b.replica ?? '') ? -1 : 1) : a.pool < b.pool ? -1 : 1));
}

/** The router's status: its own, each pool's (through its Service), and each replica's when it knows where they answer. */
export async function platformStatus(o: { router: PlatformStatus['router']; pools: readonly string[]; address: (pool: string) => string | undefined; replicas?: () => Promise<string[]> }): Promise<PlatformStatus> {
  const [pools, replicas] = await Promise.all([poolStatuses(o.pools, o.address), o.replicas ? replicaStatuses(o.replicas) : undefined]);
  return { router: o.router, pools, ...(replicas ? { replicas } : {}) };
}

/** Asks every pool for its status, all at once, each answer awaited at most `timeoutMs`. */
async function poolStatuses(pools: readonly string[], address: (pool: string) => string | undefined, timeoutMs = 2000): Promise<PlatformStatus['pools']> {
  return Promise.all(
    [...pools].sort().map(async (pool) => {
      const url = address(pool);
      if (!url) return { pool, unreachable: 'no address yet' };
      try {
        const res = await fetch(`${url}${STATUS_PATH}`, { signal: AbortSignal.timeout(timeoutMs) });
        if (res.status !== 200) return { pool, unreachable: `answered ${res.status}` };
        return (await res.json()) as PoolStatus;
      } catch (e) {
        const err = e as Error & { cause?: { code?: string } };
        return { pool, unreachable: err.cause?.code ?? err.message };
      }
    }),
  );
}

/**
 * Every bot's rollout over the replicas that answered: figures summed; the state of the replica that
 * judged most (a rolled-back one wins: any replica's rollback is the rollout's), with the replicas' count.
 */
export function rolloutsOf(status: PlatformStatus): Array<RolloutStatus & { pool: string; replicas: number }> {
  const byBot = new Map<string, RolloutStatus & { pool: string; replicas: number }>();
  for (const p of status.replicas ?? status.pools) {
    if (!('rollouts' in p) || !p.rollouts) continue;
    for (const r of p.rollouts) {
      const seen = byBot.get(r.bot);
      if (!seen || seen.candidate !== r.candidate) {
        byBot.set(r.bot, { ...r, pool: p.pool, replicas: 1 });
        continue;
      }
      const figures = { serving: addFigures(seen.figures.serving, r.figures.serving), candidate: addFigures(seen.figures.candidate, r.figures.candidate) };
      const wins = r.state === 'rolled-back' && seen.state !== 'rolled-back';
      byBot.set(r.bot, { ...(wins ? { ...r, pool: seen.pool } : seen), figures, replicas: seen.replicas + 1 });
    }
  }
  return [...byBot.values()].sort((a, b) => (a.bot < b.bot ? -1 : 1));
}
