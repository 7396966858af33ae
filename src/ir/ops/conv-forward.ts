/**
 * Conv and ConvTranspose rows. Conv is im2col (through a precomputed tap table) followed by a
 * register-blocked matmul over output channels; ConvTranspose scatters each input element through
 * the transposed tap table. Both accumulate in float64 and round once to the output dtype.
 */
import type { Attrs } from '../attrs.js';
import { type DType, allocStorage, isFloat, roundToDType } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, OpDef, TypeInfo } from '../registry.js';
import { type Dim, isStatic } from '../shape.js';
import { Tensor } from '../tensor.js';
import { type WindowAttrs, prod, readWindowAttrs, tapTable, windowGeometry, windowOutDims } from './conv-geometry.js';
import { input, typeOf } from './util.js';

type Where = { node: { label: string } };

function requireFloat(ctx: Where, dtype: DType, what: string): void {
  if (!isFloat(dtype)) throw new UserError(`${what} must be a floating point tensor, got ${dtype}`, { node: ctx.node.label });
}

/** Checks ranks, group and channel agreement of X and W (whatever is known). Returns the group. */
function checkConvShapes(
  ctx: Where,
  attrs: Attrs,
  x: readonly Dim[] | undefined,
  w: readonly Dim[] | undefined,
  transpose: boolean,
): number {
  const label = ctx.node.label;
  const group = attrs.int('group', 1);
  if (!(group >= 1)) throw new UserError(`group must be positive, got ${group}`, { node: label });
  if (x && x.length < 3) throw new UserError(`input X must have rank >= 3 (N, C, spatial...), got rank ${x.length}`, { node: label });
  if (w && w.length < 3) throw new UserError(`weight W must have rank >= 3, got rank ${w.length}`, { node: label });
  if (x && w && x.length !== w.length)
    throw new UserError(`input X has rank ${x.length} but weight W has rank ${w.length}`, { node: label });
  if (!x || !w) return group;
  const [c, w0, w1] = [x[1]!, w[0]!, w[1]!];
  if (!transpose) {
    // W: [M, C/group, k...]
    if (typeof c === 'number' && typeof w1 === 'number' && c !== w1 * group)
      throw new UserError(`input has ${c} channels but weight expects ${w1} x group ${group} = ${w1 * group}`, { node: label });
    if (typeof w0 === 'number' && w0 % group !== 0)
      throw new UserError(`output channels ${w0} are not divisible by group ${group}`, { node: label });
  } else {
    // W: [C, M/group, k...]
    if (typeof c === 'number' && typeof w0 === 'number' && c !== w0)
      throw new UserError(`input has ${c} channels but weight has ${w0} input channels`, { node: label });
    if (typeof c === 'number' && c % group !== 0)
      throw new UserError(`input channels ${c} are not divisible by group ${group}`, { node: label });
  }
  return group;
}

function checkBias(ctx: Where, b: readonly Dim[] | undefined, m: Dim): void {
  if (!b) return;
  if (b.length !== 1 || (typeof b[0] === 'number' && typeof m === 'number' && b[0] !== m))
    throw new UserError(`bias must have shape [${m}], got [${b.join(',')}]`, { node: ctx.node.label });
}

// ---------------------------------------------------------------- Conv

function inferConv(ctx: InferContext): TypeInfo[] {
  const x = input(ctx, 0);
  const w = input(ctx, 1);
  requireFloat(ctx, x.dtype, 'input X');
  checkConvShapes(ctx, ctx.attrs, x.shape, w.shape, false);
  if (w.shape) checkBias(ctx, ctx.inputs[2]?.shape, w.shape[0]!);
  if (!x.shape) return [typeOf(x.dtype)];
  const nSpatial = x.shape.length - 2;
  const kernel = ctx.attrs.maybeInts('kernel_shape') ?? w.shape?.slice(2);
  if (!kernel || !isStatic(kernel)) return [typeOf(x.dtype)];
  const win = readWindowAttrs(ctx, ctx.attrs, nSpatial, kernel);
  const spatial = windowOutDims(ctx, x.shape.slice(2), win);
  const m = w.shape?.[0];
  if (!spatial || m === undefined) return [typeOf(x.dtype)];
  return [typeOf(x.dtype, [x.shape[0]!, m, ...spatial])];
}

