export { xxh64, scoreHi, scoreLo, fmix32, toHex, U64 } from './hash';
export { plan, poolFor, poolName, Pool, GroupTopology, Topology, PlanOptions, PlacementError } from './plan';
export { diffTopologies, Move, MoveReason, TopologyDiff } from './diff';
export { topologyToJson, TopologyJson } from './json';
