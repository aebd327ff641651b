/** `botshard models`: writes the demo ONNX models of a catalog. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Catalog } from '../catalog';
import { loadAnyCatalog } from '../catalog/config';
import { closest } from '../catalog/problems';
import { UsageError } from '../commands/failure';
import { Degradation, localHeads, writeDemoModels } from './models';

/** The form of a `--degraded` value, with an example. */
export const DEGRADED_FORM = 'HEAD[=SHUFFLE[,TEMPERATURE]] (SHUFFLE from 0 to 1, default 0.5; TEMPERATURE above 0, default the demo heads\' 10), e.g. --degraded heads/acme-support-en-v2.onnx=0.5';
const DEFAULT_SHUFFLE = 0.5;

/** `--degraded HEAD[=SHUFFLE[,TEMPERATURE]]` values (repeatable): degraded heads by path. */
export function parseDegraded(values: readonly string[] = []): Map<string, Degradation> {
  const degraded = new Map<string, Degradation>();
  for (const value of values) {
    const bad = (why: string) => new UsageError(`--degraded ${JSON.stringify(value)}: ${why} (fix: --degraded ${DEGRADED_FORM})`);
    const eq = value.lastIndexOf('=');
    const head = (eq < 0 ? value : value.slice(0, eq)).trim();
    const settings = eq < 0 ? [] : value.slice(eq + 1).split(',');
    if (head === '') throw bad('no head path before "="');
    if (settings.length > 2) throw bad(`${settings.length} numbers after "=", at most 2 (SHUFFLE,TEMPERATURE)`);
    const [shuffleText, temperatureText] = settings.map((s) => s.trim());
    const shuffle = shuffleText === undefined ? DEFAULT_SHUFFLE : Number(shuffleText);
    if (shuffleText === '' || !Number.isFinite(shuffle) || shuffle < 0 || shuffle > 1) throw bad(`the shuffle ${JSON.stringify(shuffleText)} is not a number from 0 to 1`);
    const temperature = temperatureText === undefined ? undefined : Number(temperatureText);
    if (temperatureText === '' || (temperature !== undefined && !(Number.isFinite(temperature) && temperature > 0))) throw bad(`the temperature ${JSON.stringify(temperatureText)} is not a number above 0`);
    if (degraded.has(head)) throw bad(`${head} is given twice`);
    degraded.set(head, temperature === undefined ? { shuffle } : { shuffle, temperature });
  }
  return degraded;
}

/** Each degraded head must be a local head of the catalog. */
function checkDegradedHeads(catalog: Catalog, degraded: ReadonlyMap<string, Degradation>): void {
  const heads = localHeads(catalog);
  for (const head of degraded.keys()) {
    if (heads.includes(head)) continue;
    const near = closest(head, heads);
    const remote = /^[a-z][a-z0-9+.-]*:\/\//i.test(head) ? ' (an s3:// or https:// head is not generated)' : '';
    throw new UsageError(
      `--degraded ${head}: no bot of the catalog has this local head or candidate head${remote} (fix: ${near ? `did you mean ${near}? ` : ''}give a model.head or model.candidate.head path as the catalog lists it, relative to the model root)`,
    );
  }
}

/** `sized`: each head at its declared memory (DemoModelOptions.sized). */
export function modelsCommand(opts: { config: string; models?: string; seed?: number; degraded?: readonly string[]; sized?: boolean }): string {
  const degraded = parseDegraded(opts.degraded);
  const catalog = loadAnyCatalog(opts.config);
  checkDegradedHeads(catalog, degraded);
  const base = fs.statSync(opts.config).isDirectory() ? opts.config : path.dirname(opts.config);
  const root = opts.models ?? path.resolve(base, catalog.platform.modelRoot);
  const result = writeDemoModels(catalog, root, { seed: opts.seed, degraded, sized: opts.sized });
  const kept = result.kept.length > 0 ? `, ${result.kept.length} of your own kept (never overwritten): ${result.kept.join(', ')}` : '';
  const degradedNote = degraded.size > 0 ? `; degraded: ${[...degraded].map(([head, d]) => `${head} (shuffle ${d.shuffle}${d.temperature !== undefined ? `, temperature ${d.temperature}` : ''})`).join(', ')}` : '';
  const sized = opts.sized ? ' (heads at their declared size)' : '';
  return `demo models${sized} for generation ${catalog.generation} in ${path.relative(process.cwd(), root) || '.'}: ${result.written.length} written, ${result.updated.length} updated, ${result.unchanged.length} unchanged${kept}${degradedNote}`;
}
