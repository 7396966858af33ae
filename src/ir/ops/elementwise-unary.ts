/**
 * Unary elementwise ops as data: one row per op with its scalar function, accepted dtypes,
 * attribute parameters and cost; `unaryRow` turns a row into an OpDef.
 */
import type { Attrs } from '../attrs.js';
import type { DType } from '../dtype.js';
import { allocStorage } from '../dtype.js';
import { UserError } from '../errors.js';
import type { OpDef } from '../registry.js';
import { type TypeClass, type UnaryFn, checkClass, finish, mapUnary, staticNumel, tensorOfClass } from './elementwise-kernels.js';
import { erf, geluErf, geluTanh, roundHalfEven, sigmoid, softplus } from './elementwise-math.js';

interface UnaryRow {
  op: string;
  /** Accepted input dtypes (ONNX type constraint). */
  types: TypeClass;
  /** Scalar function of the element and up to two attribute parameters. */
  f: UnaryFn;
  /** Attribute parameters p0, p1 (with ONNX defaults). */
  params?: (attrs: Attrs, op: string) => [number, number];
  /** Fixed output dtype (default: the input's). */
  out?: DType;
  /** Flops per element (default 1). */
  cost?: number;
}

const alpha = (def: number) => (a: Attrs): [number, number] => [a.float('alpha', def), 0];
const alphaBeta = (da: number, db: number) => (a: Attrs): [number, number] => [a.float('alpha', da), a.float('beta', db)];

/** Transcendental functions cost more than one flop; 8 is a rough count for the cost model. */
const T = 8;

const UNARY: UnaryRow[] = [
  // float maps
  { op: 'Acos', types: 'float', f: Math.acos, cost: T },
  { op: 'Acosh', types: 'float', f: Math.acosh, cost: T },
  { op: 'Asin', types: 'float', f: Math.asin, cost: T },
  { op: 'Asinh', types: 'float', f: Math.asinh, cost: T },
  { op: 'Atan', types: 'float', f: Math.atan, cost: T },
  { op: 'Atanh', types: 'float', f: Math.atanh, cost: T },
  { op: 'Ceil', types: 'float', f: Math.ceil },
  { op: 'Cos', types: 'float', f: Math.cos, cost: T },
  { op: 'Cosh', types: 'float', f: Math.cosh, cost: T },
  { op: 'Erf', types: 'float', f: erf, cost: T },
  { op: 'Exp', types: 'float', f: Math.exp, cost: T },
  { op: 'Floor', types: 'float', f: Math.floor },
  { op: 'Log', types: 'float', f: Math.log, cost: T },
  { op: 'Reciprocal', types: 'float', f: (x) => 1 / x },
  { op: 'Round', types: 'float', f: roundHalfEven },
  { op: 'Sigmoid', types: 'float', f: sigmoid, cost: T },
  { op: 'Sin', types: 'float', f: Math.sin, cost: T },
  { op: 'Sinh', types: 'float', f: Math.sinh, cost: T },
  { op: 'Sqrt', types: 'float', f: Math.sqrt, cost: T },
  { op: 'Tan', types: 'float', f: Math.tan, cost: T },
  { op: 'Tanh', types: 'float', f: Math.tanh, cost: T },
  { op: 'Softplus', types: 'float', f: softplus, cost: T },
  { op: 'Softsign', types: 'float', f: (x) => x / (1 + Math.abs(x)), cost: 3 },
  // activations with attributes
  { op: 'Elu', types: 'float', f: (x, a) => (x >= 0 ? x : a * Math.expm1(x)), params: alpha(1), cost: T },
  {
    op: 'Celu',
    types: 'float',
    f: (x, a) => (x >= 0 ? x : a * Math.expm1(x / a)),
    params: alpha(1),
    cost: T,
  },
  {
    op: 'Selu',
    types: 'float',
    f: (x, a, g) => (x > 0 ? g * x : g * a * Math.expm1(x)),
    params: (at) => [at.float('alpha', 1.67326319217681884765625), at.float('gamma', 1.05070102214813232421875)],
    cost: T,
  },
  { op: 'LeakyRelu', types: 'float', f: (x, a) => (x >= 0 ? x : a * x), params: alpha(0.01) },
  {
    op: 'HardSigmoid',
    types: 'float',
    f: (x, a, b) => Math.max(0, Math.min(1, a * x + b)),
    params: alphaBeta(0.2, 0.5),
    cost: 3,
  },
  { op: 'HardSwish', types: 'float', f: (x) => x * Math.max(0, Math.min(1, x / 6 + 0.5)), cost: 4 },
  { op: 'ThresholdedRelu', types: 'float', f: (x, a) => (x > a ? x : 0), params: alpha(1) },
  {
    op: 'Gelu',
    types: 'float',
    f: (x, tanh) => (tanh ? geluTanh(x) : geluErf(x)),
    params: (at, op) => {
      const mode = at.string('approximate', 'none');
      if (mode !== 'none' && mode !== 'tanh')
        throw new UserError(`${op}: attribute 'approximate' must be 'none' or 'tanh', got '${mode}'`, { node: at.owner });
      return [mode === 'tanh' ? 1 : 0, 0];
    },
    cost: T,
  },
  // numeric
  { op: 'Abs', types: 'numeric', f: Math.abs },
  { op: 'Neg', types: 'signed', f: (x) => -x },
  { op: 'Sign', types: 'numeric', f: Math.sign },
  { op: 'Relu', types: 'signed', f: (x) => (x < 0 ? 0 : x) },
  {
    op: 'Shrink',
    types: 'numeric',
    f: (x, bias, lambd) => (x < -lambd ? x + bias : x > lambd ? x - bias : 0),
    params: (at) => [at.float('bias', 0), at.float('lambd', 0.5)],
  },
  // predicates and logic
  { op: 'Not', types: 'bool', f: (x) => (x ? 0 : 1) },
  { op: 'IsNaN', types: 'float', f: (x) => (x !== x ? 1 : 0), out: 'bool' },
  {
    op: 'IsInf',
    types: 'float',
    f: (x, neg, pos) => ((x === Infinity && pos) || (x === -Infinity && neg) ? 1 : 0),
    params: (at) => [at.int('detect_negative', 1), at.int('detect_positive', 1)],
    out: 'bool',
  },
];

function unaryRow(row: UnaryRow): OpDef {
  const cost = row.cost ?? 1;
  return {
    op: row.op,
    family: 'elementwise',
    inputs: [1, 1],
    outputs: [1, 1],
    infer(ctx) {
      const x = checkClass(ctx, 0, row.types);
      row.params?.(ctx.attrs, row.op); // validates attributes
      return [{ dtype: row.out ?? x.dtype, shape: x.shape }];
    },
    evaluate(ctx) {
      const x = tensorOfClass(ctx, 0, row.types);
      const dtype = row.out ?? x.dtype;
      const [p0, p1] = row.params ? row.params(ctx.attrs, row.op) : [0, 0];
      const y = allocStorage(dtype, x.data.length);
      mapUnary(row.f, x.data, y, p0, p1);
      return [finish(dtype, x.shape, y)];
    },
    flops(ctx) {
      return staticNumel(ctx.inputs[0]?.shape) * cost;
    },
  };
}

export const unaryOps: OpDef[] = UNARY.map(unaryRow);
