/**
 * npm run test:mutation [-- <Module> ...] [-- --incremental | --checker | --summarize]
 *
 * Mutation testing (Stryker): how much of the rules that matter most the unit tests would notice if they
 * broke. Each module below runs on its own: Stryker mutates only the module's files (`mutate`) and runs
 * only the module's fast unit tests (`tests`, no e2e or process-level suites), each mutant against the
 * tests that cover it (coverage analysis per test). Every mutant is type-checked: one that does not compile
 * is not counted (by default the driver checks them after the run, see MutantChecker; `--checker` has
 * Stryker's TypeScript checker check each before it runs, with the same verdicts, about 3x slower here).
 * One test runner at a time (STRYKER_CONCURRENCY=2 on an idle machine). Sandboxes go to .stryker-tmp/,
 * Stryker's reports to reports/mutation/ (both gitignored); the summary to bench/results/mutation.{json,md}.
 *
 * Score: Stryker's mutation score, (killed + timeout) / (killed + timeout + survived + no coverage);
 * mutants that do not compile are not counted. A surviving mutant is either killed by a test or listed in
 * bench/mutation-equivalent.ts with the reason no test can tell it from the original; the listed ones still
 * count as survivors in `score` (and in the headline); `scoreWithoutEquivalent` leaves them out of the
 * denominator.
 *
 * Arguments: module names (Placement, Catalog, Hash, Routing, Pool, Haproxy, Rollout; any case) run only those and
 * merge them into the existing results; `--incremental` reuses Stryker's previous results for code and
 * tests that did not change (reports/mutation/<module>.incremental.json), for iterating on tests;
 * `--summarize` runs nothing and summarises Stryker's last reports again (after editing the equivalents).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { EQUIVALENT, Equivalent, NOT_KILLED } from './mutation-equivalent';

const ROOT = path.resolve(__dirname, '..');
const RESULTS = path.join(__dirname, 'results');
const REPORTS = path.join(ROOT, 'reports/mutation');
const TEMP = '.stryker-tmp';
const STRYKER = path.join(path.dirname(require.resolve('@stryker-mutator/core/package.json', { paths: [ROOT] })), 'bin/stryker.js');
const CONCURRENCY = Number(process.env.STRYKER_CONCURRENCY ?? 1);
/**
 * `--checker`: Stryker's TypeScript checker checks each mutant before it runs. By default the driver
 * type-checks every mutant after the run instead (same verdicts; Catalog 9 min instead of 30 here).
 */
const CHECKER = process.argv.includes('--checker');
/** The type checker's project for the module being run (written by runModule; gitignored). */
const TSCONFIG = 'tsconfig.mutation.json';
/** The target: every module at least this mutation score (percent). */
const TARGET = 80;

interface Module {
  /** Files Stryker mutates (relative to the repository). */
  mutate: string[];
  /** The unit tests that run against the mutants. */
  tests: string[];
}

