/**
 * The walk over a catalog input: a `Checker` reads each value as the type it must have, reports what is
 * wrong (path, message and fix) and carries on with a fallback, so one pass finds every problem.
 */
import * as path from 'node:path';
import { parseMemory } from './memory';
import { isDnsLabel } from './names';
import { Problem, closest, show } from './problems';
import { checkRe2 } from './regex';

const PROPERTY_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const REGEX_FLAGS = /^[ims]*$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/*
 * The rules of single values, shared by the Checker (which reports what breaks them) and `plainBot`
 * (which reads a bot that breaks none without building a path).
 */

/** Letters, digits, "_", "." and "-", starting with a letter or "_". */
export function isPropertyKey(key: string): boolean {
  return PROPERTY_KEY.test(key);
}

/** RE2 flags among i, m and s. */
export function isRegexFlags(flags: unknown): flags is string {
  return typeof flags === 'string' && REGEX_FLAGS.test(flags);
}

export function isSha256(v: unknown): v is string {
  return typeof v === 'string' && SHA256.test(v);
}

/** A number within the bounds of `Checker.number`. */
export function inRange(v: unknown, opts: { min: number; max: number; integer?: boolean }): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= opts.min && v <= opts.max && (!opts.integer || Number.isInteger(v));
}

/** What is wrong with a non-empty model path: an unsupported URI, one that escapes the model root, or nothing. */
export function modelPathFault(s: string): 'location' | 'escapes' | undefined {
  if (s.includes(':') && /^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return /^(s3|https):\/\/[^/]+\/.+/.test(s) ? undefined : 'location';
  if (s.includes('\\') || path.posix.isAbsolute(s)) return 'escapes';
  // Only a ".." segment can take a normalised path out of the root.
  if (!s.includes('..')) return undefined;
  const normal = path.posix.normalize(s);
  return normal === '..' || normal.startsWith('../') ? 'escapes' : undefined;
}

/** Collects problems while walking the input; every check reports and carries on. */
export class Checker {
  readonly problems: Problem[] = [];

  add(path: string, message: string, hint: string): void {
    this.problems.push({ path, message, hint });
  }

  /** Reports a property name (of a bot or a selector) that is not letters, digits, "_", "." and "-". */
  propertyKey(key: string, path: string): void {
    if (!isPropertyKey(key)) this.add(path, `${show(key)} is not a valid property name`, 'use letters, digits, "_", "." and "-", starting with a letter or "_"');
  }

  /** An object with only the known keys; reports unknown keys (with a likely typo) and returns {} when not an object. */
  object(v: unknown, path: string, known: readonly string[], required: readonly string[] = []): Obj | undefined {
    if (!isObj(v)) {
      this.add(path, `must be an object, got ${show(v)}`, `write ${path} as { ... }`);
      return undefined;
    }
    for (const key of Object.keys(v)) {
      if (!known.includes(key)) {
        const guess = closest(key, known);
        this.add(
          `${path}.${key}`,
          `is not a known field`,
          guess ? `did you mean "${guess}"?` : `remove it; known fields are ${known.join(', ')}`,
        );
      }
    }
    for (const key of required) {
      if (!Object.prototype.hasOwnProperty.call(v, key) || v[key] === undefined) {
        this.add(`${path}.${key}`, 'is required', `add ${key} to ${path}`);
      }
    }
    return v;
  }

  array(v: unknown, path: string, optional = false): unknown[] {
    if (v === undefined && optional) return [];
    if (!Array.isArray(v)) {
      if (v !== undefined) this.add(path, `must be an array, got ${show(v)}`, `write ${path} as [ ... ]`);
      return [];
    }
    return v;
  }

  string(v: unknown, path: string, fallback: string, optional = false): string {
    if (v === undefined && optional) return fallback;
    if (typeof v !== 'string' || v.length === 0) {
      if (v !== undefined) this.add(path, `must be a non-empty string, got ${show(v)}`, `set ${path} to a string`);
      return fallback;
    }
    return v;
  }

  boolean(v: unknown, path: string, fallback: boolean, optional = false): boolean {
    if (v === undefined && optional) return fallback;
    if (typeof v !== 'boolean') {
      if (v !== undefined) this.add(path, `must be true or false, got ${show(v)}`, `set ${path} to true or false`);
      return fallback;
    }
    return v;
  }

  number(v: unknown, path: string, fallback: number, opts: { min: number; max: number; integer?: boolean; optional?: boolean }): number {
    if (v === undefined && opts.optional) return fallback;
    if (!inRange(v, opts)) {
      if (v !== undefined) {
        this.add(
          path,
          `must be ${opts.integer ? 'an integer' : 'a number'} from ${opts.min} to ${opts.max}, got ${show(v)}`,
          `set ${path} to a value in that range`,
        );
      }
      return fallback;
    }
    return v;
  }

  memory(v: unknown, path: string, fallback: number, optional = false): number {
    if (v === undefined && optional) return fallback;
    const bytes = parseMemory(v);
    if (bytes === undefined) {
      if (v !== undefined) {
        this.add(path, `is not a memory size: ${show(v)}`, 'write a quantity such as "40Mi", "1.5Gi", "512Ki" or a number of bytes');
      }
      return fallback;
    }
    return bytes;
  }

  dnsLabel(v: unknown, path: string, what: string, max: number): string {
    const s = this.string(v, path, '');
    if (s === '') return s;
    if (!isDnsLabel(s, max)) {
      const fixed = s.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^[^a-z]+/, '').replace(/-+$/, '').slice(0, max).replace(/-+$/, '');
      this.add(
        path,
        `${what} ${show(s)} is not a DNS label of at most ${max} characters (lowercase letters, digits and "-", starting with a letter and ending with a letter or digit)`,
        fixed ? `rename it, e.g. ${show(fixed)}` : 'rename it',
      );
    }
    return s;
  }

  /** The first of each duplicated id is kept; later ones are reported. */
  unique(ids: Array<{ id: string; path: string }>, what: string): void {
    this.uniqueAt(ids.length, (i) => ids[i].id, (i) => ids[i].path, what);
  }

  /** As `unique`, over `count` ids read by index (undefined: none there); a path is built only for a problem. */
  uniqueAt(count: number, idAt: (i: number) => string | undefined, pathAt: (i: number) => string, what: string): void {
    const seen = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      const id = idAt(i);
      if (id === undefined || id === '') continue;
      const first = seen.get(id);
      if (first !== undefined) {
        this.add(pathAt(i), `duplicate ${what} ${show(id)}, already used at ${pathAt(first)}`, `give each ${what} a unique value`);
      } else {
        seen.set(id, i);
      }
    }
  }

  regex(pattern: unknown, flags: unknown, path: string): { pattern: string; flags: string } {
    const p = this.string(pattern, `${path}.pattern`, '');
    let f = '';
    if (flags !== undefined) {
      if (!isRegexFlags(flags)) {
        this.add(`${path}.flags`, `must be a combination of "i", "m" and "s", got ${show(flags)}`, 'use only i (ignore case), m (multi-line) and s (dot matches newline)');
      } else {
        f = flags;
      }
    }
    if (p !== '') {
      const why = checkRe2(p, f);
      if (why) this.add(`${path}.pattern`, `${show(p)} ${why}`, 'rewrite the pattern without that construct (see https://github.com/google/re2/wiki/Syntax)');
    }
    return { pattern: p, flags: f };
  }

  /** An optional SHA-256 digest of a model file, lower-cased; undefined when absent or invalid (reported). */
  sha256(v: unknown, p: string): string | undefined {
    if (v === undefined) return undefined;
    if (!isSha256(v)) {
      const hint = typeof v === 'string' && /^sha256[:-]/i.test(v)
        ? `drop the prefix: write only the 64 hex characters`
        : 'write the 64 hex characters that `sha256sum FILE` prints (or remove sha256 to skip verification)';
      const got = typeof v === 'string' ? `${show(v)} (${v.length} characters)` : show(v);
      this.add(p, `is not a SHA-256 digest of 64 hexadecimal characters: ${got}`, hint);
      return undefined;
    }
    return v.toLowerCase();
  }

  modelPath(v: unknown, p: string): string {
    const s = this.string(v, p, '');
    if (s === '') return s;
    const fault = modelPathFault(s);
    if (fault === 'location') {
      this.add(p, `${show(s)} is not a supported model location`, 'use a path relative to the model root, or an s3://bucket/key or https://host/path URI');
    } else if (fault === 'escapes') {
      this.add(p, `${show(s)} escapes the model root`, 'use a relative path inside platform.modelRoot, without "../" or a leading "/"');
    }
    return s;
  }
}
