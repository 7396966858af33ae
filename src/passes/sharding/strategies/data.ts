/**
 * `data`: data parallelism on its axis (dp, or a mesh's only axis). Every graph input is split
 * along its batch dim (dim 0, S(0)); every constant (weights) is replicated; graph outputs whose
 * dim 0 is the batch (the size of the first input's dim 0) are seeded S(0) as well, so the split
 * is carried through the graph and the outputs are gathered only at the end.
 */
import { UserError } from '../../../ir/errors.js';
import { Replicate, Shard } from '../../../ir/layout.js';
import type { AxisSeeds, Preset } from './types.js';

export const dataPreset: Preset = {
  name: 'data',
  axis: 'dp',
  annotate(ctx) {
    const { graph, axis } = ctx;
    const seeds: AxisSeeds = new Map();
    const initial = new Set(graph.initializers);
    let sharded = 0;
    let firstBatch: number | undefined;
    const batchOf = (): number | undefined => firstBatch;
    for (const v of graph.inputs) {
      if (initial.has(v)) continue;
      const batch = v.shape?.[0];
      if (!v.shape?.length || typeof batch !== 'number') {
        seeds.set(v, { placement: Replicate, why: `data: ${v.name} has no batch dim; replicated on ${axis.name}` });
        continue;
      }
      if (batch < axis.size)
        throw new UserError(
          `strategy data: the batch dim of input ${v.name} is ${batch}, smaller than mesh axis ${axis.name}=${axis.size}; bind a larger batch (--dim batch=${axis.size}) or use a smaller axis`,
          { tensor: v.name },
        );
      seeds.set(v, { placement: Shard(0), why: `data: batch dim 0 of graph input ${v.name} split over ${axis.name}` });
      firstBatch ??= batch;
      sharded++;
    }
    if (!sharded) throw new UserError(`strategy data: the model has no graph input with a batch dim to split over ${axis.name}`);
    // Outputs with the batch dim stay split until the end (gathered there): without this seed a
    // small model would rather gather the inputs than carry the split through every layer.
    for (const v of graph.outputs) {
      const batch = v.shape?.[0];
      if (initial.has(v) || seeds.has(v) || typeof batch !== 'number' || batch < axis.size || batch !== batchOf()) continue;
      seeds.set(v, { placement: Shard(0), why: `data: graph output ${v.name} keeps its batch dim 0 split over ${axis.name} until the final gather` });
    }
    for (const v of graph.initializers) {
      if (seeds.has(v)) continue;
      seeds.set(v, { placement: Replicate, why: `data: weights are replicated on ${axis.name}` });
    }
    return seeds;
  },
};
