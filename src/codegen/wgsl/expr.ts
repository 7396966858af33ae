/**
 * WGSL rendering of kernel-IR expressions: a type map and tables of op → code. Helper functions
 * that WGSL lacks (erf, a sign-correct pow, NaN tests) are emitted only when an expression uses
 * them (`Helpers`).
 */
import type { BinOp, CmpOp, Expr, ScalarType, UnOp } from '../expr.js';

export const WGSL_TYPE: Record<ScalarType, string> = { f32: 'f32', i32: 'i32', u32: 'u32', bool: 'bool' };

/** WGSL helper functions, by name; a renderer collects the ones it used. */
export const HELPERS: Record<string, string> = {
  erf_f32: [
    '// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26)',
    'fn erf_f32(x: f32) -> f32 {',
    '  let t = 1.0f / (1.0f + 0.3275911f * abs(x));',
    '  let y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t) + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t * exp(-x * x);',
    '  return select(-y, y, x >= 0.0f);',
    '}',
  ].join('\n'),
  pow_f32: [
    '// pow with a negative base and an integral exponent (WGSL pow is undefined for x < 0)',
    'fn pow_f32(x: f32, y: f32) -> f32 {',
    '  if (x >= 0.0f) { return pow(x, y); }',
    '  if (y != floor(y)) { var nan_bits = 0x7fc00000u; return bitcast<f32>(nan_bits); }',
    '  let m = pow(-x, y);',
    '  return select(m, -m, (abs(y) % 2.0f) == 1.0f);',
    '}',
  ].join('\n'),
  isnan_f32: 'fn isnan_f32(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }',
  isinf_f32: 'fn isinf_f32(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }',
  // Non-finite values are not WGSL constants (constant evaluation rejects them): build them at run time.
  f32_from_bits: 'fn f32_from_bits(bits: u32) -> f32 { var b = bits; return bitcast<f32>(b); }',
};

export type Helpers = Set<string>;

/** An f32 literal; NaN and ±inf (which WGSL cannot write as constants) need `h` for a helper. */
export function f32Literal(v: number, h?: Helpers): string {
  if (!Number.isFinite(v)) {
    if (!h) throw new Error(`non-finite f32 constant ${v} needs the helper set`);
    h.add('f32_from_bits');
    return `f32_from_bits(${Number.isNaN(v) ? '0x7fc00000u' : v > 0 ? '0x7f800000u' : '0xff800000u'})`;
  }
  if (Object.is(v, -0)) return '-0.0f';
  let s = String(v);
  if (!/[.e]/.test(s)) s += '.0';
  return `${s}f`;
}

export function literal(t: ScalarType, v: number, h?: Helpers): string {
  switch (t) {
    case 'f32': return f32Literal(v, h);
    case 'i32': return v === -(2 ** 31) ? 'i32(-2147483647 - 1)' : v < 0 ? `(${v}i)` : `${v}i`;
    case 'u32': return `${v >>> 0}u`;
    case 'bool': return v ? 'true' : 'false';
  }
}

const UN: Record<UnOp, (a: string, t: ScalarType, h: Helpers) => string> = {
  neg: (a) => `(-${a})`,
  abs: (a, t) => (t === 'u32' ? a : `abs(${a})`),
  not: (a) => `(!${a})`,
  bitnot: (a) => `(~${a})`,
  exp: (a) => `exp(${a})`,
  log: (a) => `log(${a})`,
  sqrt: (a) => `sqrt(${a})`,
  rsqrt: (a) => `inverseSqrt(${a})`,
  sin: (a) => `sin(${a})`,
  cos: (a) => `cos(${a})`,
  tan: (a) => `tan(${a})`,
  asin: (a) => `asin(${a})`,
  acos: (a) => `acos(${a})`,
  atan: (a) => `atan(${a})`,
  sinh: (a) => `sinh(${a})`,
  cosh: (a) => `cosh(${a})`,
  tanh: (a) => `tanh(${a})`,
  asinh: (a) => `asinh(${a})`,
  acosh: (a) => `acosh(${a})`,
  atanh: (a) => `atanh(${a})`,
  floor: (a) => `floor(${a})`,
  ceil: (a) => `ceil(${a})`,
  round: (a) => `round(${a})`,
  trunc: (a) => `trunc(${a})`,
  sign: (a, t) => (t === 'u32' ? `min(${a}, 1u)` : `sign(${a})`),
  erf: (a, _t, h) => (h.add('erf_f32'), `erf_f32(${a})`),
  isnan: (a, _t, h) => (h.add('isnan_f32'), `isnan_f32(${a})`),
  isinf: (a, _t, h) => (h.add('isinf_f32'), `isinf_f32(${a})`),
};

const INFIX: Partial<Record<BinOp, string>> = { '+': '+', '-': '-', '*': '*', '/': '/', '%': '%', '&': '&', '|': '|', '&&': '&&', '||': '||' };

function renderBin(op: BinOp, a: string, b: string, t: ScalarType, h: Helpers): string {
  if (op === 'min' || op === 'max') return `${op}(${a}, ${b})`;
  if (op === 'pow') return h.add('pow_f32'), `pow_f32(${a}, ${b})`;
  if (op === '^') return t === 'bool' ? `(${a} != ${b})` : `(${a} ^ ${b})`;
  if (op === '<<' || op === '>>') return `(${a} ${op} u32(${b}))`;
  return `(${a} ${INFIX[op]!} ${b})`;
}

const CMP: Record<CmpOp, string> = { '==': '==', '!=': '!=', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };

/** WGSL source of an expression; `params` names the uniform struct (`u.<name>`). */
export function renderExpr(e: Expr, h: Helpers): string {
  const r = (x: Expr): string => renderExpr(x, h);
  switch (e.k) {
    case 'const': return literal(e.t, e.v, h);
    case 'param': return `u.${e.name}`;
    case 'var': return e.name;
    case 'load': return e.t === 'bool' ? `(${e.buf}[${r(e.index)}] != 0u)` : `${e.buf}[${r(e.index)}]`;
    case 'bin': return renderBin(e.op, r(e.a), r(e.b), e.t, h);
    case 'un': return UN[e.op](r(e.a), e.a.t, h);
    case 'cmp': return `(${r(e.a)} ${CMP[e.op]} ${r(e.b)})`;
    case 'select': return `select(${r(e.b)}, ${r(e.a)}, ${r(e.cond)})`;
    case 'cast': return `${WGSL_TYPE[e.t]}(${r(e.a)})`;
  }
}

/** The value to write into a buffer word (bool → u32 0/1). */
export function storeValue(e: Expr, h: Helpers): string {
  const v = renderExpr(e, h);
  return e.t === 'bool' ? `select(0u, 1u, ${v})` : v;
}