export const MODULES: Record<string, Module> = {
  Placement: {
    mutate: ['balance', 'diff', 'groups', 'json', 'plan', 'pools', 'warnings'].map((f) => `runtime/src/placement/${f}.ts`),
    // Not plan.test.ts, locality.test.ts or oracle.test.ts: their randomised and large-scale properties
    // take 20 to 100 s a run (a separate process too), for each of several hundred mutants.
    tests: ['test/placement/plan-rules.test.ts', 'test/placement/groups.test.ts'],
  },
  Catalog: {
    mutate: ['normalize', 'checker', 'platform', 'encoders', 'groups', 'selector', 'bots', 'references', 'problems'].map((f) => `runtime/src/catalog/${f}.ts`),
    // Not test/catalog/validate.test.ts: its property tests (500 random inputs each) cover nearly every
    // mutant and would run for each; normalize-rules checks the same rules case by case.
    tests: ['test/catalog/normalize-rules.test.ts'],
  },
  Hash: {
    mutate: ['runtime/src/hash.ts'],
    // Not test/placement/hash.test.ts: it imports the whole runtime (placement hashes at load, so every
    // mutant would be "static" and run every test), and its property tests take seconds per mutant.
    tests: ['test/placement/hash-rules.test.ts'],
  },
  Routing: {
    mutate: ['circuit', 'tenants', 'admission', 'admission-rules', 'limits', 'readiness'].map((f) => `runtime/src/routing/${f}.ts`),
    tests: ['circuit', 'circuit-rules', 'tenants-rules', 'admission-rules', 'rules', 'rule-details'].map((f) => `test/routing/${f}.test.ts`),
  },
  Pool: {
    mutate: ['scheduler', 'residency/resident-set', 'quarantine/rule', 'batcher', 'load-order', 'processors'].map((f) => `runtime/src/pool/${f}.ts`),
    // Not test/pool/residency.test.ts: its randomised scenarios take 10 to 25 s a run; residency-rules
    // checks the same rules case by case.
    tests: ['scheduler', 'scheduler-rules', 'residency-rules', 'quarantine', 'batcher', 'load-order', 'processors'].map((f) => `test/pool/${f}.test.ts`),
  },
  Haproxy: {
    mutate: ['runtime/src/haproxy/config.ts'],
    tests: ['test/haproxy/config.test.ts'],
  },
  Rollout: {
    // The rules of model rollouts: the guards, the canary split, the figures, and the catalog's candidate.
    mutate: ['runtime/src/pool/rollout/guards.ts', 'runtime/src/pool/rollout/split.ts', 'runtime/src/status/figures.ts', 'runtime/src/catalog/candidate.ts'],
    tests: ['test/pool/rollout-rules.test.ts', 'test/catalog/rollout.test.ts'],
  },
};

interface StrykerMutant {
  id: string;
  mutatorName: string;
  replacement?: string;
  status: 'Killed' | 'Survived' | 'NoCoverage' | 'Timeout' | 'CompileError' | 'RuntimeError' | 'Ignored' | 'Pending';
  location: { start: { line: number; column: number }; end: { line: number; column: number } };
}

interface StrykerReport {
  files: Record<string, { source: string; mutants: StrykerMutant[] }>;
}

interface Listed {
  file: string;
  line: number;
  mutator: string;
  original: string;
  replacement: string;
  reason?: string;
}

interface ModuleResult {
  /** When this module ran (a run of some modules keeps the others' earlier results). */
  date: string;
  files: string[];
  tests: string[];
  seconds: number;
  mutants: number;
  killed: number;
  survived: number;
  timeout: number;
  noCoverage: number;
  compileErrors: number;
  runtimeErrors: number;
  ignored: number;
  /** Percent: (killed + timeout) / (killed + timeout + survived + noCoverage). */
  score: number;
  /** Percent, the listed equivalent mutants left out of the denominator. */
  scoreWithoutEquivalent: number;
  equivalent: Listed[];
  /** Survivors (or mutants no test reaches) not listed as equivalent: with what is known when listed in NOT_KILLED. */
  survivors: Listed[];
}

const round1 = (x: number) => Math.round(x * 10) / 10;

function git(args: string[]): string {
  try {
    return spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  } catch {
    return '';
  }
}

/**
 * Type-checks one mutant: its file with the mutant's replacement, with the runtime's compiler options and
 * the overrides of Stryker's TypeScript checker (unused or unreachable code is no error), the file and
 * what it imports. The same verdict as Stryker's checker in a tenth of its time (an incremental language
 * service instead of a watch build per mutant): 392 of Catalog's 1,412 mutants either way.
 */
class MutantChecker {
  private readonly files = new Map<string, { text: string; version: number }>();
  private readonly options: ts.CompilerOptions;
  private readonly service: ts.LanguageService;

