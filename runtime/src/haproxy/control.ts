/**
 * The control plane of the router's HAProxy mode: it plans each catalog generation with the same
 * placement as the pools and the Node router, and keeps HAProxy's maps equal to it. A bot that moves
 * to another pool keeps going to its old pool (which keeps it for a grace period) until its new pool
 * reports it ready, then its map entry flips: make-before-break, so a rebalance loses no request.
 * Only a change of the set of pools, or of their addresses, rewrites the configuration and reloads.
 */
import * as net from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { CatalogIndex, PoolGroup } from '../catalog';
import { MOVE_GRACE_MS } from '../catalog/defaults';
import { writeAtomic } from '../io/atomic-write';
import type { PoolAddress } from '../routing/addresses';
import { poolConcurrency } from '../routing/limits';
import { botState, routerReady } from '../routing/readiness';
import { RoutingTable } from '../routing/table';
import { TenantKeys, keysRequired } from '../routing/tenants';
import type { Log } from '../serve/process';
import { API_TIMEOUT_MS, HaproxyApi, mapText } from './api';
import { Health, Heartbeat } from './heartbeat';
import { Backend, ConfigInput, files, renderConfig, serverAddress } from './config';
import { grpcBackendOf, grpcServerAddress } from './grpc-config';

export interface ControlOptions {
  catalog: CatalogIndex;
  address: PoolAddress;
  /** Where each pool answers gRPC (`host:port`). */
  grpcAddress: PoolAddress;
  /** Everything of the configuration but the backends. */
  config: Omit<ConfigInput, 'backends' | 'auth'>;
  keys?: TenantKeys;
  /** Makes HAProxy read its configuration again (the maps' files too); resolves once the new one serves. */
  reload(): Promise<void>;
  log: Log;
  /** How often moves waiting for their new pool are checked. @default 250 */
  checkMs?: number;
  /** A move flips after this long even if the new pool never reports the bot ready (its old pool drops it by then). @default MOVE_GRACE_MS */
  moveTimeoutMs?: number;
}

/** The control plane's own metrics (HAProxy's exporter has the requests). */
export class ControlMetrics {
  readonly registry = new Registry();
  readonly generation = new Gauge({ name: 'botshard_haproxy_catalog_generation_info', help: 'Catalog generation in HAProxy\'s maps (value 1)', labelNames: ['generation'], registers: [this.registry] });
  readonly catalogReloads = new Counter({ name: 'botshard_haproxy_catalog_reloads_total', help: 'Catalog changes seen, by result (applied, invalid: kept the current one)', labelNames: ['result'], registers: [this.registry] });
  readonly mapUpdates = new Counter({ name: 'botshard_haproxy_map_updates_total', help: 'Changes sent to HAProxy\'s maps through the Runtime API, by map', labelNames: ['map'], registers: [this.registry] });
  readonly moves = new Counter({ name: 'botshard_haproxy_moves_total', help: 'Bots whose route flipped to a new pool, by why (ready: the new pool has it; timeout: it never said so)', labelNames: ['reason'], registers: [this.registry] });
  readonly pendingMoves = new Gauge({ name: 'botshard_haproxy_pending_moves', help: 'Bots still routed to their old pool while the new one loads them', registers: [this.registry] });
  readonly reloads = new Counter({ name: 'botshard_haproxy_config_reloads_total', help: 'HAProxy configuration reloads (the pools or their addresses changed)', registers: [this.registry] });
  readonly ready = new Gauge({ name: 'botshard_haproxy_ready', help: '1 when every pool of the catalog has an address and HAProxy\'s maps are in place', registers: [this.registry] });
}

interface Move {
  to: string;
  since: number;
}

export class HaproxyControl {
  readonly metrics = new ControlMetrics();
  readonly api: HaproxyApi;
  private readonly table: RoutingTable;
  private readonly f: ReturnType<typeof files>;
  /** What HAProxy's bots map holds: bot -> pool. */
  private readonly routes = new Map<string, string>();
  /** Bots routed to their old pool while their new one loads them. */
  private readonly moves = new Map<string, Move>();
  /** The group of every pool a route may name (current and earlier generations' pools still in use). */
  private readonly groupOf = new Map<string, PoolGroup>();
  /** The configuration HAProxy runs, without the pools' addresses (those change through the Runtime API). */
  private shape = '';
  /** The addresses HAProxy has for each pool: REST and gRPC. */
  private readonly addressed = new Map<string, Pick<Backend, 'url' | 'grpc'>>();
  /** Pools whose server HAProxy has seen up since it got their address: until all have, the router is not ready. */
  private readonly seenUp = new Set<string>();
  private timer?: NodeJS.Timeout;
  private syncing: Promise<void> = Promise.resolve();
  private draining = false;
  /** What each of the owners, keys and state maps held when last pushed (owners: by catalog generation). */
  private readonly pushed = new Map<string, string>();
  /** The generation the routes were last updated for: updating walks every bot, so once per generation. */
  private routedGeneration?: string;
  /** The passes' heartbeat: what the control container's probes read. */
  private readonly heartbeat = new Heartbeat();
  /** When HAProxy last answered the heartbeat's question. */
  private answeredAt = -Infinity;

