/**
 * CUDA C++ rendering of kernel-IR expressions: a type map and tables of op → code, the second
 * table over the same expression trees as src/codegen/wgsl/expr.ts. Semantics follow the CPU
 * executor (src/codegen/cpu.ts), which defines them: integer division by zero gives the dividend
 * and remainder by zero gives 0 (WGSL's rule), `round` is half-to-even (rintf), f32 → int casts
 * saturate with NaN → 0, shifts use the low 5 bits of the count, bools are stored as u32 0/1.
 * The edge cases C++ leaves undefined go through small `sc_*` helpers of the prelude
 * (CUDA_PRELUDE) so host compilers (the test shim) and nvcc agree.
 *
 * Plain i32 `+ - *` are rendered as C++ int arithmetic: the GPU wraps, and the host shim is
 * compiled with -fwrapv; index arithmetic stays readable.
 *
 * Half storage: an f32 buffer of the kernel IR may be stored as `__half` or `__nv_bfloat16`
 * (`CudaNames.storage`, chosen per launch by src/bundle/cuda.ts from the IR value's dtype). Its
 * loads convert to float and its stores round to nearest-even (`__float2half_rn`,
 * `__float2bfloat16_rn`, as src/ir/dtype.ts roundToDType); all arithmetic stays f32.
 */
import type { BinOp, CmpOp, Expr, ScalarType, UnOp } from '../expr.js';
import { identifier } from '../names.js';

export const CUDA_TYPE: Record<ScalarType, string> = { f32: 'float', i32: 'int', u32: 'unsigned int', bool: 'bool' };

/**
 * Device helpers shared by every kernel file (emitted once at the top of a .cu file). Each is a
 * one-line definition of the CPU executor's rule for an operation C++ leaves undefined or WGSL
 * defines differently from CUDA's intrinsics.
 */
export const CUDA_PRELUDE = [
  '#ifndef SHARDC_CUDA_PRELUDE',
  '#define SHARDC_CUDA_PRELUDE',
  '#define SC_DEV __device__ __forceinline__',
  '// Integer division and remainder: x / 0 = x, x % 0 = 0, INT_MIN / -1 wraps (WGSL semantics).',
  'SC_DEV int sc_div_i32(int a, int b) { return b == 0 ? a : b == -1 ? (int)(0u - (unsigned int)a) : a / b; }',
  'SC_DEV int sc_rem_i32(int a, int b) { return (b == 0 || b == -1) ? 0 : a % b; }',
  'SC_DEV unsigned int sc_div_u32(unsigned int a, unsigned int b) { return b == 0u ? a : a / b; }',
  'SC_DEV unsigned int sc_rem_u32(unsigned int a, unsigned int b) { return b == 0u ? 0u : a % b; }',
  'SC_DEV int sc_neg_i32(int a) { return (int)(0u - (unsigned int)a); }',
  'SC_DEV int sc_abs_i32(int a) { return a < 0 ? (int)(0u - (unsigned int)a) : a; }',
  'SC_DEV int sc_shl_i32(int a, int b) { return (int)((unsigned int)a << (b & 31)); }',
  'SC_DEV int sc_shr_i32(int a, int b) { return a >> (b & 31); }',
  '// Saturating f32 -> integer conversions (NaN -> 0), as the CPU executor and PTX cvt.rzi.sat.',
  'SC_DEV int sc_f2i(float x) { return x != x ? 0 : x >= 2147483648.0f ? 2147483647 : x <= -2147483648.0f ? (-2147483647 - 1) : (int)x; }',
  'SC_DEV unsigned int sc_f2u(float x) { return x != x ? 0u : x >= 4294967296.0f ? 4294967295u : x <= 0.0f ? 0u : (unsigned int)x; }',
  '// sign keeps NaN and -0 (Math.sign).',
  'SC_DEV float sc_sign_f32(float x) { return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x; }',
  '// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26): the polynomial the WGSL and CPU targets use.',
  'SC_DEV float sc_erf(float x) {',
  '  float t = 1.0f / (1.0f + 0.3275911f * fabsf(x));',
  '  float y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t) + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t * expf(-x * x);',
  '  return x >= 0.0f ? y : -y;',
  '}',
  '#endif',
].join('\n');

/** 2-byte storage of an f32 buffer. */
export type HalfStorage = 'f16' | 'bf16';

export const HALF_TYPE: Record<HalfStorage, { type: string; toFloat: string; fromFloat: string }> = {
  f16: { type: '__half', toFloat: '__half2float', fromFloat: '__float2half_rn' },
  bf16: { type: '__nv_bfloat16', toFloat: '__bfloat162float', fromFloat: '__float2bfloat16_rn' },
};

/** Identifier of a kernel variable (let, loop or template variable) in CUDA. */
export const varName = (name: string): string => identifier(name, 'v');

/** An f32 literal (non-finite values through their bit patterns). */
export function f32Literal(v: number): string {
  if (!Number.isFinite(v)) return `__uint_as_float(${Number.isNaN(v) ? '0x7fc00000u' : v > 0 ? '0x7f800000u' : '0xff800000u'})`;
  if (Object.is(v, -0)) return '-0.0f';
  let s = String(v);
  if (!/[.e]/.test(s)) s += '.0';
  return `${s}f`;
}

export function literal(t: ScalarType, v: number): string {
  switch (t) {
    case 'f32': return f32Literal(v);
    case 'i32': return v === -(2 ** 31) ? '(-2147483647 - 1)' : v < 0 ? `(${v})` : `${v}`;
    case 'u32': return `${v >>> 0}u`;
    case 'bool': return v ? 'true' : 'false';
  }
}

