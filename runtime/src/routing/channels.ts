/** The router's gRPC connections to pools. */
import * as grpc from '@grpc/grpc-js';

/**
 * A few HTTP/2 connections per pool address, calls spread over them in turn: one connection carries every
 * call on one socket, and under load it is the limit (a bare grpc-js server answers ~1.6x more calls over 4
 * connections than over 1). Replaced when a pool's address changes, dropped when it leaves the catalog;
 * old connections close after a minute, so calls already on them finish.
 */
export class PoolChannels {
  private readonly pools = new Map<string, { address: string; clients: grpc.Client[]; next: number }>();

  constructor(private readonly perPool = 4) {}

  client(pool: string, address: string): grpc.Client {
    let known = this.pools.get(pool);
    if (known?.address !== address) {
      if (known) retire(known.clients);
      known = { address, clients: Array.from({ length: this.perPool }, () => this.open(address)), next: 0 };
      this.pools.set(pool, known);
    }
    known.next = (known.next + 1) % known.clients.length;
    return known.clients[known.next];
  }

  /** Drops the connections of pools not in `pools` (the current catalog's). */
  retain(pools: ReadonlySet<string>): void {
    for (const [pool, known] of this.pools) {
      if (pools.has(pool)) continue;
      retire(known.clients);
      this.pools.delete(pool);
    }
  }

  close(): void {
    for (const { clients } of this.pools.values()) for (const c of clients) c.close();
    this.pools.clear();
  }

  private open(address: string): grpc.Client {
    return new grpc.Client(address, grpc.credentials.createInsecure(), {
      // Its own connection (grpc-js shares one per address between channels otherwise).
      'grpc.use_local_subchannel_pool': 1,
      // channelz (grpc's introspection) is not served. grpc-js's retries stay on: they make a call that
      // meets a pool's GOAWAY (max_connection_age) go again on a new connection instead of failing.
      'grpc.enable_channelz': 0,
      // Keep idle connections open and notice dead ones: a ping every 30 s, even without calls.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
  }
}

function retire(clients: grpc.Client[]): void {
  setTimeout(() => clients.forEach((c) => c.close()), 60_000).unref();
}
