/**
 * Open Inference gRPC in HAProxy (2.6+): a frontend on the gRPC port (HTTP/2 without TLS) that reads the
 * bot from the request message (field 1 of ModelInferRequest, ModelReadyRequest and ModelMetadataRequest:
 * `model_name` / `name`), applies the admission rules REST applies (checks.ts), and sends the message as
 * it came to the pool's gRPC port through the same bots map: a move flips both protocols at once. A
 * refusal is a trailers-only answer (`grpc-status`, `grpc-message`, `retry-after` and
 * `grpc-retry-pushback-ms` where due). Health and server metadata go to the control plane, which knows
 * whether the catalog is applied; HAProxy cannot write trailers after a message body itself.
 */
import { ProtocolError } from '../oip';
import { MODEL_METHODS, grpcCodeOf, methodPath } from '../oip/grpc';
import { AdmissionRule } from '../routing/admission-rules';
import { admissionLines } from './checks';
import type { Backend, ConfigInput, files } from './input';

/** The gRPC frontend's name (pool backends are named after pools, which never hold "_"). */
export const GRPC_FRONTEND = 'botshard_grpc';
/** The backend of the control plane's gRPC endpoint. */
const CONTROL_BACKEND = 'botshard_control';

/** The gRPC backend of a pool. */
export function grpcBackendOf(pool: string): string {
  return `grpc.${pool}`;
}

/** `"text"` as one HAProxy argument (log-format: `%[...]` samples stay samples). */
function quoted(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Headers of a gRPC status: its code and message, and retry advice when the rule gives one. */
function statusHeaders(code: number, message: string, headers: Array<[string, string]>): string {
  const retry = headers.find(([k]) => k === 'retry-after')?.[1];
  const more = [...headers, ...(retry !== undefined ? [['grpc-retry-pushback-ms', String(Number(retry) * 1000)]] : [])];
  return [`hdr grpc-status ${code}`, `hdr grpc-message ${quoted(message)}`, ...more.map(([k, v]) => `hdr ${k} ${quoted(v)}`)].join(' ');
}

/** A rule's gRPC code: the one the Node router answers for the same refusal. */
function codeOf(rule: AdmissionRule): number {
  return grpcCodeOf(new ProtocolError(rule.status, '', { overloaded: rule.overloaded }));
}

/** HAProxy's own failures of a gRPC request, as gRPC statuses (HAProxy keeps their HTTP status; the frontend sets 200). */
function grpcErrors(which: Array<[number, number, string]>): string[] {
  return which.map(([status, code, message]) => `  http-error status ${status} ${statusHeaders(code, message, status === 503 ? [['retry-after', '1']] : [])}`);
}

/**
 * `grpc-timeout` (digits and a unit: H, M, S, m, u, n) as milliseconds in `txn.deadline`, at least 1: the
 * pool backend's server timeout is cut to it, so a call past its deadline ends at HAProxy too.
 */
function deadlineLines(only: string): string[] {
  const units: Array<[string, string]> = [['H', 'mul(3600000)'], ['M', 'mul(60000)'], ['S', 'mul(1000)'], ['m', 'add(0)'], ['u', 'div(1000),add(1)'], ['n', 'div(1000000),add(1)']];
  return units.map(([unit, scale]) => `  http-request set-var(txn.deadline) req.hdr(grpc-timeout),regsub(${unit}$,),${scale} if ${only} { req.hdr(grpc-timeout) -m reg ^[0-9]{1,8}${unit}$ }`);
}

export function grpcFrontend(c: ConfigInput, f: ReturnType<typeof files>): string[] {
  const only = 'model_method';
  const refuse = (rule: AdmissionRule, message: string, headers: Array<[string, string]>, condition: string) => `  http-request return status 200 ${statusHeaders(codeOf(rule), message, headers)} ${condition}`;
  return [
    `frontend ${GRPC_FRONTEND}`,
    `  bind ${c.host}:${c.grpcPort} proto h2`,
    // The message is read for its field 1 (the first bytes: a large message need not fit the buffer).
    '  option http-buffer-request',
    '  http-request set-header x-request-id %[uuid] unless { req.hdr(x-request-id) -m reg ^[A-Za-z0-9._:-]{1,128}$ }',
    '  http-request set-var(txn.request_id) req.hdr(x-request-id)',
    '  http-after-response set-header x-request-id %[var(txn.request_id)]',
    `  acl ${only} path ${MODEL_METHODS.map(methodPath).join(' ')}`,
    ...deadlineLines(only),
    // The 5-byte gRPC prefix, then the message's field 1.
    ...admissionLines(c, f, { bot: 'req.body,bytes(5),protobuf(1)', only, refuse }),
    // HAProxy's own errors carry a gRPC status: they answer 200, as gRPC wants, with the content type.
    '  http-after-response set-status 200 if { res.hdr(grpc-status) -m found }',
    '  http-after-response set-header content-type application/grpc if { res.hdr(grpc-status) -m found } !{ res.hdr(content-type) -m found }',
    ...grpcErrors([
      [400, 13, 'bad request'],
      [408, 4, 'the request was not received in time'],
      [503, 14, 'no pool can take this request now (not ready, or at its concurrency limit); retry later'],
    ]),
    `  use_backend ${CONTROL_BACKEND} unless ${only}`,
    `  use_backend ${grpcBackendOf('%[var(txn.pool)]')}`,
    '',
  ];
}

/** A host:port for a server line (IPv6 in brackets). */
function hostPort(address: string): { host: string; port: number; line: string } {
  const u = new URL(`http://${address}`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return { host, port: Number(u.port), line: `${host.includes(':') ? `[${host}]` : host}:${u.port}` };
}

/** A pool's gRPC address as HAProxy takes it. */
export function grpcServerAddress(address: string): { host: string; port: number } {
  const { host, port } = hostPort(address);
  return { host, port };
}

/**
 * A pool's gRPC backend: its server is up exactly when the pool's REST server is (`track`: one health check,
 * on readiness), connections are kept and multiplexed, and the caller's deadline cuts the server timeout.
 */
export function grpcBackend(b: Backend): string[] {
  const timeout = b.timeoutMs + 1000;
  const where = b.grpc ? hostPort(b.grpc).line : '127.0.0.1:1 disabled';
  return [
    `backend ${grpcBackendOf(b.pool)}`,
    `  timeout server ${timeout}`,
    `  http-request set-timeout server var(txn.deadline) if { var(txn.deadline) -m found } { var(txn.deadline) -m int lt ${timeout} }`,
    ...grpcErrors([
      [502, 14, 'the pool answered with an invalid response'],
      [503, 14, 'no pool can take this request now (not ready, or at its concurrency limit); retry later'],
      [504, 4, 'the pool did not answer in time'],
    ]),
    `  server ${b.pool} ${where} proto h2 track ${b.pool}/${b.pool} maxconn ${b.maxconn} init-addr last,libc,none`,
    '',
  ];
}

/** The control plane's gRPC endpoint: health (gRPC's and the protocol's) and server metadata. */
export function controlBackend(c: ConfigInput): string[] {
  return [
    `backend ${CONTROL_BACKEND}`,
    ...grpcErrors([[503, 14, "the router's control plane does not answer; HAProxy keeps routing the catalog it has"]]),
    `  server control ${hostPort(c.controlGrpc).line} proto h2`,
    '',
  ];
}
