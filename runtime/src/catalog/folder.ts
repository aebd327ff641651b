import * as fs from 'node:fs';
import * as path from 'node:path';
import { replaceWith } from '../io/atomic-write';
import { partFileName, serializePart, splitCatalog } from './parts';
import { buildIndex, indexFileName, indexText } from './placement-index';
import { Catalog } from './types';

export interface CatalogFolderOptions {
  /** Largest part, in bytes. @default 921600 */
  maxPartBytes?: number;
  /** Which files the folder gets (a router mounts only the index: `isIndexFile`). @default - every file */
  only?: (file: string) => boolean;
}

/**
 * Writes a catalog into a folder the way kubelet updates a mounted ConfigMap: the parts and the
 * placement index go into a new hidden folder, the `..data` symlink is swapped to it atomically, and each
 * file is a symlink through `..data`. Readers see the old catalog or the new one, never a mix. Calling it
 * again updates the folder.
 */
export function writeCatalogFolder(dir: string, catalog: Catalog, options: number | CatalogFolderOptions = {}): void {
  stageCatalogFolder(dir, catalog, options)();
}

/** Writes the new version's files beside the current one and returns the swap (what readers see change). */
export function stageCatalogFolder(dir: string, catalog: Catalog, options: number | CatalogFolderOptions = {}): () => void {
  const { maxPartBytes, only = () => true } = typeof options === 'number' ? { maxPartBytes: options } : options;
  fs.mkdirSync(dir, { recursive: true });
  const parts = splitCatalog(catalog, maxPartBytes);
  const written = parts.map(serializePart);
  const files = new Map<string, string>(parts.map((p, i) => [partFileName(p.part), written[i].text]));
  for (const p of buildIndex(catalog, parts, maxPartBytes, written.map((w) => w.spans))) files.set(indexFileName(p.part), indexText(p));
  for (const file of [...files.keys()]) if (!only(file)) files.delete(file);
  const stamp = `..${new Date().toISOString().replace(/[-:.TZ]/g, '')}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  fs.mkdirSync(path.join(dir, stamp));
  for (const [file, text] of files) fs.writeFileSync(path.join(dir, stamp, file), text);
  return () => {
    const data = path.join(dir, '..data');
    const previous = fs.existsSync(data) ? fs.readlinkSync(data) : undefined;
    // The new `..data` link is made beside the old one, then renamed over it: a link is swapped whole.
    const tmp = path.join(dir, '..data_tmp');
    fs.rmSync(tmp, { force: true });
    fs.symlinkSync(stamp, tmp);
    replaceWith(tmp, data);
    for (const file of files.keys()) {
      const link = path.join(dir, file);
      if (!fs.existsSync(link)) {
        fs.rmSync(link, { force: true });
        fs.symlinkSync(path.join('..data', file), link);
      }
    }
    // Links to files the new version no longer has now dangle: remove them, as kubelet does.
    for (const f of fs.readdirSync(dir)) {
      if (!f.startsWith('.') && !fs.existsSync(path.join(dir, f))) fs.rmSync(path.join(dir, f), { force: true });
    }
    if (previous && previous !== stamp) fs.rmSync(path.join(dir, previous), { recursive: true, force: true });
  };
}
