/**
 * Sharding rules of the resize family (src/ir/ops/resize.ts). A dim that Resize leaves at scale 1
 * (same size in and out: batch, channels) maps every output coordinate to the same input
 * coordinate in every coordinate mode except tf_crop_and_resize (whose roi may crop it), so it
 * shards straight through. Interpolation is linear in X, so P(sum) passes too.
 *
 * localize: a `sizes` input lists global output sizes; it becomes this device's sizes. A `scales`
 * input needs nothing (scale 1 on the sharded dims).
 */
import { Tensor } from '../../../ir/tensor.js';
import type { ShardingRule } from '../rule.js';
import { axisIn, constInts, outShapeOf, passDims, shapeOf } from './shape-dims.js';

/** The resized axes (attribute `axes`, default all), or undefined when invalid. */
function resizedAxes(axes: number[] | undefined, rank: number): number[] | undefined {
  if (!axes) return Array.from({ length: rank }, (_, i) => i);
  const out = axes.map((a) => axisIn(a, rank));
  return out.some((a) => a === undefined) ? undefined : (out as number[]);
}

const resize: ShardingRule = {
  op: 'Resize',
  candidates(ctx) {
    const x = shapeOf(ctx, 0);
    const y = outShapeOf(ctx, 0);
    if (!x || !y || x.length !== y.length) return [];
    if (ctx.attrs.string('coordinate_transformation_mode', 'half_pixel') === 'tf_crop_and_resize') return [];
    const axes = resizedAxes(ctx.attrs.maybeInts('axes'), x.length);
    if (!axes) return [];
    const scales = ctx.inputs[2] ? constInts(ctx, 2) : undefined;
    const sizes = ctx.inputs[3] ? constInts(ctx, 3) : undefined;
    const useScales = scales !== undefined && scales.length > 0;
    // With sizes and an aspect-ratio policy, one common scale is recomputed from every axis.
    if (!useScales && ctx.attrs.string('keep_aspect_ratio_policy', 'stretch') !== 'stretch') return [];
    if (!useScales && !(sizes && sizes.length)) return [];
    const scaleOf = (d: number): number => {
      const i = axes.indexOf(d);
      if (i < 0) return 1;
      return useScales ? scales![i]! : y[d]! / x[d]!;
    };
    return passDims(
      ctx,
      x.map((n, d) => (n === y[d] && scaleOf(d) === 1 ? d : undefined)),
      ctx.inputs[0]!.dtype !== 'string',
    );
  },
  localize(ctx) {
    const sizesType = ctx.inputs[3];
    if (!sizesType?.shape || sizesType.shape[0] === 0) return;
    const rank = ctx.localOutputShapes[0]!.length;
    const axes = resizedAxes(ctx.node.attrs.maybeInts('axes'), rank)!;
    const local = axes.map((d) => ctx.localOutputShapes[0]![d]!);
    ctx.setConstantInput(3, Tensor.from('int64', [local.length], local));
  },
};

export const resizeRules: ShardingRule[] = [resize];
