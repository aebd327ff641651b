/**
 * Watches the catalog (a JSON file or a folder of parts and their index) and hands each new generation
 * over: its index read and checked (definitions are read by whoever needs them).
 * A mounted ConfigMap changes by an atomic swap of its `..data` symlink: fs.watch on the folder sees
 * it at once; polling (cheap: it stats the files, and reads them only when a stat changed) is the
 * fallback where fs.watch is unreliable (network file systems, some container runtimes).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { catalogFiles } from './load';
import { CatalogError } from './problems';
import { CatalogSource, openCatalog } from './source';

export interface CatalogWatcherOptions {
  location: string;
  /** Generation already served: not reported again. */
  generation?: string;
  /** Polling interval. @default 5000 */
  pollMs?: number;
  onCatalog(source: CatalogSource): void;
  onInvalid(error: Error): void;
}

/** What changes when the catalog's content does: identity and size of each file, through symlinks. */
function signature(location: string): string {
  const stat = fs.statSync(location);
  if (!stat.isDirectory()) return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  return catalogFiles(location)
    .map((f) => {
      const s = fs.statSync(path.join(location, f));
      return `${f}:${s.ino}:${s.size}:${s.mtimeMs}`;
    })
    .join('|');
}

export class CatalogWatcher {
  private watcher?: fs.FSWatcher;
  private timer?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private seen?: string;
  private generation?: string;

  constructor(private readonly opts: CatalogWatcherOptions) {
    this.generation = opts.generation;
    try {
      this.seen = signature(opts.location);
    } catch {
      this.seen = undefined;
    }
  }

  start(): void {
    const { location } = this.opts;
    const dir = fs.statSync(location).isDirectory() ? location : path.dirname(location);
    try {
      this.watcher = fs.watch(dir, { persistent: false }, () => this.soon());
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      this.watcher = undefined; // polling still runs
    }
    this.timer = setInterval(() => this.check(), this.opts.pollMs ?? 5000);
    this.timer.unref();
  }

  private soon(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.check(), 50);
    this.debounce.unref();
  }

  /** Reads the catalog if its files changed; reports a new generation or an invalid catalog. */
  check(): void {
    let sig: string;
    try {
      sig = signature(this.opts.location);
    } catch {
      return; // mid-swap or gone for a moment: the next event or poll tries again
    }
    if (sig === this.seen) return;
    let source: CatalogSource;
    try {
      source = openCatalog(this.opts.location);
    } catch (e) {
      this.seen = sig;
      this.opts.onInvalid(e instanceof CatalogError ? e : new Error((e as Error).message));
      return;
    }
    this.seen = sig;
    if (source.index.generation === this.generation) return;
    this.generation = source.index.generation;
    this.opts.onCatalog(source);
  }

  stop(): void {
    this.watcher?.close();
    clearInterval(this.timer);
    clearTimeout(this.debounce);
  }
}
