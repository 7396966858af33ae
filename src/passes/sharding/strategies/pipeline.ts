/**
 * `pipeline`: pipeline parallelism on its axis (pp, or a mesh's only axis). The preset seeds
 * nothing: it is MPMD (each coordinate of the axis runs a different program, a stage), so
 * shardGraph hands the whole plan to src/passes/sharding/pipeline/index.ts, which documents the
 * stage assignment, micro-batches, Send/Recv and the forward schedule. The mesh's other axes are
 * sharded inside every stage by their own presets (`pp=2,tp=2`: megatron on tp; `pp=2,dp=2`: data).
 */
import type { Preset } from './types.js';

export const pipelinePreset: Preset = {
  name: 'pipeline',
  axis: 'pp',
  mpmd: true,
  annotate: () => new Map(),
};
