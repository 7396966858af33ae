/**
 * Whether a mesh fits a plan: every mesh axis with more than one device must split at least one
 * tensor dim into at least as many blocks as the axis has devices (or carry partial sums). Otherwise
 * (an axis larger than every dim the strategy shards) most devices would hold empty shards and the
 * axis buys nothing; that is bad input (exit 1), naming the axis and the largest dim it could split.
 */
import { UserError } from '../ir/errors.js';
import type { Value } from '../ir/graph.js';
import type { MeshAxis } from '../passes/sharding/mesh.js';
import type { ShardPlan } from '../passes/sharding/plan.js';

export function checkMeshFits(plan: ShardPlan): void {
  const values: Value[] = [...plan.graph.inputs, ...plan.graph.initializers, ...plan.graph.nodes.flatMap((n) => n.outputs)];
  for (const axis of plan.mesh.axes) {
    if (axis.name === plan.pipeline?.axis) continue; // stages split the nodes, not tensors (pipeline/stages.ts checks the count)
    const problem = axisProblem(axis, values, plan.strategy);
    if (problem) throw new UserError(problem);
  }
}

function axisProblem(axis: MeshAxis, values: readonly Value[], strategy: string): string | undefined {
  if (axis.size <= 1) return undefined;
  let best: { blocks: number; value: string; dim: number } | undefined;
  let partial = false;
  for (const v of values) {
    const p = v.layout?.get(axis.name);
    if (p?.kind === 'partial') partial = true;
    if (p?.kind !== 'shard') continue;
    const n = v.shape?.[p.dim];
    if (typeof n !== 'number') continue;
    const blocks = Math.floor(n / (p.unit ?? 1));
    if (blocks >= axis.size) return undefined;
    if (!best || blocks > best.blocks) best = { blocks, value: v.name, dim: p.dim };
  }
  if (best)
    return `mesh axis ${axis.name}=${axis.size} does not fit the model: the largest dim strategy ${strategy} splits over it has ${best.blocks} block${best.blocks === 1 ? '' : 's'} (${best.value} dim ${best.dim}); use ${axis.name}=${best.blocks} or less`;
  if (!partial) return `mesh axis ${axis.name}=${axis.size} does not fit the model: strategy ${strategy} splits no tensor over it`;
  return undefined;
}
