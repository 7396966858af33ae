/**
 * Shared machinery of the elementwise family: dtype classes and checks, shape/dtype inference
 * helpers, broadcast plans and the inner loops.
 *
 * Loops are specialised per scalar function: `specialise` compiles a fresh copy of a loop's
 * source for each function, so every op gets its own type feedback and V8 inlines the scalar
 * function into the loop (one shared loop would see many functions and call each through a
 * megamorphic site). The tables stay typed TypeScript functions; only the loop bodies are cloned.
 */
import type { DType, TypedArray } from '../dtype.js';
import { allocStorage, isFloat, isInteger, isSigned, roundToDType } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, TypeInfo } from '../registry.js';
import { type Dim, broadcastShapes, isStatic, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { broadcastIndex, broadcastOrThrow, input } from './util.js';

// ---------------------------------------------------------------------------------------------
// dtype classes (ONNX type constraints)

/** Which input dtypes an op accepts (ONNX type constraints, grouped). */
export type TypeClass = 'float' | 'numeric' | 'signed' | 'int' | 'uint' | 'bool' | 'numericOrBool' | 'any';

export function inClass(d: DType, c: TypeClass): boolean {
  switch (c) {
    case 'float':
      return isFloat(d);
    case 'numeric':
      return isFloat(d) || isInteger(d);
    case 'signed':
      return isFloat(d) || (isInteger(d) && isSigned(d));
    case 'int':
      return isInteger(d);
    case 'uint':
      return isInteger(d) && !isSigned(d);
    case 'bool':
      return d === 'bool';
    case 'numericOrBool':
      return isFloat(d) || isInteger(d) || d === 'bool';
    case 'any':
      return true;
  }
}

const CLASS_NAMES: Record<TypeClass, string> = {
  float: 'a float type',
  numeric: 'a numeric type',
  signed: 'a float or signed integer type',
  int: 'an integer type',
  uint: 'an unsigned integer type',
  bool: 'bool',
  numericOrBool: 'a numeric type or bool',
  any: 'any type',
};

/** Throws a UserError naming the node when input `i` has a dtype outside `c`. */
export function checkClass(ctx: InferContext, i: number, c: TypeClass): TypeInfo {
  const t = input(ctx, i);
  if (!inClass(t.dtype, c))
    throw new UserError(`${ctx.node.op} input ${i} must be ${CLASS_NAMES[c]}, got ${t.dtype}`, { node: ctx.node.label });
  return t;
}

/** Throws a UserError naming the node unless every present input among `idx` has input `idx[0]`'s dtype. */
export function checkSameDType(ctx: InferContext, idx: number[]): DType {
  const first = input(ctx, idx[0]!).dtype;
  for (const i of idx.slice(1)) {
    const t = ctx.inputs[i];
    if (t && t.dtype !== first)
      throw new UserError(`${ctx.node.op} inputs ${idx[0]} and ${i} must have the same dtype, got ${first} and ${t.dtype}`, {
        node: ctx.node.label,
      });
  }
  return first;
}

/** Output elements of a static inferred shape (0 when the shape is unknown or symbolic). */
export function staticNumel(shape: Dim[] | undefined): number {
  return shape && isStatic(shape) ? numel(shape) : 0;
}

/** Broadcast of all present inputs' shapes (symbolic aware); undefined when one is unknown. */
export function broadcastInputs(ctx: InferContext, idx: number[]): Dim[] | undefined {
  return broadcastOrThrow(
    ctx,
    idx.filter((i) => ctx.inputs[i]).map((i) => ctx.inputs[i]!.shape),
  );
}

/** Input i of an evaluation; a UserError when absent. */
export function tensorAt(ctx: EvalContext, i: number): Tensor {
  const t = ctx.inputs[i];
  if (!t) throw new UserError(`input ${i} is required`, { node: ctx.node.label });
  return t;
}

/** Input i of an evaluation, checked against a dtype class (the interpreter may run un-inferred graphs). */
export function tensorOfClass(ctx: EvalContext, i: number, c: TypeClass): Tensor {
  const t = tensorAt(ctx, i);
  if (!inClass(t.dtype, c))
    throw new UserError(`${ctx.node.op} input ${i} must be ${CLASS_NAMES[c]}, got ${t.dtype}`, { node: ctx.node.label });
  return t;
}

/** Static broadcast of runtime shapes; UserError when incompatible. */
export function broadcastRuntime(ctx: EvalContext, shapes: (readonly number[])[]): number[] {
  const out = broadcastShapes(...shapes);
  if (!out) throw new UserError(`shapes ${shapes.map((x) => `[${x.join(',')}]`).join(' and ')} do not broadcast`, { node: ctx.node.label });
  return out as number[];
}

/** Wraps computed storage as a tensor, rounding float16/bfloat16 results (computed in float32). */
export function finish(dtype: DType, shape: readonly number[], data: TypedArray): Tensor {
  roundToDType(dtype, data);
  return new Tensor(dtype, shape, data);
}

// ---------------------------------------------------------------------------------------------
// loop specialisation

/** Compiles `body` as a fresh function of `params` (a new copy, with its own type feedback). */
function compile<T>(bindings: Record<string, unknown>, params: string, body: string): T {
  const names = Object.keys(bindings);
  const factory = new Function(...names, `return function (${params}) {\n${body}\n};`) as (...a: unknown[]) => T;
  return factory(...names.map((k) => bindings[k]));
}

export type UnaryFn = (x: number, p0: number, p1: number) => number;
export type BinaryFn = (a: number, b: number) => number;

type UnaryLoop = (x: TypedArray, y: TypedArray, n: number, p0: number, p1: number) => void;
type SameLoop = (a: TypedArray, b: TypedArray, y: TypedArray, n: number) => void;
type RowsLoop = (
  a: TypedArray,
  aBase: Int32Array,
  aStep: number,
  b: TypedArray,
  bBase: Int32Array,
  bStep: number,
  y: TypedArray,
  rows: number,
  inner: number,
) => void;

const unaryLoops = new Map<UnaryFn, UnaryLoop>();

/** y[i] = f(x[i], p0, p1) with a loop specialised for f. */
export function mapUnary(f: UnaryFn, x: TypedArray, y: TypedArray, p0 = 0, p1 = 0): void {
  let loop = unaryLoops.get(f);
  if (!loop) {
    loop = compile<UnaryLoop>({ f }, 'x, y, n, p0, p1', 'for (let i = 0; i < n; i++) y[i] = f(x[i], p0, p1);');
    unaryLoops.set(f, loop);
  }
  loop(x, y, x.length, p0, p1);
}

interface BinaryLoops {
  same: SameLoop;
  rows: RowsLoop;
}
const binaryLoops = new Map<BinaryFn, BinaryLoops>();

function loopsFor(f: BinaryFn): BinaryLoops {
  let l = binaryLoops.get(f);
  if (!l) {
    l = {
      same: compile<SameLoop>({ f }, 'a, b, y, n', 'for (let i = 0; i < n; i++) y[i] = f(a[i], b[i]);'),
      rows: compile<RowsLoop>(
        { f },
        'a, aBase, aStep, b, bBase, bStep, y, rows, inner',
        `for (let r = 0, o = 0; r < rows; r++) {
  const ao = aBase[r], bo = bBase[r];
  if (aStep === 1 && bStep === 0) { const bv = b[bo]; for (let j = 0; j < inner; j++, o++) y[o] = f(a[ao + j], bv); }
  else if (aStep === 0 && bStep === 1) { const av = a[ao]; for (let j = 0; j < inner; j++, o++) y[o] = f(av, b[bo + j]); }
  else if (aStep === 1) { for (let j = 0; j < inner; j++, o++) y[o] = f(a[ao + j], b[bo + j]); }
  else { const v = f(a[ao], b[bo]); for (let j = 0; j < inner; j++, o++) y[o] = v; }
}`,
      ),
    };
    binaryLoops.set(f, l);
  }
  return l;
}

// ---------------------------------------------------------------------------------------------
// broadcast plans

/**
 * How operands map onto a broadcast output, as rows: the output is `rows` × `inner` elements;
 * operand k reads row r from offset `base[k][r]` with step `step[k]` (1, or 0 when it is
 * broadcast along the inner run). Adjacent dims where every operand is either full or broadcast
 * alike are merged first, so a bias add over [B,S,H] + [H] is B*S rows of H.
 */
export interface BroadcastPlan {
  rows: number;
  inner: number;
  base: Int32Array[];
  step: number[];
}

export function broadcastPlan(shapes: (readonly number[])[], out: readonly number[]): BroadcastPlan {
  const rank = out.length;
  // full[k][d]: operand k varies along out dim d.
  const dims: number[] = [];
  const full: boolean[][] = shapes.map(() => []);
  for (let d = 0; d < rank; d++) {
    const od = out[d]!;
    if (od === 1) continue;
    const flags = shapes.map((s) => {
      const i = d - (rank - s.length);
      return i >= 0 && s[i] === od;
    });
    const last = dims.length - 1;
    if (last >= 0 && flags.every((f, k) => f === full[k]![last])) dims[last] = dims[last]! * od;
    else {
      dims.push(od);
      flags.forEach((f, k) => full[k]!.push(f));
    }
  }
  if (dims.length === 0) {
    dims.push(1);
    full.forEach((f) => f.push(true));
  }
  const m = dims.length;
  const inner = dims[m - 1]!;
  const outer = dims.slice(0, m - 1);
  const base = full.map((f) => {
    const inShape = outer.map((d, i) => (f[i] ? d : 1));
    const idx = broadcastIndex(inShape, outer);
    const innerSize = f[m - 1] ? inner : 1;
    if (innerSize !== 1) for (let r = 0; r < idx.length; r++) idx[r] = idx[r]! * innerSize;
    return idx;
  });
  return { rows: numel(outer), inner, base, step: full.map((f) => (f[m - 1] ? 1 : 0)) };
}

/** y = f(a, b) elementwise with broadcasting into `y` of shape `out`. */
export function applyBinary(
  f: BinaryFn,
  a: TypedArray,
  aShape: readonly number[],
  b: TypedArray,
  bShape: readonly number[],
  y: TypedArray,
  out: readonly number[],
): void {
  const loops = loopsFor(f);
  if (a.length === y.length && b.length === y.length) {
    loops.same(a, b, y, y.length);
    return;
  }
  if (y.length === 0) return;
  const p = broadcastPlan([aShape, bShape], out);
  loops.rows(a, p.base[0]!, p.step[0]!, b, p.base[1]!, p.step[1]!, y, p.rows, p.inner);
}

/** Gathers operand `x` broadcast to `out` into new storage of `dtype`. */
export function expandTo(x: TypedArray, xShape: readonly number[], dtype: DType, out: readonly number[]): TypedArray {
  const n = numel(out);
  const y = allocStorage(dtype, n);
  if (x.length === n) {
    y.set(x);
    return y;
  }
  if (n === 0) return y;
  const p = broadcastPlan([xShape], out);
  const base = p.base[0]!;
  const step = p.step[0]!;
  for (let r = 0, o = 0; r < p.rows; r++) {
    const b = base[r]!;
    for (let j = 0; j < p.inner; j++, o++) y[o] = x[b + j * step]!;
  }
  return y;
}
