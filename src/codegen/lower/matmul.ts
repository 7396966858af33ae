/**
 * Lowering rows of the matmul family: MatMul (batched, broadcast batch dims, 1-D operands) and
 * Gemm (transposed operands, alpha/beta, broadcast C) on the tiled matmul template. Operand
 * loads are index expressions, so a transposed or broadcast operand is never copied.
 */
import { numel } from '../../ir/shape.js';
import { type Expr, add, cast, div, f32, i32, mul, rem, variable } from '../expr.js';
import { Params, broadcastStrides, isDeviceFloat, loadTyped, madd } from '../index-map.js';
import type { MatmulBody } from '../kernel.js';
import { parseEinsum } from '../../ir/ops/einsum.js';
import { stridesOf } from '../../ir/shape.js';
import { type LowerContext, type LowerRow, kernels, launch, need, unsupported } from './index.js';
import { inlineCoords } from './rows.js';

export const MATMUL_TILE = 16;

/**
 * Tile and register block of a matmul by its output size: a 16 × 16 workgroup computes a 64 × 64
 * tile (4 × 4 per invocation) when both M and N fill it, 32 × 32 (2 × 2) when they fill that, and
 * one output per invocation for small matrices (where a big tile would be mostly bounds checks).
 * The choice is part of the kernel (and of its pipeline cache key): a handful of variants.
 */
export function matmulBlocking(M: number, N: number): Pick<MatmulBody, 'tile' | 'block'> {
  const fits = (edge: number): boolean => M >= edge && N >= edge;
  if (fits(MATMUL_TILE * 4)) return { tile: MATMUL_TILE, block: 4 };
  if (fits(MATMUL_TILE * 2)) return { tile: MATMUL_TILE, block: 2 };
  return { tile: MATMUL_TILE };
}

/** Offset of batch `b` (flat over `batchShape`) into an operand whose batch dims are `opBatch` (broadcast). */
function batchOffset(p: Params, name: string, b: Expr, batchShape: number[], opBatch: number[], matrixSize: number): Expr {
  const strides = broadcastStrides(opBatch, batchShape.length).map((s) => s * matrixSize);
  let acc: Expr | undefined;
  let inner = 1;
  for (let d = batchShape.length - 1; d >= 0; d--) {
    const dim = batchShape[d]!;
    if (strides[d] !== 0 && dim !== 1) {
      let coord: Expr = inner === 1 ? b : div(b, p.int(`${name}_bst${d}`, inner));
      if (d > 0) coord = rem(coord, p.int(`${name}_bdim${d}`, dim));
      acc = madd(acc, coord, p.int(`${name}_bs${d}`, strides[d]!));
    }
    inner *= dim;
  }
  return acc ?? i32(0);
}

const f32Of = (e: Expr): Expr => cast(e, 'f32');

function lowerMatMul(ctx: LowerContext) {
  const a = need(ctx, 0);
  const bIn = need(ctx, 1);
  // float16/bfloat16 are f32 in kernels (index-map.ts deviceType).
  if (!isDeviceFloat(a.dtype) || bIn.dtype !== a.dtype) throw unsupported(ctx, `dtype ${a.dtype}`);
  const aShape = a.shape.length === 1 ? [1, a.shape[0]!] : a.shape;
  const bShape = bIn.shape.length === 1 ? [bIn.shape[0]!, 1] : bIn.shape;
  const [M, K] = aShape.slice(-2) as [number, number];
  const N = bShape[bShape.length - 1]!;
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const batchShape = Array.from({ length: rank }, (_, d) => {
    const x = aBatch[d - (rank - aBatch.length)] ?? 1;
    const y = bBatch[d - (rank - bBatch.length)] ?? 1;
    return Math.max(x, y);
  });
  const p = new Params();
  const [vb, vm, vn, vk] = ['b', 'm', 'n', 'k'].map((v) => variable(v));
  const Mp = p.int('M', M), Np = p.int('N', N), Kp = p.int('K', K);
  const aOff = add(batchOffset(p, 'a', vb!, batchShape, aBatch, M * K), add(mul(vm!, Kp), vk!));
  const bOff = add(batchOffset(p, 'b', vb!, batchShape, bBatch, K * N), add(mul(vk!, Np), vn!));
  const body: MatmulBody = {
    kind: 'matmul',
    ...matmulBlocking(M, N),
    batch: p.int('batch', numel(batchShape)),
    m: Mp,
    n: Np,
    k: Kp,
    a: f32Of(loadTyped('x0', a.dtype, aOff)),
    b: f32Of(loadTyped('x1', bIn.dtype, bOff)),
    out: { buf: 'y0', index: add(mul(vb!, mul(Mp, Np)), add(mul(vm!, Np), vn!)), value: variable('acc', 'f32') },
  };
  return kernels(launch(ctx, body, p));
}

