import { Topology } from './plan';

/** The stable JSON form of a topology (`botshard plan --json`). */
export interface TopologyJson {
  generation: string;
  strategy: Topology['strategy'];
  pools: Array<{
    name: string;
    group: string;
    dedicated: boolean;
    /** `capacity`: only for a pool of an overcommitted group (what placement may assign it, above its budget). */
    memory: { used: number; budget: number; capacity?: number };
    encoders: string[];
    bots: string[];
  }>;
}

export function topologyToJson(topology: Topology): TopologyJson {
  return {
    generation: topology.generation,
    strategy: topology.strategy,
    pools: topology.pools.map((p) => ({
      name: p.name,
      group: p.group,
      dedicated: p.dedicated,
      memory: { used: p.used, budget: p.budget, ...(p.capacity !== p.budget ? { capacity: p.capacity } : {}) },
      encoders: p.encoders,
      bots: p.bots,
    })),
  };
}
