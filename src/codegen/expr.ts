/**
 * The scalar expression AST of the kernel IR: every value a kernel computes is a tree of these
 * nodes. Each node carries its scalar type, so a type error in a lowering is a TypeScript or
 * construction-time error, not a shader compile error on the GPU.
 *
 * Types: `f32`, `i32`, `u32`, `bool`. Index arithmetic is `i32`. Buffers hold `f32`, `i32` or
 * `u32` words; a bool buffer is stored as `u32` 0/1 and loads as `bool` (renderers convert).
 *
 * Three consumers read the same trees: the WGSL renderer (src/codegen/wgsl), the CPU executor
 * (src/codegen/cpu.ts) and, later, the CUDA renderer. Build trees with the helpers below
 * (`add`, `load`, `select`, ...), which check operand types.
 */

export type ScalarType = 'f32' | 'i32' | 'u32' | 'bool';

/** Binary arithmetic/logic ops. `%` is truncated (C/WGSL) remainder; `pow`, `atan2` are f32 only. */
export type BinOp = '+' | '-' | '*' | '/' | '%' | 'min' | 'max' | 'pow' | '&' | '|' | '^' | '<<' | '>>' | '&&' | '||';
export type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';
/** Unary ops: math (f32), `neg`/`abs` (numeric), `not` (bool), `bitnot` (ints), `isnan`/`isinf` (f32 → bool). */
export type UnOp =
  | 'neg' | 'abs' | 'not' | 'bitnot'
  | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'sin' | 'cos' | 'tan' | 'asin' | 'acos' | 'atan'
  | 'sinh' | 'cosh' | 'tanh' | 'asinh' | 'acosh' | 'atanh'
  | 'floor' | 'ceil' | 'round' | 'trunc' | 'sign' | 'erf' | 'isnan' | 'isinf';

export type Expr =
  | { k: 'const'; t: ScalarType; v: number }
  /** A kernel parameter (i32 uniform): sizes and strides, so one compiled kernel serves many shapes. */
  | { k: 'param'; t: 'i32'; name: string }
  /** A variable bound by the kernel body: the invocation index, template loop indices, lets. */
  | { k: 'var'; t: ScalarType; name: string }
  | { k: 'load'; t: ScalarType; buf: string; index: Expr }
  | { k: 'bin'; t: ScalarType; op: BinOp; a: Expr; b: Expr }
  | { k: 'un'; t: ScalarType; op: UnOp; a: Expr }
  | { k: 'cmp'; t: 'bool'; op: CmpOp; a: Expr; b: Expr }
  | { k: 'select'; t: ScalarType; cond: Expr; a: Expr; b: Expr }
  | { k: 'cast'; t: ScalarType; a: Expr };

export class KernelTypeError extends Error {}

function expectType(e: Expr, t: ScalarType | ScalarType[], what: string): void {
  const ok = Array.isArray(t) ? t.includes(e.t) : e.t === t;
  if (!ok) throw new KernelTypeError(`${what}: expected ${Array.isArray(t) ? t.join('|') : t}, got ${e.t}`);
}

// ---- constructors --------------------------------------------------------------------------

export const f32 = (v: number): Expr => ({ k: 'const', t: 'f32', v: Math.fround(v) });
export const i32 = (v: number): Expr => {
  if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw new KernelTypeError(`i32 constant out of range: ${v}`);
  return { k: 'const', t: 'i32', v };
};
export const u32 = (v: number): Expr => ({ k: 'const', t: 'u32', v: v >>> 0 });
export const bool = (v: boolean): Expr => ({ k: 'const', t: 'bool', v: v ? 1 : 0 });
export const constOf = (t: ScalarType, v: number): Expr =>
  t === 'f32' ? f32(v) : t === 'i32' ? i32(v) : t === 'u32' ? u32(v) : bool(v !== 0);

export const param = (name: string): Expr => ({ k: 'param', t: 'i32', name });
export const variable = (name: string, t: ScalarType = 'i32'): Expr => ({ k: 'var', t, name });

/** Element `index` (i32) of buffer `buf` whose elements have type `t`. */
export function load(buf: string, t: ScalarType, index: Expr): Expr {
  expectType(index, 'i32', `index of ${buf}`);
  return { k: 'load', t, buf, index };
}

