/** The router's gRPC connections to pools: HTTP/2 sessions of `node:http2`, kept open and spread over. */
import * as http2 from 'node:http2';

/** How often an idle session is pinged; one that has not answered by the next ping is dropped. */
const PING_MS = 30_000;
/** How long the sessions of a replaced or dropped pool stay open, so calls already on them finish. */
const RETIRE_MS = 60_000;

const SESSION_OPTIONS: http2.ClientSessionOptions = {
  // Node's default (10 MB) refuses new streams once a few large messages are buffered; a session carries
  // messages of up to 64 MiB (grpc-call.ts MAX_ANSWER_BYTES), a few at once.
  maxSessionMemory: 256,
  // A pool's answer carries a few short headers; the status details are the longest.
  settings: { enablePush: false, maxHeaderListSize: 64 * 1024 },
};

/**
 * A few HTTP/2 connections per pool address, calls spread over them in turn: one connection carries every
 * call on one socket, and under load it is the limit (a bare grpc-js server answers ~1.6x more calls over 4
 * connections than over 1). Replaced when a pool's address changes, dropped when it leaves the catalog;
 * old connections close after a minute, so calls already on them finish.
 */
export class PoolChannels {
  private readonly pools = new Map<string, { address: string; clients: PoolClient[]; next: number }>();

  constructor(private readonly perPool = 4) {}

  /** The pool's next connection, for one call. */
  client(pool: string, address: string): PoolClient {
    let known = this.pools.get(pool);
    if (known?.address !== address) {
      if (known) retire(known.clients);
      known = { address, clients: Array.from({ length: this.perPool }, () => new PoolClient(address)), next: 0 };
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

  /** Closes every connection; calls already on them finish. */
  close(): void {
    for (const { clients } of this.pools.values()) for (const c of clients) c.close();
    this.pools.clear();
  }
}

/** An open session and what its keep-alive reads. */
interface Live {
  session: http2.ClientHttp2Session;
  /** Streams open on it now: while there are some, it keeps the process running. */
  open: number;
  /** Streams opened on it so far, and how many the last keep-alive tick saw (busy since: no ping). */
  opened: number;
  seen: number;
  /** A ping is unanswered. */
  pinging: boolean;
  timer: NodeJS.Timeout;
}

/**
 * One HTTP/2 connection to a pool: its session, opened on first use and again after it ends (an error, a
 * close, or the pool's GOAWAY: pools ask clients to reconnect at their max connection age).
 */
export class PoolClient {
  private live?: Live;
  private closed = false;

  constructor(readonly address: string) {}

  /**
   * Opens a stream on the session (opened first if there is none) with these request headers. Throws when
   * the session cannot take it (ended: the next call opens a new one) or this client is closed.
   */
  request(headers: http2.OutgoingHttpHeaders): http2.ClientHttp2Stream {
    const live = this.session();
    let stream: http2.ClientHttp2Stream;
    try {
      stream = live.session.request(headers);
    } catch (e) {
      if (live.session.closed || live.session.destroyed) this.drop(live);
      throw e;
    }
    live.opened++;
    if (live.open++ === 0) live.session.ref();
    stream.once('close', () => {
      if (--live.open === 0 && !live.session.destroyed) live.session.unref();
    });
    return stream;
  }

  /** Closes the session once its streams are done; no new one opens. */
  close(): void {
    this.closed = true;
    const live = this.live;
    if (!live) return;
    this.drop(live);
    live.session.close();
  }

  private session(): Live {
    if (this.live) return this.live;
    if (this.closed) throw new Error(`the connection to ${this.address} is closed`);
    const session = http2.connect(`http://${this.address}`, SESSION_OPTIONS);
    const live: Live = { session, open: 0, opened: 0, seen: 0, pinging: false, timer: setInterval(() => this.ping(live), PING_MS).unref() };
    // An ended session is not used again: its streams end with it (or, after a GOAWAY, finish on it).
    const drop = () => this.drop(live);
    session.on('error', drop);
    session.on('close', drop);
    session.on('goaway', drop);
    session.unref();
    this.live = live;
    return live;
  }

  private drop(live: Live): void {
    clearInterval(live.timer);
    if (this.live === live) this.live = undefined;
  }

  /**
   * Keep-alive: a ping when no call started since the last tick; no answer by the next one ends the session,
   * as does a connection still not made.
   */
  private ping(live: Live): void {
    if (live.session.connecting) return live.session.destroy(new Error(`could not connect to ${this.address} in ${PING_MS} ms`));
    if (live.opened !== live.seen) {
      live.seen = live.opened;
      return;
    }
    if (live.pinging) return live.session.destroy(new Error(`${this.address} did not answer a keep-alive ping in ${PING_MS} ms`));
    live.pinging = true;
    try {
      live.session.ping(() => (live.pinging = false));
    } catch (e) {
      live.session.destroy(e as Error);
    }
  }
}

function retire(clients: PoolClient[]): void {
  setTimeout(() => clients.forEach((c) => c.close()), RETIRE_MS).unref();
}
