/**
 * One unary gRPC call over `node:http2`, as the router makes them to pools: the request message sent as it
 * came (bytes), the answer's message, status and metadata read as they come back, without grpc-js's client
 * layers. Every ending is a status, as grpc-js gives it (UNAVAILABLE for a connection that failed,
 * DEADLINE_EXCEEDED, CANCELLED, ...), so that callers map them the same way.
 */
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { PoolClient } from './channels';

/** The largest answer message taken (RESOURCE_EXHAUSTED beyond), as the grpc-js client allowed. */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** How a call ended: its status and, when OK, the message; the answer's headers and trailers as they came. */
export interface UnaryOutcome {
  code: grpc.status;
  details: string;
  message?: Buffer;
  /** Response headers (none for a trailers-only answer). */
  headers: http2.IncomingHttpHeaders;
  /** Trailers, or the headers of a trailers-only answer. */
  trailers: http2.IncomingHttpHeaders;
}

/**
 * A forwarded call's cancel: the aborted flag and the one attempt in flight to end (a call's attempts run
 * one after another). An AbortController and its listener would take some microseconds on every call.
 */
export class Cancel {
  aborted = false;
  /** Called once, on the abort: set by the attempt in flight, cleared when it ends. */
  onAbort?: () => void;

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const onAbort = this.onAbort;
    this.onAbort = undefined;
    onAbort?.();
  }
}

/** An attempt's outcome; `refused`: the call never reached the server (its GOAWAY turned the stream away). */
type Attempt = UnaryOutcome & { refused?: boolean };

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

/**
 * Sends `message` to `path` with `metadata` (the call's text metadata as request headers, no pseudo-header
 * or transport header among them) and reads the answer, bounded by `deadline` (ms since epoch: sent as
 * `grpc-timeout`, and a local timer ends the call) and cancelled by `signal`. A stream the server's GOAWAY
 * refused (its max connection age) goes once more on a new connection.
 */
export async function unaryCall(client: PoolClient, path: string, message: Buffer, metadata: Readonly<Record<string, string>>, deadline: number, signal: Cancel): Promise<UnaryOutcome> {
  const first = await attempt(client, path, message, metadata, deadline, signal);
  return first.refused ? attempt(client, path, message, metadata, deadline, signal) : first;
}

