/** Request bodies as JSON, refusing what would pollute prototypes: the body parser of the server shell. */

/** A request body that is not acceptable JSON: 400. */
export class BadJsonError extends Error {
  readonly statusCode = 400;
}

/**
 * JSON.parse, refusing the keys that pollute prototypes when objects are merged later (`__proto__`,
 * `constructor.prototype`): rejected outright rather than silently dropped.
 */
export function parseJson(text: string): unknown {
  if (text.trim() === '') throw new BadJsonError('request body is empty; send a JSON object');
  try {
    return JSON.parse(text, function reviver(key, value) {
      if (key === '__proto__') throw new BadJsonError('request body uses the forbidden key "__proto__"');
      if (key === 'constructor' && value !== null && typeof value === 'object' && Object.prototype.hasOwnProperty.call(value, 'prototype')) {
        throw new BadJsonError('request body uses the forbidden key "constructor.prototype"');
      }
      return value;
    });
  } catch (e) {
    if (e instanceof BadJsonError) throw e;
    throw new BadJsonError(`malformed JSON: ${(e as Error).message}`);
  }
}
