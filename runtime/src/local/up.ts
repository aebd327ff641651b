/**
 * The `botshard up` command: starts the local platform (platform.ts) and stops it on Ctrl-C, SIGTERM or
 * the end of the process that started it, leaving nothing behind (no process, no port, no temp folder).
 */
import { SettingsError, exitWithFailure } from '../commands/failure';
import { grpcPortBeside } from '../serve/process';
import { LocalPlatform } from './platform';

/** The `botshard up` command: runs until SIGINT/SIGTERM. */
export function upCommand(opts: { config: string; port?: string; grpcPort?: string; models?: string; tenantKeys?: string; router?: string }): string {
  const portOf = (flag: string, value: string | undefined, fallback: number) => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 65535) exitWithFailure('botshard up', new SettingsError(`${flag} must be an integer from 0 to 65535, got ${JSON.stringify(value)}`), 'settings');
    return n;
  };
  const port = portOf('--port', opts.port, 8080);
  const grpcPort = portOf('--grpc-port', opts.grpcPort, grpcPortBeside(port));
  const router = opts.router ?? 'node';
  if (router !== 'node' && router !== 'haproxy') {
    exitWithFailure('botshard up', new SettingsError(`--router must be "node" (the Node router) or "haproxy" (HAProxy carries the requests), got ${JSON.stringify(router)}`), 'settings');
  }
  const platform = new LocalPlatform({ config: opts.config, port, grpcPort, models: opts.models, tenantKeys: opts.tenantKeys ?? (process.env.BOTSHARD_TENANT_KEYS || undefined), router });
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n[up] ${reason}: stopping the router, then the pools (Ctrl-C again to kill at once)\n`);
    platform.stop().then((summary) => {
      process.stdout.write(`[up] stopped: ${summary}\n`);
      process.exit(0);
    });
  };
  // Under `npm start` one Ctrl-C can arrive twice (from the terminal and forwarded by npm): only a signal
  // a second or more after the first means "kill at once".
  let firstSignal = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstSignal > 0 && Date.now() - firstSignal >= 1000) {
      platform.kill();
      process.exit(130);
    }
    if (firstSignal === 0) firstSignal = Date.now();
    stop(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Whatever ends the process that started `up` (npm, a CI timeout, a process manager) ends the platform
  // too, even when the signal never reaches `up`: an orphaned `up` would keep every port. Never "at once":
  // npm may pass the signal on and exit before `up` has stopped.
  const parent = process.ppid;
  const orphaned = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(orphaned);
    stop('the process that started botshard up has ended');
  }, 250);
  orphaned.unref();
  platform.start().catch(async (e: Error) => {
    await platform.stop();
    exitWithFailure('botshard up', e);
  });
  return '';
}
