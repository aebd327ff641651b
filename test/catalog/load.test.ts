import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CatalogError, loadCatalog, parseCatalog, partFileName, splitCatalog } from '@botshard/runtime';
import { synthetic } from '../support/plan';
import { smallCatalog } from '../support/catalogs';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-catalog-'));

describe('normalised catalog', () => {
  it('carries apiVersion, kind and a generation that is the hash of its content', () => {
    const catalog = parseCatalog(smallCatalog());
    expect(catalog.apiVersion).toBe('botshard.io/v1alpha1');
    expect(catalog.kind).toBe('Catalog');
    expect(catalog.generation).toMatch(/^[0-9a-f]{16}$/);
    const changed = smallCatalog();
    changed.bots[0].intents[0].name = 'hello';
    expect(parseCatalog(changed).generation).not.toBe(catalog.generation);
  });

  it('reads its own output back unchanged (normalisation is idempotent)', () => {
    const catalog = parseCatalog(smallCatalog());
    expect(parseCatalog(JSON.parse(JSON.stringify(catalog)))).toEqual(catalog);
  });

  it('gives the same generation for equal quantities written differently', () => {
    const a = smallCatalog();
    const b = smallCatalog();
    b.groups[0].memory = 512 * 1024 * 1024;
    b.groups[1].memory = '1024Mi';
    expect(parseCatalog(b).generation).toBe(parseCatalog(a).generation);
  });

  it('rejects a catalog whose generation does not match its content', () => {
    const catalog = parseCatalog(smallCatalog()) as any;
    catalog.bots[0].tenant = 'globex';
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'catalog.json'), JSON.stringify(catalog));
    expect(() => loadCatalog(path.join(dir, 'catalog.json'))).toThrow(/generation: .* does not match the content/);
  });
});

describe('loading', () => {
  it('loads a JSON file and a folder of parts (as mounted ConfigMaps), giving the same catalog', () => {
    const catalog = synthetic({ bots: 3000, seed: 1 });
    const parts = splitCatalog(catalog, 200 * 1024);
    expect(parts.length).toBeGreaterThan(3);
    for (const part of parts) expect(Buffer.byteLength(JSON.stringify(part))).toBeLessThanOrEqual(200 * 1024);
    const dir = tmp();
    // The layout kubelet writes: files are symlinks into a timestamped folder behind `..data`.
    const data = path.join(dir, '..2026_11_28_12_00_00.000000001');
    fs.mkdirSync(data);
    parts.forEach((part, i) => fs.writeFileSync(path.join(data, partFileName(i)), JSON.stringify(part)));
    fs.symlinkSync(path.basename(data), path.join(dir, '..data'));
    parts.forEach((_, i) => fs.symlinkSync(path.join('..data', partFileName(i)), path.join(dir, partFileName(i))));
    expect(loadCatalog(dir)).toEqual(catalog);
    const file = path.join(tmp(), 'catalog.json');
    fs.writeFileSync(file, JSON.stringify(catalog));
    expect(loadCatalog(file)).toEqual(catalog);
  });

  it('refuses a folder with a part missing or parts of two generations, listing the problem', () => {
    const catalog = synthetic({ bots: 1000, seed: 2 });
    const parts = splitCatalog(catalog, 100 * 1024);
    const missing = tmp();
    parts.slice(1).forEach((part) => fs.writeFileSync(path.join(missing, partFileName(part.part)), JSON.stringify(part)));
    expect(() => loadCatalog(missing)).toThrow(CatalogError);
    expect(() => loadCatalog(missing)).toThrow(/expected parts 0\.\.\d+ once each/);
    const mixed = tmp();
    const other = splitCatalog(synthetic({ bots: 1000, seed: 3 }), 100 * 1024);
    parts.forEach((part, i) => fs.writeFileSync(path.join(mixed, partFileName(i)), JSON.stringify(i === 1 ? other[1] : part)));
    expect(() => loadCatalog(mixed)).toThrow(/parts disagree on the generation/);
  });

  it('names the file and the problem for a missing file, bad JSON and an empty folder', () => {
    const dir = tmp();
    expect(() => loadCatalog(path.join(dir, 'nope.json'))).toThrow(/nope.json: .*file: cannot be read: ENOENT/s);
    fs.writeFileSync(path.join(dir, 'bad.json'), '{"bots": [');
    expect(() => loadCatalog(path.join(dir, 'bad.json'))).toThrow(/is not valid JSON/);
    expect(() => loadCatalog(tmp())).toThrow(/holds no \.json catalog files/);
  });
});
