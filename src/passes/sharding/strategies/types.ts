/**
 * What a strategy preset is: an annotation function that, for ONE mesh axis, returns seeds (a
 * placement for some values, each with the reason). Seeds only start propagation; every other
 * value's layout and every collective come from propagation and resharding.
 */
import type { Graph, Value } from '../../../ir/graph.js';
import type { OpRegistry } from '../../../ir/registry.js';
import type { PatternMatch } from '../../patterns.js';
import type { DeviceMesh, MeshAxis } from '../mesh.js';
import type { Seed } from '../propagate.js';

export interface StrategyContext {
  graph: Graph;
  mesh: DeviceMesh;
  /** The axis this preset annotates. */
  axis: MeshAxis;
  registry: OpRegistry;
  /** Pattern matches of the graph (patterns.ts), in graph order. */
  patterns: readonly PatternMatch[];
}

export type AxisSeeds = Map<Value, Seed>;

export interface Preset {
  name: string;
  /** The mesh axis name the preset owns (it also takes a mesh's only axis). */
  axis: string;
  /** Graph rewrites the preset needs before sharding (e.g. unfusing QKV), run once. */
  prepare?(graph: Graph): void;
  /**
   * The preset gives each coordinate of its axis a different program (pipeline stages, MPMD):
   * shardGraph hands the plan to pipeline/index.ts, every value is replicated on the axis and no
   * propagation runs there.
   */
  mpmd?: boolean;
  annotate(ctx: StrategyContext): AxisSeeds;
}
