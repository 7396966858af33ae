/**
 * Data-movement kernels and small helpers shared by the shape/movement op rows (shape-*.ts).
 *
 * Every movement op is one of three loops: a strided copy (Transpose, Slice, Expand, Tile,
 * DepthToSpace, constant Pad), a block copy (Concat, Split) or a per-dim index-map gather
 * (reflect/edge/wrap Pad). The loops work on typed arrays and on string arrays alike: they only
 * read and write elements.
 */
import { type TypedArray, allocStorage } from '../dtype.js';
import { UserError } from '../errors.js';
import type { InferContext, OpDef } from '../registry.js';
import type { Dim } from '../shape.js';
import { Tensor } from '../tensor.js';
import { constInts, input, typeOf } from './util.js';

/** Storage of a tensor: numbers (typed array) or strings. */
export type Buf = TypedArray | string[];

/** Element view used inside the loops (the loops copy elements, never interpret them). */
type Elems = { [i: number]: unknown; length: number };

export const bufOf = (t: Tensor): Buf => t.strings ?? t.data;

/** New storage for `n` elements of the same kind as `t`. */
export function allocLike(t: Tensor, n: number): Buf {
  return t.strings ? new Array<string>(n).fill('') : allocStorage(t.dtype, n);
}

/** A UserError naming the node of an infer or eval context. */
export function fail(ctx: { node: { label: string } }, reason: string): never {
  throw new UserError(reason, { node: ctx.node.label });
}

/** Required runtime input i. */
export function arg(ctx: { node: { label: string }; inputs: (Tensor | undefined)[] }, i: number): Tensor {
  const t = ctx.inputs[i];
  if (!t) fail(ctx, `input ${i} is required`);
  return t;
}

/** Elements of an integer tensor as numbers. */
export const intsOf = (t: Tensor): number[] => Array.from(t.data as ArrayLike<number>);

/** Static shape check: true when every dim is a number. */
export const allStatic = (s: readonly Dim[]): s is number[] => s.every((d) => typeof d === 'number');

/** Input shape of an infer context (undefined when the input is absent or its shape unknown). */
export const shapeIn = (ctx: InferContext, i: number): Dim[] | undefined => ctx.inputs[i]?.shape;

/**
 * A `shape`-family row with inputs (X, ints) whose output shape is `shapeOf(X's shape, ints)`:
 * infer gives it when X's shape and the constant ints are known (else only the dtype); evaluate
 * passes the static output shape (and the ints) to `build`, which makes the output tensor.
 */
export function intsShapeOp(
  op: string,
  shapeOf: (ctx: { node: { label: string } }, s: readonly Dim[], ints: readonly number[]) => Dim[],
  build: (x: Tensor, outShape: number[], ints: readonly number[]) => Tensor,
): OpDef {
  return {
    op,
    family: 'shape',
    inputs: [2, 2],
    outputs: [1, 1],
    infer(ctx) {
      const x = input(ctx, 0);
      input(ctx, 1);
      const ints = constInts(ctx, 1);
      if (!x.shape || !ints) return [typeOf(x.dtype)];
      return [typeOf(x.dtype, shapeOf(ctx, x.shape, ints))];
    },
    evaluate(ctx) {
      const x = arg(ctx, 0);
      const ints = intsOf(arg(ctx, 1));
      return [build(x, shapeOf(ctx, x.shape, ints) as number[], ints)];
    },
    flops: () => 0,
  };
}

/**
 * Copies every element of an index space `shape`:
 *   dst[dstOff + Σ i_d·dstStrides[d]] = src[srcOff + Σ i_d·srcStrides[d]].
 * Adjacent dims that are contiguous in both source and destination are merged first, so the
 * innermost loop is as long as possible; a contiguous inner run of a typed array is one `set`.
 */
export function stridedCopy(
  src: Buf,
  srcOff: number,
  srcStrides: readonly number[],
  shape: readonly number[],
  dst: Buf,
  dstOff: number,
  dstStrides: readonly number[],
): void {
  const dims: number[] = [];
  const ss: number[] = [];
  const ds: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d]!;
    if (n === 0) return;
    if (n === 1) continue;
    const k = dims.length - 1;
    if (k >= 0 && ss[k] === srcStrides[d]! * n && ds[k] === dstStrides[d]! * n) {
      dims[k] = dims[k]! * n;
      ss[k] = srcStrides[d]!;
      ds[k] = dstStrides[d]!;
    } else {
      dims.push(n);
      ss.push(srcStrides[d]!);
      ds.push(dstStrides[d]!);
    }
  }
  const s = src as unknown as Elems;
  const o = dst as unknown as Elems;
  if (dims.length === 0) {
    o[dstOff] = s[srcOff];
    return;
  }
  const rank = dims.length;
  const inner = dims[rank - 1]!;
  const sIn = ss[rank - 1]!;
  const dIn = ds[rank - 1]!;
  let outer = 1;
  for (let d = 0; d < rank - 1; d++) outer *= dims[d]!;
  const useSet = sIn === 1 && dIn === 1 && inner >= 16 && !Array.isArray(src);
  const counter = new Int32Array(Math.max(rank - 1, 0));
  let sb = srcOff;
  let db = dstOff;
  for (let r = 0; r < outer; r++) {
    if (useSet) {
      (dst as TypedArray).set((src as TypedArray).subarray(sb, sb + inner), db);
    } else if (sIn === 1 && dIn === 1) {
      for (let j = 0; j < inner; j++) o[db + j] = s[sb + j];
    } else {
      for (let j = 0, si = sb, di = db; j < inner; j++, si += sIn, di += dIn) o[di] = s[si];
    }
    for (let d = rank - 2; d >= 0; d--) {
      counter[d]!++;
      sb += ss[d]!;
      db += ds[d]!;
      if (counter[d]! < dims[d]!) break;
      sb -= ss[d]! * dims[d]!;
      db -= ds[d]! * dims[d]!;
      counter[d] = 0;
    }
  }
}

