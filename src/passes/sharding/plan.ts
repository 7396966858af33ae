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

/** One candidate `auto` considered (strategies/auto.ts), with its estimated cost in seconds. */
export interface AutoCandidate {
  /** The presets per axis, e.g. `megatron on tp` or `data on dp, megatron on tp`. */
  strategy: string;
  /** Whether the mesh's axis names allow it (an axis named after a preset's axis takes only the presets that own the name). */
  eligible: boolean;
  /** Estimated seconds per run (absent when it was not planned or does not apply). */
  cost?: { communication: number; compute: number; memory: number; total: number };
  /** Why it was not chosen without a cost: the UserError of an inapplicable preset, or why it was not planned. */
  note?: string;
}

/** How `auto` chose: the chosen candidate's strategy and every candidate in the order considered. */
export interface AutoChoice {
  chosen: string;
  candidates: AutoCandidate[];
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
  /** Strategy `auto` only: the candidates it costed and the one it chose. */
  autoChoice?: AutoChoice;
  /**
   * Set by the `pipeline` strategy (pipeline/index.ts): the graph is MPMD. Every node carries
   * node.meta `pipeline.stage` (and `pipeline.micro_batch` where it belongs to one), and a device
   * runs only the nodes of its stage (its coordinate on `axis`); values cross stages by Send/Recv.
   */
  pipeline?: PipelineInfo;
}

/** node.meta key: the pipeline stage (a decimal integer) whose devices run the node. */
export const PIPELINE_STAGE_META = 'pipeline.stage';
/** node.meta key: the micro-batch (a decimal integer) a node works on. */
export const PIPELINE_MICRO_BATCH_META = 'pipeline.micro_batch';

/** The stage a node of a pipelined plan runs on (undefined: no stage, i.e. every device). */
export function nodeStage(n: Node): number | undefined {
  const s = n.meta.get(PIPELINE_STAGE_META);
  return s === undefined ? undefined : Number(s);
}

/** What the `pipeline` strategy decided (pipeline/index.ts), for lowering, reports and schedule.json. */
export interface PipelineInfo {
  /** The mesh axis whose coordinate is the stage. */
  axis: string;
  stages: number;
  microBatches: number;
  /** The batch symbol split into micro-batches, its global size and the micro-batch size (absent when not split). */
  batch?: { symbol: string; size: number; microBatchSize: number };
  /** Estimated cost per stage (seconds, see pipeline/stages.ts) and max/min of it. */
  stageCosts: number[];
  balance: number;
  /** Per stage: its node count in one micro-batch's plan, and its first and last node. */
  stageNodes: { count: number; first: string; last: string }[];
  /** Per cut between stage s and s+1: the last node before it and the values that cross it (one micro-batch). */
  cuts: { after: string; values: string[] }[];
  /** The forward schedule: at clock c, stage s runs micro-batch c - s (GPipe/1F1B forward fill). */
  clocks: { clock: number; work: { stage: number; microBatch: number }[] }[];
}
