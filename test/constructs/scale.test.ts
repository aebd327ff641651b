import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { indexFileName, loadCatalog, openCatalog, partFileName, plan } from '@botshard/runtime';
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
    const parts = maps.filter((m) => !Object.keys(m.data)[0].startsWith('index-'));
    const index = maps.filter((m) => Object.keys(m.data)[0].startsWith('index-'));
    expect(parts.map((m) => Object.keys(m.data)[0])).toEqual(parts.map((_, i) => partFileName(i)));
    expect(index.map((m) => Object.keys(m.data)[0])).toEqual(index.map((_, i) => indexFileName(i)));
    expect(index.length).toBeGreaterThan(0);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-scale-'));
    try {
      for (const m of maps) {
        const [[file, data]] = Object.entries(m.data as Record<string, string>);
        expect(Buffer.byteLength(data)).toBeLessThan(MiB);
        expect(Buffer.byteLength(JSON.stringify(m))).toBeLessThan(MiB);
        fs.writeFileSync(path.join(dir, file), data);
      }
      expect(loadCatalog(dir)).toEqual(out.catalog);
      // The router's view: the index alone plans the same pools and assignment.
      expect(plan(openCatalog(dir).index).assignment).toEqual(out.platform.topology.assignment);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    // Pools mount every part and index part (and no more than the reserve); the router only the index.
    const volume = (d: any) => d.spec.template.spec.volumes.find((v: any) => v.name === 'catalog').projected.sources.map((s: any) => s.configMap.name);
    const deployments = ofKind(out.objects, 'Deployment');
    const router = deployments.find((d) => d.metadata.labels!['app.kubernetes.io/component'] === 'router');
    const cm = out.platform.catalogConfigMaps;
    const pool = volume(deployments.find((d) => d.metadata.labels!['app.kubernetes.io/component'] === 'pool'));
    expect(pool).toEqual([...cm.volumeConfigMapNames, ...cm.indexVolumeConfigMapNames]);
    expect(maps.every((m) => pool.includes(m.metadata.name))).toBe(true);
    expect(volume(router)).toEqual(cm.indexVolumeConfigMapNames);
    expect(index.every((m) => cm.indexVolumeConfigMapNames.includes(m.metadata.name))).toBe(true);
  });
});
