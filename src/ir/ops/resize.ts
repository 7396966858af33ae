/**
 * Resize (opset 18/19 semantics): inputs X, roi, scales, sizes (roi/scales/sizes optional, absent
 * or empty); modes nearest / linear / cubic; every coordinate_transformation_mode; nearest_mode;
 * cubic_coeff_a; exclude_outside; extrapolation_value; antialias; axes; keep_aspect_ratio_policy.
 *
 * The interpolation is separable: for each resized axis we precompute, per output coordinate, a
 * fixed number of taps (source index, weight) — or "extrapolate" for tf_crop_and_resize points
 * outside the input — then apply the axes one at a time, last axis first, in float64. That is the
 * order of the ONNX reference implementation (inner dims first), so results match it to rounding.
 */
import { isInteger } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, OpDef, TypeInfo } from '../registry.js';
import type { Dim } from '../shape.js';
import { Tensor } from '../tensor.js';
import { axisOf, input, typeOf } from './util.js';

type Ctx = { node: { label: string } };
type Mode = 'nearest' | 'linear' | 'cubic';

const MODES = ['nearest', 'linear', 'cubic'];
const COORD_MODES = [
  'half_pixel',
  'half_pixel_symmetric',
  'pytorch_half_pixel',
  'align_corners',
  'asymmetric',
  'tf_crop_and_resize',
];
const NEAREST_MODES = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];
const POLICIES = ['stretch', 'not_larger', 'not_smaller'];

interface ResizeAttrs {
  mode: Mode;
  coord: string;
  nearest: string;
  cubicA: number;
  excludeOutside: boolean;
  extrapolation: number;
  antialias: boolean;
  axes?: number[];
  policy: string;
}

function readAttrs(ctx: Ctx & { attrs: InferContext['attrs'] }): ResizeAttrs {
  const a = ctx.attrs;
  const pick = (name: string, def: string, allowed: string[]): string => {
    const v = a.string(name, def);
    if (!allowed.includes(v)) throw new UserError(`unknown ${name} '${v}'`, { node: ctx.node.label });
    return v;
  };
  return {
    mode: pick('mode', 'nearest', MODES) as Mode,
    coord: pick('coordinate_transformation_mode', 'half_pixel', COORD_MODES),
    nearest: pick('nearest_mode', 'round_prefer_floor', NEAREST_MODES),
    cubicA: a.float('cubic_coeff_a', -0.75),
    excludeOutside: a.int('exclude_outside', 0) !== 0,
    extrapolation: a.float('extrapolation_value', 0),
    antialias: a.int('antialias', 0) !== 0,
    axes: a.maybeInts('axes'),
    policy: pick('keep_aspect_ratio_policy', 'stretch', POLICIES),
  };
}

/** The resized axes, normalised; UserError on duplicates or out of range. */
function axesOf(ctx: Ctx, attrs: ResizeAttrs, rank: number): number[] {
  if (!attrs.axes) return Array.from({ length: rank }, (_, i) => i);
  const axes = attrs.axes.map((a) => axisOf(ctx, a, rank));
  if (new Set(axes).size !== axes.length) throw new UserError(`axes [${attrs.axes.join(',')}] repeat an axis`, { node: ctx.node.label });
  return axes;
}

/**
 * Output sizes and per-axis scale factors (all `rank` dims), as the ONNX reference computes them:
 * from scales, size = floor(scale × in); from sizes, scale = out / in, or with a
 * keep_aspect_ratio_policy one common scale and size = round-half-up(scale × in).
 */
