/**
 * Residency: which bots an overcommitted pool keeps loaded (resident-set.ts, pure bookkeeping) and the
 * loading of the others on demand (on-demand.ts) and the warming of the set at start (warm.ts), with the few callbacks it needs of the pool's engine
 * (`ResidencyHost`) given once.
 */
export { Residency } from './resident-set';
export type { ResidentCost } from './resident-set';
export { NotLoadedError, OnDemand } from './on-demand';
export type { ResidencyHost } from './on-demand';
export { warmTasks } from './warm';
export { engineResidencyHost } from './host';
