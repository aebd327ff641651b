/**
 * Which group holds a bot (runtime/src/placement/groups.ts), and its agreement with the catalog's check
 * that every unpinned bot has a group (runtime/src/catalog/references.ts, through normalizeCatalog).
 */
import { normalizeCatalog } from '@botshard/runtime/catalog';
import { groupOf } from '@botshard/runtime/placement/groups';

const bot = (o: { realtime?: boolean; properties?: Record<string, string | number | boolean>; pin?: string } = {}) => ({ id: 'b', tenant: 't', realtime: o.realtime ?? true, properties: o.properties ?? {}, model: { head: 'h', memory: 1 }, ...(o.pin ? { pin: o.pin } : {}) });

test('groupOf: the group of a pinned bot\'s pool, else the first group whose selector matches', () => {
  const groups = [
    { name: 'a', selector: { realtime: false, properties: {} }, dedicatedPools: ['p1'] },
    { name: 'b', selector: { properties: {} }, dedicatedPools: ['p2'] },
    { name: 'c', selector: { properties: {} }, dedicatedPools: [] },
  ] as any;
  expect(groupOf({ groups }, bot({ realtime: true }))!.name).toBe('b');
  expect(groupOf({ groups }, bot({ realtime: false }))!.name).toBe('a');
  expect(groupOf({ groups }, bot({ realtime: true, pin: 'p1' }))!.name).toBe('a');
  expect(groupOf({ groups }, bot({ pin: 'p3' }))).toBeUndefined();
  expect(groupOf({ groups: [] }, bot())).toBeUndefined();
});

test('an unpinned bot is refused by the catalog exactly when groupOf finds it no group', () => {
  const groups = [
    { name: 'en', realtime: true, memory: '1Gi', selector: { properties: { lang: 'en' } } },
    { name: 'batch', realtime: false, memory: '1Gi', selector: { realtime: false, properties: { tier: ['gold', 'silver'] } } },
  ];
  const cases: Array<{ realtime: boolean; properties: Record<string, string> }> = [
    { realtime: true, properties: { lang: 'en' } },
    { realtime: true, properties: { lang: 'de' } },
    { realtime: false, properties: { lang: 'en' } },
    { realtime: false, properties: { tier: 'gold' } },
    { realtime: false, properties: { tier: 'bronze' } },
    { realtime: true, properties: { tier: 'gold' } },
    { realtime: false, properties: {} },
  ];
  for (const c of cases) {
    const input = {
      tenants: [{ id: 't' }],
      groups,
      bots: [{ id: 'b', tenant: 't', realtime: c.realtime, properties: c.properties, model: { head: 'h.onnx', memory: '1Mi' }, intents: [{ name: 'x' }] }],
    };
    const result = normalizeCatalog(input);
    const refused = !result.ok && result.problems.some((p) => p.message.includes('matches no pool group'));
    const normalizedGroups = normalizeCatalog({ ...input, bots: [] });
    expect(normalizedGroups.ok).toBe(true);
    const held = groupOf(normalizedGroups.ok ? normalizedGroups.catalog : { groups: [] }, bot(c));
    expect({ ...c, refused }).toEqual({ ...c, refused: held === undefined });
  }
  // Both outcomes occur among the cases: the comparison above cannot pass by always agreeing on one.
  expect(cases.map((c) => normalizeCatalog({ tenants: [{ id: 't' }], groups, bots: [{ id: 'b', tenant: 't', ...c, model: { head: 'h.onnx', memory: '1Mi' }, intents: [{ name: 'x' }] }] }).ok)).toEqual([true, false, true, true, false, false, false]);
});
