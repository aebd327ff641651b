/**
 * The text pipeline of a bot around its models: RE2 pre-processing, tokenizing, post-processing. It runs
 * in the inference worker that holds the bot's head, next to the model: the HTTP thread only parses and
 * answers requests.
 */
import type RE2 from 're2';
import { Bot, Postprocess, RewriteRule, Tokenizer } from '../catalog';
import { compileRe2 } from '../catalog/regex';
import type { Entity } from '../oip';
import { DEFAULT_TOKENIZER, tokenize } from './tokenizer';

/** What a bot answers for one text. */
export interface Prediction {
  intent: string;
  confidence: number;
}

/** What a worker needs to run a bot's text pipeline: sent with the bot's head when it loads (plain data). */
export interface Processing {
  preprocess: RewriteRule[];
  postprocess: Postprocess;
  /** The intents, in the order of the head's probabilities. */
  labels: string[];
  tokenizer: Tokenizer;
}

/** A bot's pipeline settings; `tokenizer`: its encoder's (a bot without an encoder uses the default). */
export function processingOf(bot: Bot, tokenizer: Tokenizer | undefined): Processing {
  return { preprocess: bot.preprocess, postprocess: bot.postprocess, labels: bot.intents.map((i) => i.name), tokenizer: tokenizer ?? DEFAULT_TOKENIZER };
}

/** Token ids of texts as the models take them: [texts, tokens], 0-padded to the longest (at least 1). */
export interface TokenIds {
  ids: BigInt64Array;
  tokens: number;
}

/** A bot's compiled rules. RE2 only: every rule runs in time linear in the text. */
export class BotProcessor {
  private readonly rewrites: Array<{ re: RE2; replace: string }>;
  private readonly entityRules: Array<{ name: string; re: RE2 }>;

  constructor(readonly processing: Processing) {
    this.rewrites = processing.preprocess.map((r) => ({ re: compileRe2(r.pattern, `${r.flags}gu`), replace: r.replace }));
    this.entityRules = processing.postprocess.entities.map((e) => ({ name: e.name, re: compileRe2(e.pattern, `${e.flags}gud`) }));
  }

  get labels(): string[] {
    return this.processing.labels;
  }

  /** The bot's rewrite rules, in order. */
  preprocess(text: string): string {
    let out = text;
    for (const { re, replace } of this.rewrites) out = out.replace(re as unknown as RegExp, replace);
    return out;
  }

  /** Token ids of a text, after pre-processing. */
  tokens(text: string): number[] {
    return tokenize(this.preprocess(text), this.processing.tokenizer);
  }

  /** The token ids of texts, one row each. */
  ids(texts: string[]): TokenIds {
    const rows = texts.map((t) => this.tokens(t));
    const tokens = Math.max(1, ...rows.map((t) => t.length));
    const ids = new BigInt64Array(texts.length * tokens);
    rows.forEach((row, i) => row.forEach((id, j) => (ids[i * tokens + j] = BigInt(id))));
    return { ids, tokens };
  }

  /** The argmax label of a row of probabilities, or the fallback intent below the threshold. */
  decide(probabilities: Float32Array, row: number): Prediction {
    const L = this.labels.length;
    let best = 0;
    for (let j = 1; j < L; j++) if (probabilities[row * L + j] > probabilities[row * L + best]) best = j;
    const confidence = probabilities[row * L + best];
    const { threshold, fallback } = this.processing.postprocess;
    return { intent: confidence < threshold ? fallback : this.labels[best], confidence };
  }

  /** Entities found in the text (as sent, so offsets point into it): group 1 when the pattern has one, else the whole match. */
  entities(text: string): Entity[] {
    const found: Entity[] = [];
    for (const { name, re } of this.entityRules) {
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        const indices = (m as unknown as { indices: Array<[number, number] | undefined> }).indices;
        const group = m.length > 1 && m[1] !== undefined ? 1 : 0;
        const [start, end] = indices[group] ?? [m.index, m.index + m[0].length];
        found.push({ name, value: m[group], start, end });
        if (m[0].length === 0) re.lastIndex++; // an empty match must not loop forever
        if (found.length >= 100) return found;
      }
    }
    return found;
  }
}
