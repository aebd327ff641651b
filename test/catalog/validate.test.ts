import fc from 'fast-check';
import { normalizeCatalog, parseCatalog, parseMemory } from '@botshard/runtime';
import { SMALL_CATALOG_GENERATION, problemsOf, smallCatalog } from '../support/catalogs';

// Paths name each bot by index and id (`bots[0] (acme-support).id`); tests look them up by index.
const byIndex = (path: string) => path.replace(/^bots\[(\d+)\] \([^)]*\)/, 'bots[$1]');
const at = <T extends { path: string }>(problems: T[], path: string) => problems.find((p) => byIndex(p.path) === path);

describe('catalog validation', () => {
  it('accepts the small catalog and fills defaults', () => {
    const catalog = parseCatalog(smallCatalog());
    const realtime = catalog.groups[0];
    expect(realtime.fillFactor).toBe(0.75);
    expect(realtime.selector).toEqual({ realtime: true, properties: {} });
    expect(realtime.replicas).toEqual({ min: 2, max: 10 });
    expect(catalog.groups[1].timeoutMs).toBe(60000);
    expect(catalog.bots.map((b) => b.id)).toEqual(['acme-support', 'acme-vip', 'globex-batch']);
    expect(catalog.bots[2].model.memory).toBe(1.5 * 1024 * 1024);
    expect(catalog.bots[2].postprocess).toEqual({ threshold: 0, fallback: 'fallback', entities: [] });
  });

  it.each([
    ['Acme_Support', /not a DNS label/],
    ['-lead', /not a DNS label/],
    ['trail-', /not a DNS label/],
    ['a'.repeat(41), /at most 40/],
  ])('rejects bot id %s with a fix', (id, message) => {
    const input = smallCatalog();
    input.bots[0].id = id;
    const problem = at(problemsOf(input), 'bots[0].id')!;
    expect(problem.message).toMatch(message);
    expect(problem.message).toContain(JSON.stringify(id));
    expect(problem.hint).toMatch(/rename it/);
  });

  it('rejects duplicate bot ids, naming the first use', () => {
    const input = smallCatalog();
    input.bots[1].id = 'acme-support';
    expect(at(problemsOf(input), 'bots[1].id')!.message).toMatch(/duplicate bot id "acme-support", already used at bots\[0\] \(acme-support\)\.id/);
  });

  it('rejects unknown tenants and unknown fields, suggesting the likely one', () => {
    const input = smallCatalog();
    input.bots[0].tenant = 'acmee';
    input.groups[0].memroy = '1Gi';
    const problems = problemsOf(input);
    expect(at(problems, 'bots[0].tenant')!.hint).toMatch(/did you mean "acme"/);
    expect(at(problems, 'groups[0].memroy')!).toMatchObject({ message: 'is not a known field', hint: 'did you mean "memory"?' });
  });

  it.each(['40MB', '1.5 Gi', 'lots', -1, '', '1e3Mi'])('rejects memory size %p', (memory) => {
    const input = smallCatalog();
    input.bots[0].model.memory = memory;
    expect(at(problemsOf(input), 'bots[0].model.memory')!.hint).toMatch(/"40Mi", "1.5Gi"/);
  });

  it('parses memory quantities', () => {
    expect(parseMemory('40Mi')).toBe(40 * 1024 * 1024);
    expect(parseMemory('1.5Gi')).toBe(1.5 * 1024 ** 3);
    expect(parseMemory('512k')).toBe(512000);
    expect(parseMemory(1024)).toBe(1024);
    expect(parseMemory('1.5')).toBe(2);
  });

  it('takes overcommit and warm only when set (the generation of a catalog without them is unchanged), and refuses bad values', () => {
    const plain = parseCatalog(smallCatalog());
    expect('overcommit' in plain.groups[0]).toBe(false);
    expect('warm' in plain.bots[0]).toBe(false);
    // The generation of the same catalog before overcommit and warm existed.
    expect(plain.generation).toBe(SMALL_CATALOG_GENERATION);
    // warm: false is what a bot without warm gets: the same content, the same generation.
    const explicit = smallCatalog();
    explicit.bots[1].warm = false;
    expect(parseCatalog(explicit).generation).toBe(plain.generation);
    // Set, they are content: the generation changes.
    const input = smallCatalog();
    input.groups[0].overcommit = 3;
    input.bots[0].warm = true;
    input.bots[1].warm = false;
    const catalog = parseCatalog(input);
    expect(catalog.groups[0].overcommit).toBe(3);
    expect(catalog.bots[0].warm).toBe(true);
    expect('warm' in catalog.bots[1]).toBe(false);
    expect(catalog.generation).not.toBe(plain.generation);
    const bad = smallCatalog();
    bad.groups[0].overcommit = 0.5;
    bad.bots[0].warm = 'yes';
    const problems = problemsOf(bad);
    expect(at(problems, 'groups[0].overcommit')!.message).toMatch(/0\.5/);
    expect(at(problems, 'bots[0].warm')!.message).toMatch(/must be true or false, got "yes"/);
  });

  it('rejects pins to pools that do not exist', () => {
    const input = smallCatalog();
    input.bots[2].pin = 'vipp';
    const problem = at(problemsOf(input), 'bots[2].pin')!;
    expect(problem.message).toMatch(/pool "vipp", which does not exist/);
    expect(problem.hint).toMatch(/did you mean "vip"/);
  });

  it.each([
    ['(a)\\1', /backreference/],
    ['\\k<x>', /backreference/],
    ['foo(?=bar)', /lookaround/],
    ['(?<!x)y', /lookaround/],
    ['(unclosed', /not valid RE2 syntax/],
  ])('rejects regex %s naming the rule', (pattern, rule) => {
    const input = smallCatalog();
    input.bots[0].preprocess[0].pattern = pattern;
    input.bots[0].postprocess.entities[0].pattern = pattern;
    const problems = problemsOf(input);
    expect(at(problems, 'bots[0].preprocess[0].pattern')!.message).toMatch(rule);
    expect(at(problems, 'bots[0].postprocess.entities[0].pattern')!.message).toMatch(rule);
  });

  it('accepts RE2 patterns that backtracking engines find catastrophic, since RE2 runs them in linear time', () => {
    const input = smallCatalog();
    input.bots[0].preprocess[0].pattern = '(a+)+$';
    input.bots[0].postprocess.entities[0].pattern = '(a|aa)+b';
    const bot = parseCatalog(input).bots.find((b) => b.id === 'acme-support')!;
    expect([bot.preprocess[0].pattern, bot.postprocess.entities[0].pattern]).toEqual(['(a+)+$', '(a|aa)+b']);
  });

  it.each(['../secrets.onnx', 'heads/../../x.onnx', '/etc/passwd', '..\\x.onnx', 'ftp://host/x.onnx'])('rejects model path %s', (head) => {
    const input = smallCatalog();
    input.bots[0].model.head = head;
    expect(at(problemsOf(input), 'bots[0].model.head')!.message).toMatch(/escapes the model root|not a supported model location/);
  });

  it('accepts paths that stay inside the model root and s3/https URIs', () => {
    const input = smallCatalog();
    input.bots[0].model.head = 'heads/./a/../b.onnx';
    input.bots[1].model.head = 's3://models/heads/b.onnx';
    input.bots[2].model.head = 'https://models.example/heads/c.onnx';
    expect(normalizeCatalog(input).ok).toBe(true);
  });

  it('rejects a bot that matches no pool group', () => {
    const input = smallCatalog();
    input.groups[1].selector = { properties: { language: 'de' } };
    const problem = at(problemsOf(input), 'bots[1]')!;
    expect(problem.message).toMatch(/"globex-batch" .* matches no pool group/);
  });

  it('reports every problem at once', () => {
    const input = smallCatalog();
    input.bots[0].id = 'Bad Id';
    input.bots[1].tenant = 'nobody';
    input.bots[2].pin = 'missing';
    input.groups[0].memory = 'huge';
    input.encoders[0].path = '../x.onnx';
    const paths = problemsOf(input).map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['bots[0] (Bad Id).id', 'bots[1] (globex-batch).tenant', 'bots[2] (acme-vip).pin', 'groups[0].memory', 'encoders[0].path']));
  });

  it('never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withObjectString: true }), (value) => {
        const result = normalizeCatalog(value);
        // The validator's own safety net must not be what caught it.
        if (!result.ok) expect(result.problems.filter((p) => p.message.startsWith('could not be validated'))).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on catalogs with one field replaced by anything', () => {
    const paths: string[][] = [['bots', '0', 'model'], ['bots', '0', 'intents'], ['groups', '0', 'selector'], ['groups', '0', 'locality'], ['bots', '0', 'postprocess'], ['encoders', '0', 'tokenizer'], ['tenants', '0'], ['platform']];
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.anything(), (path, value) => {
        const input = smallCatalog();
        let target = input;
        for (const key of path.slice(0, -1)) target = target[key];
        target[path[path.length - 1]] = value;
        const result = normalizeCatalog(input);
        if (!result.ok) expect(result.problems.filter((p) => p.message.startsWith('could not be validated'))).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects prototype-pollution keys as unknown fields', () => {
    const input = JSON.parse(JSON.stringify(smallCatalog()).replace('"platform":{', '"platform":{"__proto__":{"polluted":true},'));
    expect(at(problemsOf(input), 'platform.__proto__')).toMatchObject({ message: 'is not a known field' });
    expect(({} as any).polluted).toBeUndefined();
  });
});
