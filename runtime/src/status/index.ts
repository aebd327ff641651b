/** What `GET /botshard/status` answers: a pool about itself, the router about every pool of its catalog. */

/** One pool's state, as the pool reports it. */
export interface PoolStatus {
  pool: string;
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
  /** Resident memory of the pool process. */
  memoryBytes: number;
  /** The pool's memory budget from its group, when known. */
  budgetBytes: number | null;
}

/** The router's view: its own catalog generation, and each pool of it (or why it could not be asked). */
export interface PlatformStatus {
  router: { generation: string; dataPlane: 'node' | 'haproxy' };
  pools: Array<PoolStatus | { pool: string; unreachable: string }>;
}

export const STATUS_PATH = '/botshard/status';

/** Asks every pool for its status, all at once, each answer awaited at most `timeoutMs`. */
export async function poolStatuses(pools: readonly string[], address: (pool: string) => string | undefined, timeoutMs = 2000): Promise<PlatformStatus['pools']> {
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
