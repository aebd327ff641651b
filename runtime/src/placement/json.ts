import { Topology } from './plan';

/** The stable JSON form of a topology (`botshard plan --json`). */
export interface TopologyJson {
  generation: string;
  strategy: Topology['strategy'];
  pools: Array<{
    name: string;
    group: string;
    dedicated: boolean;
    memory: { used: number; budget: number };
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
      memory: { used: p.used, budget: p.budget },
      encoders: p.encoders,
      bots: p.bots,
    })),
  };
}
