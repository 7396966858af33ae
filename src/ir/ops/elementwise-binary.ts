/**
 * Binary and variadic broadcasting ops as data: arithmetic, comparisons, logic, bit shifts,
 * PRelu, and the variadic Max / Min / Sum / Mean. Each row names its scalar function per dtype;
 * `binaryRow` / `variadicRow` turn rows into OpDefs.
 *
 * Integer semantics: results are stored into the output's typed array, which wraps int8..uint32
 * like C; int64/uint64 live in doubles (exact to 2^53). Integer Div truncates toward zero.
 */
import type { Attrs } from '../attrs.js';
import type { DType, TypedArray } from '../dtype.js';
import { allocStorage, isInteger } from '../dtype.js';
import { UserError } from '../errors.js';
import type { InferContext, OpDef } from '../registry.js';
import { shapeEq } from '../shape.js';
import { Tensor } from '../tensor.js';
import {
  type BinaryFn,
  type TypeClass,
  applyBinary,
  broadcastInputs,
  broadcastPlan,
  broadcastRuntime,
  checkClass,
  checkSameDType,
  expandTo,
  finish,
  mapUnary,
  staticNumel,
  tensorOfClass,
} from './elementwise-kernels.js';

// ---- scalar functions ----
const add: BinaryFn = (a, b) => a + b;
const sub: BinaryFn = (a, b) => a - b;
const mul: BinaryFn = (a, b) => a * b;
const div: BinaryFn = (a, b) => a / b;
const intDiv: BinaryFn = (a, b) => (b === 0 ? 0 : Math.trunc(a / b));
const pow: BinaryFn = Math.pow;
/** C fmod: the remainder has the sign of the dividend. */
const fmod: BinaryFn = (a, b) => a % b;
const intFmod: BinaryFn = (a, b) => (b === 0 ? 0 : a % b);
/** Python-style modulo: the remainder has the sign of the divisor. */
const floorMod: BinaryFn = (a, b) => {
  const r = a % b;
  return r !== 0 && r < 0 !== b < 0 ? r + b : r;
};
const intFloorMod: BinaryFn = (a, b) => (b === 0 ? 0 : floorMod(a, b));
const max: BinaryFn = (a, b) => (a !== a || a > b ? a : b);
const min: BinaryFn = (a, b) => (a !== a || a < b ? a : b);
const TWO_64 = 2 ** 64;
const shiftLeft: BinaryFn = (a, b) => a * 2 ** b;
const shiftLeft64: BinaryFn = (a, b) => (a * 2 ** b) % TWO_64;
const shiftRight: BinaryFn = (a, b) => Math.floor(a / 2 ** b);

/** Multiplication per dtype: int32/uint32 products need Math.imul to wrap exactly. */
const mulFor = (d: DType): BinaryFn => (d === 'int32' || d === 'uint32' ? Math.imul : mul);

interface BinaryRow {
  op: string;
  /** Accepted dtypes of both inputs. */
  types: TypeClass;
  /** Accepted dtypes of input 1 when it may differ from input 0 (Pow's exponent). */
  types1?: TypeClass;
  /** The scalar function for input 0's dtype. */
  pick: (dtype: DType, attrs: Attrs) => BinaryFn;
  /** Fixed output dtype (comparisons: bool). */
  out?: DType;
  /** PRelu: input 1 broadcasts to input 0's shape (unidirectional). */
  unidirectional?: boolean;
  /** Equal also compares string tensors. */
  strings?: boolean;
  cost?: number;
}

const fixed = (f: BinaryFn) => (): BinaryFn => f;
const cmp = (op: string, types: TypeClass, f: BinaryFn): BinaryRow => ({ op, types, pick: fixed(f), out: 'bool' });

