/**
 * Op family table: matmul. MatMul (numpy semantics: 1-D operands, batch broadcasting), Gemm
 * (transposes, alpha/beta, broadcast C), MatMulInteger (zero points, int32 result) and Einsum
 * (einsum.ts). The kernels are in matmul-kernel.ts.
 */
import { allocStorage, roundToDType } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, OpDef, TypeInfo } from '../registry.js';
import { type Dim, broadcastShapes, isStatic, numel, shapeEq } from '../shape.js';
import { Tensor } from '../tensor.js';
import { einsumOp } from './einsum.js';
import { batchedMatmul, gemm, planMatmul } from './matmul-kernel.js';
import { broadcastIndex, broadcastOrThrow, input, typeOf } from './util.js';

const label = (ctx: { node: { label: string } }) => ({ node: ctx.node.label });
const fmt = (s: readonly Dim[]) => `[${s.join(',')}]`;

function required(ctx: EvalContext, i: number): Tensor {
  const t = ctx.inputs[i];
  if (!t) throw new UserError(`input ${i} is required`, label(ctx));
  return t;
}

/** numpy matmul shape inference over symbolic dims. */
function inferMatmulShape(ctx: InferContext, a: Dim[] | undefined, b: Dim[] | undefined): Dim[] | undefined {
  if (!a || !b) return undefined;
  if (a.length === 0 || b.length === 0) throw new UserError('MatMul operands must have rank >= 1', label(ctx));
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const K = a2[a2.length - 1]!;
  const K2 = b2[b2.length - 2]!;
  if (typeof K === 'number' && typeof K2 === 'number' && K !== K2)
    throw new UserError(`MatMul inner dimensions differ: ${fmt(a)} x ${fmt(b)}`, label(ctx));
  const batch = broadcastOrThrow(ctx, [a2.slice(0, -2), b2.slice(0, -2)])!;
  const out = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]!);
  if (b.length > 1) out.push(b2[b2.length - 1]!);
  return out;
}

function matmulFlops(a: Dim[] | undefined, b: Dim[] | undefined): number {
  if (!a || !b || !isStatic(a) || !isStatic(b) || a.length === 0 || b.length === 0) return 0;
  try {
    const p = planMatmul(a, b);
    return 2 * p.M * p.N * p.K * numel(p.batch);
  } catch {
    return 0;
  }
}

const matMul: OpDef = {
  op: 'MatMul',
  family: 'matmul',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const a = input(ctx, 0);
    const b = input(ctx, 1);
    if (a.dtype !== b.dtype) throw new UserError(`MatMul operands differ in dtype: ${a.dtype} and ${b.dtype}`, label(ctx));
    return [typeOf(a.dtype, inferMatmulShape(ctx, a.shape, b.shape))];
  },
  evaluate(ctx) {
    return [batchedMatmul(required(ctx, 0), required(ctx, 1))];
  },
  flops: (ctx) => matmulFlops(ctx.inputs[0]?.shape, ctx.inputs[1]?.shape),
};

// ---- Gemm ----

interface GemmDims<D> {
  M: D;
  K: D;
  K2: D;
  N: D;
}

function gemmDims<D>(ctx: { attrs: InferContext['attrs']; node: { label: string } }, a: readonly D[], b: readonly D[]): GemmDims<D> {
  if (a.length !== 2 || b.length !== 2)
    throw new UserError(`Gemm needs 2-D A and B, got ranks ${a.length} and ${b.length}`, label(ctx));
  const transA = ctx.attrs.int('transA', 0) !== 0;
  const transB = ctx.attrs.int('transB', 0) !== 0;
  return {
    M: transA ? a[1]! : a[0]!,
    K: transA ? a[0]! : a[1]!,
    K2: transB ? b[1]! : b[0]!,
    N: transB ? b[0]! : b[1]!,
  };
}

