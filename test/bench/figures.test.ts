/**
 * README.md's performance figures have one source, bench/results/*.json (and the quoted anchors,
 * bench/anchors.json): the block between the figures markers must be exactly what bench/figures.ts renders
 * from the committed results, and REPORT.md must carry the same text. `npm run bench:report` rewrites both.
 * No build, no process: the figures module only reads files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BEGIN, END, Results, SECTION_BLOCKS, extractBlock, figuresBlock, loadAnchors, loadResults, renderFigures, replaceBlock, sectionBlock, sectionMarkers } from '../../bench/figures';

const ROOT = path.resolve(__dirname, '../..');
const results = loadResults(path.join(ROOT, 'bench/results'));
const anchors = loadAnchors(path.join(ROOT, 'bench/anchors.json'));
const copy = (r: Results): Results => JSON.parse(JSON.stringify(r));
/** The rendered text with its line wrapping undone, for phrase checks. */
const flat = (r: Results) => figuresBlock(r, anchors).replace(/\s+/g, ' ');

/** Fails with the first differing line and what to run. */
function expectSameText(actual: string, expected: string, what: string): void {
  if (actual === expected) return;
  const a = actual.split('\n');
  const e = expected.split('\n');
  let i = 0;
  while (i < Math.max(a.length, e.length) && a[i] === e[i]) i++;
  throw new Error(`${what} differs from what bench/figures.ts renders from bench/results/*.json: run npm run bench:report\nfirst difference at line ${i + 1}:\n  in the file: ${a[i] ?? '(end)'}\n  generated:   ${e[i] ?? '(end)'}`);
}

test('the README performance block is what npm run bench:report writes from bench/results/*.json', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = extractBlock(readme);
  if (block === undefined) throw new Error(`README.md has no figures block ("${BEGIN}" ... "${END}" under "## Performance"): run npm run bench:report`);
  expect(readme.indexOf(BEGIN)).toBeGreaterThan(readme.indexOf('## Performance'));
  expect(readme.indexOf(END)).toBeLessThan(readme.indexOf('## Benchmarks'));
  expectSameText(block, figuresBlock(results, anchors), "README.md's performance block");
});

test.each(SECTION_BLOCKS.map((b) => [b.name, b.section]))('the README block %s, in its section "%s", is what npm run bench:report writes', (name, section) => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = extractBlock(readme, sectionMarkers(name));
  if (block === undefined) throw new Error(`README.md has no ${name} block: run npm run bench:report`);
  const at = readme.indexOf(block);
  const heading = readme.indexOf(`\n${section}\n`);
  expect(heading).toBeGreaterThan(0);
  expect(at).toBeGreaterThan(heading);
  // Before the next heading of the same or a higher level.
  const next = readme.slice(heading + section.length + 2).search(new RegExp(`^#{1,${section.indexOf(' ')}} `, 'm'));
  expect(at).toBeLessThan(heading + section.length + 2 + next);
  expectSameText(block, sectionBlock(results, anchors, name), `README.md's ${name} block`);
  // It follows the results: without them, not measured, and no figure.
  expect(sectionBlock({}, anchors, name)).toMatch(/Not measured at a million bots \(no \w+\.json\)\./);
  expect(sectionBlock({}, anchors, name)).not.toMatch(/\d+(\.\d+)? ?(s|MiB|KiB|µs)\b/);
});

test('REPORT.md carries the same figures as the README block', () => {
  const report = fs.readFileSync(path.join(ROOT, 'bench/results/REPORT.md'), 'utf8');
  const headlines = report.slice(report.indexOf('## Headlines\n\n') + '## Headlines\n\n'.length);
  const expected = renderFigures(results, anchors, { target: 'report' }).trimEnd();
  expectSameText(headlines.slice(0, expected.length), expected, "REPORT.md's headlines");
});

test('a changed result changes the rendered figures, so the check above can fail', () => {
  const before = figuresBlock(results, anchors);
  const changed = copy(results);
  changed.router.headline.routerThroughputOverDirect = 0.123;
  const after = figuresBlock(changed, anchors);
  expect(after).not.toBe(before);
  expect(flat(changed)).toContain('the Node router 0.123 ');
  // The prose follows the numbers: a target met or short is read from the results and the anchors.
  changed.pool.headline.tinyThroughputOverFixedRoute = 0.61;
  expect(flat(changed)).toContain('`tinyThroughputOverFixedRoute` 0.61, target >= 0.5: met');
  changed.pool.headline.tinyThroughputOverFixedRoute = 0.31;
  expect(flat(changed)).toContain('`tinyThroughputOverFixedRoute` 0.31, **short of the 0.5 target**');
});

test('a missing results file or field is rendered as not measured, never guessed', () => {
  const { router: _router, ...withoutRouter } = results;
  const text = flat(withoutRouter);
  expect(text).toContain('- **Router** (`npm run bench:router`, [results](bench/results/router.md)): not measured (no router.json).');
  expect(text).toContain('- **gRPC beside REST** (`npm run bench:router`, `npm run bench:pool`): not measured (no router.json).');
  const noField = copy(results);
  delete noField.cold.headline.coldHotP99OverAllLoaded;
  expect(flat(noField)).toContain('not measured (cold.json has no headline.coldHotP99OverAllLoaded).');
  expect(figuresBlock({}, anchors)).not.toMatch(/\d+(\.\d+)? ?(ms|MiB|requests\/s)/);
});

test('quoted anchors live apart from measurements: no results file holds the seed figures', () => {
  expect(anchors.seed.perInstanceMemoryMB).toEqual({ tensorflow: 350, pytorch: 120 });
  for (const [name, r] of Object.entries(results)) expect([name, /seed|tensorflow|pytorch/i.test(JSON.stringify(r))]).toEqual([name, false]);
  expect(flat(results)).toContain("the seed's figures of 350 MB (TensorFlow) and 120 MB (PyTorch) per instance (quoted, not measured here)");
});

test('replaceBlock rewrites only what is between the markers', () => {
  const doc = `# x\n\n## Performance\n\n${BEGIN}\nold\n${END}\n\n## Benchmarks\n$& kept\n`;
  expect(replaceBlock(doc, `${BEGIN}\nnew $1\n${END}`)).toBe(`# x\n\n## Performance\n\n${BEGIN}\nnew $1\n${END}\n\n## Benchmarks\n$& kept\n`);
  expect(() => replaceBlock('# no markers\n', 'x')).toThrow(/run|markers|figures block/);
});