/** One try: a stream on the client's session; its outcome once the stream closes, or the deadline or the caller ends it. */
function attempt(client: PoolClient, path: string, message: Buffer, metadata: Readonly<Record<string, string>>, deadline: number, signal: Cancel): Promise<Attempt> {
  const remaining = Math.ceil(deadline - Date.now());
  if (signal.aborted) return Promise.resolve(failed(grpc.status.CANCELLED, 'Call cancelled'));
  if (remaining <= 0) return Promise.resolve(failed(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
  // Object.assign, not a spread: `{ ...metadata, more }` takes microseconds in Node 20's V8, on every call.
  const headers: http2.OutgoingHttpHeaders = Object.assign(
    { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${Math.min(remaining, 99_999_999)}m` },
    metadata,
  );
  let stream: http2.ClientHttp2Stream;
  try {
    stream = client.request(headers);
  } catch (e) {
    return Promise.resolve({ ...failed(grpc.status.UNAVAILABLE, (e as Error).message), refused: true });
  }
  return new Promise((resolve) => {
    let response: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    let error: Error | undefined;
    const chunks: Buffer[] = [];
    let bytes = 0;
    let done = false;
    const finish = (outcome: Attempt) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (signal.onAbort === onAbort) signal.onAbort = undefined;
      resolve(outcome);
    };
    // Ended here: the outcome first, so that the stream's close does not make another.
    const cancel = (code: grpc.status, details: string) => {
      finish(failed(code, details));
      stream.close(NGHTTP2_CANCEL);
    };
    const timer = setTimeout(() => cancel(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'), remaining);
    const onAbort = () => cancel(grpc.status.CANCELLED, 'Call cancelled');
    signal.onAbort = onAbort;
    stream.on('response', (h) => (response = h));
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_ANSWER_BYTES + 5) return cancel(grpc.status.RESOURCE_EXHAUSTED, `Received message larger than max (${MAX_ANSWER_BYTES} bytes)`);
      chunks.push(chunk);
    });
    stream.on('trailers', (t) => (trailers = t));
    // Every failure also closes the stream: the outcome is made there.
    stream.on('error', (e) => (error = e));
    stream.on('close', () => finish(ended(stream.rstCode, response, trailers, chunks, error)));
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0; // not compressed
    prefix.writeUInt32BE(message.length, 1);
    stream.cork();
    stream.write(prefix);
    stream.end(message);
  });
}

/** The outcome of a stream that closed: the status its trailers give, else what its HTTP status or its reset says. */
function ended(rstCode: number | undefined, response: http2.IncomingHttpHeaders | undefined, trailers: http2.IncomingHttpHeaders | undefined, chunks: Buffer[], error: Error | undefined): Attempt {
  if (trailers) return answered(response ?? {}, trailers, chunks);
  if (response?.['grpc-status'] !== undefined) return answered({}, response, chunks); // trailers-only
  if (!response) {
    // No answer began: the server never took the call (refused, reset, or the connection failed).
    const details = error?.message ?? `the stream closed with code ${rstCode}`;
    return { ...failed(grpc.status.UNAVAILABLE, details), refused: rstCode === NGHTTP2_REFUSED_STREAM };
  }
  const status = Number(response[':status']);
  if (status !== 200) return { ...failed(httpCodeOf(status), `Received HTTP status code ${status}`), headers: response };
  // Headers came, no status: cut off (a connection dropped shows as a cancel) or reset by the server.
  const dropped = rstCode === NGHTTP2_CANCEL || (error !== undefined && (error as NodeJS.ErrnoException).code !== 'ERR_HTTP2_STREAM_ERROR');
  if (dropped) return { ...failed(grpc.status.UNAVAILABLE, error?.message ?? 'Connection dropped'), headers: response };
  return { ...failed(grpc.status.INTERNAL, `Received RST_STREAM with code ${rstCode} (Call ended without gRPC status)`), headers: response };
}

/** A call the server ended with a status; when OK, its one message. */
function answered(headers: http2.IncomingHttpHeaders, trailers: http2.IncomingHttpHeaders, chunks: Buffer[]): Attempt {
  const code = Number(trailers['grpc-status']);
  const known = Number.isInteger(code) && code >= 0 && code <= 16;
  const details = statusDetails(trailers['grpc-message']);
  if (!known) return { code: grpc.status.UNKNOWN, details: details || `Invalid grpc-status ${trailers['grpc-status']}`, headers, trailers };
  if (code !== grpc.status.OK) return { code, details, headers, trailers };
  const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  if (body.length === 0) return { code: grpc.status.UNIMPLEMENTED, details: 'No message received', headers, trailers };
  if (body.length < 5 || body[0] > 1) return { code: grpc.status.INTERNAL, details: 'The answer is not a gRPC message', headers, trailers };
  if (body[0] === 1) return { code: grpc.status.INTERNAL, details: 'The answer is compressed, and no compression was asked for', headers, trailers };
  const length = body.readUInt32BE(1);
  if (body.length !== 5 + length) return { code: grpc.status.INTERNAL, details: `The answer is not one message of ${length} bytes (${body.length - 5} bytes came)`, headers, trailers };
  return { code, details, message: body.subarray(5), headers, trailers };
}

/** `grpc-message`: the status details, percent-encoded on the wire. */
function statusDetails(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text?.includes('%')) return text ?? '';
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The status of an HTTP error without a gRPC status, as grpc-js maps it. */
function httpCodeOf(status: number): grpc.status {
  switch (status) {
    case 400: return grpc.status.INTERNAL;
    case 401: return grpc.status.UNAUTHENTICATED;
    case 403: return grpc.status.PERMISSION_DENIED;
    case 404: return grpc.status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504: return grpc.status.UNAVAILABLE;
    default: return grpc.status.UNKNOWN;
  }
}

function failed(code: grpc.status, details: string): UnaryOutcome {
  return { code, details, headers: {}, trailers: {} };
}

/** The first value of a header of an answer (its headers or trailers), or undefined. */
export function headerValue(headers: http2.IncomingHttpHeaders, key: string): string | undefined {
  const v = headers[key];
  return Array.isArray(v) ? v[0] : v;
}