/** gemmDims, checking that A's and B's inner dims agree where both are known. */
function checkedGemmDims<D extends Dim>(ctx: { attrs: InferContext['attrs']; node: { label: string } }, a: readonly D[], b: readonly D[]): GemmDims<D> {
  const dims = gemmDims(ctx, a, b);
  if (typeof dims.K === 'number' && typeof dims.K2 === 'number' && dims.K !== dims.K2)
    throw new UserError(`Gemm inner dimensions differ: A ${fmt(a)} x B ${fmt(b)}`, label(ctx));
  return dims;
}

/** C must be at most 2-D and broadcast (unidirectionally) to [M, N]. */
function checkGemmC(ctx: { node: { label: string } }, c: readonly Dim[], M: Dim, N: Dim): void {
  const out = broadcastShapes(c, [M, N]);
  if (c.length > 2 || !out || !shapeEq(out, [M, N])) throw new UserError(`Gemm C ${fmt(c)} does not broadcast to [${M},${N}]`, label(ctx));
}

const gemmOp: OpDef = {
  op: 'Gemm',
  family: 'matmul',
  inputs: [2, 3],
  outputs: [1, 1],
  infer(ctx) {
    const a = input(ctx, 0);
    const b = input(ctx, 1);
    const c = ctx.inputs[2];
    if (!a.shape || !b.shape) return [typeOf(a.dtype)];
    const { M, N } = checkedGemmDims(ctx, a.shape, b.shape);
    if (c?.shape) checkGemmC(ctx, c.shape, M, N);
    return [typeOf(a.dtype, [M, N])];
  },
  evaluate(ctx) {
    const a = required(ctx, 0);
    const b = required(ctx, 1);
    const c = ctx.inputs[2];
    const { M, K, N } = checkedGemmDims(ctx, a.shape, b.shape);
    const alpha = ctx.attrs.float('alpha', 1);
    const beta = ctx.attrs.float('beta', 1);
    const transA = ctx.attrs.int('transA', 0) !== 0;
    const transB = ctx.attrs.int('transB', 0) !== 0;
    const [ar, br] = [a.shape[1]!, b.shape[1]!];
    const out = allocStorage(a.dtype, M * N);
    gemm(
      M, N, K,
      { data: a.data, off: 0, rs: transA ? 1 : ar, cs: transA ? ar : 1 },
      { data: b.data, off: 0, rs: transB ? 1 : br, cs: transB ? br : 1 },
      out, 0, N,
    );
    if (alpha !== 1) for (let i = 0; i < out.length; i++) out[i] = alpha * out[i]!;
    if (c && beta !== 0) {
      checkGemmC(ctx, c.shape, M, N);
      const idx = broadcastIndex(c.shape, [M, N]);
      const cd = c.data;
      for (let i = 0; i < out.length; i++) out[i] = out[i]! + beta * cd[idx[i]!]!;
    }
    roundToDType(a.dtype, out);
    return [new Tensor(a.dtype, [M, N], out)];
  },
  flops(ctx) {
    const a = ctx.inputs[0]?.shape;
    const b = ctx.inputs[1]?.shape;
    if (!a || !b || !isStatic(a) || !isStatic(b) || a.length !== 2 || b.length !== 2) return 0;
    const { M, K, N } = gemmDims(ctx, a, b);
    return 2 * M * N * K;
  },
};

// ---- MatMulInteger ----

/**
 * x − zero point as float64 (exact for 8-bit operands). A's zero point is a scalar, an [M] vector
 * (per row) or shaped [..., M, 1]; B's a scalar, an [N] vector (per column) or [..., 1, N].
 */
function shiftZeroPoint(ctx: EvalContext, x: Tensor, zp: Tensor | undefined, isA: boolean): Tensor {
  const data = new Float64Array(x.size);
  for (let i = 0; i < data.length; i++) data[i] = x.data[i]!;
  if (zp && zp.size > 0) {
    let zShape: readonly number[] = zp.shape;
    if (zp.size === 1) zShape = [];
    else if (zp.rank === 1 && isA) zShape = [zp.size, 1];
    const bc = broadcastShapes(zShape, x.shape);
    if (!bc || !shapeEq(bc, x.shape))
      throw new UserError(`zero point ${fmt(zp.shape)} does not fit input ${fmt(x.shape)}`, label(ctx));
    const idx = broadcastIndex(zShape, x.shape);
    for (let i = 0; i < data.length; i++) data[i]! -= zp.data[idx[i]!]!;
  }
  return new Tensor('float64', x.shape, data);
}

