/**
 * Pipeline parallelism (strategy `pipeline`, MPMD): the layers of a model in P stages along one
 * mesh axis (pp, or a mesh's only axis), micro-batches flowing through them, Send/Recv between
 * stages, and a forward schedule that keeps the stages busy.
 *
 * 1. Micro-batches (micro-batches.ts). The batch is the symbolic dim 0 shared by the graph inputs
 *    (`batch`); its size B must be bound (--dim batch=B). M micro-batches (ShardOptions.
 *    microBatches; default the largest M ≤ min(P, B) dividing B and leaving micro-batches the
 *    data-parallel axes split evenly) must divide B. The model is bound with batch = B/M and
 *    planned ONCE for one micro-batch by shardGraph's usual path, the stage axis excluded (every
 *    value replicated on it, no propagation there): the other axes are sharded per stage by their
 *    own presets and propagation (`pp=2,tp=2`: megatron on tp; `pp=2,dp=2`: data on dp), so every
 *    stage's collectives are those of the same plan. Micro-batching assumes the samples of a
 *    batch are independent (true of inference models; `shardc verify` checks it).
 * 2. Stages (stages.ts). The micro-batch plan's nodes, in their topological order, are cut into P
 *    contiguous stages: each node costs its flops plus the bytes of the weights it first reads
 *    and of what it writes; cuts are taken where the fewest activations cross (the residual
 *    stream at transformer layer boundaries), balancing the largest stage cost exactly (DP on
 *    prefix sums). A weight lives only on the stages whose nodes read it (lowering drops the
 *    others), so a device of stage s holds only stage s's weights (a tied embedding/LM head is
 *    held by both of its stages). plan.pipeline records the stage costs and their max/min ratio.
 * 3. Stage programs (programs.ts). The global plan graph holds M copies of the micro-batch plan
 *    (`<name>.mb<i>`, weights shared). A value produced on stage s and read on stage t > s
 *    travels by Send (on s, right after its producer) and Recv (on t, right before its first
 *    reader), one pair per micro-batch, in domain shardc.collective with attributes
 *    {axis, peer_stage, tag} (Recv also {dtype, shape}); the lowering pairs devices with the same
 *    coordinates on the other axes (peer = the device of stage peer_stage in the device's group
 *    along the stage axis). Each Send/Recv has a reason (which value, which producer, which
 *    reader). Graph inputs are fed to every stage that reads them; a batch input is split into
 *    micro-batches on each such stage (Split along dim 0; when a data-parallel axis splits the
 *    batch into F blocks, micro-batch i takes the i-th slice of every block through a
 *    [F, M·b/F, ...] view, so the split stays local to each device). Graph outputs are merged on
 *    the stage that produces them (Concat of the micro-batches along dim 0, through the same view
 *    when split); an output that does not depend on the batch is taken from micro-batch 0. Only
 *    that stage's devices hold a graph output: the simulated runtime assembles the global outputs
 *    from them (src/targets/cpu/spmd.ts).
 * 4. Schedule (schedule.ts). Stage s runs micro-batch i at clock i + s (GPipe / 1F1B forward
 *    fill); each stage's program lists its micro-batches in that order, so a runtime that starts
 *    a Recv as soon as its message arrives overlaps the stages. schedule.json gives each step its
 *    stage, micro-batch and clock, and the clock table.
 * 5. The micro-batch loop is compiled into the stage programs (unrolled; weights shared), so a
 *    device program is an ordinary graph: runSpmd, the bundle and `shardc run` need no pipeline
 *    knowledge beyond Send/Recv and outputs held by some devices only.
 *
 * A graph whose batch is already bound (no symbolic dim 0 left, e.g. the copies `auto` plans)
 * runs as one micro-batch. Not supported (UserErrors): nodes with subgraphs; a batch-dependent
 * output without the batch on dim 0 when M > 1; inputs with different symbolic dims 0.
 */
import { UserError } from '../../../ir/errors.js';
import type { Graph, Node } from '../../../ir/graph.js';
import { Replicate } from '../../../ir/layout.js';
import type { ShardOptions } from '../index.js';
import type { DeviceMesh } from '../mesh.js';
import type { ShardPlan } from '../plan.js';
import type { AxisPropagation } from '../propagate.js';
import type { Candidate } from '../rule.js';
import type { AxisPreset } from '../strategies/index.js';
import { batchSymbol, chooseMicroBatches } from './micro-batches.js';
import { buildStagePrograms } from './programs.js';
import { assignStages } from './stages.js';

export { forwardClocks, bubbleFraction, clockOf } from './schedule.js';
export { assignStages, nodeCosts, type StageAssignment } from './stages.js';

/** The propagation result of the stage axis: every node all-R, nothing seeded, no cost. */
export function replicatedAxis(graph: Graph, axis: string): AxisPropagation {
  const chosen = new Map<Node, Candidate>();
  for (const n of graph.nodes) chosen.set(n, { inputs: n.inputs.map((v) => (v ? Replicate : null)), outputs: n.outputs.map(() => Replicate) });
  return { axis, chosen, placement: new Map(), seeded: new Map(), cost: 0, sweeps: 0 };
}

/**
 * shardGraph for a strategy with a pipeline preset. `planMicroBatch` is shardGraph's own path with
 * the given options (bindings at the micro-batch size, `stageAxis` set).
 */
export function shardPipeline(
  graph: Graph,
  mesh: DeviceMesh,
  opts: ShardOptions,
  presets: readonly AxisPreset[],
  planMicroBatch: (opts: ShardOptions) => ShardPlan,
): ShardPlan {
  const staged = presets.filter((p) => p.preset.mpmd);
  if (staged.length > 1) throw new UserError(`only one mesh axis can hold pipeline stages, got ${staged.map((p) => p.axis).join(', ')}`);
  const axis = staged[0]!.axis;
  const P = mesh.axis(axis).size;
  const bindings = { ...(opts.bindings ?? {}) };
  const symbol = batchSymbol(graph);
  let batch: { symbol: string; size: number } | undefined;
  if (symbol !== undefined) {
    const size = bindings[symbol];
    if (size === undefined)
      throw new UserError(`strategy pipeline splits the batch dim ${JSON.stringify(symbol)} into micro-batches: bind it with --dim ${symbol}=N`);
    batch = { symbol, size };
  }
  const dataDevices = presets.filter((p) => p.preset.name === 'data').reduce((n, p) => n * mesh.axis(p.axis).size, 1);
  const M = chooseMicroBatches({ requested: opts.microBatches, batch, stages: P, dataDevices });

  const batchInputs = new Set(graph.inputs.filter((v) => !v.constant && symbol !== undefined && v.shape?.[0] === symbol).map((v) => v.name));
  const outputDims = new Map(
    graph.outputs.map((o) => [o.name, o.shape === undefined || o.shape.length === 0 ? 'unknown' : o.shape[0] === symbol ? 'batch' : 'other'] as const),
  );
  const microBindings = M > 1 ? { ...bindings, [symbol!]: batch!.size / M } : bindings;
  const inner = planMicroBatch({ ...opts, bindings: microBindings, stageAxis: axis });
  const assignment = assignStages(inner.graph, P, opts.registry, opts.cost);
  return buildStagePrograms({
    inner,
    axis,
    assignment,
    microBatches: M,
    batch: batch && { ...batch, microBatchSize: batch.size / M },
    batchInputs,
    outputDims,
    bindings,
  });
}