  constructor() {
    const config = ts.readConfigFile(path.join(ROOT, 'tsconfig.base.json'), ts.sys.readFile);
    // As Stryker's checker: unused code and unreachable code are no compile errors.
    this.options = { ...ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT).options, noEmit: true, allowUnreachableCode: true, noUnusedLocals: false, noUnusedParameters: false };
    const host: ts.LanguageServiceHost = {
      getScriptFileNames: () => [...this.files.keys()],
      getScriptVersion: (f) => String(this.files.get(f)?.version ?? 0),
      getScriptSnapshot: (f) => {
        const text = this.files.get(f)?.text ?? (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : undefined);
        return text === undefined ? undefined : ts.ScriptSnapshot.fromString(text);
      },
      getCurrentDirectory: () => ROOT,
      getCompilationSettings: () => this.options,
      getDefaultLibFileName: (o) => ts.getDefaultLibFilePath(o),
      fileExists: (f) => this.files.has(f) || ts.sys.fileExists(f),
      readFile: (f) => this.files.get(f)?.text ?? ts.sys.readFile(f),
      readDirectory: ts.sys.readDirectory,
      directoryExists: ts.sys.directoryExists,
      getDirectories: ts.sys.getDirectories,
    };
    this.service = ts.createLanguageService(host, ts.createDocumentRegistry());
  }

  compiles(file: string, source: string, m: StrykerMutant): boolean {
    const lines = source.split('\n');
    const offset = (p: { line: number; column: number }) => lines.slice(0, p.line - 1).reduce((n, l) => n + l.length + 1, 0) + p.column - 1;
    const text = source.slice(0, offset(m.location.start)) + (m.replacement ?? '') + source.slice(offset(m.location.end));
    const previous = this.files.get(file);
    this.files.set(file, { text, version: (previous?.version ?? 0) + 1 });
    const errors = [...this.service.getSyntacticDiagnostics(file), ...this.service.getSemanticDiagnostics(file)].filter((d) => d.category === ts.DiagnosticCategory.Error);
    this.files.set(file, { text: source, version: (previous?.version ?? 0) + 2 });
    return errors.length === 0;
  }
}

/** Whether a surviving mutant is the listed equivalent one. */
function matches(e: Equivalent, file: string, m: StrykerMutant, listed: Listed, line: string): boolean {
  const inFile = e.file.endsWith('/') ? file.startsWith(e.file) : e.file === file;
  if (!inFile || e.mutator !== m.mutatorName || oneLine(e.original) !== listed.original || oneLine(e.replacement) !== listed.replacement) return false;
  if (e.where !== undefined && !line.includes(e.where)) return false;
  if (e.before === undefined) return true;
  const prefix = line.slice(0, m.location.start.column - 1);
  return e.before.startsWith('^') ? prefix === e.before.slice(1) : prefix.endsWith(e.before);
}

/** The text a mutant replaced (its source range). */
function originalText(source: string, m: StrykerMutant): string {
  const lines = source.split('\n');
  const { start, end } = m.location;
  if (start.line === end.line) return lines[start.line - 1].slice(start.column - 1, end.column - 1);
  return [lines[start.line - 1].slice(start.column - 1), ...lines.slice(start.line, end.line - 1), lines[end.line - 1].slice(0, end.column - 1)].join('\n');
}