function plan(
  ctx: Ctx,
  attrs: ResizeAttrs,
  inShape: readonly number[],
  axes: number[],
  scales: number[] | undefined,
  sizes: number[] | undefined,
): { outShape: number[]; scale: number[] } {
  const r = inShape.length;
  const outShape = inShape.slice();
  const scale = new Array<number>(r).fill(1);
  if (scales) {
    if (scales.length !== axes.length)
      throw new UserError(`scales has ${scales.length} values for ${axes.length} axes`, { node: ctx.node.label });
    axes.forEach((d, i) => {
      const s = scales[i]!;
      if (!(s > 0)) throw new UserError(`scale ${s} must be positive`, { node: ctx.node.label });
      scale[d] = s;
      outShape[d] = Math.floor(s * inShape[d]!);
    });
    return { outShape, scale };
  }
  if (!sizes) throw new UserError(`one of scales or sizes must be given`, { node: ctx.node.label });
  if (sizes.length !== axes.length) throw new UserError(`sizes has ${sizes.length} values for ${axes.length} axes`, { node: ctx.node.label });
  axes.forEach((d, i) => {
    if (!(sizes[i]! >= 0)) throw new UserError(`size ${sizes[i]} must be non-negative`, { node: ctx.node.label });
    outShape[d] = sizes[i]!;
  });
  for (let d = 0; d < r; d++) scale[d] = outShape[d]! / inShape[d]!;
  if (attrs.policy !== 'stretch') {
    let s = attrs.policy === 'not_larger' ? Infinity : -Infinity;
    for (const d of axes) s = attrs.policy === 'not_larger' ? Math.min(s, scale[d]!) : Math.max(s, scale[d]!);
    for (const d of axes) {
      scale[d] = s;
      outShape[d] = Math.floor(s * inShape[d]! + 0.5);
    }
  }
  return { outShape, scale };
}

/** Per output coordinate of one axis: `n` taps of (source index, weight), or extrapolate. */
export interface Taps {
  n: number;
  index: Int32Array;
  weight: Float64Array;
  extrapolate: Uint8Array;
}