const NUMERIC: ScalarType[] = ['f32', 'i32', 'u32'];
const INTS: ScalarType[] = ['i32', 'u32'];

export function bin(op: BinOp, a: Expr, b: Expr): Expr {
  if (a.t !== b.t) throw new KernelTypeError(`operands of ${op} differ: ${a.t} and ${b.t}`);
  if (op === '&&' || op === '||') expectType(a, 'bool', op);
  else if (op === 'pow') expectType(a, 'f32', op);
  else if (op === '&' || op === '|' || op === '^') expectType(a, [...INTS, 'bool'], op);
  else if (op === '<<' || op === '>>') expectType(a, INTS, op);
  else expectType(a, NUMERIC, op);
  return { k: 'bin', t: a.t, op, a, b };
}

export const add = (a: Expr, b: Expr): Expr => bin('+', a, b);
export const sub = (a: Expr, b: Expr): Expr => bin('-', a, b);
export const mul = (a: Expr, b: Expr): Expr => bin('*', a, b);
export const div = (a: Expr, b: Expr): Expr => bin('/', a, b);
export const rem = (a: Expr, b: Expr): Expr => bin('%', a, b);
export const min = (a: Expr, b: Expr): Expr => bin('min', a, b);
export const max = (a: Expr, b: Expr): Expr => bin('max', a, b);

const F32_ONLY: UnOp[] = ['exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'tan', 'asin', 'acos', 'atan', 'sinh', 'cosh', 'tanh',
  'asinh', 'acosh', 'atanh', 'floor', 'ceil', 'round', 'trunc', 'erf', 'isnan', 'isinf'];

export function un(op: UnOp, a: Expr): Expr {
  if (F32_ONLY.includes(op)) expectType(a, 'f32', op);
  else if (op === 'not') expectType(a, 'bool', op);
  else if (op === 'bitnot') expectType(a, INTS, op);
  else expectType(a, NUMERIC, op);
  const t: ScalarType = op === 'isnan' || op === 'isinf' ? 'bool' : a.t;
  return { k: 'un', t, op, a };
}

export function cmp(op: CmpOp, a: Expr, b: Expr): Expr {
  if (a.t !== b.t) throw new KernelTypeError(`operands of ${op} differ: ${a.t} and ${b.t}`);
  if (op !== '==' && op !== '!=') expectType(a, NUMERIC, op);
  return { k: 'cmp', t: 'bool', op, a, b };
}

/** `cond ? a : b` (both sides are evaluated). */
export function select(cond: Expr, a: Expr, b: Expr): Expr {
  expectType(cond, 'bool', 'select condition');
  if (a.t !== b.t) throw new KernelTypeError(`select branches differ: ${a.t} and ${b.t}`);
  return { k: 'select', t: a.t, cond, a, b };
}

/** Value conversion (f32 → int truncates toward zero; bool ↔ numbers as 0/1). No-op when types match. */
export function cast(a: Expr, t: ScalarType): Expr {
  return a.t === t ? a : { k: 'cast', t, a };
}

// ---- traversal -----------------------------------------------------------------------------

/** Visits every node of `e` (pre-order). */
export function walk(e: Expr, f: (e: Expr) => void): void {
  f(e);
  switch (e.k) {
    case 'load': walk(e.index, f); break;
    case 'bin': case 'cmp': walk(e.a, f); walk(e.b, f); break;
    case 'un': case 'cast': walk(e.a, f); break;
    case 'select': walk(e.cond, f); walk(e.a, f); walk(e.b, f); break;
    default: break;
  }
}

/** Replaces `var` nodes by name (used to instantiate template load expressions). */
export function substitute(e: Expr, vars: Readonly<Record<string, Expr>>): Expr {
  switch (e.k) {
    case 'var': return vars[e.name] ?? e;
    case 'load': return { ...e, index: substitute(e.index, vars) };
    case 'bin': case 'cmp': return { ...e, a: substitute(e.a, vars), b: substitute(e.b, vars) } as Expr;
    case 'un': case 'cast': return { ...e, a: substitute(e.a, vars) } as Expr;
    case 'select': return { ...e, cond: substitute(e.cond, vars), a: substitute(e.a, vars), b: substitute(e.b, vars) };
    default: return e;
  }
}
