/**
 * npm run bench:report (the last step of npm run bench)
 *
 * Gathers bench/results/*.json into bench/results/REPORT.md: the machine, the date, the commit, the
 * headline figures (bench/figures.ts: the same text as README.md's performance block), every benchmark's
 * tables, and three hand-written SVG charts (memory-by-bots.svg, startup-by-bots.svg, isolation-p99.svg).
 * Then rewrites README.md's block between the figures markers from the same results (only when the results
 * are bench/results itself, not BENCH_RESULTS_DIR). A benchmark whose results are missing is listed as not run.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_RESULTS, loadAnchors, loadResults, renderFigures, renderReportExtras, rewriteReadme } from './figures';
import { RESULTS, ROOT, Spread, log, round } from './processes';

const readMd = (name: string): string | undefined => {
  try {
    return fs.readFileSync(path.join(RESULTS, `${name}.md`), 'utf8');
  } catch {
    return undefined;
  }
};

/** A results file the figures do not read (bench/figures.ts RESULT_NAMES), for the list of benchmarks run. */
const readJson = (name: string): any => {
  try {
    return JSON.parse(fs.readFileSync(path.join(RESULTS, `${name}.json`), 'utf8'));
  } catch {
    return undefined;
  }
};

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------- SVG charts (no library)

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const COLORS: Record<string, string> = { dedicated: '#d62728', single: '#1f77b4', sharded: '#2ca02c' };

interface Point {
  x: number;
  y: number;
  min?: number;
  max?: number;
  /** Drawn hollow and joined by a dashed line: extrapolated, not measured. */
  estimated?: boolean;
}
interface Series {
  name: string;
  color: string;
  points: Point[];
  /** Dotted line, small markers: a second measure of the same approach. */
  dotted?: boolean;
}

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out;
  }
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 4 || 1));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (hi - lo) / s <= 6) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.floor(lo / nice) * nice; v <= hi + 1e-9; v += nice) out.push(round(v, 6));
  return out;
}

const label = (v: number) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1000 ? `${v / 1000}k` : `${v}`);