/** How an expression's names are spelled: buffers and the params struct. */
export interface CudaNames {
  buf(name: string): string;
  /** The params struct variable (`p`). */
  params: string;
  /** The 2-byte storage of a buffer (kernel-IR name); undefined: its ScalarType as is. */
  storage?(name: string): HalfStorage | undefined;
}

const F32_UN: Partial<Record<UnOp, string>> = {
  exp: 'expf', log: 'logf', sqrt: 'sqrtf', rsqrt: 'rsqrtf', sin: 'sinf', cos: 'cosf', tan: 'tanf', asin: 'asinf', acos: 'acosf',
  atan: 'atanf', sinh: 'sinhf', cosh: 'coshf', tanh: 'tanhf', asinh: 'asinhf', acosh: 'acoshf', atanh: 'atanhf', floor: 'floorf',
  ceil: 'ceilf', round: 'rintf', trunc: 'truncf', erf: 'sc_erf', isnan: 'isnan', isinf: 'isinf',
};

function renderUn(op: UnOp, a: string, t: ScalarType): string {
  const f = F32_UN[op];
  if (f) return `${f}(${a})`;
  switch (op) {
    case 'neg': return t === 'i32' ? `sc_neg_i32(${a})` : t === 'u32' ? `(0u - ${a})` : `(-${a})`;
    case 'abs': return t === 'u32' ? a : t === 'i32' ? `sc_abs_i32(${a})` : `fabsf(${a})`;
    case 'not': return `(!${a})`;
    case 'bitnot': return `(~${a})`;
    case 'sign': return t === 'f32' ? `sc_sign_f32(${a})` : t === 'u32' ? `(${a} > 0u ? 1u : 0u)` : `((${a} > 0) - (${a} < 0))`;
    default: throw new Error(`unary op ${op} has no CUDA rendering`);
  }
}

function renderBin(op: BinOp, a: string, b: string, t: ScalarType): string {
  switch (op) {
    case 'min': return t === 'f32' ? `fminf(${a}, ${b})` : `min(${a}, ${b})`;
    case 'max': return t === 'f32' ? `fmaxf(${a}, ${b})` : `max(${a}, ${b})`;
    case 'pow': return `powf(${a}, ${b})`;
    case '/': return t === 'f32' ? `(${a} / ${b})` : t === 'i32' ? `sc_div_i32(${a}, ${b})` : `sc_div_u32(${a}, ${b})`;
    case '%': return t === 'f32' ? `fmodf(${a}, ${b})` : t === 'i32' ? `sc_rem_i32(${a}, ${b})` : `sc_rem_u32(${a}, ${b})`;
    case '^': return t === 'bool' ? `(${a} != ${b})` : `(${a} ^ ${b})`;
    case '&': case '|': return t === 'bool' ? `((${a} ${op} ${b}) != 0)` : `(${a} ${op} ${b})`;
    case '<<': return t === 'i32' ? `sc_shl_i32(${a}, ${b})` : `(${a} << (${b} & 31u))`;
    case '>>': return t === 'i32' ? `sc_shr_i32(${a}, ${b})` : `(${a} >> (${b} & 31u))`;
    default: return `(${a} ${op} ${b})`;
  }
}

const CMP: Record<CmpOp, string> = { '==': '==', '!=': '!=', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };

function renderCast(a: string, from: ScalarType, to: ScalarType): string {
  if (to === 'bool') return from === 'f32' ? `(${a} != 0.0f)` : `(${a} != 0)`;
  if (from === 'bool') return `(${a} ? ${literal(to, 1)} : ${literal(to, 0)})`;
  if (from === 'f32') return to === 'i32' ? `sc_f2i(${a})` : `sc_f2u(${a})`;
  return `((${CUDA_TYPE[to]})(${a}))`;
}

/** CUDA source of an expression. */
export function renderExpr(e: Expr, n: CudaNames): string {
  const r = (x: Expr): string => renderExpr(x, n);
  switch (e.k) {
    case 'const': return literal(e.t, e.v);
    case 'param': return `${n.params}.${identifier(e.name, 'p')}`;
    case 'var': return varName(e.name);
    case 'load': {
      const at = `${n.buf(e.buf)}[${r(e.index)}]`;
      const h = n.storage?.(e.buf);
      return h ? `${HALF_TYPE[h].toFloat}(${at})` : e.t === 'bool' ? `(${at} != 0u)` : at;
    }
    case 'bin': return renderBin(e.op, r(e.a), r(e.b), e.t);
    case 'un': return renderUn(e.op, r(e.a), e.a.t);
    case 'cmp': return `(${r(e.a)} ${CMP[e.op]} ${r(e.b)})`;
    case 'select': return `(${r(e.cond)} ? ${r(e.a)} : ${r(e.b)})`;
    case 'cast': return renderCast(r(e.a), e.a.t, e.t);
  }
}

/** The value to write into a buffer word (bool → u32 0/1). */
export function storeValue(e: Expr, n: CudaNames): string {
  const v = renderExpr(e, n);
  return e.t === 'bool' ? `(${v} ? 1u : 0u)` : v;
}

/** `buf[index] = value;` with the buffer's storage conversion (`value` already rendered). */
export function storeStatement(buf: string, index: string, value: string, n: CudaNames): string {
  const h = n.storage?.(buf);
  return `${n.buf(buf)}[${index}] = ${h ? `${HALF_TYPE[h].fromFloat}(${value})` : value};`;
}

/** The C++ element type of a kernel buffer: its storage type, or its ScalarType's. */
export function bufferCType(name: string, t: ScalarType, n: Pick<CudaNames, 'storage'>): string {
  const h = n.storage?.(name);
  return h ? HALF_TYPE[h].type : CUDA_TYPE[t];
}