const oneLine = (s: string, max = 160) => {
  // Line breaks and their indentation become one space; spaces inside a line (a regex, a string) stay.
  const t = s.replace(/\s*\n\s*/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
};

function strykerConfig(name: string, mod: Module, incremental: boolean) {
  return {
    $schema: '../node_modules/@stryker-mutator/core/schema/stryker-schema.json',
    mutate: mod.mutate,
    testRunner: 'jest',
    jest: {
      projectType: 'custom',
      configFile: 'jest.config.js',
      // Only the module's unit tests, whatever else test/ holds.
      config: { testMatch: mod.tests.map((t) => `**/${t}`) },
      enableFindRelatedTests: true,
    },
    coverageAnalysis: 'perTest',
    checkers: CHECKER ? ['typescript'] : [],
    // The mutated files and what they import, not the files that import them: each mutant's type check
    // stays small (the whole runtime made the checker, not the tests, the bottleneck).
    tsconfigFile: TSCONFIG,
    typescriptChecker: { prioritizePerformanceOverAccuracy: true },
    concurrency: CONCURRENCY,
    // A busy shared machine: a slow run is not an infinite loop (Stryker's default margin is 5 s and 1.5x).
    timeoutMS: 5000,
    timeoutFactor: 2,
    dryRunTimeoutMinutes: 10,
    tempDirName: TEMP,
    // The sandbox copy needs the sources, the tests and the configs only.
    ignorePatterns: ['/dist', '/models', '/docs', '/cdk.out', '/.cache', '/coverage', '/reports', '/bench/results', '/runtime/lib', '/.ci', '*.svg'],
    reporters: ['json', 'html', 'progress', 'clear-text'],
    jsonReporter: { fileName: `reports/mutation/${name}.json` },
    htmlReporter: { fileName: `reports/mutation/${name}.html` },
    clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true, reportMutants: true },
    // No test file at all: every mutant counts as not covered (instead of Stryker failing).
    allowEmpty: mod.tests.length === 0,
    incremental,
    incrementalFile: `reports/mutation/${name}.incremental.json`,
    logLevel: 'info',
    fileLogLevel: 'off',
  };
}

function runModule(name: string, listed: Module, incremental: boolean, previous?: ModuleResult): ModuleResult {
  if (process.argv.includes('--summarize')) return summarize(name, previous?.tests ?? listed.tests, previous?.seconds ?? 0, previous?.date ?? new Date().toISOString());
  // A test file not written yet (or removed) is left out: its module's score shows it.
  const mod = { ...listed, tests: listed.tests.filter((t) => fs.existsSync(path.join(ROOT, t))) };
  for (const t of listed.tests.filter((t) => !mod.tests.includes(t))) process.stderr.write(`warning: ${t} does not exist, left out\n`);
  fs.mkdirSync(REPORTS, { recursive: true });
  fs.mkdirSync(path.join(ROOT, TEMP), { recursive: true });
  fs.writeFileSync(path.join(ROOT, TSCONFIG), `${JSON.stringify({ extends: './tsconfig.base.json', compilerOptions: { noEmit: true }, files: mod.mutate }, null, 2)}\n`);
  const configFile = path.join(ROOT, TEMP, `stryker.${name}.json`);
  fs.writeFileSync(configFile, `${JSON.stringify(strykerConfig(name, mod, incremental), null, 2)}\n`);
  process.stderr.write(`\n=== mutation: ${name} (${mod.mutate.join(', ')}) against ${mod.tests.length} test files\n`);
  const started = performance.now();
  const r = spawnSync(process.execPath, [STRYKER, 'run', configFile], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, FORCE_COLOR: '0' } });
  if (r.status !== 0) throw new Error(`stryker failed for ${name} (exit ${r.status ?? r.signal})`);
  const result = summarize(name, mod.tests, 0, new Date().toISOString());
  // The module's time: Stryker's run and the type check of its mutants.
  return { ...result, seconds: Math.round((performance.now() - started) / 1000) };
}

