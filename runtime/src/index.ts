/** @botshard/runtime: the catalog and the shared placement. Servers live in their own entry points
 * (`@botshard/runtime/pool/server`, `@botshard/runtime/router/server`) so that importing the catalog stays light. */
export * from './catalog';
export * from './placement';
export { NODE_OPTIONS, PROCESS_ENV, nodeArgs } from './node-options';
export { CONTROL_LIVE_PATH, CONTROL_READY_PATH } from './status/probes';