function cubicCoeffs(r: number, A: number, w: Float64Array, at: number): void {
  const r1 = r + 1;
  const q = 1 - r;
  const q1 = q + 1;
  w[at] = ((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A;
  w[at + 1] = ((A + 2) * r - (A + 3)) * r * r + 1;
  w[at + 2] = ((A + 2) * q - (A + 3)) * q * q + 1;
  w[at + 3] = ((A * q1 - 5 * A) * q1 + 8 * A) * q1 - 4 * A;
}

function cubicKernel(x: number, A: number): number {
  x = Math.abs(x);
  const x2 = x * x;
  const x3 = x2 * x;
  if (x <= 1) return (A + 2) * x3 - (A + 3) * x2 + 1;
  if (x < 2) return A * x3 - 5 * A * x2 + 8 * A * x - 4 * A;
  return 0;
}

/** Source coordinate of output coordinate `x` along one axis (ONNX reference formulas). */
function sourceCoord(coord: string, x: number, inLen: number, outLen: number, scale: number, roiStart: number, roiEnd: number): number {
  const outWidth = scale * inLen; // the reference uses the fractional output length here
  switch (coord) {
    case 'align_corners':
      return outWidth === 1 ? 0 : (x * (inLen - 1)) / (outWidth - 1);
    case 'asymmetric':
      return x / scale;
    case 'tf_crop_and_resize':
      return (
        (outWidth === 1 ? ((roiEnd - roiStart) * (inLen - 1)) / 2 : (x * (roiEnd - roiStart) * (inLen - 1)) / (outWidth - 1)) +
        roiStart * (inLen - 1)
      );
    case 'pytorch_half_pixel':
      return outWidth === 1 ? -0.5 : (x + 0.5) / scale - 0.5;
    case 'half_pixel_symmetric': {
      const adjustment = outLen / outWidth;
      const offset = (inLen / 2) * (1 - adjustment);
      return offset + (x + 0.5) / scale - 0.5;
    }
    default: // half_pixel
      return (x + 0.5) / scale - 0.5;
  }
}

function axisTaps(attrs: ResizeAttrs, inLen: number, outLen: number, scale: number, roiStart: number, roiEnd: number): Taps {
  const { mode, cubicA } = attrs;
  const s = attrs.antialias ? Math.min(scale, 1) : 1;
  // Tap offsets relative to base = the source pixel at or left of the coordinate: start..start+n-1.
  let start: number;
  let n: number;
  if (mode === 'nearest') {
    start = 0;
    n = 1;
  } else if (mode === 'linear') {
    start = attrs.antialias ? Math.floor(-1 / s) + 1 : 0;
    n = 2 - 2 * start;
  } else {
    start = attrs.antialias ? Math.floor(-2 / s) + 1 : -1;
    n = 2 - 2 * start;
  }
  const index = new Int32Array(outLen * n);
  const weight = new Float64Array(outLen * n);
  const extrapolate = new Uint8Array(outLen);
  const crop = attrs.coord === 'tf_crop_and_resize';
  for (let x = 0; x < outLen; x++) {
    const xo = sourceCoord(attrs.coord, x, inLen, outLen, scale, roiStart, roiEnd);
    if (crop && (xo < 0 || xo > inLen - 1)) {
      extrapolate[x] = 1;
      continue;
    }
    const at = x * n;
    if (mode === 'nearest') {
      let i: number;
      if (Number.isInteger(xo)) i = xo;
      else {
        const f = Math.floor(xo);
        const ratio = xo - f;
        switch (attrs.nearest) {
          case 'round_prefer_ceil':
            i = ratio < 0.5 ? f : f + 1;
            break;
          case 'floor':
            i = f;
            break;
          case 'ceil':
            i = f + 1;
            break;
          default:
            i = ratio <= 0.5 ? f : f + 1;
        }
      }
      index[at] = i < 0 ? 0 : i >= inLen ? inLen - 1 : i;
      weight[at] = 1;
      continue;
    }
    // ratio in (0, 1]: an integral coordinate counts as ratio 1 from the pixel on its left.
    const base = Number.isInteger(xo) ? xo - 1 : Math.floor(xo);
    const ratio = xo - base;
    if (mode === 'linear' && !attrs.antialias) {
      weight[at] = 1 - ratio;
      weight[at + 1] = ratio;
    } else if (mode === 'cubic' && !attrs.antialias) {
      cubicCoeffs(ratio, cubicA, weight, at);
    } else {
      let sum = 0;
      for (let t = 0; t < n; t++) {
        const arg = (start + t - ratio) * s;
        const w = mode === 'linear' ? Math.max(0, 1 - Math.abs(arg)) : cubicKernel(arg, cubicA);
        weight[at + t] = w;
        sum += w;
      }
      for (let t = 0; t < n; t++) weight[at + t] /= sum;
    }
    let sum = 0;
    for (let t = 0; t < n; t++) {
      const i = base + start + t;
      if (attrs.excludeOutside && (i < 0 || i >= inLen)) weight[at + t] = 0;
      sum += weight[at + t]!;
      index[at + t] = i < 0 ? 0 : i >= inLen ? inLen - 1 : i; // edge padding
    }
    if (attrs.excludeOutside) for (let t = 0; t < n; t++) weight[at + t] /= sum;
  }
  return { n, index, weight, extrapolate };
}

/** True when the taps copy the input unchanged. */
function isIdentity(t: Taps, inLen: number, outLen: number): boolean {
  if (inLen !== outLen) return false;
  for (let x = 0; x < outLen; x++) {
    if (t.extrapolate[x]) return false;
    for (let j = 0; j < t.n; j++) {
      const w = t.weight[x * t.n + j]!;
      if (w !== 0 && !(w === 1 && t.index[x * t.n + j] === x)) return false;
    }
  }
  return true;
}

/** Applies one axis's taps: src has shape `shape`, the result has shape[axis] = outLen. */
function applyAxis(src: Float64Array, shape: number[], axis: number, taps: Taps, outLen: number, fill: number): Float64Array {
  let outer = 1;
  for (let d = 0; d < axis; d++) outer *= shape[d]!;
  let inner = 1;
  for (let d = axis + 1; d < shape.length; d++) inner *= shape[d]!;
  const inLen = shape[axis]!;
  const dst = new Float64Array(outer * outLen * inner);
  const { n, index, weight, extrapolate } = taps;
  for (let o = 0; o < outer; o++) {
    const sb = o * inLen * inner;
    const db = o * outLen * inner;
    for (let x = 0; x < outLen; x++) {
      const dRow = db + x * inner;
      if (extrapolate[x]) {
        dst.fill(fill, dRow, dRow + inner);
        continue;
      }
      if (inner === 1) {
        let acc = 0;
        for (let t = 0; t < n; t++) {
          const w = weight[x * n + t]!;
          if (w !== 0) acc += w * src[sb + index[x * n + t]!]!;
        }
        dst[dRow] = acc;
        continue;
      }
      for (let t = 0; t < n; t++) {
        const w = weight[x * n + t]!;
        if (w === 0) continue;
        const sRow = sb + index[x * n + t]! * inner;
        for (let i = 0; i < inner; i++) dst[dRow + i] += w * src[sRow + i]!;
      }
    }
  }
  return dst;
}

/** A float input that may be absent or empty: its values, or undefined. */
function optionalValues(t: Tensor | undefined): number[] | undefined {
  return t && t.size > 0 ? Array.from(t.data as ArrayLike<number>) : undefined;
}

/** One resized axis of a Resize plan: its per-output-coordinate taps. */
export interface ResizeAxis {
  axis: number;
  inLen: number;
  outLen: number;
  taps: Taps;
}

export interface ResizePlan {
  outShape: number[];
  extrapolation: number;
  /** The axes that change the data (identity axes dropped), last axis first (application order). */
  axes: ResizeAxis[];
}

/**
 * The separable plan of a Resize node on an input of shape `inShape`, given its roi, scales and
 * sizes inputs (absent or empty allowed): output shape and per-axis taps computed in float64,
 * exactly as the reference evaluation applies them. Shared with the kernel lowering.
 */
export function resizePlan(
  ctx: Ctx & { attrs: InferContext['attrs'] },
  inShape: readonly number[],
  roiT: Tensor | undefined,
  scalesT: Tensor | undefined,
  sizesT: Tensor | undefined,
): ResizePlan {
  const attrs = readAttrs(ctx);
  const r = inShape.length;
  const axes = axesOf(ctx, attrs, r);
  const scales = optionalValues(scalesT);
  const sizes = optionalValues(sizesT);
  if (scales && sizes) throw new UserError(`only one of scales and sizes may be given`, { node: ctx.node.label });
  const { outShape, scale } = plan(ctx, attrs, inShape, axes, scales, sizes);
  const roiStart = new Array<number>(r).fill(0);
  const roiEnd = new Array<number>(r).fill(1);
  const roi = attrs.coord === 'tf_crop_and_resize' ? optionalValues(roiT) : undefined;
  if (roi) {
    if (roi.length !== 2 * axes.length)
      throw new UserError(`roi has ${roi.length} values, expected ${2 * axes.length}`, { node: ctx.node.label });
    axes.forEach((d, i) => {
      roiStart[d] = roi[i]!;
      roiEnd[d] = roi[axes.length + i]!;
    });
  }
  const steps: ResizeAxis[] = [];
  for (let d = r - 1; d >= 0; d--) {
    if (!axes.includes(d) && outShape[d] === inShape[d]) continue;
    if (inShape[d] === 0 && outShape[d]! > 0) throw new UserError(`cannot resize an empty axis ${d} to ${outShape[d]}`, { node: ctx.node.label });
    const taps = axisTaps(attrs, inShape[d]!, outShape[d]!, scale[d]!, roiStart[d]!, roiEnd[d]!);
    if (isIdentity(taps, inShape[d]!, outShape[d]!)) continue;
    steps.push({ axis: d, inLen: inShape[d]!, outLen: outShape[d]!, taps });
  }
  return { outShape, extrapolation: attrs.extrapolation, axes: steps };
}

function resizeEval(ctx: EvalContext): Tensor[] {
  const x = ctx.inputs[0]!;
  if (x.dtype === 'string' || x.dtype === 'bool') throw new UserError(`Resize is not defined for ${x.dtype}`, { node: ctx.node.label });
  const p = resizePlan(ctx, x.shape, ctx.inputs[1], ctx.inputs[2], ctx.inputs[3]);
  let cur: Float64Array = Float64Array.from(x.data as ArrayLike<number>);
  const shape = x.shape.slice();
  for (const s of p.axes) {
    cur = applyAxis(cur, shape, s.axis, s.taps, s.outLen, p.extrapolation);
    shape[s.axis] = s.outLen;
  }
  if (isInteger(x.dtype)) for (let i = 0; i < cur.length; i++) cur[i] = Math.trunc(cur[i]!);
  return [Tensor.from(x.dtype, p.outShape, cur)];
}

function resizeInfer(ctx: InferContext): TypeInfo[] {
  const x = input(ctx, 0);
  if (x.dtype === 'string' || x.dtype === 'bool') throw new UserError(`Resize is not defined for ${x.dtype}`, { node: ctx.node.label });
  const attrs = readAttrs(ctx);
  if (!x.shape) return [typeOf(x.dtype)];
  const r = x.shape.length;
  const axes = axesOf(ctx, attrs, r);
  // An input is "given" when present and not statically empty; its values when constant.
  const given = (i: number): boolean => {
    const t = ctx.inputs[i];
    return t !== undefined && !(t.shape && t.shape.length === 1 && t.shape[0] === 0);
  };
  const valuesOf = (i: number): number[] | undefined => optionalValues(ctx.constant(i));
  if (given(2) && given(3) && valuesOf(2) && valuesOf(3))
    throw new UserError(`only one of scales and sizes may be given`, { node: ctx.node.label });
  const sizes = given(3) ? valuesOf(3) : undefined;
  const scales = sizes ? undefined : given(2) ? valuesOf(2) : undefined;
  if (!sizes && !scales) {
    if (!given(2) && !given(3)) throw new UserError(`one of scales or sizes must be given`, { node: ctx.node.label });
    return [typeOf(x.dtype)];
  }
  const list = (sizes ?? scales)!;
  if (list.length !== axes.length)
    throw new UserError(`${sizes ? 'sizes' : 'scales'} has ${list.length} values for ${axes.length} axes`, { node: ctx.node.label });
  const out: Dim[] = x.shape.slice();
  if (sizes && attrs.policy === 'stretch') {
    axes.forEach((d, i) => (out[d] = sizes[i]!));
    return [typeOf(x.dtype, out)];
  }
  // Scales (or an aspect-ratio policy) need the static input dims of the resized axes; a scale
  // of exactly 1 keeps a symbolic dim.
  const involved = axes.filter((d, i) => sizes !== undefined || scales![i] !== 1);
  if (involved.some((d) => typeof x.shape![d] !== 'number')) return [typeOf(x.dtype)];
  const staticIn = x.shape.map((d) => (typeof d === 'number' ? d : 1));
  const { outShape } = plan(ctx, attrs, staticIn, axes, scales, sizes);
  for (const d of involved) out[d] = outShape[d]!;
  return [typeOf(x.dtype, out)];
}

export const resizeOps: OpDef[] = [
  {
    op: 'Resize',
    family: 'conv',
    inputs: [1, 4],
    outputs: [1, 1],
    infer: resizeInfer,
    evaluate: resizeEval,
    flops: (ctx) => {
      const t = resizeInfer(ctx)[0]!;
      if (!t.shape || !t.shape.every((d) => typeof d === 'number')) return 0;
      const taps = ctx.attrs.string('mode', 'nearest') === 'cubic' ? 4 : ctx.attrs.string('mode', 'nearest') === 'linear' ? 2 : 0;
      let n = 1;
      for (const d of t.shape as number[]) n *= d;
      return 2 * taps * n * (ctx.attrs.maybeInts('axes')?.length ?? t.shape.length);
    },
  },
];
