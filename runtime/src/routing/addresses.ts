/** Where pools answer, REST and gRPC: templates with `{pool}` and `{namespace}`, or explicit maps (local mode). */
/** Where each pool answers: a template such as `http://{pool}.{namespace}.svc.cluster.local:8080`, or a map. */
export type PoolAddress = (pool: string) => string | undefined;

/** A template with `{pool}` (and `{namespace}`), or a function for explicit addresses (local mode). */
export function poolAddress(template: string, namespace: string): PoolAddress {
  if (!template.includes('{pool}')) throw new Error(`pool URL template ${JSON.stringify(template)} has no {pool}: write e.g. http://{pool}.{namespace}.svc.cluster.local:8080`);
  const url = new URL(template.replace('{pool}', 'pool').replace('{namespace}', namespace));
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`pool URL template ${JSON.stringify(template)} must be http:// or https://`);
  return (pool) => template.replace('{pool}', pool).replace('{namespace}', namespace).replace(/\/+$/, '');
}

/** The default gRPC port of pools (and of the router). */
export const GRPC_PORT = 8081;

/**
 * Where each pool answers gRPC (`host:port`): a template such as `{pool}.{namespace}.svc.cluster.local:8081`,
 * or the host of an HTTP pool URL template on the default gRPC port; a function (local mode) has no default.
 */
export function poolGrpcAddress(template: string | PoolAddress, namespace: string): PoolAddress {
  if (typeof template === 'function') return () => undefined;
  if (!template.includes('{pool}')) throw new Error(`pool gRPC address template ${JSON.stringify(template)} has no {pool}: write e.g. {pool}.{namespace}.svc.cluster.local:${GRPC_PORT}`);
  // `http://{pool}.{namespace}.svc.cluster.local:8080/` -> `{pool}.{namespace}.svc.cluster.local:8081`
  const hostPort = /^[a-z]+:\/\//.test(template) ? `${template.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '').replace(/:\d+$/, '')}:${GRPC_PORT}` : template;
  return (pool) => hostPort.replace('{pool}', pool).replace('{namespace}', namespace);
}
