/** botshard's thin prediction API beside the OIP: `POST /v1/bots/{bot}/predict {"text": "..."}`, for people with curl. */
import { array, integer, number, object, string } from './json-schema';

export function predictRequest(maxTextLength: number) {
  return object({ text: string({ maxLength: maxTextLength }) }, { additionalProperties: false });
}
export interface PredictRequest {
  text: string;
}

export const Entity = object({
  name: string(),
  value: string(),
  /** Offsets in the request's text (UTF-16 code units, as JavaScript strings count). */
  start: integer(),
  end: integer(),
});
export interface Entity {
  name: string;
  value: string;
  start: number;
  end: number;
}

export const PredictResponse = object({
  bot: string(),
  intent: string(),
  confidence: number(),
  entities: array(Entity),
  pool: string(),
});
export interface PredictResponse {
  bot: string;
  intent: string;
  confidence: number;
  entities: Entity[];
  pool: string;
}