/** Copies `len` contiguous elements. */
export function copyRun(src: Buf, srcStart: number, dst: Buf, dstStart: number, len: number): void {
  if (len <= 0) return;
  if (len >= 16 && !Array.isArray(src)) {
    (dst as TypedArray).set((src as TypedArray).subarray(srcStart, srcStart + len), dstStart);
    return;
  }
  const s = src as unknown as Elems;
  const o = dst as unknown as Elems;
  for (let j = 0; j < len; j++) o[dstStart + j] = s[srcStart + j];
}

/**
 * Gathers through per-dim index maps: out[i] = src[Σ_d maps[d][i_d]], or `fill` where any map
 * entry is negative (constant padding). `maps[d]` holds source offsets (index × stride).
 */
export function gatherMaps(src: Buf, maps: readonly Int32Array[], shape: readonly number[], dst: Buf, fill: unknown): void {
  const rank = shape.length;
  const s = src as unknown as Elems;
  const o = dst as unknown as Elems;
  if (rank === 0) {
    o[0] = s[0];
    return;
  }
  let total = 1;
  for (const n of shape) total *= n;
  if (total === 0) return;
  const inner = shape[rank - 1]!;
  const innerMap = maps[rank - 1]!;
  const counter = new Int32Array(rank - 1);
  for (let out = 0; out < total; out += inner) {
    let base = 0;
    let pad = false;
    for (let d = 0; d < rank - 1; d++) {
      const m = maps[d]![counter[d]!]!;
      if (m < 0) pad = true;
      base += m;
    }
    if (pad) for (let j = 0; j < inner; j++) o[out + j] = fill;
    else
      for (let j = 0; j < inner; j++) {
        const m = innerMap[j]!;
        o[out + j] = m < 0 ? fill : s[base + m];
      }
    for (let d = rank - 2; d >= 0; d--) {
      if (++counter[d]! < shape[d]!) break;
      counter[d] = 0;
    }
  }
}

/** Checks that `perm` is a permutation of 0..rank-1. */
export function checkPerm(ctx: { node: { label: string } }, perm: readonly number[], rank: number): void {
  const seen = new Array<boolean>(rank).fill(false);
  if (perm.length !== rank) fail(ctx, `perm [${perm}] has ${perm.length} entries but the input has rank ${rank}`);
  for (const p of perm) {
    if (!Number.isInteger(p) || p < 0 || p >= rank || seen[p]) fail(ctx, `perm [${perm}] is not a permutation of 0..${rank - 1}`);
    seen[p] = true;
  }
}

/** Output tensor of the same dtype as `t` holding `buf`. */
export const like = (t: Tensor, shape: readonly number[], buf: Buf): Tensor => new Tensor(t.dtype, shape, buf);

/**
 * Transposes a static tensor: out[j] dim = in[perm[j]]. One strided copy whose source strides
 * are the input strides permuted.
 */
export function transposeTensor(t: Tensor, perm: readonly number[], inStrides: readonly number[]): Tensor {
  const outShape = perm.map((p) => t.shape[p]!);
  const srcStrides = perm.map((p) => inStrides[p]!);
  let n = 1;
  for (const d of outShape) n *= d;
  const out = allocLike(t, n);
  const dstStrides = new Array<number>(outShape.length);
  let acc = 1;
  for (let d = outShape.length - 1; d >= 0; d--) {
    dstStrides[d] = acc;
    acc *= outShape[d]!;
  }
  stridedCopy(bufOf(t), 0, srcStrides, outShape, out, 0, dstStrides);
  return like(t, outShape, out);
}

/** Sum of dims when representable: numbers, or symbol products with the same symbols. */
export function dimAdd(a: Dim, b: Dim): Dim | undefined {
  if (a === 0) return b;
  if (b === 0) return a;
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (typeof a === 'number' || typeof b === 'number') return undefined;
  const pa = splitCoef(a);
  const pb = splitCoef(b);
  if (pa.syms !== pb.syms) return undefined;
  const c = pa.coef + pb.coef;
  return c === 1 ? pa.syms : `${c}*${pa.syms}`;
}

function splitCoef(d: string): { coef: number; syms: string } {
  let coef = 1;
  const syms: string[] = [];
  for (const f of d.split('*')) {
    if (/^\d+$/.test(f)) coef *= Number(f);
    else syms.push(f);
  }
  return { coef, syms: syms.sort().join('*') };
}