function lowerGemm(ctx: LowerContext) {
  const a = need(ctx, 0);
  const bIn = need(ctx, 1);
  if (!isDeviceFloat(a.dtype)) throw unsupported(ctx, `dtype ${a.dtype}`);
  const transA = ctx.attrs.int('transA', 0) !== 0;
  const transB = ctx.attrs.int('transB', 0) !== 0;
  const alpha = ctx.attrs.float('alpha', 1);
  const beta = ctx.attrs.float('beta', 1);
  const [M, K] = transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const N = transB ? bIn.shape[0]! : bIn.shape[1]!;
  const p = new Params();
  const [vm, vn, vk] = ['m', 'n', 'k'].map((v) => variable(v));
  const Mp = p.int('M', M), Np = p.int('N', N), Kp = p.int('K', K);
  const aOff = transA ? add(mul(vk!, Mp), vm!) : add(mul(vm!, Kp), vk!);
  const bOff = transB ? add(mul(vn!, Kp), vk!) : add(mul(vk!, Np), vn!);
  let value: Expr = variable('acc', 'f32');
  if (alpha !== 1) value = mul(f32(alpha), value);
  const c = ctx.inputs[2];
  if (c && beta !== 0) {
    const [s0, s1] = broadcastStrides(c.shape, 2);
    let off: Expr | undefined;
    if (s0) off = madd(off, vm!, p.int('c_s0', s0));
    if (s1) off = madd(off, vn!, p.int('c_s1', s1));
    let cv = loadTyped('x2', c.dtype, off ?? i32(0));
    if (beta !== 1) cv = mul(f32(beta), cv);
    value = add(value, cv);
  }
  const body: MatmulBody = {
    kind: 'matmul',
    ...matmulBlocking(M, N),
    batch: i32(1),
    m: Mp,
    n: Np,
    k: Kp,
    a: loadTyped('x0', a.dtype, aOff),
    b: loadTyped('x1', bIn.dtype, bOff),
    out: { buf: 'y0', index: add(mul(vm!, Np), vn!), value },
  };
  return kernels(launch(ctx, body, p));
}

/**
 * Einsum with one or two operands as a contraction on the matmul template: labels in the output
 * and both operands are the batch, output labels of one operand are m (first) or n (second),
 * every other label is summed (k). Each template var is flat over its labels; operand and output
 * offsets are dot products of label coordinates with strides, so a repeated label (a diagonal)
 * or a permuted output needs no copy. One operand: B is the constant 1.
 */
function lowerEinsum(ctx: LowerContext) {
  const xs = ctx.inputs.map((_, k) => need(ctx, k));
  if (xs.length > 2) throw unsupported(ctx, `${xs.length} operands`);
  if (xs.some((x) => x.dtype !== 'float32')) throw unsupported(ctx, `dtype ${xs.find((x) => x.dtype !== 'float32')!.dtype}`);
  const spec = parseEinsum(ctx.attrs.string('equation'), xs.map((x) => x.shape.length), ctx.node.label);
  const size = new Map<number, number>();
  spec.inputs.forEach((ls, k) => ls.forEach((l, d) => size.set(l, xs[k]!.shape[d]!)));
  const labels = [...size.keys()];
  const inA = (l: number): boolean => spec.inputs[0]!.includes(l);
  const inB = (l: number): boolean => spec.inputs.length > 1 && spec.inputs[1]!.includes(l);
  const inOut = (l: number): boolean => spec.output.includes(l);
  const two = spec.inputs.length > 1;
  const groups = {
    b: spec.output.filter((l) => !two || (inA(l) && inB(l))),
    m: two ? spec.output.filter((l) => inA(l) && !inB(l)) : [],
    n: two ? spec.output.filter((l) => !inA(l) && inB(l)) : [],
    k: labels.filter((l) => !inOut(l)),
  };
  const p = new Params();
  const coord = new Map<number, Expr>();
  const extent: Record<string, number> = {};
  for (const [g, ls] of Object.entries(groups)) {
    const shape = ls.map((l) => size.get(l)!);
    extent[g] = numel(shape);
    inlineCoords(p, `e${g}`, variable(g), shape).forEach((e, j) => coord.set(ls[j]!, e));
  }
  const offset = (name: string, ls: number[], shape: number[]): Expr => {
    const st = stridesOf(shape);
    let acc: Expr | undefined;
    ls.forEach((l, d) => {
      const c = coord.get(l)!;
      if (c.k !== 'const' && shape[d] !== 1) acc = madd(acc, c, p.int(`${name}_s${d}`, st[d]!));
    });
    return acc ?? i32(0);
  };
  const body: MatmulBody = {
    kind: 'matmul',
    ...matmulBlocking(extent.m!, extent.n!),
    batch: p.int('batch', extent.b!),
    m: p.int('M', extent.m!),
    n: p.int('N', extent.n!),
    k: p.int('K', extent.k!),
    a: loadTyped('x0', 'float32', offset('a', spec.inputs[0]!, xs[0]!.shape)),
    b: two ? loadTyped('x1', 'float32', offset('b', spec.inputs[1]!, xs[1]!.shape)) : f32(1),
    out: { buf: 'y0', index: offset('y', spec.output, ctx.outputs[0]!.shape), value: variable('acc', 'f32') },
  };
  if (numel(ctx.outputs[0]!.shape) === 0) return kernels();
  return kernels(launch(ctx, body, p));
}

export const matmulLowerings: LowerRow[] = [
  { op: 'MatMul', family: 'matmul', lower: lowerMatMul },
  { op: 'Gemm', family: 'matmul', lower: lowerGemm },
  { op: 'Einsum', family: 'matmul', lower: lowerEinsum },
];
