export { xxh64, scoreHi, scoreLo, fmix32, toHex } from '../hash';
export type { U64 } from '../hash';
export { plan, poolFor, poolName, PlacementError } from './plan';
export type { Pool, GroupTopology, Topology, PlanOptions } from './plan';
export { diffTopologies, countMoves } from './diff';
export type { Move, MoveReason, TopologyDiff } from './diff';
export { topologyToJson } from './json';
export { placementWarnings } from './warnings';
export type { TopologyJson } from './json';