/** A module's result from Stryker's JSON report (reports/mutation/<name>.json). */
function summarize(name: string, tests: string[], seconds: number, date: string): ModuleResult {
  const report = JSON.parse(fs.readFileSync(path.join(REPORTS, `${name}.json`), 'utf8')) as StrykerReport;

  const count = { Killed: 0, Survived: 0, NoCoverage: 0, Timeout: 0, CompileError: 0, RuntimeError: 0, Ignored: 0, Pending: 0 };
  const equivalent: Listed[] = [];
  const survivors: Listed[] = [];
  const checker = CHECKER ? undefined : new MutantChecker();
  if (checker) process.stderr.write(`type-checking the ${Object.values(report.files).reduce((n, f) => n + f.mutants.length, 0)} mutants of ${name}\n`);
  for (const [file, { source, mutants }] of Object.entries(report.files)) {
    const rel = path.relative(ROOT, path.resolve(ROOT, file));
    for (const m of mutants) {
      // Without Stryker's checker a mutant that does not compile runs too: it is counted as the compile
      // error it is (left out of the score), as Stryker's checker would have, whether it was killed or not.
      if (checker && m.status !== 'CompileError' && m.status !== 'Ignored' && !checker.compiles(path.resolve(ROOT, file), source, m)) m.status = 'CompileError';
      count[m.status] += 1;
      if (m.status !== 'Survived' && m.status !== 'NoCoverage') continue;
      const original = originalText(source, m);
      const listed: Listed = { file: rel, line: m.location.start.line, mutator: m.mutatorName, original: oneLine(original), replacement: oneLine(m.replacement ?? '') };
      const line = source.split('\n')[m.location.start.line - 1] ?? '';
      const known = EQUIVALENT.find((e) => matches(e, rel, m, listed, line));
      const open = NOT_KILLED.find((e) => matches(e, rel, m, listed, line));
      if (known) equivalent.push({ ...listed, reason: known.reason });
      else survivors.push(open ? { ...listed, reason: open.reason } : listed);
    }
  }
  const detected = count.Killed + count.Timeout;
  const valid = detected + count.Survived + count.NoCoverage;
  return {
    date,
    files: Object.keys(report.files).map((f) => path.relative(ROOT, path.resolve(ROOT, f))).sort(),
    tests,
    seconds,
    mutants: valid,
    killed: count.Killed,
    survived: count.Survived,
    timeout: count.Timeout,
    noCoverage: count.NoCoverage,
    compileErrors: count.CompileError,
    runtimeErrors: count.RuntimeError,
    ignored: count.Ignored,
    score: valid ? round1((100 * detected) / valid) : 100,
    scoreWithoutEquivalent: valid - equivalent.length ? round1((100 * detected) / (valid - equivalent.length)) : 100,
    equivalent,
    survivors,
  };
}

