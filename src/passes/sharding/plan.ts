/**
 * The result of sharding a graph, shared by propagation (which builds it), SPMD lowering, the
 * simulated runtime, the bundle writer and `explain`.
 *
 * The sharded graph is still the GLOBAL graph (global shapes): every value carries its layout
 * (`Value.layout`; a missing entry for an axis means R), every node carries the candidate chosen
 * per mesh axis (node.meta `sharding.<axis>` = printed candidate), and collectives are explicit
 * nodes in the `shardc.collective` domain that change a value's layout without changing its
 * global shape. Each collective node has node.meta `reason` (why it exists: which op needed which
 * layout and what it met), `from` and `to` (printed layouts).
 *
 * Collective ops (domain shardc.collective); attribute `axis` is the mesh axis name:
 *   AllReduce(x)      {axis, reduce: sum|max|min}        P(reduce) → R
 *   AllGather(x)      {axis, dim, unit}                  S(dim) → R     (concat in axis order)
 *   ReduceScatter(x)  {axis, dim, unit, reduce}          P → S(dim)
 *   AllToAll(x)       {axis, from_dim, to_dim, unit}     S(from_dim) → S(to_dim)
 *   LocalShard(x)     {axis, dim, unit}                  R → S(dim)     (local slice, no traffic)
 *   LocalPartial(x)   {axis, reduce}                     R → P(reduce)  (device 0 of the axis keeps x, others 0)
 *   Broadcast(x)      {axis, root}                       any → R from one device
 *   Send(x) / Recv()  {peer_stage, tag}                  pipeline stages (MPMD)
 * `unit` is the shard block size in elements (S(d:u)); uneven splits follow shards.ts.
 */
import { COLLECTIVE_DOMAIN, type Graph, type Node } from '../../ir/graph.js';
import type { DeviceMesh } from './mesh.js';
import type { Candidate } from './rule.js';

export { COLLECTIVE_DOMAIN };

export type CollectiveKind =
  | 'AllReduce'
  | 'AllGather'
  | 'ReduceScatter'
  | 'AllToAll'
  | 'LocalShard'
  | 'LocalPartial'
  | 'Broadcast'
  | 'Send'
  | 'Recv';

export const COLLECTIVE_KINDS: readonly CollectiveKind[] = [
  'AllReduce',
  'AllGather',
  'ReduceScatter',
  'AllToAll',
  'LocalShard',
  'LocalPartial',
  'Broadcast',
  'Send',
  'Recv',
];

/** Collectives that move data between devices (LocalShard/LocalPartial do not). */
export const COMMUNICATING: ReadonlySet<CollectiveKind> = new Set(['AllReduce', 'AllGather', 'ReduceScatter', 'AllToAll', 'Broadcast', 'Send', 'Recv']);

export function isCollective(n: Node): boolean {
  return n.domain === COLLECTIVE_DOMAIN;
}

/** One inserted collective, for reports and `explain`. */
export interface CollectiveRecord {
  node: string;
  kind: CollectiveKind;
  meshAxes: string[];
  /** The value being redistributed (its name in the original graph). */
  tensor: string;
  /** Bytes each device sends for it (estimate from the ring formulas, for reports). */
  bytes: number;
  reason: string;
  from: string;
  to: string;
}

export interface ShardPlan {
  /** The global graph with layouts and collectives. */
  graph: Graph;
  mesh: DeviceMesh;
  /** Strategy name as given (`megatron`, `data`, a spec file path, ...). */
  strategy: string;
  /** Symbol bindings used to make every shape static. */
  bindings: Record<string, number>;
  collectives: CollectiveRecord[];
  /** Why each seeded value got its layout (value name → explanation), for `explain`. */
  seeds: Map<string, string>;
  /**
   * The candidate chosen per mesh axis for each (non-collective) node of `graph`, as the rules
   * returned it (with its `local` key), for rule.localize in the SPMD lowering. When a node is
   * missing, the lowering rebuilds the candidate from the values' layouts and node.meta.
   */
  candidates?: Map<Node, Map<string, Candidate>>;
}
