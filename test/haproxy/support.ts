/**
 * The router's HAProxy mode as a real process (`botshard haproxy`, which starts a real `haproxy`). Without
 * HAProxy installed the tests that need it are visible skips with a printed note, and failures under CI
 * (`.ci/run` installs it).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HaproxyApi } from '@botshard/runtime/haproxy/api';
import { files } from '@botshard/runtime/haproxy/config';
import { ROOT, getJson, listeningLine, tempDir, until } from '../pool/support';
import { Tool, haproxy } from '../support/tools';

export const HAPROXY = process.env.BOTSHARD_HAPROXY || 'haproxy';

/** The gate on HAProxy for the tests that run it (test/support/tools.ts: a visible skip locally, a failure in CI). */
export const withHaproxy = (): Tool => haproxy(HAPROXY);

export interface HaproxyRouter {
  child: ChildProcess;
  url: string;
  metricsUrl: string;
  haproxyMetricsUrl: string;
  /** HAProxy's gRPC frontend, `127.0.0.1:<port>`. */
  grpc: string;
  /** JSON log lines so far. */
  logs: any[];
  /** HAProxy's Runtime API (its admin socket), as the control plane uses it. */
  api: HaproxyApi;
  /** Pool addresses the router reads (live files, as `botshard up` writes them): REST, and gRPC when given. */
  setPool(pool: string, url: string, grpc?: string): void;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `botshard haproxy` on free ports and waits until it reports ready (`readyWait`: false to not wait). */
export async function runHaproxy(o: { catalog: string; pools: Map<string, string>; grpcs?: Map<string, string>; tenantKeys?: string; env?: Record<string, string>; readyWait?: boolean; dir?: string }): Promise<HaproxyRouter> {
  const dir = o.dir ?? tempDir('haproxy');
  const urlsFile = path.join(dir, 'pools.json');
  const urls: Record<string, string> = Object.fromEntries(o.pools);
  const writeUrls = () => {
    fs.writeFileSync(`${urlsFile}.tmp`, JSON.stringify(urls));
    fs.renameSync(`${urlsFile}.tmp`, urlsFile);
  };
  writeUrls();
  const state = path.join(dir, 'state');
  const grpcFile = path.join(dir, 'pools-grpc.json');
  const grpcs: Record<string, string> = Object.fromEntries(o.grpcs ?? []);
  const writeGrpcs = () => {
    fs.writeFileSync(`${grpcFile}.tmp`, JSON.stringify(grpcs));
    fs.renameSync(`${grpcFile}.tmp`, grpcFile);
  };
  writeGrpcs();
  const args = ['haproxy', '--catalog', o.catalog, '--pool-urls', urlsFile, '--pool-grpc-urls', grpcFile, '--port', '0', '--grpc-port', '0', '--metrics-port', '0', '--haproxy-metrics-port', '0', '--host', '127.0.0.1', ...(o.tenantKeys ? ['--tenant-keys', o.tenantKeys] : [])];
  const child = spawn(process.execPath, [path.join(ROOT, 'runtime/bin/botshard.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, BOTSHARD_POLL_MS: '100', BOTSHARD_HAPROXY_DIR: state, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: any[] = [];
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const entry = await listeningLine(child, logs, 'botshard haproxy').catch((e: Error) => {
    throw new Error(`${e.message}: ${stderr}`);
  });
  const url = `http://127.0.0.1:${entry.port}`;
  if (o.readyWait !== false) await until(async () => (await getJson(`${url}/v2/health/ready`).catch(() => ({ status: 0 }))).status === 200, 20_000, 'the HAProxy router to be ready');
  return {
    child,
    url,
    metricsUrl: `http://127.0.0.1:${entry.metricsPort}/metrics`,
    haproxyMetricsUrl: `http://127.0.0.1:${entry.haproxyMetricsPort}/metrics`,
    grpc: `127.0.0.1:${entry.grpcPort}`,
    logs,
    api: new HaproxyApi(files(state).socket),
    setPool(pool, poolUrl, grpc) {
      if (grpc) {
        grpcs[pool] = grpc;
        writeGrpcs();
      }
      urls[pool] = poolUrl;
      writeUrls();
    },
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
