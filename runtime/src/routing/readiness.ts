/**
 * When a router is ready (`GET /v2/health/ready`, gRPC ServerReady): the rule both data planes answer by,
 * and how the Node router tells that a pool can be reached.
 */
import * as dns from 'node:dns';
import * as net from 'node:net';
import type { PoolAddress } from './addresses';

/**
 * Ready: not draining, every pool of the current catalog generation reachable (`allRoutable`, asked only
 * when not draining: the Node router's check starts host name lookups), and API keys in place when the
 * catalog asks for them (`keys`: how many the router holds).
 */
export function routerReady(s: { draining: boolean; allRoutable(): boolean; keysRequired: boolean; keys: number }): boolean {
  return !s.draining && s.allRoutable() && (!s.keysRequired || s.keys > 0);
}

/**
 * Whether the Node router can route every bot of its catalog: each pool of the current generation has an
 * address (local mode: the pool has bound its port) and the address's host name resolves (a cluster:
 * the pool's Service exists). A host that resolved once is not looked up again. (The HAProxy control plane
 * asks HAProxy instead: a pool is reachable once its server passed a health check.)
 */
export type HostLookup = (host: string) => Promise<unknown>;

export class PoolAddresses {
  private readonly resolved = new Set<string>();
  private readonly resolving = new Set<string>();

  constructor(
    private readonly address: PoolAddress,
    private readonly lookup: HostLookup = (host) => dns.promises.lookup(host),
  ) {}

  /** The pools a request cannot reach yet; starts resolving host names not seen before. */
  unroutable(pools: Iterable<string>): string[] {
    const waiting: string[] = [];
    for (const pool of pools) {
      const origin = this.address(pool);
      if (!origin) {
        waiting.push(pool);
        continue;
      }
      const host = new URL(origin).hostname.replace(/^\[|\]$/g, '');
      if (net.isIP(host) !== 0 || this.resolved.has(host)) continue;
      waiting.push(pool);
      if (this.resolving.has(host)) continue;
      this.resolving.add(host);
      this.lookup(host).then(
        () => this.resolved.add(host),
        () => undefined,
      ).finally(() => this.resolving.delete(host));
    }
    return waiting;
  }
}

/** The state a pool reports for a bot (`GET /v2/models/{bot}/ready`), or undefined when it cannot be asked. */
export async function botState(url: string, bot: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${url}/v2/models/${bot}/ready`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { ready?: boolean; state?: string };
    return body.ready ? 'ready' : body.state;
  } catch {
    return undefined;
  }
}