  constructor(private readonly o: ControlOptions) {
    this.table = new RoutingTable(o.catalog);
    this.f = files(o.config.dir);
    this.api = new HaproxyApi(this.f.socket);
    this.rememberGroups();
  }

  get generation(): string {
    return this.table.generation;
  }

  get catalog(): CatalogIndex {
    return this.table.catalog;
  }

  /** The pools of the current generation. */
  pools(): string[] {
    return [...this.table.pools()];
  }

  /** Writes the configuration and the maps' files for HAProxy's first start. */
  prepare(): string {
    for (const bot of this.table.catalog.bots) this.routes.set(bot.id, this.table.route(bot.id)!.pool);
    this.routedGeneration = this.generation;
    this.writeConfig();
    this.writeMaps();
    return this.f.config;
  }

  /** Keeps HAProxy in line from now on: moves, pool addresses, keys. */
  start(): void {
    this.metrics.generation.set({ generation: this.generation }, 1);
    this.timer = setInterval(() => void this.sync(), this.o.checkMs ?? 250);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Reports not ready from now on (SIGTERM). */
  drain(): Promise<void> {
    this.draining = true;
    return this.sync();
  }

  /** Applies a new catalog generation; throws (keeping the current one) if it cannot be placed. */
  update(catalog: CatalogIndex): Promise<void> {
    this.table.update(catalog);
    this.rememberGroups();
    this.metrics.generation.reset();
    this.metrics.generation.set({ generation: catalog.generation }, 1);
    return this.sync();
  }

  /** One pass (never two at once): the configuration if the pools changed, then routes, keys and state. */
  sync(): Promise<void> {
    this.syncing = this.syncing
      .then(() => this.pass())
      .then(
        () => this.heartbeat.applied(this.generation),
        (err: Error) => {
          this.heartbeat.failed(err.message);
          this.o.log.error({ err: err.message }, 'HAProxy could not be updated: retrying');
        },
      );
    return this.syncing;
  }

  /** The control container's probes (see Heartbeat). */
  health(staleMs = Math.max(5000, 20 * (this.o.checkMs ?? 250))): Health {
    return this.heartbeat.health({ generation: this.generation, running: this.timer !== undefined, staleMs, apiTimeoutMs: API_TIMEOUT_MS });
  }

  private async pass(): Promise<void> {
    const started = performance.now();
    const routesChanged = this.routedGeneration !== this.generation && this.updateRoutes();
    const routed = () => this.o.log.info({ generation: this.generation, bots: this.routes.size, ms: Math.round(performance.now() - started) }, 'HAProxy routes the catalog generation');
    const backends = this.backends();
    if (this.render(backends, false) !== this.shape || !(await this.readdress(backends))) {
      this.writeMaps();
      this.writeConfig();
      await this.o.reload();
      this.metrics.reloads.inc();
      this.o.log.info({ backends: backends.length }, 'HAProxy configuration reloaded: the pools changed');
      if (routesChanged) routed();
      return;
    }
    if (routesChanged) {
      await this.push('bots', this.f.bots, this.routes);
      routed();
    }
    await this.flipReadyMoves();
    await this.noteServersUp();
    await this.pushIfChanged();
    // Passes with nothing to change still ask HAProxy, once a second: the heartbeat says it answers.
    if (performance.now() - this.answeredAt >= 1000) {
      if (!(await this.api.alive())) throw new Error(`HAProxy's Runtime API (${this.api.socket}) does not answer`);
      this.answeredAt = performance.now();
    }
  }

  private writeConfig(): void {
    const backends = this.backends();
    writeAtomic(this.f.config, this.render(backends, true));
    this.shape = this.render(backends, false);
    for (const b of backends) this.addressed.set(b.pool, { url: b.url, grpc: b.grpc });
  }

  /**
   * Points pools' servers at addresses that changed (a local pool that started, or restarted on another
   * port), without a reload: REST and gRPC each. False when one cannot be changed that way (a host name: only
   * IPs can; or a change of TLS).
   */
  private async readdress(backends: Backend[]): Promise<boolean> {
    for (const b of backends) {
      const had = this.addressed.get(b.pool) ?? {};
      const rest = b.url !== undefined && b.url !== had.url ? serverAddress(b.url) : undefined;
      const grpc = b.grpc !== undefined && b.grpc !== had.grpc ? grpcServerAddress(b.grpc) : undefined;
      if (!rest && !grpc) continue;
      if (rest && (net.isIP(rest.host) === 0 || rest.tls !== (had.url ? serverAddress(had.url).tls : false))) return false;
      if (grpc && net.isIP(grpc.host) === 0) return false;
      if (rest) await this.setServer(b.pool, b.pool, rest);
      if (grpc) await this.setServer(grpcBackendOf(b.pool), b.pool, grpc);
      this.addressed.set(b.pool, { url: b.url, grpc: b.grpc });
      if (rest) this.seenUp.delete(b.pool);
      this.o.log.info({ pool: b.pool, url: b.url, grpc: b.grpc }, 'pool address set in HAProxy');
    }
    return true;
  }

  /** Points one server at an address and takes it out of maintenance. */
  private async setServer(backend: string, server: string, a: { host: string; port: number }): Promise<void> {
    const name = `${backend}/${server}`;
    const moved = await this.api.command(`set server ${name} addr ${a.host} port ${a.port}`);
    if (!/changed|no need to change/i.test(moved)) throw new Error(`HAProxy refused the new address of ${name}: ${moved}`);
    await this.api.command(`set server ${name} state ready`);
  }

  /**
   * Routes for the current generation: new bots go to their pool at once, removed ones go, moved ones stay
   * on their old pool until `flipReadyMoves`. Returns whether the bots map changed.
   */
  private updateRoutes(): boolean {
    this.routedGeneration = this.generation;
    let changed = false;
    const wanted = new Set<string>();
    for (const bot of this.table.catalog.bots) {
      wanted.add(bot.id);
      const to = this.table.route(bot.id)!.pool;
      const now = this.routes.get(bot.id);
      if (now === undefined) {
        this.routes.set(bot.id, to);
        changed = true;
      } else if (now === to) {
        this.moves.delete(bot.id);
      } else if (this.moves.get(bot.id)?.to !== to) {
        this.moves.set(bot.id, { to, since: Date.now() });
      }
    }
    for (const bot of [...this.routes.keys()]) {
      if (wanted.has(bot)) continue;
      this.routes.delete(bot);
      this.moves.delete(bot);
      changed = true;
    }
    this.metrics.pendingMoves.set(this.moves.size);
    return changed;
  }

  /**
   * Moves whose new pool reports the bot ready (or failed: it will not get better by waiting) and is up in
   * HAProxy (its health check passed), or that waited too long.
   */
  private async flipReadyMoves(): Promise<void> {
    if (this.moves.size === 0) return;
    const up = await this.serversUp(new Set([...this.moves.values()].map((m) => m.to)));
    let flipped = 0;
    const checks = [...this.moves].slice(0, 64).map(async ([bot, move]) => {
      const url = this.o.address(move.to);
      const state = url && up.has(move.to) ? await botState(url, bot) : undefined;
      const timedOut = Date.now() - move.since > (this.o.moveTimeoutMs ?? MOVE_GRACE_MS);
      if (state !== 'ready' && state !== 'failed' && !timedOut) return;
      this.moves.delete(bot);
      this.routes.set(bot, move.to);
      flipped++;
      this.metrics.moves.inc({ reason: timedOut && state !== 'ready' ? 'timeout' : 'ready' });
      await this.api.setEntry(this.f.bots, bot, move.to);
      this.metrics.mapUpdates.inc({ map: 'bots' });
    });
    await Promise.all(checks);
    this.metrics.pendingMoves.set(this.moves.size);
    if (flipped > 0) writeAtomic(this.f.bots, mapText(this.routes));
  }

  /**
   * Pools of the catalog whose server HAProxy now sees up for the first time (a server that just got its
   * address is down until its first health check passes). Once seen, a pool that fails later does not make
   * the router unready: its bots get 503 while the others are served, as with the Node router.
   */
  private async noteServersUp(): Promise<void> {
    const waiting = new Set([...this.table.pools()].filter((p) => this.o.address(p) !== undefined && !this.seenUp.has(p)));
    if (waiting.size === 0) return;
    for (const pool of await this.serversUp(waiting)) this.seenUp.add(pool);
  }

  /** Which of these pools HAProxy has a running server for (`show servers state`: operational state 2). */
  private async serversUp(pools: Set<string>): Promise<Set<string>> {
    const up = new Set<string>();
    for (const pool of pools) {
      const out = await this.api.command(`show servers state ${pool}`);
      // Fields: be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
      for (const line of out.split('\n')) {
        const f = line.split(' ');
        if (f[1] === pool && f[3] === pool && f[5] === '2') up.add(pool);
      }
    }
    return up;
  }

  /**
   * Owners, keys and state, each pushed only when it differs from what was last pushed: the owners map (one
   * entry per bot) only with a new catalog generation, not on every pass.
   */
  private async pushIfChanged(): Promise<void> {
    const keys = this.keyMap();
    const state = this.stateMap(keys.size);
    for (const [name, key, entries] of this.otherMaps(keys, state)) {
      if (this.pushed.get(name) === key) continue;
      await this.push(name, this.f[name], entries());
      this.pushed.set(name, key);
    }
    this.metrics.ready.set(state.get('ready') === '1' ? 1 : 0);
  }

  private async push(name: string, file: string, entries: ReadonlyMap<string, string>): Promise<void> {
    writeAtomic(file, mapText(entries));
    await this.api.replaceMap(file, entries);
    this.metrics.mapUpdates.inc({ map: name });
  }

  /** The maps besides the routes: name, what identifies their content, and the content (built only when needed). */
  private otherMaps(keys: Map<string, string>, state: Map<string, string>): Array<['owners' | 'keys' | 'state', string, () => Map<string, string>]> {
    return [
      ['owners', this.generation, () => new Map(this.table.catalog.bots.map((b) => [b.id, b.tenant]))],
      // The keys map exists in HAProxy only when the configuration checks keys.
      ...(this.auth ? [['keys', JSON.stringify([...keys]), () => keys] as ['keys', string, () => Map<string, string>]] : []),
      ['state', JSON.stringify([...state]), () => state],
    ];
  }

  /** SHA-256 (hex) of each API key -> its tenant. */
  private keyMap(): Map<string, string> {
    return new Map((this.o.keys?.entries() ?? []).map((k) => [k.hash, k.tenant]));
  }

  /** Ready: not draining, every pool of the catalog routable and seen up, keys in place when required. */
  get ready(): boolean {
    return this.readyWith(this.o.keys?.size ?? 0);
  }

  /** The router's readiness rule; a pool is reachable once it has an address and HAProxy saw its server up. */
  private readyWith(keys: number): boolean {
    const allRoutable = () => [...this.table.pools()].every((p) => Boolean(this.o.address(p)) && this.seenUp.has(p));
    return routerReady({ draining: this.draining, allRoutable, keysRequired: this.auth, keys });
  }

  private stateMap(keys: number): Map<string, string> {
    return new Map([
      ['ready', this.readyWith(keys) ? '1' : '0'],
      ['keys', keys > 0 ? '1' : '0'],
      ['generation', this.generation],
    ]);
  }

  private writeMaps(): void {
    writeAtomic(this.f.bots, mapText(this.routes));
    const keys = this.keyMap();
    for (const [name, , entries] of this.otherMaps(keys, this.stateMap(keys.size))) writeAtomic(this.f[name], mapText(entries()));
    this.pushed.clear();
  }

  private get auth(): boolean {
    return keysRequired(this.table.catalog);
  }

  /** Keeps the group of every pool of the current generation (pools without bots too), for their backends. */
  private rememberGroups(): void {
    for (const pool of this.table.pools()) this.groupOf.set(pool, this.table.groupOf(pool)!);
  }

  /** A backend for every pool of the current generation and every pool a route still names. */
  private backends(): Backend[] {
    const pools = new Set([...this.table.pools(), ...this.routes.values()]);
    return [...pools].sort().map((pool) => {
      const group = this.groupOf.get(pool);
      // Every pool a route names was remembered with its group: a pool without one is a bug here.
      if (!group) throw new Error(`pool "${pool}" has no pool group in the catalogs the control plane has seen`);
      return { pool, url: this.o.address(pool), grpc: this.o.grpcAddress(pool), timeoutMs: group.timeoutMs, maxconn: poolConcurrency(group) };
    });
  }

  /** The configuration; without `addresses`, its shape (what needs a reload when it changes). */
  private render(backends: Backend[], addresses: boolean): string {
    return renderConfig({ ...this.o.config, backends: addresses ? backends : backends.map((b) => ({ ...b, url: undefined, grpc: undefined })), auth: this.auth });
  }
}
