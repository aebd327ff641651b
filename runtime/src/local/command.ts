/** `botshard models`: writes the demo ONNX models of a catalog. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadAnyCatalog } from '../catalog/config';
import { writeDemoModels } from './models';

export function modelsCommand(opts: { config: string; models?: string; seed?: number }): string {
  const catalog = loadAnyCatalog(opts.config);
  const base = fs.statSync(opts.config).isDirectory() ? opts.config : path.dirname(opts.config);
  const root = opts.models ?? path.resolve(base, catalog.platform.modelRoot);
  const result = writeDemoModels(catalog, root, { seed: opts.seed });
  const kept = result.kept.length > 0 ? `, ${result.kept.length} of your own kept (never overwritten): ${result.kept.join(', ')}` : '';
  return `demo models for generation ${catalog.generation} in ${path.relative(process.cwd(), root) || '.'}: ${result.written.length} written, ${result.updated.length} updated, ${result.unchanged.length} unchanged${kept}`;
}