export function lineChart(opts: { title: string; xLabel: string; yLabel: string; series: Series[]; xLog?: boolean; yLog?: boolean; note?: string }): string {
  const W = 640;
  const H = 400;
  const m = { l: 70, r: 185, t: 40, b: 60 };
  const pts = opts.series.flatMap((s) => s.points);
  const xs = pts.map((p) => p.x);
  const ys = pts.flatMap((p) => [p.y, p.min ?? p.y, p.max ?? p.y]).filter((v) => v > 0);
  const xt = ticks(Math.min(...xs), Math.max(...xs), !!opts.xLog);
  const yt = ticks(opts.yLog ? Math.min(...ys) : 0, Math.max(...ys), !!opts.yLog);
  const [x0, x1] = opts.xLog ? [Math.log10(Math.min(...xs)) - 0.1, Math.log10(Math.max(...xs)) + 0.1] : [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = opts.yLog ? [Math.log10(yt[0]), Math.log10(yt[yt.length - 1])] : [0, yt[yt.length - 1]];
  const X = (v: number) => m.l + (((opts.xLog ? Math.log10(v) : v) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (v: number) => H - m.b - (((opts.yLog ? Math.log10(Math.max(v, 10 ** y0)) : v) - y0) / (y1 - y0)) * (H - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(opts.title)}</text>`,
  ];
  for (const v of yt) {
    if (opts.yLog && (Math.log10(v) < y0 - 1e-9 || Math.log10(v) > y1 + 1e-9)) continue;
    out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${Y(v)}" y2="${Y(v)}" stroke="#ddd"/>`, `<text x="${m.l - 6}" y="${Y(v) + 4}" text-anchor="end">${label(v)}</text>`);
  }
  for (const v of opts.xLog ? [...new Set(xs)].sort((a, b) => a - b) : xt) {
    out.push(`<line x1="${X(v)}" x2="${X(v)}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/>`, `<text x="${X(v)}" y="${H - m.b + 16}" text-anchor="middle">${label(v)}</text>`);
  }
  out.push(
    `<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`,
    `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 22}" text-anchor="middle">${esc(opts.xLabel)}</text>`,
    `<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`,
  );
  opts.series.forEach((s, i) => {
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    for (let j = 1; j < sorted.length; j++) {
      const a = sorted[j - 1];
      const b = sorted[j];
      const dash = s.dotted ? ' stroke-dasharray="2 3"' : a.estimated || b.estimated ? ' stroke-dasharray="6 4"' : '';
      out.push(`<line x1="${X(a.x)}" y1="${Y(a.y)}" x2="${X(b.x)}" y2="${Y(b.y)}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    }
    for (const p of sorted) {
      if (p.min !== undefined && p.max !== undefined && p.max > p.min) {
        out.push(`<line x1="${X(p.x)}" x2="${X(p.x)}" y1="${Y(p.min)}" y2="${Y(p.max)}" stroke="${s.color}" stroke-width="1.5"/>`);
      }
      out.push(`<circle cx="${X(p.x)}" cy="${Y(p.y)}" r="${s.dotted ? 2.5 : 4}" fill="${p.estimated ? 'white' : s.color}" stroke="${s.color}" stroke-width="2"/>`);
    }
    const ly = m.t + 10 + i * 20;
    out.push(`<line x1="${W - m.r + 12}" x2="${W - m.r + 32}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dotted ? ' stroke-dasharray="2 3"' : ''}/>`, `<text x="${W - m.r + 38}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  if (opts.note) {
    opts.note.split('\n').forEach((line, i) => out.push(`<text x="${W - m.r + 12}" y="${m.t + 10 + opts.series.length * 20 + 12 + i * 15}" font-size="10" fill="#555">${esc(line)}</text>`));
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

export function barChart(opts: { title: string; yLabel: string; bars: Array<{ label: string; value: number; min?: number; max?: number; color: string }>; yLog?: boolean; note?: string }): string {
  const W = 640;
  const H = 400;
  const m = { l: 70, r: 20, t: 40, b: 110 };
  const vals = opts.bars.flatMap((b) => [b.value, b.min ?? b.value, b.max ?? b.value]).filter((v) => v > 0);
  const yt = ticks(opts.yLog ? Math.min(...vals) : 0, Math.max(...vals), !!opts.yLog);
  const [y0, y1] = opts.yLog ? [Math.log10(yt[0]), Math.log10(yt[yt.length - 1])] : [0, yt[yt.length - 1]];
  const Y = (v: number) => H - m.b - (((opts.yLog ? Math.log10(Math.max(v, 10 ** y0)) : v) - y0) / (y1 - y0)) * (H - m.t - m.b);
  const bw = (W - m.l - m.r) / opts.bars.length;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(opts.title)}</text>`,
  ];
  for (const v of yt) out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${Y(v)}" y2="${Y(v)}" stroke="#ddd"/>`, `<text x="${m.l - 6}" y="${Y(v) + 4}" text-anchor="end">${label(v)}</text>`);
  out.push(
    `<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`,
    `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`,
    `<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`,
  );
  opts.bars.forEach((b, i) => {
    const x = m.l + i * bw + bw * 0.15;
    const w = bw * 0.7;
    out.push(`<rect x="${x}" y="${Y(b.value)}" width="${w}" height="${H - m.b - Y(b.value)}" fill="${b.color}" opacity="0.85"/>`);
    if (b.min !== undefined && b.max !== undefined) {
      const cx = x + w / 2;
      out.push(`<line x1="${cx}" x2="${cx}" y1="${Y(b.min)}" y2="${Y(b.max)}" stroke="#000"/>`, `<line x1="${cx - 5}" x2="${cx + 5}" y1="${Y(b.min)}" y2="${Y(b.min)}" stroke="#000"/>`, `<line x1="${cx - 5}" x2="${cx + 5}" y1="${Y(b.max)}" y2="${Y(b.max)}" stroke="#000"/>`);
    }
    out.push(`<text x="${x + w / 2}" y="${Y(Math.max(b.value, b.max ?? b.value)) - 5}" text-anchor="middle" font-size="11">${b.value}</text>`);
    b.label.split('\n').forEach((line, j) => out.push(`<text x="${x + w / 2}" y="${H - m.b + 16 + j * 14}" text-anchor="middle" font-size="11">${esc(line)}</text>`));
  });
  if (opts.note) out.push(`<text x="${W / 2}" y="${H - 12}" text-anchor="middle" font-size="10" fill="#555">${esc(opts.note)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------- the report

const STRATS = ['dedicated', 'single', 'sharded'] as const;
const sp = (s: Spread | undefined) => (s ? { y: s.median, min: s.min, max: s.max } : undefined);

function main(): void {
  const results = loadResults(RESULTS);
  const anchors = loadAnchors();
  const { approaches, isolation } = results;
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain', '--', 'runtime', 'bench', 'constructs']).length > 0;
  const charts: string[] = [];

  if (approaches) {
    const series = (metric: 'rssMiB' | 'wallMs' | 'slowestReadyMs', strategies: readonly string[] = STRATS, suffix = '', dotted = false): Series[] =>
      strategies.map((s) => ({
        name: `${s}${suffix}`,
        dotted,
        color: COLORS[s],
        points: approaches.cells
          .filter((c: any) => c.strategy === s && c[metric])
          .map((c: any) => ({ x: c.bots, ...(c.measured ? sp(c[metric]) : { y: c[metric].median }), estimated: !c.measured || !!c.sampled })),
      }));
    fs.writeFileSync(
      path.join(RESULTS, 'memory-by-bots.svg'),
      lineChart({ title: 'Total memory (sum of RSS) by bot count', xLabel: 'bots (log scale)', yLabel: 'MiB (log scale)', series: series('rssMiB'), xLog: true, yLog: true, note: 'hollow, dashed: dedicated\nextrapolated from its\nmeasured RSS per\nprocess; sharded at 10k\nscaled from a sample of\nits pools; bars: min-max\nover runs' }),
    );
    fs.writeFileSync(
      path.join(RESULTS, 'startup-by-bots.svg'),
      lineChart({
        title: 'Start-up time by bot count',
        xLabel: 'bots (log scale)',
        yLabel: 'ms (log scale)',
        series: [...series('wallMs', STRATS, ', all'), ...series('slowestReadyMs', ['dedicated', 'sharded'], ', slowest', true)],
        xLog: true,
        yLog: true,
        note: 'solid: first spawn to all\nready on this machine (2\nat a time); dotted: the\nslowest process\'s own\ntime to ready (a cluster\nstarting all at once);\nhollow: scaled from a\nsample of pools; bars:\nmin-max over runs',
      }),
    );
    charts.push('![total memory by bot count](memory-by-bots.svg)', '![start-up time by bot count](startup-by-bots.svg)');
  }

  if (isolation) {
    const row = (setup: string, set: string) => isolation.rows.find((r: any) => r.setup === setup && r.set === set);
    const bars = [
      { r: row('clean', 'A'), label: 'no bad bot\n(set A)', color: '#7f7f7f' },
      { r: row('clean', 'B'), label: 'no bad bot\n(set B)', color: '#7f7f7f' },
      { r: row('single', 'A'), label: 'single, same\npool (set A)', color: COLORS.single },
      { r: row('single', 'B'), label: 'single, same\npool (set B)', color: COLORS.single },
      { r: row('sharded', 'A'), label: 'sharded, same\npool (set A)', color: COLORS.sharded },
      { r: row('sharded', 'B'), label: 'sharded, other\npool (set B)', color: COLORS.sharded },
    ].filter((b) => b.r);
    fs.writeFileSync(
      path.join(RESULTS, 'isolation-p99.svg'),
      barChart({
        title: 'Healthy-bot p99 with a misbehaving neighbour',
        yLabel: 'p99 latency, ms (log scale)',
        yLog: true,
        bars: bars.map((b) => ({ label: b.label, value: b.r.p99.median, min: b.r.p99.min, max: b.r.p99.max, color: b.color })),
        note: `slow bot flooded + a bot that failed to load; deadline ${isolation.setup.poolEnv.BOTSHARD_TIMEOUT_MS} ms; whiskers: min-max over ${isolation.setup.rounds} rounds`,
      }),
    );
    charts.push('![healthy-bot p99 with and without a misbehaving neighbour](isolation-p99.svg)');
  }

  const sources = ['approaches', 'catalog', 'cold', 'isolation', 'batching', 'scale', 'router', 'placement', 'pool', 'synth', 'rollout', 'fleet', 'memory'] as const;
  const ran = sources.map((s) => {
    const j = s === 'rollout' ? readJson(s) : results[s];
    return `| ${s} | ${j ? 'yes' : '**not run**'} | ${j ? String(j.date ?? '').slice(0, 19).replace('T', ' ') || '-' : '-'} | ${j?.seconds ?? results.run?.durations?.[s] ?? '-'} |`;
  });
  const section = (name: string) => {
    const md = readMd(name);
    if (!md) return [`## ${name}`, '', 'Not run: no results in bench/results.', ''];
    // Demote the benchmark's own headings below this report's.
    return [md.replace(/^(#+) /gm, (_, h: string) => `${h}# `).trimEnd(), ''];
  };
  const extras = renderReportExtras(results);
  const report = [
    '# botshard benchmark report',
    '',
    `Generated ${new Date().toISOString()} by \`npm run bench:report\` (\`bench/report.ts\`), commit \`${commit}\`${dirty ? ' (with uncommitted changes in runtime/, bench/ or constructs/)' : ''}.`,
    `Machine: ${os.availableParallelism()} cores (${os.cpus()[0]?.model?.trim() ?? 'unknown'}), ${round(os.totalmem() / 2 ** 30, 1)} GiB, ${os.type()} ${os.release()}, Node ${process.version}. The machine is shared and noisy: every comparison is measured in one run, alternating the contenders, with median (min-max) over several runs.`,
    '',
    '## Headlines',
    '',
    // The same text as README.md's "## Performance" block (bench/figures.ts), links relative to this folder.
    renderFigures(results, anchors, { target: 'report' }).trimEnd(),
    '',
    ...(extras ? ['### More from the same results', '', extras, ''] : []),
    ...charts.map((c) => `${c}\n`),
    '## Benchmarks in this report',
    '',
    '| benchmark | results | date | seconds |',
    '|---|---|---|---:|',
    ...ran,
    '',
    ...sources.flatMap(section),
  ].join('\n');
  fs.writeFileSync(path.join(RESULTS, 'REPORT.md'), report.replace(/\n{3,}/g, '\n\n'));
  log(`wrote ${path.join(RESULTS, 'REPORT.md')}`);

  // README.md's performance block, from the committed results only (not from a smoke run's temp folder).
  if (path.resolve(RESULTS) === path.resolve(DEFAULT_RESULTS)) {
    const file = path.join(ROOT, 'README.md');
    const before = fs.readFileSync(file, 'utf8');
    const after = rewriteReadme(before, results, anchors);
    if (after !== before) fs.writeFileSync(file, after);
    log(`${after !== before ? 'rewrote' : 'unchanged:'} the figures blocks of ${file}`);
  }
}

main();
