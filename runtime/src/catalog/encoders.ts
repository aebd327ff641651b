/** The catalog's `encoders` section: shared encoder assets, loaded once per pool whatever the number of their bots. */
import { Checker } from './checker';
import { MAX_DNS_LABEL } from './names';
import { show } from './problems';
import { Encoder } from './types';

export function normalizeEncoders(c: Checker, v: unknown): Encoder[] {
  const encoders: Encoder[] = [];
  c.array(v, 'encoders', true).forEach((e, i) => {
    const p = `encoders[${i}]`;
    const o = c.object(e, p, ['id', 'path', 'sha256', 'memory', 'tokenizer', 'dimensions'], ['id', 'path', 'memory', 'tokenizer', 'dimensions']);
    if (!o) return;
    const tp = `${p}.tokenizer`;
    const t = o.tokenizer === undefined ? undefined : c.object(o.tokenizer, tp, ['kind', 'buckets', 'maxTokens'], ['kind', 'buckets']);
    if (t && t.kind !== undefined && t.kind !== 'hashing') c.add(`${tp}.kind`, `must be "hashing", got ${show(t.kind)}`, 'use kind: "hashing"');
    const sha256 = c.sha256(o.sha256, `${p}.sha256`);
    encoders.push({
      id: c.dnsLabel(o.id, `${p}.id`, 'encoder id', MAX_DNS_LABEL),
      path: c.modelPath(o.path, `${p}.path`),
      ...(sha256 !== undefined ? { sha256 } : {}),
      memory: c.memory(o.memory, `${p}.memory`, 0),
      tokenizer: {
        kind: 'hashing',
        buckets: c.number(t?.buckets, `${tp}.buckets`, 1, { min: 1, max: 1 << 24, integer: true }),
        maxTokens: c.number(t?.maxTokens, `${tp}.maxTokens`, 64, { min: 1, max: 4096, integer: true, optional: true }),
      },
      dimensions: c.number(o.dimensions, `${p}.dimensions`, 1, { min: 1, max: 65536, integer: true }),
    });
  });
  c.unique(encoders.map((e, i) => ({ id: e.id, path: `encoders[${i}].id` })), 'encoder id');
  return encoders;
}
