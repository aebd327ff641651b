import { Tokenizer } from '../catalog';
import { xxh64 } from '../hash';

/** Tokenizer settings of a bot without an encoder: its head takes these ids directly. */
export const DEFAULT_TOKENIZER: Tokenizer = { kind: 'hashing', buckets: 4096, maxTokens: 64 };

const WORD = /[\p{L}\p{N}]+/gu;

/** The words of a text as the hashing tokenizer sees them: NFKC-normalised, lower-cased letters and digits. */
export function words(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(WORD) ?? [];
}

/**
 * The hashing tokenizer (kind "hashing"): the words, then the word bigrams ("w1 w2"), each hashed to
 * `1 + (xxh64(token).lo % (buckets - 1))` (0 is padding), the first `maxTokens` kept. Any language
 * can reproduce it: XXH64 of the token's UTF-8 bytes, low 32 bits.
 */
export function tokenize(text: string, tokenizer: Pick<Tokenizer, 'buckets' | 'maxTokens'>): number[] {
  const w = words(text);
  const tokens: string[] = w.slice(0, tokenizer.maxTokens);
  for (let i = 0; i + 1 < w.length && tokens.length < tokenizer.maxTokens; i++) tokens.push(`${w[i]} ${w[i + 1]}`);
  return tokens.map((t) => 1 + (xxh64(t).lo % (tokenizer.buckets - 1)));
}
