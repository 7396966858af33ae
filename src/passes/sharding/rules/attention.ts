/**
 * Sharding rules of the attention family. The core op set has no attention op yet (attention is
 * built from MatMul/Softmax/Reshape/Transpose, whose rules compose into head-parallel attention);
 * fused attention ops (e.g. com.microsoft Attention, ONNX Attention-23) get their rows here, with
 * the two matmuls generated from einsum strings (einsum-spec.ts) like the matmul family.
 */
import type { ShardingRule } from '../rule.js';

export const attentionRules: ShardingRule[] = [];
