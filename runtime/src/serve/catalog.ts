/**
 * Catalog changes, the same way in pool and router: a new valid generation is applied; one that is
 * invalid, or valid but cannot be placed, is logged and counted, and the current one keeps serving.
 */
import type { FastifyInstance } from 'fastify';
import type { Counter } from 'prom-client';
import { CatalogSource } from '../catalog';
import { CatalogWatcher } from '../catalog/watch';

export interface FollowCatalogOptions {
  /** The catalog file or folder (a mounted ConfigMap). */
  location: string;
  /** The generation being served (not reported again). */
  generation: string;
  /** Polling interval besides fs.watch. @default 5000 */
  pollMs?: number;
  /** Applies a new generation; throws (a PlacementError, a CatalogError) to refuse it, keeping the current one. */
  apply(source: CatalogSource): void;
  /** Catalog changes seen, by result: applied, invalid. */
  reloads: Counter<'result'>;
}

/** Something that logs like pino (the app's logger, or a process's JSON lines). */
interface CatalogLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A catalog watcher that applies, counts and logs each change the same way in every process. Not started. */
export function catalogWatcher(log: CatalogLog, o: FollowCatalogOptions): CatalogWatcher {
  const refuse = (generation: string | undefined, reason: string) => {
    o.reloads.inc({ result: 'invalid' });
    log.error({ generation, problems: reason }, 'catalog changed but cannot be used: ignored, the current one keeps serving');
  };
  return new CatalogWatcher({
    location: o.location,
    generation: o.generation,
    pollMs: o.pollMs,
    onCatalog: (source) => {
      const { generation } = source.index;
      try {
        o.apply(source);
      } catch (e) {
        refuse(generation, (e as Error).message);
        return;
      }
      o.reloads.inc({ result: 'applied' });
      log.info({ generation }, 'catalog changed: applied');
    },
    onInvalid: (e) => refuse(undefined, e.message),
  });
}

/** Watches the catalog while the app runs (from `ready` to `close`). */
export function followCatalog(app: FastifyInstance, o: FollowCatalogOptions): void {
  const watcher = catalogWatcher(app.log, o);
  app.addHook('onReady', async () => watcher.start());
  app.addHook('onClose', async () => watcher.stop());
}
