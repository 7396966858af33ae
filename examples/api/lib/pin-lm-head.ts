/**
 * A custom pass (examples/api/custom-pass.ts uses it): keep the LM head replicated on the
 * tensor-parallel axis. Megatron makes the LM head vocabulary-parallel (each device computes a
 * slice of the logits, gathered at the end); for a small vocabulary the gather costs more than the
 * duplicated matmul saves. The pass finds every graph output computed by a MatMul/Gemm with a
 * constant weight and pins that weight to R on `tp` (pinLayout: a seed that overrides the
 * strategy's). The rest of the plan follows from the sharding rules as usual.
 *
 * Options (PassContext.options): `pin-lm-head.axis` (default "tp").
 */
import { type Graph, type Pass, type PassContext, type PassResult, pinLayout } from '../../../src/index.js';

export const pinLmHeadPass: Pass = {
  name: 'pin-lm-head',
  run(graph: Graph, ctx: PassContext): PassResult {
    const axis = typeof ctx.options['pin-lm-head.axis'] === 'string' ? (ctx.options['pin-lm-head.axis'] as string) : 'tp';
    const outputs = new Set(graph.outputs);
    let pinned = 0;
    for (const node of graph.nodes) {
      if ((node.op !== 'MatMul' && node.op !== 'Gemm') || !node.outputs.some((o) => outputs.has(o))) continue;
      const weight = node.inputs[1];
      if (!weight?.constant) continue;
      pinLayout(weight, { [axis]: 'R' }, `pass pin-lm-head: LM head ${node.label} replicated on ${axis} (no logits gather)`);
      ctx.logger.info(`pin-lm-head: ${weight.name} R on ${axis}`);
      pinned++;
    }
    return { changed: pinned > 0, stats: { pinned } };
  },
};
