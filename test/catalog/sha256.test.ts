import { normalizeCatalog, parseCatalog } from '@botshard/runtime';
import { SMALL_CATALOG_GENERATION, problemsOf, smallCatalog } from '../support/catalogs';

const DIGEST = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
// Paths name each bot by index and id (`bots[0] (acme-support).id`); tests look them up by index.
const byIndex = (path: string) => path.replace(/^bots\[(\d+)\] \([^)]*\)/, 'bots[$1]');
const at = <T extends { path: string }>(problems: T[], path: string) => problems.find((p) => byIndex(p.path) === path);

describe('model sha256 in the catalog', () => {
  it('is optional: without it the normalised catalog has no sha256 and its generation does not change', () => {
    const plain = parseCatalog(smallCatalog());
    expect(plain.bots[0].model).not.toHaveProperty('sha256');
    expect(plain.encoders[0]).not.toHaveProperty('sha256');
    // The generation of the same catalog before sha256 existed.
    expect(plain.generation).toBe(SMALL_CATALOG_GENERATION);
    // A digest is content: it changes the generation.
    const input = smallCatalog();
    input.bots[0].model.sha256 = DIGEST;
    expect(parseCatalog(input).generation).not.toBe(plain.generation);
  });

  it('is kept on heads and encoders, lower-cased, with s3:// and https:// locations', () => {
    const input = smallCatalog();
    input.bots[0].model = { ...input.bots[0].model, head: 's3://models-bucket/heads/acme-support.onnx', sha256: DIGEST.toUpperCase() };
    input.encoders[0] = { ...input.encoders[0], path: 'https://models.example.com/encoders/en.onnx', sha256: DIGEST };
    const catalog = parseCatalog(input);
    const bot = catalog.bots.find((b) => b.id === 'acme-support')!;
    expect(bot.model).toEqual({ head: 's3://models-bucket/heads/acme-support.onnx', sha256: DIGEST, memory: 8 * 1024 * 1024, encoder: 'encoder-en' });
    expect(catalog.encoders[0].sha256).toBe(DIGEST);
    // A normalised catalog reads back as itself (pools and router read this JSON).
    const again = normalizeCatalog(JSON.parse(JSON.stringify(catalog)));
    expect(again.ok && again.catalog).toEqual(catalog);
  });

  it.each([
    ['too short', DIGEST.slice(0, 63), /63 characters/],
    ['not hex', `${DIGEST.slice(0, 63)}g`, /64 characters/],
    ['a number', 42, /characters: 42$/],
    ['empty', '', /"" \(0 characters\)/],
  ])('rejects a digest that is %s, naming the value and the fix', (_what, value, message) => {
    const input = smallCatalog();
    input.bots[1].model.sha256 = value;
    const problem = at(problemsOf(input), 'bots[1].model.sha256')!;
    expect(problem.message).toMatch(/is not a SHA-256 digest of 64 hexadecimal characters/);
    expect(problem.message).toMatch(message);
    expect(problem.hint).toMatch(/sha256sum/);
  });

  it('says to drop a "sha256:" prefix', () => {
    const input = smallCatalog();
    input.encoders[0].sha256 = `sha256:${DIGEST}`;
    const problem = at(problemsOf(input), 'encoders[0].sha256')!;
    expect(problem.hint).toMatch(/drop the prefix/);
  });

  it('lists every bad digest at once, with the other problems', () => {
    const input = smallCatalog();
    input.bots[0].model.sha256 = 'abc';
    input.bots[2].model.sha256 = 'def';
    input.encoders[0].sha256 = 'xyz';
    input.bots[1].model.memory = '1MB';
    const paths = problemsOf(input).map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['encoders[0].sha256', 'bots[0] (acme-support).model.sha256', 'bots[2] (acme-vip).model.sha256', 'bots[1] (globex-batch).model.memory']));
  });

  it('is a known field: a typo gets a suggestion', () => {
    const input = smallCatalog();
    input.bots[0].model.sha265 = DIGEST;
    expect(at(problemsOf(input), 'bots[0].model.sha265')!.hint).toMatch(/did you mean "sha256"/);
  });
});
