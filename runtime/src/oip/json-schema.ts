/**
 * A few builders of JSON Schema (draft 7, what fastify's ajv and fast-json-stringify read) for the
 * protocol's schemas. They replace TypeBox, whose modules every pool and router loaded at start-up for
 * this alone (docs/pool.md, "Memory of a pool process"). Each schema's TypeScript type is written beside
 * it (schemas.ts, predict.ts): keep the two in step; test/oip/schemas.test.ts checks what the schemas
 * accept and refuse as the servers read them.
 */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** A property an object schema does not require. */
const OPTIONAL = Symbol('optional');
type Optional = JsonSchema & { readonly [OPTIONAL]: true };

export const string = (options: { maxLength?: number } = {}): JsonSchema => ({ type: 'string', ...options });
export const number = (): JsonSchema => ({ type: 'number' });
export const integer = (options: { minimum?: number; maximum?: number } = {}): JsonSchema => ({ type: 'integer', ...options });
export const boolean = (): JsonSchema => ({ type: 'boolean' });
/** Any value. */
export const unknown = (): JsonSchema => ({});
export const literal = (value: string | number): JsonSchema => ({ const: value, type: typeof value });
export const anyOf = (schemas: JsonSchema[]): JsonSchema => ({ anyOf: schemas });
export const array = (items: JsonSchema, options: { minItems?: number; maxItems?: number } = {}): JsonSchema => ({ type: 'array', items, ...options });
/** An array of exactly these items, in this order. */
export const tuple = (items: JsonSchema[]): JsonSchema => ({ type: 'array', items, additionalItems: false, minItems: items.length, maxItems: items.length });
/** An object whose every property's value matches `values`. */
export const record = (values: JsonSchema): JsonSchema => ({ type: 'object', patternProperties: { '^(.*)$': values } });
export const optional = (schema: JsonSchema): Optional => ({ ...schema, [OPTIONAL]: true });

/** An object with these properties, all required but those marked `optional`; other properties are allowed unless `additionalProperties: false`. */
export function object(properties: Record<string, JsonSchema>, options: { additionalProperties?: false } = {}): JsonSchema {
  const required = Object.keys(properties).filter((k) => !(OPTIONAL in properties[k]));
  return { type: 'object', properties, ...(required.length > 0 ? { required } : {}), ...options };
}