function evaluateConv(ctx: EvalContext): Tensor[] {
  const [x, w, b] = ctx.inputs as [Tensor, Tensor, Tensor | undefined];
  if (!x || !w) throw new UserError(`inputs X and W are required`, { node: ctx.node.label });
  requireFloat(ctx, x.dtype, 'input X');
  const group = checkConvShapes(ctx, ctx.attrs, x.shape, w.shape, false);
  const [N, C] = [x.shape[0]!, x.shape[1]!];
  const M = w.shape[0]!;
  checkBias(ctx, b?.shape, M);
  const win = readWindowAttrs(ctx, ctx.attrs, x.rank - 2, w.shape.slice(2));
  if (win.kernel.some((k, i) => k !== w.shape[i + 2]))
    throw new UserError(`kernel_shape [${win.kernel}] does not match weight shape [${w.shape}]`, { node: ctx.node.label });
  const g = windowGeometry(ctx, x.shape.slice(2), win);
  const Cg = C / group;
  const Mg = M / group;
  const K = prod(g.kernel);
  const inS = prod(g.inSpatial);
  const outS = prod(g.outSpatial);
  const R = Cg * K; // rows of the im2col matrix
  const taps = tapTable(g.outSpatial, g.inSpatial, g.kernel, g.strides, g.dilations, g.padsBegin);
  const col = new Float64Array(R * outS);
  const out = allocStorage(x.dtype, N * M * outS);
  const acc = new Float64Array(4 * outS);
  const xd = x.data;
  const wd = w.data;
  const bd = b?.data;
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < group; gi++) {
      im2col(xd, (n * C + gi * Cg) * inS, inS, Cg, K, outS, taps, col);
      const wBase = gi * Mg * R;
      const outBase = (n * M + gi * Mg) * outS;
      let m = 0;
      for (; m + 4 <= Mg; m += 4) {
        gemm4(wd, wBase + m * R, R, col, outS, acc);
        for (let j = 0; j < 4; j++) {
          const oc = gi * Mg + m + j;
          const bias = bd ? bd[oc]! : 0;
          const o = outBase + (m + j) * outS;
          const a = j * outS;
          for (let p = 0; p < outS; p++) out[o + p] = acc[a + p]! + bias;
        }
      }
      for (; m < Mg; m++) {
        gemm1(wd, wBase + m * R, R, col, outS, acc);
        const oc = gi * Mg + m;
        const bias = bd ? bd[oc]! : 0;
        const o = outBase + m * outS;
        for (let p = 0; p < outS; p++) out[o + p] = acc[p]! + bias;
      }
    }
  }
  roundToDType(x.dtype, out);
  return [new Tensor(x.dtype, [N, M, ...g.outSpatial], out)];
}

/** col[(c*K + t)*outS + p] = x[base + c*inS + taps[t*outS + p]] (0 where the tap is padding). */
function im2col(
  xd: ArrayLike<number>,
  base: number,
  inS: number,
  Cg: number,
  K: number,
  outS: number,
  taps: Int32Array,
  col: Float64Array,
): void {
  for (let c = 0; c < Cg; c++) {
    const xb = base + c * inS;
    for (let t = 0; t < K; t++) {
      const row = (c * K + t) * outS;
      const tb = t * outS;
      for (let p = 0; p < outS; p++) {
        const off = taps[tb + p]!;
        col[row + p] = off >= 0 ? xd[xb + off]! : 0;
      }
    }
  }
}

/** acc[j*P + p] = sum_r w[wOff + j*R + r] * col[r*P + p] for four consecutive output channels j. */
function gemm4(wd: ArrayLike<number>, wOff: number, R: number, col: Float64Array, P: number, acc: Float64Array): void {
  acc.fill(0);
  const P2 = 2 * P;
  const P3 = 3 * P;
  for (let r = 0; r < R; r++) {
    const w0 = wd[wOff + r]!;
    const w1 = wd[wOff + R + r]!;
    const w2 = wd[wOff + 2 * R + r]!;
    const w3 = wd[wOff + 3 * R + r]!;
    const cr = r * P;
    for (let p = 0; p < P; p++) {
      const v = col[cr + p]!;
      acc[p] += w0 * v;
      acc[P + p] += w1 * v;
      acc[P2 + p] += w2 * v;
      acc[P3 + p] += w3 * v;
    }
  }
}