const matMulInteger: OpDef = {
  op: 'MatMulInteger',
  family: 'matmul',
  inputs: [2, 4],
  outputs: [1, 1],
  infer(ctx): TypeInfo[] {
    return [typeOf('int32', inferMatmulShape(ctx, input(ctx, 0).shape, input(ctx, 1).shape))];
  },
  evaluate(ctx) {
    const a = shiftZeroPoint(ctx, required(ctx, 0), ctx.inputs[2], true);
    const b = shiftZeroPoint(ctx, required(ctx, 1), ctx.inputs[3], false);
    return [batchedMatmul(a, b, 'int32')];
  },
  flops: (ctx) => matmulFlops(ctx.inputs[0]?.shape, ctx.inputs[1]?.shape),
};

// ---- QLinearMatMul ----

/** Saturation range of the quantized output types. */
const QRANGE: Partial<Record<string, [number, number]>> = { uint8: [0, 255], int8: [-128, 127], uint16: [0, 65535], int16: [-32768, 32767] };

/** Round half to even (numpy rint). */
const rint = (v: number): number => {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/**
 * y = saturate(rint((A − a_zp)·(B − b_zp) · a_scale·b_scale / y_scale) + y_zp). The integer product
 * is exact; a_scale may be per row ([M]) and b_scale per column ([N]).
 */
const qLinearMatMul: OpDef = {
  op: 'QLinearMatMul',
  family: 'matmul',
  inputs: [8, 8],
  outputs: [1, 1],
  infer(ctx) {
    const yzp = input(ctx, 7);
    return [typeOf(yzp.dtype, inferMatmulShape(ctx, input(ctx, 0).shape, input(ctx, 3).shape))];
  },
  evaluate(ctx) {
    const [aS, bS, yS, yZp] = [required(ctx, 1), required(ctx, 4), required(ctx, 6), required(ctx, 7)];
    const a = shiftZeroPoint(ctx, required(ctx, 0), ctx.inputs[2], true);
    const b = shiftZeroPoint(ctx, required(ctx, 3), ctx.inputs[5], false);
    const prod = batchedMatmul(a, b, 'float64');
    const range = QRANGE[yZp.dtype];
    if (!range) throw new UserError(`QLinearMatMul output type ${yZp.dtype} is not supported`, label(ctx));
    const rows = a.rank === 1 ? 1 : a.shape[a.rank - 2]!;
    const cols = b.rank === 1 ? 1 : b.shape[b.rank - 1]!;
    if ((aS.size !== 1 && aS.size !== rows) || (bS.size !== 1 && bS.size !== cols))
      throw new UserError(`QLinearMatMul scales ${fmt(aS.shape)} and ${fmt(bS.shape)} fit neither per tensor nor per row/column`, label(ctx));
    const ys = yS.data[0]!;
    const zp = yZp.data[0]!;
    const out = allocStorage(yZp.dtype, prod.size);
    for (let p = 0; p < out.length; p++) {
      const j = p % cols;
      const i = Math.floor(p / cols) % rows;
      const scale = (aS.data[aS.size === 1 ? 0 : i]! * bS.data[bS.size === 1 ? 0 : j]!) / ys;
      const q = rint(prod.data[p]! * scale) + zp;
      out[p] = Math.min(range[1], Math.max(range[0], q));
    }
    return [new Tensor(yZp.dtype, prod.shape, out)];
  },
  flops: (ctx) => matmulFlops(ctx.inputs[0]?.shape, ctx.inputs[3]?.shape),
};

export const matmulOps: OpDef[] = [matMul, gemmOp, matMulInteger, qLinearMatMul, einsumOp];

// Re-exported for tests and other layers (sharding rules, codegen) that reuse the kernels.
export { batchedMatmul, gemm, planMatmul };
