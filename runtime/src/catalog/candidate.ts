/** A bot model's `version` and `candidate`: the new version tried beside the serving one. */
import { Checker } from './checker';
import { DEFAULT_VERSION, GUARD_DEFAULTS, SHARE_DEFAULTS } from './defaults';
import { MODEL_VERSION } from './names';
import { show } from './problems';
import { Candidate, Guards } from './types';

const CANDIDATE_FIELDS = ['version', 'head', 'sha256', 'memory', 'encoder', 'mode', 'share', 'guards'];
const MODES = ['shadow', 'canary'] as const;

/** A version label: letters, digits, ".", "_" and "-", as a URL path segment carries it. */
export function versionLabel(c: Checker, v: unknown, p: string): string {
  const s = c.string(v, p, '');
  if (s !== '' && !MODEL_VERSION.test(s)) {
    c.add(p, `${show(s)} is not a version label`, 'use up to 64 letters, digits, ".", "_" and "-", starting with a letter or digit (e.g. "2026-12-06" or "v3")');
  }
  return s;
}

/** The candidate of a model whose version is `serving`. */
export function normalizeCandidate(c: Checker, v: unknown, p: string, serving: string | undefined): Candidate | undefined {
  const o = c.object(v, p, CANDIDATE_FIELDS, ['version', 'head', 'memory', 'mode']);
  if (!o) return undefined;
  const version = versionLabel(c, o.version, `${p}.version`);
  const current = serving ?? DEFAULT_VERSION;
  if (version !== '' && version === current) {
    c.add(`${p}.version`, `is ${show(version)}, the serving version's label${serving === undefined ? ' (a model without a version is "1")' : ''}`, 'give the candidate a label of its own, e.g. the date it was trained');
  }
  const mode = MODES.includes(o.mode as never) ? (o.mode as Candidate['mode']) : 'shadow';
  if (o.mode !== undefined && mode !== o.mode) c.add(`${p}.mode`, `must be "shadow" or "canary", got ${show(o.mode)}`, '"shadow" runs copies of requests after they are answered; "canary" answers a share of them');
  const sha256 = c.sha256(o.sha256, `${p}.sha256`);
  const candidate: Candidate = {
    version,
    head: c.modelPath(o.head, `${p}.head`),
    ...(sha256 !== undefined ? { sha256 } : {}),
    memory: c.memory(o.memory, `${p}.memory`, 0),
    mode,
    share: c.number(o.share, `${p}.share`, SHARE_DEFAULTS[mode], { min: 0, max: 1, optional: true }),
    guards: guards(c, o.guards, `${p}.guards`),
  };
  if (o.encoder !== undefined) candidate.encoder = c.string(o.encoder, `${p}.encoder`, '');
  return candidate;
}

function guards(c: Checker, v: unknown, p: string): Guards {
  if (v === undefined) return { ...GUARD_DEFAULTS };
  const o = c.object(v, p, Object.keys(GUARD_DEFAULTS)) ?? {};
  const d = GUARD_DEFAULTS;
  return {
    minRequests: c.number(o.minRequests, `${p}.minRequests`, d.minRequests, { min: 1, max: 1e9, integer: true, optional: true }),
    maxErrorRate: c.number(o.maxErrorRate, `${p}.maxErrorRate`, d.maxErrorRate, { min: 0, max: 1, optional: true }),
    maxFallbackRisePp: c.number(o.maxFallbackRisePp, `${p}.maxFallbackRisePp`, d.maxFallbackRisePp, { min: 0, max: 100, optional: true }),
    minAgreementPct: c.number(o.minAgreementPct, `${p}.minAgreementPct`, d.minAgreementPct, { min: 0, max: 100, optional: true }),
    maxP99Ratio: c.number(o.maxP99Ratio, `${p}.maxP99Ratio`, d.maxP99Ratio, { min: 1, max: 1000, optional: true }),
    p99ToleranceMs: c.number(o.p99ToleranceMs, `${p}.p99ToleranceMs`, d.p99ToleranceMs, { min: 0, max: 3_600_000, optional: true }),
  };
}