function gemm1(wd: ArrayLike<number>, wOff: number, R: number, col: Float64Array, P: number, acc: Float64Array): void {
  acc.fill(0, 0, P);
  for (let r = 0; r < R; r++) {
    const w0 = wd[wOff + r]!;
    if (w0 === 0) continue;
    const cr = r * P;
    for (let p = 0; p < P; p++) acc[p] += w0 * col[cr + p]!;
  }
}

function convFlops(ctx: InferContext): number {
  const [y] = inferConv(ctx);
  const w = ctx.inputs[1]?.shape;
  if (!y?.shape || !isStatic(y.shape) || !w || !isStatic(w)) return 0;
  // 2 * N * Cout * outSpatial * (Cin/group) * kernelSize; W already holds Cin/group * kernel.
  return 2 * prod(y.shape) * prod(w.slice(1)) + (ctx.inputs[2] ? prod(y.shape) : 0);
}

// ---------------------------------------------------------------- ConvTranspose

/**
 * Output sizes of ConvTranspose per spatial dim (undefined where a symbolic input dim makes it
 * unknown) and the begin pads (meaningful for static dims).
 */
function transposeDims(
  ctx: Where,
  attrs: Attrs,
  inSpatial: readonly Dim[],
  win: WindowAttrs,
): { dims: (Dim | undefined)[]; padsBegin: number[] } {
  const n = inSpatial.length;
  const outPad = attrs.ints('output_padding', new Array<number>(n).fill(0));
  if (outPad.length !== n) throw new UserError(`output_padding has ${outPad.length} values, expected ${n}`, { node: ctx.node.label });
  let outShape = attrs.maybeInts('output_shape');
  if (outShape && outShape.length === n + 2) outShape = outShape.slice(2);
  if (outShape && outShape.length !== n)
    throw new UserError(`output_shape has ${outShape.length} values, expected ${n}`, { node: ctx.node.label });
  const dims: (Dim | undefined)[] = [];
  const padsBegin: number[] = [];
  for (let i = 0; i < n; i++) {
    const size = inSpatial[i]!;
    const s = win.strides[i]!;
    const k = win.dilations[i]! * (win.kernel[i]! - 1) + 1;
    const same = win.autoPad === 'SAME_UPPER' || win.autoPad === 'SAME_LOWER';
    if (typeof size !== 'number') {
      dims.push(outShape ? outShape[i]! : same ? (s === 1 ? size : undefined) : undefined);
      padsBegin.push(0);
      continue;
    }
    const natural = s * (size - 1) + outPad[i]! + k;
    let out: number;
    let padBegin: number;
    if (outShape || same) {
      out = outShape ? outShape[i]! : size * s;
      const total = natural - out;
      const half = Math.floor(total / 2);
      padBegin = win.autoPad === 'SAME_UPPER' ? half : total - half;
    } else if (win.autoPad === 'VALID') {
      out = natural;
      padBegin = 0;
    } else {
      padBegin = win.pads[i]!;
      out = natural - win.pads[i]! - win.pads[i + n]!;
    }
    if (out <= 0) throw new UserError(`output spatial dim ${i} would be ${out}`, { node: ctx.node.label });
    dims.push(out);
    padsBegin.push(padBegin);
  }
  return { dims, padsBegin };
}

