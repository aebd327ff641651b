/** Memory sizes in the Kubernetes quantity notation, as integer bytes. */

const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

const QUANTITY = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/;

/** Parses `"40Mi"`, `"1.5Gi"`, `"512k"`, `"1000"` or a number of bytes; undefined when it does not parse. */
export function parseMemory(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  }
  if (typeof value !== 'string') return undefined;
  const m = QUANTITY.exec(value.trim());
  if (!m) return undefined;
  const bytes = Math.ceil(Number(m[1]) * UNITS[m[2] ?? '']);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Bytes as a short binary quantity (`"1.5Gi"`, `"40Mi"`), for people. */
export function formatMemory(bytes: number): string {
  for (const unit of ['Ti', 'Gi', 'Mi', 'Ki']) {
    const size = UNITS[unit];
    if (bytes >= size) {
      const v = bytes / size;
      return `${v >= 100 ? Math.round(v) : Number(v.toFixed(1))}${unit}`;
    }
  }
  return `${bytes}`;
}
