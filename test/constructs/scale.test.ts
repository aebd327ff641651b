import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadCatalog, partFileName } from '@botshard/runtime';
import { syntheticCatalog } from '../../bench/synthetic';
import { ofKind, synthInput, validateSchema, catalogMaps } from './support';

const MiB = 1024 * 1024;

describe('scale: 20,000 synthetic bots', () => {
  const out = synthInput(syntheticCatalog({ bots: 20000, seed: 7, locality: 'encoder' }));

  it('synthesizes every pool of the plan, each object under 1 MiB and schema-valid', () => {
    expect(out.catalog.bots).toHaveLength(20000);
    const pools = ofKind(out.objects, 'Deployment').filter((d) => d.metadata.labels!['app.kubernetes.io/component'] === 'pool');
    expect(pools.map((d) => d.metadata.name)).toEqual(out.platform.topology.pools.map((p) => p.name));
    for (const obj of out.objects) {
      expect(Buffer.byteLength(JSON.stringify(obj))).toBeLessThan(MiB);
      validateSchema(obj);
    }
  });

  it('keeps every ConfigMap under 1 MiB, and the catalog read back from them equals the catalog', () => {
    const maps = catalogMaps(out.objects);
    expect(maps.length).toBeGreaterThan(1);
    expect(maps.map((m) => Object.keys(m.data)[0])).toEqual(maps.map((_, i) => partFileName(i)));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-scale-'));
    try {
      for (const m of maps) {
        const [[file, data]] = Object.entries(m.data as Record<string, string>);
        expect(Buffer.byteLength(data)).toBeLessThan(MiB);
        expect(Buffer.byteLength(JSON.stringify(m))).toBeLessThan(MiB);
        fs.writeFileSync(path.join(dir, file), data);
      }
      expect(loadCatalog(dir)).toEqual(out.catalog);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    // Pods mount every part (and no more than the reserve): the projected volume lists them all.
    const volume = ofKind(out.objects, 'Deployment')[0].spec.template.spec.volumes.find((v: any) => v.name === 'catalog');
    expect(volume.projected.sources.map((s: any) => s.configMap.name)).toEqual(maps.map((m) => m.metadata.name));
  });
});
