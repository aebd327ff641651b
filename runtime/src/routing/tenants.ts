/** Tenants at the router: their API keys, the catalog's demand for them, and the per-tenant rate limit. */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CatalogIndex } from '../catalog';
import { SettingsError } from '../commands/failure';

/** Whether the catalog asks for API keys: then nothing is served without them (fail closed, never "auth off"). */
export function keysRequired(catalog: CatalogIndex): boolean {
  return catalog.platform.auth === 'tenant-keys';
}

/** At start: a catalog that asks for API keys needs a tenant keys folder that holds some. Throws the SettingsError saying how to fix it. */
export function checkKeysAtStart(catalog: CatalogIndex, keys: TenantKeys | undefined): void {
  if (!keysRequired(catalog)) return;
  if (!keys) throw new SettingsError('the catalog requires API keys (platform.auth: "tenant-keys") and no tenant keys folder is given: pass --tenant-keys DIR or set BOTSHARD_TENANT_KEYS (a folder with one file of SHA-256 key hashes per tenant)');
  if (keys.problem) throw new SettingsError(`the catalog requires API keys (platform.auth: "tenant-keys") and ${keys.problem}: add the key hashes (docs/router.md, "Tenants") or fix the path`);
}

/**
 * Tenant API keys, stored as SHA-256 hashes (hex) in a folder where each file is named after a tenant
 * and holds its key hashes, one per line: the layout of a mounted Kubernetes Secret whose keys are
 * tenant ids. No key material is ever stored; keys are compared by hash in constant time. The folder is
 * followed like the catalog: a key added to or removed from the Secret counts within a poll interval.
 * A folder that is missing or holds no key leaves no keys, never "anything goes": callers fail closed.
 */
export class TenantKeys {
  private hashes: Array<{ tenant: string; hash: Buffer }> = [];
  /** Why there are no keys, when there are none. */
  problem?: string;
  private timer?: NodeJS.Timeout;
  private watcher?: fs.FSWatcher;

  constructor(
    readonly location: string,
    private readonly onChange?: (keys: TenantKeys) => void,
  ) {
    this.reload();
  }

  /** Re-reads the folder (a Secret update swaps it atomically). */
  reload(): void {
    let files: string[];
    try {
      files = fs.readdirSync(this.location).filter((f) => !f.startsWith('.') && fs.statSync(path.join(this.location, f)).isFile());
    } catch (e) {
      this.set([], `the tenant keys folder ${this.location} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      return;
    }
    const hashes: Array<{ tenant: string; hash: Buffer }> = [];
    for (const tenant of files) {
      let text: string;
      try {
        text = fs.readFileSync(path.join(this.location, tenant), 'utf8');
      } catch {
        continue; // swapped away while listing: the next read sees the new folder
      }
      for (const line of text.split(/\r?\n/)) {
        const hex = line.trim().toLowerCase();
        if (/^[0-9a-f]{64}$/.test(hex)) hashes.push({ tenant, hash: Buffer.from(hex, 'hex') });
      }
    }
    this.set(hashes, hashes.length === 0 ? `the tenant keys folder ${this.location} holds no API key hashes (one file per tenant, one SHA-256 per line)` : undefined);
  }

  private set(hashes: Array<{ tenant: string; hash: Buffer }>, problem: string | undefined): void {
    const changed = hashes.length !== this.hashes.length || hashes.some((h, i) => h.tenant !== this.hashes[i].tenant || !h.hash.equals(this.hashes[i].hash)) || problem !== this.problem;
    this.hashes = hashes;
    this.problem = problem;
    if (changed) this.onChange?.(this);
  }

  /** Follows the folder: re-reads it when fs.watch reports a change and every `pollMs` (watch events can be missed). */
  follow(pollMs: number): void {
    this.stop();
    this.timer = setInterval(() => this.reload(), pollMs);
    this.timer.unref();
    try {
      this.watcher = fs.watch(this.location, () => this.reload());
      this.watcher.on('error', () => undefined);
      this.watcher.unref();
    } catch {
      // no folder yet: polling finds it when it appears
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.watcher?.close();
    this.timer = undefined;
    this.watcher = undefined;
  }

  get size(): number {
    return this.hashes.length;
  }

  /** The key hashes (hex) and their tenants: what a data plane that checks keys itself needs (HAProxy's keys map). */
  entries(): Array<{ tenant: string; hash: string }> {
    return this.hashes.map((h) => ({ tenant: h.tenant, hash: h.hash.toString('hex') }));
  }

  /** The tenant a key belongs to, or undefined. Compares against every hash, so timing tells nothing. */
  tenantOf(key: string): string | undefined {
    const digest = createHash('sha256').update(key).digest();
    let found: string | undefined;
    for (const { tenant, hash } of this.hashes) {
      if (timingSafeEqual(digest, hash) && found === undefined) found = tenant;
    }
    return found;
  }
}

/** SHA-256 of a key as stored in the tenant keys Secret. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/**
 * A token bucket per tenant: `rate` requests per second on average, bursts up to `burst`. `now`: the clock
 * in milliseconds, monotonic by default (a wall-clock step must neither refill nor drain a bucket); tests
 * inject their own.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes a token; returns 0 when allowed, else the seconds to wait. */
  take(tenant: string): number {
    const t = this.now();
    const b = this.buckets.get(tenant) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
    b.at = t;
    this.buckets.set(tenant, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.rate));
  }
}