const BINARY: BinaryRow[] = [
  { op: 'Add', types: 'numeric', pick: fixed(add) },
  { op: 'Sub', types: 'numeric', pick: fixed(sub) },
  { op: 'Mul', types: 'numeric', pick: mulFor },
  { op: 'Div', types: 'numeric', pick: (d) => (isInteger(d) ? intDiv : div) },
  { op: 'Pow', types: 'numeric', types1: 'numeric', pick: fixed(pow), cost: 8 },
  {
    op: 'Mod',
    types: 'numeric',
    pick: (d, at) => {
      const int = isInteger(d);
      if (at.int('fmod', 0)) return int ? intFmod : fmod;
      return int ? intFloorMod : floorMod;
    },
  },
  { op: 'PRelu', types: 'numeric', pick: fixed((x, s) => (x < 0 ? s * x : x)), unidirectional: true },
  {
    op: 'BitShift',
    types: 'uint',
    pick: (d, at) => {
      const dir = at.string('direction');
      if (dir === 'LEFT') return d === 'uint64' ? shiftLeft64 : shiftLeft;
      if (dir === 'RIGHT') return shiftRight;
      throw new UserError(`BitShift: attribute 'direction' must be 'LEFT' or 'RIGHT', got '${dir}'`, { node: at.owner });
    },
  },
  { op: 'And', types: 'bool', pick: fixed((a, b) => a & b) },
  { op: 'Or', types: 'bool', pick: fixed((a, b) => a | b) },
  { op: 'Xor', types: 'bool', pick: fixed((a, b) => a ^ b) },
  { ...cmp('Equal', 'numericOrBool', (a, b) => (a === b ? 1 : 0)), strings: true },
  cmp('Greater', 'numeric', (a, b) => (a > b ? 1 : 0)),
  cmp('GreaterOrEqual', 'numeric', (a, b) => (a >= b ? 1 : 0)),
  cmp('Less', 'numeric', (a, b) => (a < b ? 1 : 0)),
  cmp('LessOrEqual', 'numeric', (a, b) => (a <= b ? 1 : 0)),
];

/** Dtype class of input i, widened to strings where the row compares strings. */
function classOf(row: BinaryRow, i: number, dtype: DType | undefined): TypeClass {
  if (row.strings && dtype === 'string') return 'any';
  return i === 1 && row.types1 ? row.types1 : row.types;
}

function inferBinary(row: BinaryRow, ctx: InferContext) {
  const a = checkClass(ctx, 0, classOf(row, 0, ctx.inputs[0]?.dtype));
  const b = checkClass(ctx, 1, classOf(row, 1, ctx.inputs[1]?.dtype));
  if (!row.types1) checkSameDType(ctx, [0, 1]);
  row.pick(a.dtype, ctx.attrs); // validates attributes
  const shape = broadcastInputs(ctx, [0, 1]);
  if (row.unidirectional && shape && a.shape && !shapeEq(shape, a.shape))
    throw new UserError(`${row.op}: input 1 of shape [${b.shape!.join(',')}] does not broadcast to input 0's shape [${a.shape.join(',')}]`, {
      node: ctx.node.label,
    });
  return { dtype: row.out ?? a.dtype, shape };
}

