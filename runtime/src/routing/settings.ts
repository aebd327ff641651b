/**
 * The router's settings, shared by both data planes (`botshard router` and `botshard haproxy`): where pools
 * answer (REST and gRPC), the tenant keys folder and rate. Flags win over environment variables.
 */
import * as fs from 'node:fs';
import { SettingsError } from '../commands/failure';
import { ServerFlags, ServerSettings, integerSetting, serverSettings } from '../serve/process';
import { PoolAddress, poolGrpcAddress } from './addresses';

export interface RouterCommandFlags extends ServerFlags {
  poolUrl?: string;
  poolUrls?: string;
  poolGrpcUrl?: string;
  poolGrpcUrls?: string;
  poolReplicas?: string;
  tenantKeys?: string;
}

export interface RouterSettings extends ServerSettings {
  /** A template with {pool}, or a JSON file mapping pool names to URLs (local mode; re-read when it changes). */
  poolUrl: string;
  poolUrlsFile: boolean;
  /** Where pools answer gRPC: a template with {pool} (`host:port`), or a JSON file mapping pool names to `host:port`; unset: the pool URL template's host on port 8081. */
  poolGrpc?: string;
  poolGrpcFile: boolean;
  /** A URL whose host resolves to every pool replica (the pools' headless Service): `botshard status` sums rollouts over them. */
  poolReplicas?: string;
  tenantKeys?: string;
  tenantRate?: number;
}

export function routerSettings(flags: RouterCommandFlags, env: NodeJS.ProcessEnv): RouterSettings {
  const server = serverSettings(flags, env);
  const map = flags.poolUrls ?? env.BOTSHARD_POOL_URLS;
  const template = flags.poolUrl ?? env.BOTSHARD_POOL_URL;
  if (!map && !template) throw new SettingsError('pool addresses are missing: pass --pool-url http://{pool}.{namespace}.svc.cluster.local:8080 (or set BOTSHARD_POOL_URL), or --pool-urls FILE');
  const keys = flags.tenantKeys ?? env.BOTSHARD_TENANT_KEYS;
  const grpcMap = flags.poolGrpcUrls ?? env.BOTSHARD_POOL_GRPC_URLS;
  const grpcTemplate = flags.poolGrpcUrl ?? env.BOTSHARD_POOL_GRPC_URL;
  if (grpcTemplate && !grpcTemplate.includes('{pool}')) throw new SettingsError(`--pool-grpc-url / BOTSHARD_POOL_GRPC_URL ${JSON.stringify(grpcTemplate)} has no {pool}: write e.g. {pool}.{namespace}.svc.cluster.local:8081`);
  return {
    ...server,
    poolUrl: map ?? template!,
    poolUrlsFile: map !== undefined,
    poolGrpc: grpcMap ?? (grpcTemplate || undefined),
    poolGrpcFile: grpcMap !== undefined,
    poolReplicas: replicasUrl(flags.poolReplicas ?? env.BOTSHARD_POOL_REPLICAS),
    // Whether keys are required is the catalog's `platform.auth`, never whether this folder happens to exist.
    tenantKeys: keys || undefined,
    tenantRate: integerSetting('BOTSHARD_TENANT_RATE', env.BOTSHARD_TENANT_RATE, 1, 10_000_000),
  };
}

/** The pool replicas URL, checked: http(s)://host:port. */
function replicasUrl(v: string | undefined): string | undefined {
  if (!v) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(v);
  } catch {
    url = undefined;
  }
  if (!url || !/^https?:$/.test(url.protocol) || url.pathname.replace(/\/+$/, '') !== '') {
    throw new SettingsError(`--pool-replicas / BOTSHARD_POOL_REPLICAS ${JSON.stringify(v)} is not a URL of the pools' replicas: write e.g. http://botshard-pool-replicas.botshard.svc.cluster.local:8080 (a headless Service over every pool pod)`);
  }
  return v.replace(/\/+$/, '');
}

/** Pool addresses from a JSON file `{ "<pool>": "http://127.0.0.1:port" }` (gRPC: `"127.0.0.1:port"`), re-read when the file changes
 * (checked at most every 200 ms: not a file system call per request). */
export function poolUrlsFile(file: string): PoolAddress {
  let mtime = -1;
  let checked = 0;
  let urls: Record<string, string> = {};
  return (pool) => {
    const now = Date.now();
    if (now - checked >= 200 || urls[pool] === undefined) {
      checked = now;
      try {
        const m = fs.statSync(file).mtimeMs;
        if (m !== mtime) {
          urls = JSON.parse(fs.readFileSync(file, 'utf8'));
          mtime = m;
        }
      } catch {
        // keep the last good map: the file may be mid-write
      }
    }
    return urls[pool];
  };
}

/**
 * Where pools answer gRPC, from the settings: a file of addresses, a template, or (neither given) the
 * pool URL template's host on port 8081; none when the pool URLs come from a file and no gRPC file is given.
 */
export function grpcAddresses(s: RouterSettings, namespace: string): PoolAddress {
  if (s.poolGrpc && s.poolGrpcFile) return poolUrlsFile(s.poolGrpc);
  if (!s.poolGrpc && s.poolUrlsFile) return () => undefined;
  return poolGrpcAddress(s.poolGrpc ?? s.poolUrl, namespace);
}
