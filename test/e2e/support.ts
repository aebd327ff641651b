/** Shared by the end-to-end tests: free ports, process and port checks, and the table `botshard up` prints. */
import type { ChildProcess } from 'node:child_process';
import * as net from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface UpRow {
  pool: string;
  group: string;
  port: number;
  /** Its gRPC port ('-' in the table: none, as HAProxy's). */
  grpcPort?: number;
  pid: number;
}

/** The last table `botshard up` printed: one row per pool, then the router. */
export function parseUpTable(output: string): UpRow[] {
  const last = output.lastIndexOf('POOL ');
  const lines = output.slice(last).split('\n').slice(1);
  const parsed: UpRow[] = [];
  for (const line of lines) {
    const cells = line.trim().split(/\s+/);
    if (cells.length < 6 || !/^\d+$/.test(cells[cells.length - 1])) break;
    const grpc = cells[cells.length - 2];
    parsed.push({ pool: cells[0], group: cells[1], port: Number(cells[cells.length - 3]), grpcPort: grpc === '-' ? undefined : Number(grpc), pid: Number(cells[cells.length - 1]) });
  }
  return parsed;
}

/** After a failed test: kills the top process and every process of its last table, so none is left running. */
export function killLeftovers(top: ChildProcess | undefined, rows: readonly UpRow[]): void {
  if (top && top.exitCode === null && top.signalCode === null) top.kill('SIGKILL');
  for (const r of rows) if (alive(r.pid)) process.kill(r.pid, 'SIGKILL');
}
