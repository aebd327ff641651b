/**
 * npm run bench:report (the last step of npm run bench)
 *
 * Gathers bench/results/*.json (approaches, isolation, scale, and the placement, router, pool and synth
 * benchmarks) into bench/results/REPORT.md: the machine, the date, the commit, the headline figures with
 * their spreads, every benchmark's tables, and three hand-written SVG charts (memory-by-bots.svg,
 * startup-by-bots.svg, isolation-p99.svg). A benchmark whose results are missing is listed as not run.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RESULTS, ROOT, Spread, fmt, log, round } from './processes';

const read = (name: string): any => {
  try {
    return JSON.parse(fs.readFileSync(path.join(RESULTS, `${name}.json`), 'utf8'));
  } catch {
    return undefined;
  }
};
const readMd = (name: string): string | undefined => {
  try {
    return fs.readFileSync(path.join(RESULTS, `${name}.md`), 'utf8');
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
  const approaches = read('approaches');
  const isolation = read('isolation');
  const scale = read('scale');
  const placement = read('placement');
  const router = read('router');
  const pool = read('pool');
  const synth = read('synth');
  const run = read('run');
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain', '--', 'runtime', 'bench', 'constructs']).length > 0;
  const charts: string[] = [];
  const headlines: string[] = [];

  if (approaches) {
    const cell = (bots: number, s: string) => approaches.cells.find((c: any) => c.bots === bots && c.strategy === s);
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
    const b = approaches.baseProcess;
    headlines.push(`- **Base memory of one idle pool process** (Node + fastify + onnxruntime-node, no bots): ${fmt(b.rssMiB1Worker, ' MiB')} RSS with 1 inference worker, ${fmt(b.rssMiB2Workers, ' MiB')} with 2; seed figures per instance: ${b.seeds.tensorflowMiB} MB (TensorFlow), ${b.seeds.pytorchMiB} MB (PyTorch). Idle, it uses ${fmt(b.idleCpuMsPerSecond1Worker, ' ms')} of CPU per second.`);
    const ratio = (bots: number) => approaches.ratios.find((r: any) => r.bots === bots);
    for (const bots of [100, 1000, 10000]) {
      const d = cell(bots, 'dedicated');
      const s = cell(bots, 'sharded');
      const si = cell(bots, 'single');
      if (!d || !s) continue;
      headlines.push(
        `- **Memory at ${bots.toLocaleString('en-US')} bots**: sharded ${fmt(s.rssMiB, ' MiB')} in ${s.processes} processes${s.sampled ? ` (${s.sampled.started} of them run, sum scaled)` : ''}, single ${si ? fmt(si.rssMiB, ' MiB') : 'n/a'}, dedicated ${d.measured ? fmt(d.rssMiB, ' MiB') : `~${d.rssMiB.median} MiB (extrapolated: ${d.processes} x ${cell(100, 'dedicated')?.perProcessRssMiB?.median ?? '?'} MiB per process measured)`}: dedicated needs **${ratio(bots)?.dedicatedOverSharded}x** the memory of sharded; sharded needs ${ratio(bots)?.shardedOverSingle}x the memory of single.`,
      );
    }
    const startups = [100, 1000, 10000]
      .map((bots) => {
        const parts = STRATS.map((s) => cell(bots, s)).filter((c: any) => c && c.measured).map((c: any) => `${c.strategy} ${fmt(c.wallMs, ' ms')}${c.sampled ? ' (scaled from a sample)' : ''} (slowest process ${c.slowestReadyMs.median} ms)`);
        return parts.length ? `${bots.toLocaleString('en-US')} bots: ${parts.join(', ')}` : '';
      })
      .filter(Boolean);
    headlines.push(`- **Start-up** (first spawn to all ready on 2 cores): ${startups.join('; ')}.`);
    const full = read('approaches-10k-full');
    const fullCell = full?.cells?.find((c: any) => c.bots === 10000 && c.strategy === 'sharded' && !c.sampled);
    if (fullCell) {
      headlines.push(
        `- **Sharded at 10,000 bots, every pool for real** (one run outside \`npm run bench\`, ${full.date.slice(0, 16).replace('T', ' ')}, \`approaches-10k-full.json\`): ${fullCell.processes} processes, RSS ${fullCell.rssMiB.median} MiB, all ready in ${fullCell.wallMs.median} ms on 2 cores (slowest process ${fullCell.slowestReadyMs.median} ms, ${fullCell.cpuSeconds.median} CPU s); single in the same run: ${full.cells.find((c: any) => c.bots === 10000 && c.strategy === 'single')?.rssMiB.median} MiB, ready in ${full.cells.find((c: any) => c.bots === 10000 && c.strategy === 'single')?.wallMs.median} ms.`,
      );
    }
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
    const f = (r: any) => `p50 ${fmt(r.p50, ' ms')}, p99 ${fmt(r.p99, ' ms')}, ${round((100 * r.failed) / Math.max(1, r.ok + r.failed), 1)}% failed`;
    headlines.push(
      `- **Isolation** (healthy bots while a slow bot is flooded and another failed to load): no misbehaving bot ${f(row('clean', 'B'))}; single, same pool ${f(row('single', 'B'))}; sharded, different pool ${f(row('sharded', 'B'))}; sharded, same pool ${f(row('sharded', 'A'))}.`,
    );
  }
  if (scale) {
    headlines.push(`- **Horizontal scale** (${scale.setup.bots} bots, 2 cores): ${scale.throughput.map((t: any) => `${t.pools} pool${t.pools > 1 ? 's' : ''} ${fmt(t.rps)} req/s`).join(', ')}; bots moved ${scale.moved.filter((m: any) => m.bots === scale.setup.bots && m.locality === 'none' && m.to === m.from + 1).map((m: any) => `${m.from}->${m.to} ${m.movedPct}% (optimal ${m.optimalPct}%)`).join(', ')} without locality, ${scale.moved.filter((m: any) => m.bots === scale.setup.bots && m.locality === 'encoder' && m.to === m.from + 1).map((m: any) => `${m.from}->${m.to} ${m.movedPct}%`).join(', ')} with encoder locality.`);
  }
  if (router?.headline) {
    const h = router.headline;
    const row = (key: string, label: string) => (h[`${key}ThroughputOverDirect`] !== undefined ? `${label} ${h[`${key}ThroughputOverDirect`]}x of direct (+${h[`${key}AddedP50Ms`]} ms p50)` : undefined);
    const rows = [row('router', 'Node router'), row('nodeFloor', 'minimal Node forwarder'), row('haproxyMode', 'HAProxy mode'), row('haproxy', 'plain HAProxy'), row('nginx', 'nginx')].filter(Boolean);
    headlines.push(`- **Router overhead** (direct ${h.directRequestsPerSecond} req/s): ${rows.join('; ')}.`);
  }
  const batching = read('batching');
  if (batching) {
    const h = batching.headline;
    headlines.push(`- **Batching across bots on a shared encoder** (${batching.setup.bots} bots, transformer-shaped encoders): ${h.batchingSpeedupBatch}x the throughput of unbatched runs in a non-real-time group (${h.batchedRequestsPerSecond} against ${h.unbatchedRequestsPerSecond} req/s, p99 ${h.batchingP99OverUnbatched}x); ${h.batchingAddedP50MsRealtime} ms added to a real-time group's p50 at low load.`);
  }
  const catalog = read('catalog');
  if (catalog) {
    const h = catalog.headline;
    headlines.push(`- **The catalog at fleet scale** (placement index): a pool of 110 bots in a 10,000-bot catalog ready in ${h.poolReadyMs10k} ms, ${h.poolCatalogMiB10k} MiB over a pool of its own bots (whole catalog: ${h.poolCatalogMiBWhole10k} MiB); the Node router over 100,000 bots ${h.routerRssMiB100k} MiB, a new generation applied in ${h.routerApplyMs100k} ms (whole catalog: ${h.routerApplyMsWhole100k} ms).`);
  }
  const cold = read('cold');
  if (cold) {
    const h = cold.headline;
    headlines.push(`- **Cold bots on demand** (${cold.settings.bots.toLocaleString('en-US')} bots, Zipf s = ${cold.settings.zipfS}, overcommit ${cold.settings.overcommit}): fleet memory ${h.coldMemoryOverAllLoaded}x of every bot loaded, ${h.coldHitRatePct}% of requests hit a resident bot, a cold bot's first request p99 ${h.coldFirstRequestP99Ms} ms, hits' p99 ${h.coldHotP99OverAllLoaded}x of every bot loaded; a pool ready in ${h.coldPoolReadyMs} ms (${h.allLoadedPoolReadyMs} ms with every bot loaded).`);
  }
  if (placement) {
    const big = placement.sizes?.find((s: any) => s.bots === 100000 && s.locality === 'encoder');
    const add = placement.disruption?.find((d: any) => d.locality === 'none');
    if (big) headlines.push(`- **Placement**: plan() of 100,000 bots ${round(big.planMs.median, 0)} ms (${round(big.planMs.min, 0)}-${round(big.planMs.max, 0)}), poolFor ${round(big.poolForNs, 0)} ns${add ? `; adding an 11th pool to ${add.bots.toLocaleString('en-US')} bots moves ${round(100 * add.add.moved, 2)}% (optimal ${round(100 * add.add.optimal, 2)}%, modulo hashing ${round(100 * add.add.moduloBaseline, 2)}%)` : ''}.`);
  }

  const sources = ['approaches', 'catalog', 'cold', 'isolation', 'batching', 'scale', 'router', 'placement', 'pool', 'synth'];
  const dateOf = (j: any) => j?.date ?? '';
  const ran = sources.map((s) => {
    const j = read(s);
    return `| ${s} | ${j ? 'yes' : '**not run**'} | ${j ? dateOf(j).slice(0, 19).replace('T', ' ') || '-' : '-'} | ${j?.seconds ?? run?.durations?.[s] ?? '-'} |`;
  });
  const section = (name: string) => {
    const md = readMd(name);
    if (!md) return [`## ${name}`, '', 'Not run: no results in bench/results.', ''];
    // Demote the benchmark's own headings below this report's.
    return [md.replace(/^(#+) /gm, (_, h: string) => `${h}# `).trimEnd(), ''];
  };
  const report = [
    '# botshard benchmark report',
    '',
    `Generated ${new Date().toISOString()} by \`npm run bench\` (\`bench/report.ts\`), commit \`${commit}\`${dirty ? ' (with uncommitted changes in runtime/, bench/ or constructs/)' : ''}.`,
    `Machine: ${os.availableParallelism()} cores (${os.cpus()[0]?.model?.trim() ?? 'unknown'}), ${round(os.totalmem() / 2 ** 30, 1)} GiB, ${os.type()} ${os.release()}, Node ${process.version}. The machine is shared and noisy: every comparison is measured in one run, alternating the contenders, with median (min-max) over several runs.`,
    run ? `Total time of the last \`npm run bench\` (${String(run.date).slice(0, 16).replace('T', ' ')}): ${Math.round(run.totalSeconds)} s (${Object.entries(run.durations).map(([k, v]) => `${k} ${v} s`).join(', ')})${run.loadAverage ? `; load average (1/5/15 min) ${run.loadAverage.before.join(' / ')} before, ${run.loadAverage.after.join(' / ')} after, on ${os.availableParallelism()} cores (others share this machine)` : ''}.` : '',
    '',
    '## Headlines',
    '',
    ...headlines,
    '',
    ...charts.map((c) => `${c}\n`),
    '## Benchmarks in this report',
    '',
    '| benchmark | results | date | seconds |',
    '|---|---|---|---:|',
    ...ran,
    '',
    ...sources.flatMap(section),
    synth ? '' : '',
    pool ? '' : '',
  ].join('\n');
  fs.writeFileSync(path.join(RESULTS, 'REPORT.md'), report.replace(/\n{3,}/g, '\n\n'));
  log(`wrote ${path.join(RESULTS, 'REPORT.md')}`);
}

main();