function markdown(result: { date: string; commit: string; command: string; stryker: { version: string; checker: string }; headline: Record<string, number>; modules: Record<string, ModuleResult> }): string {
  const rows = Object.entries(result.modules).map(
    ([name, m]) =>
      `| ${name} | ${m.files.length} | ${m.tests.length} | ${m.mutants} | ${m.killed} | ${m.timeout} | ${m.survived} | ${m.noCoverage} | ${m.equivalent.length} | ${m.survivors.length} | **${m.score}%** | ${m.scoreWithoutEquivalent}% | ${m.seconds} |`,
  );
  const equivalents = Object.entries(result.modules).flatMap(([name, m]) =>
    m.equivalent.map((e) => `| ${name} | ${e.file}:${e.line} | ${e.mutator} | \`${e.original.replace(/\|/g, '\\|')}\` -> \`${e.replacement.replace(/\|/g, '\\|')}\` | ${e.reason} |`),
  );
  const survivors = Object.entries(result.modules).flatMap(([name, m]) =>
    m.survivors.map((e) => `| ${name} | ${e.file}:${e.line} | ${e.mutator} | \`${e.original.replace(/\|/g, '\\|')}\` -> \`${e.replacement.replace(/\|/g, '\\|')}\` | ${e.reason ?? ''} |`),
  );
  return [
    '# Mutation testing',
    '',
    `${result.date}, commit ${result.commit || 'unknown'}. Command: \`${result.command}\` (Stryker ${result.stryker.version}, jest runner, coverage per test, ${CONCURRENCY} test runner${CONCURRENCY === 1 ? '' : 's'}; type check: ${result.stryker.checker}).`,
    '',
    'Score: (killed + timeout) / (killed + timeout + survived + no coverage); mutants that do not compile are not counted. "Equivalent" survivors (no observable change: listed below with the reason) still count against the score; the last score column leaves them out.',
    '',
    `Headline: ${Object.entries(result.headline).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
    '',
    '| module | files | test files | mutants | killed | timeout | survived | no coverage | equivalent | other survivors | score | score without equivalent | seconds |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    '## Equivalent mutants',
    '',
    ...(equivalents.length ? ['| module | where | mutator | change | why no test can tell |', '|---|---|---|---|---|', ...equivalents] : ['None.']),
    '',
    ...(survivors.length ? ['## Surviving mutants neither killed nor shown equivalent', '', '| module | where | mutator | change | what is known |', '|---|---|---|---|---|', ...survivors, ''] : []),
  ].join('\n');
}

function main(): void {
  const args = process.argv.slice(2);
  const incremental = args.includes('--incremental');
  const asked = args.filter((a) => !a.startsWith('--'));
  const names = asked.length
    ? asked.map((a) => {
        const name = Object.keys(MODULES).find((k) => k.toLowerCase() === a.toLowerCase());
        if (!name) throw new Error(`unknown module "${a}": one of ${Object.keys(MODULES).join(', ')}`);
        return name;
      })
    : Object.keys(MODULES);
  const file = path.join(RESULTS, 'mutation.json');
  // Running a few modules keeps the others' last results.
  const summarizing = args.includes('--summarize');
  const previous = (asked.length || summarizing) && fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')).modules as Record<string, ModuleResult>) : {};
  // Results written before survivors had their own key called them `unexplained`.
  for (const m of Object.values(previous) as Array<ModuleResult & { unexplained?: Listed[] }>) m.survivors ??= m.unexplained ?? [];
  const modules: Record<string, ModuleResult> = { ...previous };
  for (const name of names) {
    if (summarizing && !fs.existsSync(path.join(REPORTS, `${name}.json`))) continue;
    modules[name] = runModule(name, MODULES[name], incremental, previous[name]);
    process.stderr.write(`=== ${name}: ${modules[name].score}% of ${modules[name].mutants} mutants killed in ${modules[name].seconds} s\n`);
    // Written after each module: a later module failing keeps the ones done.
    write(modules, asked.length > 0 ? names : []);
  }
}

function write(modules: Record<string, ModuleResult>, asked: string[]): void {
  const ordered = Object.fromEntries(Object.keys(MODULES).filter((k) => modules[k]).map((k) => [k, modules[k]]));
  const scores = Object.entries(ordered).map(([k, m]) => [`mutationScore${k}`, m.score] as const);
  const headline = { ...Object.fromEntries(scores), mutationScoreMin: Math.min(...scores.map(([, s]) => s)) };
  const result = {
    benchmark: 'mutation',
    date: new Date().toISOString(),
    commit: git(['rev-parse', 'HEAD']),
    command: `npm run test:mutation${asked.length ? ` -- ${asked.join(' ')}` : ''}`,
    /** The modules' run times added up (each module's own is in modules.<name>.seconds). */
    seconds: Object.values(ordered).reduce((t, m) => t + m.seconds, 0),
    machine: { cpus: os.availableParallelism(), cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown', node: process.version, loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    stryker: {
      version: require('@stryker-mutator/core/package.json').version,
      testRunner: 'jest',
      checker: CHECKER
        ? 'typescript (Stryker checks every mutant before it runs)'
        : 'none in Stryker (its checker made runs about 3x slower here); the driver type-checks every mutant afterwards and counts one that does not compile as a compile error, as the checker would',
      coverageAnalysis: 'perTest',
      concurrency: CONCURRENCY,
    },
    scoreFormula: '(killed + timeout) / (killed + timeout + survived + noCoverage), percent; compile errors excluded; listed equivalent mutants count as survivors (scoreWithoutEquivalent excludes them from the denominator)',
    target: TARGET,
    headline,
    modules: ordered,
  };
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'mutation.json'), `${JSON.stringify(result, null, 2)}\n`);
  fs.writeFileSync(path.join(RESULTS, 'mutation.md'), `${markdown(result)}\n`);
  const below = Object.entries(ordered).filter(([, m]) => m.score < TARGET);
  process.stderr.write(`mutation scores: ${Object.entries(headline).map(([k, v]) => `${k} ${v}`).join(', ')}${below.length ? `; below ${TARGET}%: ${below.map(([k]) => k).join(', ')}` : ''}\n`);
}

if (require.main === module) main();