function binaryRow(row: BinaryRow): OpDef {
  const cost = row.cost ?? 1;
  return {
    op: row.op,
    family: 'elementwise',
    inputs: [2, 2],
    outputs: [1, 1],
    infer: (ctx) => [inferBinary(row, ctx)],
    evaluate(ctx) {
      const a = tensorOfClass(ctx, 0, classOf(row, 0, ctx.inputs[0]?.dtype));
      const b = tensorOfClass(ctx, 1, classOf(row, 1, ctx.inputs[1]?.dtype));
      if (!row.types1 && a.dtype !== b.dtype)
        throw new UserError(`${row.op} inputs must have the same dtype, got ${a.dtype} and ${b.dtype}`, { node: ctx.node.label });
      const shape = broadcastRuntime(ctx, [a.shape, b.shape]);
      if (row.unidirectional && !shapeEq(shape, a.shape))
        throw new UserError(`${row.op}: input 1 of shape [${b.shape.join(',')}] does not broadcast to [${a.shape.join(',')}]`, {
          node: ctx.node.label,
        });
      const dtype = row.out ?? a.dtype;
      const y = allocStorage(dtype, shape.reduce((p, d) => p * d, 1));
      if (a.dtype === 'string') {
        equalStrings(a.strings!, a.shape, b.strings!, b.shape, y, shape);
        return [new Tensor(dtype, shape, y)];
      }
      applyBinary(row.pick(a.dtype, ctx.attrs), a.data, a.shape, b.data, b.shape, y, shape);
      return [finish(dtype, shape, y)];
    },
    flops: (ctx) => staticNumel(inferBinary(row, ctx).shape) * cost,
  };
}

/** Equal on string tensors (rare, so a plain loop over the broadcast plan). */
function equalStrings(a: string[], aShape: readonly number[], b: string[], bShape: readonly number[], y: TypedArray, shape: number[]): void {
  if (y.length === 0) return;
  const p = broadcastPlan([aShape, bShape], shape);
  const [ab, bb] = p.base as [Int32Array, Int32Array];
  const [as, bs] = p.step as [number, number];
  for (let r = 0, o = 0; r < p.rows; r++)
    for (let j = 0; j < p.inner; j++, o++) y[o] = a[ab[r]! + j * as] === b[bb[r]! + j * bs] ? 1 : 0;
}

// ---- variadic (Max, Min, Sum, Mean) ----

interface VariadicRow {
  op: string;
  types: TypeClass;
  f: BinaryFn;
  /** Mean divides the sum by the number of inputs. */
  mean?: boolean;
}

const VARIADIC: VariadicRow[] = [
  { op: 'Max', types: 'numeric', f: max },
  { op: 'Min', types: 'numeric', f: min },
  { op: 'Sum', types: 'float', f: add },
  { op: 'Mean', types: 'float', f: add, mean: true },
];

const divideBy = (x: number, n: number): number => x / n;

function inferVariadic(row: VariadicRow, ctx: InferContext) {
  const idx = ctx.inputs.map((_, i) => i);
  idx.forEach((i) => checkClass(ctx, i, row.types));
  const dtype = checkSameDType(ctx, idx);
  return { dtype, shape: broadcastInputs(ctx, idx) };
}

function variadicRow(row: VariadicRow): OpDef {
  return {
    op: row.op,
    family: 'elementwise',
    inputs: [1, Infinity],
    outputs: [1, 1],
    infer: (ctx) => [inferVariadic(row, ctx)],
    evaluate(ctx) {
      const xs = ctx.inputs.map((_, i) => tensorOfClass(ctx, i, row.types));
      const dtype = xs[0]!.dtype;
      for (const x of xs)
        if (x.dtype !== dtype)
          throw new UserError(`${row.op} inputs must have the same dtype, got ${dtype} and ${x.dtype}`, { node: ctx.node.label });
      const shape = broadcastRuntime(
        ctx,
        xs.map((x) => x.shape),
      );
      // Accumulate in place: the accumulator has the output's shape, so each element reads and
      // writes the same index.
      const acc = expandTo(xs[0]!.data, xs[0]!.shape, dtype, shape);
      for (const x of xs.slice(1)) applyBinary(row.f, acc, shape, x.data, x.shape, acc, shape);
      if (row.mean) mapUnary(divideBy, acc, acc, xs.length);
      return [finish(dtype, shape, acc)];
    },
    flops: (ctx) => staticNumel(inferVariadic(row, ctx).shape) * Math.max(1, ctx.inputs.length - 1 + (row.mean ? 1 : 0)),
  };
}

export const binaryOps: OpDef[] = [...BINARY.map(binaryRow), ...VARIADIC.map(variadicRow)];
