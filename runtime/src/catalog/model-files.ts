/**
 * Which model files of a catalog exist, as far as a machine without the cluster can tell: local paths
 * under the model root are checked; s3:// and https:// locations cannot be checked offline.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Catalog } from './types';

const REMOTE = /^[a-z][a-z0-9+.-]*:\/\//i;

export interface ModelFileReport {
  /** The folder the local paths were looked up in. */
  root: string;
  /** Local paths (heads and encoders) with no file under the root. */
  missing: string[];
  /** s3:// and https:// locations, not checked. */
  remote: string[];
}

/** Looks up every model path of the catalog under `root` (the catalog's modelRoot, resolved by the caller). */
export function checkModelFiles(catalog: Catalog, root: string): ModelFileReport {
  const paths = [...new Set([...catalog.encoders.map((e) => e.path), ...catalog.bots.map((b) => b.model.head)])].sort();
  const remote = paths.filter((p) => REMOTE.test(p));
  const missing = paths.filter((p) => !REMOTE.test(p) && !fs.existsSync(path.resolve(root, p)));
  return { root, missing, remote };
}

/** The model root of a config or catalog file: its `platform.modelRoot`, relative to the file's folder. */
export function modelRootOf(location: string, catalog: Catalog): string {
  const dir = fs.existsSync(location) && fs.statSync(location).isDirectory() ? location : path.dirname(location);
  return path.resolve(dir, catalog.platform.modelRoot);
}

/** Warning lines for a report (none when every local file is there and nothing is remote). */
export function modelFileWarnings(report: ModelFileReport): string[] {
  const lines: string[] = [];
  const root = path.relative(process.cwd(), report.root) || '.';
  if (report.missing.length > 0) {
    const shown = report.missing.slice(0, 5).join(', ') + (report.missing.length > 5 ? `, and ${report.missing.length - 5} more` : '');
    lines.push(
      `warning: ${report.missing.length} model file${report.missing.length === 1 ? ' is' : 's are'} missing under ${root}/: ${shown} ` +
        `(fix: put your models there, or run \`npx botshard models\` for demo models; pools fail these bots until the files exist)`,
    );
  }
  if (report.remote.length > 0) {
    lines.push(`warning: ${report.remote.length} model${report.remote.length === 1 ? ' is' : 's are'} at s3:// or https:// locations, not checked offline: pools download them at start`);
  }
  return lines;
}
