/**
 * HAProxy's Runtime API over its admin socket: one command per connection (the socket's
 * non-interactive mode), the answer is what HAProxy writes before it closes the connection.
 */
import * as net from 'node:net';

/** How long a command may wait for HAProxy's answer. */
export const API_TIMEOUT_MS = 10_000;

export class HaproxyApi {
  constructor(readonly socket: string) {}

  /** Sends a command; resolves with HAProxy's answer (trimmed). `payload`: lines sent after `<<`. */
  command(line: string, payload?: string[]): Promise<string> {
    const text = payload ? `${line} <<\n${payload.join('\n')}\n\n` : `${line}\n`;
    return new Promise((resolve, reject) => {
      const conn = net.connect(this.socket, () => conn.end(text));
      let out = '';
      conn.setEncoding('utf8');
      conn.setTimeout(API_TIMEOUT_MS, () => conn.destroy(new Error(`HAProxy's Runtime API (${this.socket}) did not answer "${line}" within ${API_TIMEOUT_MS / 1000} s`)));
      conn.on('data', (d) => (out += d));
      conn.on('error', reject);
      conn.on('close', () => resolve(out.trim()));
    });
  }

  /** Whether the socket answers. */
  async alive(): Promise<boolean> {
    return this.command('show info').then(
      (info) => info.includes('Pid:'),
      () => false,
    );
  }

  /**
   * Replaces a map's whole content at once (prepare, add, commit): a request sees the old map or the new
   * one, never a mix. Throws when HAProxy refuses a step.
   */
  async replaceMap(file: string, entries: ReadonlyMap<string, string>): Promise<void> {
    const prepared = await this.command(`prepare map ${file}`);
    const version = /New version created: (\d+)/.exec(prepared)?.[1];
    if (!version) throw new Error(`HAProxy refused "prepare map ${file}": ${prepared}`);
    const lines = [...entries].map(([k, v]) => `${k} ${v}`);
    // Payloads in slices: HAProxy reads a command into a buffer of tune.bufsize bytes.
    for (let i = 0; i < lines.length; i += 500) {
      const answer = await this.command(`add map @${version} ${file}`, lines.slice(i, i + 500));
      if (answer !== '') throw new Error(`HAProxy refused "add map @${version} ${file}": ${answer}`);
    }
    const committed = await this.command(`commit map @${version} ${file}`);
    if (committed !== '') throw new Error(`HAProxy refused "commit map @${version} ${file}": ${committed}`);
  }

  /** Sets one entry of a map (adds it when missing). */
  async setEntry(file: string, key: string, value: string): Promise<void> {
    const answer = await this.command(`set map ${file} ${key} ${value}`);
    if (answer === '') return;
    const added = await this.command(`add map ${file} ${key} ${value}`);
    if (added !== '') throw new Error(`HAProxy refused "add map ${file} ${key}": ${added}`);
  }

  /** A map's entries, as HAProxy holds them now. */
  async showMap(file: string): Promise<Map<string, string>> {
    const out = await this.command(`show map ${file}`);
    const entries = new Map<string, string>();
    for (const line of out.split('\n')) {
      const [, key, value] = line.split(' ');
      if (key !== undefined && value !== undefined) entries.set(key, value);
    }
    return entries;
  }
}

/** A map's file content: one `key value` line per entry. */
export function mapText(entries: ReadonlyMap<string, string>): string {
  return [...entries].map(([k, v]) => `${k} ${v}\n`).join('');
}
