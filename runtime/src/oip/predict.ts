/** botshard's thin prediction API beside the OIP: `POST /v1/bots/{bot}/predict {"text": "..."}`, for people with curl. */
import { Static, Type } from '@sinclair/typebox';

export function predictRequest(maxTextLength: number) {
  return Type.Object({ text: Type.String({ maxLength: maxTextLength }) }, { additionalProperties: false });
}
export type PredictRequest = Static<ReturnType<typeof predictRequest>>;

export const Entity = Type.Object({
  name: Type.String(),
  value: Type.String(),
  /** Offsets in the request's text (UTF-16 code units, as JavaScript strings count). */
  start: Type.Integer(),
  end: Type.Integer(),
});
export type Entity = Static<typeof Entity>;

export const PredictResponse = Type.Object({
  bot: Type.String(),
  intent: Type.String(),
  confidence: Type.Number(),
  entities: Type.Array(Entity),
  pool: Type.String(),
});
export type PredictResponse = Static<typeof PredictResponse>;