function inferConvTranspose(ctx: InferContext): TypeInfo[] {
  const x = input(ctx, 0);
  const w = input(ctx, 1);
  requireFloat(ctx, x.dtype, 'input X');
  const group = checkConvShapes(ctx, ctx.attrs, x.shape, w.shape, true);
  const w1 = w.shape?.[1];
  const m: Dim | undefined = w1 === undefined ? undefined : typeof w1 === 'number' ? w1 * group : group === 1 ? w1 : undefined;
  if (m !== undefined) checkBias(ctx, ctx.inputs[2]?.shape, m);
  if (!x.shape || m === undefined) return [typeOf(x.dtype)];
  const kernel = ctx.attrs.maybeInts('kernel_shape') ?? w.shape?.slice(2);
  if (!kernel || !isStatic(kernel)) return [typeOf(x.dtype)];
  const win = readWindowAttrs(ctx, ctx.attrs, x.shape.length - 2, kernel);
  const { dims } = transposeDims(ctx, ctx.attrs, x.shape.slice(2), win);
  if (dims.some((d) => d === undefined)) return [typeOf(x.dtype)];
  return [typeOf(x.dtype, [x.shape[0]!, m, ...(dims as Dim[])])];
}

function evaluateConvTranspose(ctx: EvalContext): Tensor[] {
  const [x, w, b] = ctx.inputs as [Tensor, Tensor, Tensor | undefined];
  if (!x || !w) throw new UserError(`inputs X and W are required`, { node: ctx.node.label });
  requireFloat(ctx, x.dtype, 'input X');
  const group = checkConvShapes(ctx, ctx.attrs, x.shape, w.shape, true);
  const [N, C] = [x.shape[0]!, x.shape[1]!];
  const Mg = w.shape[1]!;
  const M = Mg * group;
  const Cg = C / group;
  checkBias(ctx, b?.shape, M);
  const win = readWindowAttrs(ctx, ctx.attrs, x.rank - 2, w.shape.slice(2));
  if (win.kernel.some((k, i) => k !== w.shape[i + 2]))
    throw new UserError(`kernel_shape [${win.kernel}] does not match weight shape [${w.shape}]`, { node: ctx.node.label });
  const inSpatial = x.shape.slice(2);
  const t = transposeDims(ctx, ctx.attrs, inSpatial, win);
  const g = { inSpatial, outSpatial: t.dims as number[], padsBegin: t.padsBegin };
  const K = prod(win.kernel);
  const inS = prod(g.inSpatial);
  const outS = prod(g.outSpatial);
  // Input position -> output position per tap (the conv tap table read backwards).
  const taps = tapTable(g.inSpatial, g.outSpatial, win.kernel, win.strides, win.dilations, g.padsBegin);
  const acc = new Float64Array(N * M * outS);
  const xd = x.data;
  const wd = w.data;
  for (let n = 0; n < N; n++)
    for (let gi = 0; gi < group; gi++)
      for (let c = 0; c < Cg; c++) {
        const ic = gi * Cg + c;
        const xb = (n * C + ic) * inS;
        for (let m = 0; m < Mg; m++) {
          const ob = (n * M + gi * Mg + m) * outS;
          const wb = (ic * Mg + m) * K;
          for (let t = 0; t < K; t++) {
            const wv = wd[wb + t]!;
            if (wv === 0) continue;
            const tb = t * inS;
            for (let p = 0; p < inS; p++) {
              const o = taps[tb + p]!;
              if (o >= 0) acc[ob + o] += wv * xd[xb + p]!;
            }
          }
        }
      }
  if (b)
    for (let n = 0; n < N; n++)
      for (let m = 0; m < M; m++) {
        const bias = b.data[m]!;
        const ob = (n * M + m) * outS;
        for (let p = 0; p < outS; p++) acc[ob + p] += bias;
      }
  return [Tensor.from(x.dtype, [N, M, ...g.outSpatial], acc)];
}

function convTransposeFlops(ctx: InferContext): number {
  const x = ctx.inputs[0]?.shape;
  const w = ctx.inputs[1]?.shape;
  if (!x || !isStatic(x) || !w || !isStatic(w)) return 0;
  // Every input element meets every tap of its group's output channels.
  return 2 * prod(x) * prod(w.slice(1));
}

export const convForwardOps: OpDef[] = [
  { op: 'Conv', family: 'conv', inputs: [2, 3], outputs: [1, 1], infer: inferConv, evaluate: evaluateConv, flops: convFlops },
  {
    op: 'ConvTranspose',
    family: 'conv',
    inputs: [2, 3],
    outputs: [1, 1],
    infer: inferConvTranspose,
    evaluate: evaluateConvTranspose,
    flops: convTransposeFlops,
  },
];
