/**
 * Cast and CastLike: every numeric dtype (float16/bfloat16 rounded once, to nearest even), bool,
 * and string ↔ number. Floats become integers by truncation toward zero (C semantics); narrow
 * integers wrap. Numbers print as numpy prints them (the ONNX reference): the shortest digits that
 * read back to the same value of the source dtype, positional within a dtype-dependent range,
 * otherwise scientific (`1e-05`). The opset-19 `saturate` attribute only concerns float8 types,
 * which the IR does not have, so it is ignored.
 */
import type { DType, TypedArray } from '../dtype.js';
import { allocStorage, dtypeFromOnnx, isFloat, storageOf } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, OpDef } from '../registry.js';
import { Tensor } from '../tensor.js';
import { finish, staticNumel, tensorAt } from './elementwise-kernels.js';
import { toBFloat16, toFloat16 } from './elementwise-math.js';
import { input } from './util.js';

// ---- number → string ----

/** Reads a decimal back in the source dtype, to find the shortest round-tripping digits. */
const READ_BACK: Partial<Record<DType, (v: number) => number>> = {
  float32: Math.fround,
  float16: toFloat16,
  bfloat16: toBFloat16,
};

/** numpy prints |x| >= 10^cutoff in scientific notation; the cutoff depends on the dtype's precision. */
const POSITIONAL_CUTOFF: Partial<Record<DType, number>> = { float16: 1e3, bfloat16: 1e3, float32: 1e6, float64: 1e16 };

/** A float formatted like numpy's `str()` of a scalar of `dtype`. */
export function formatFloat(v: number, dtype: DType): string {
  if (v !== v) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const readBack = READ_BACK[dtype] ?? ((x: number) => x);
  let p = 1;
  while (p < 17 && readBack(Number(v.toPrecision(p))) !== v) p++;
  // Digits and decimal exponent of the shortest form: v = ±d.ddd × 10^exp.
  const [mant, expStr] = Math.abs(v).toExponential(p - 1).split('e') as [string, string];
  const digits = mant.replace('.', '').replace(/0+$/, '') || '0';
  const exp = Number(expStr);
  const sign = v < 0 ? '-' : '';
  const a = Math.abs(v);
  if (a >= 1e-4 && a < (POSITIONAL_CUTOFF[dtype] ?? 1e16)) {
    let s: string;
    if (exp >= 0) {
      const int = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
      const frac = digits.slice(exp + 1);
      s = `${int}.${frac || '0'}`;
    } else {
      s = `0.${'0'.repeat(-exp - 1)}${digits}`;
    }
    return sign + s;
  }
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const e = Math.abs(exp).toString().padStart(2, '0');
  return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
}

function toStrings(x: Tensor): string[] {
  const out = new Array<string>(x.size);
  const d = x.data;
  if (isFloat(x.dtype)) for (let i = 0; i < out.length; i++) out[i] = formatFloat(d[i]!, x.dtype);
  else if (x.dtype === 'bool') for (let i = 0; i < out.length; i++) out[i] = d[i] ? 'True' : 'False';
  else for (let i = 0; i < out.length; i++) out[i] = BigInt(d[i]!).toString();
  return out;
}

// ---- string → number ----

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** Parses a numeric literal (plain, scientific, NaN / INF / +INF / -INF in any case). */
export function parseNumber(s: string, ctx: { node: { label: string } }): number {
  const t = s.trim();
  const l = t.toLowerCase();
  if (l === 'nan' || l === '+nan' || l === '-nan') return NaN;
  if (l === 'inf' || l === '+inf' || l === 'infinity' || l === '+infinity') return Infinity;
  if (l === '-inf' || l === '-infinity') return -Infinity;
  if (l === 'true') return 1;
  if (l === 'false') return 0;
  if (!DECIMAL.test(t)) throw new UserError(`Cast: string ${JSON.stringify(s)} is not a number`, { node: ctx.node.label });
  return Number(t);
}

// ---- numeric → numeric ----

const TWO_63 = 2 ** 63;
const TWO_64 = 2 ** 64;

function toInt64(v: number): number {
  if (v !== v) return 0;
  const t = Math.trunc(v) + 0; // + 0 turns -0 into 0
  return t >= TWO_63 ? TWO_63 : t < -TWO_63 ? -TWO_63 : t;
}

function toUint64(v: number): number {
  if (v !== v) return 0;
  const t = Math.trunc(v);
  const w = t < 0 ? t + TWO_64 : t;
  return w >= TWO_64 ? TWO_64 : w < 0 ? 0 : w;
}

/** Converts values (already exact numbers of `from`) into storage of `to`. */
function convert(src: ArrayLike<number>, from: DType, to: DType): TypedArray {
  const n = src.length;
  const y = allocStorage(to, n);
  switch (to) {
    case 'bool':
      for (let i = 0; i < n; i++) y[i] = src[i] !== 0 ? 1 : 0;
      return y;
    case 'int64':
      for (let i = 0; i < n; i++) y[i] = toInt64(src[i]!);
      return y;
    case 'uint64':
      for (let i = 0; i < n; i++) y[i] = toUint64(src[i]!);
      return y;
    case 'float16':
    case 'bfloat16':
      // Values held exactly in float32 round once through the bit conversion in finish();
      // wider sources round directly from the double.
      if (storageOf(from) === Float32Array || from === 'bool' || from === 'int8' || from === 'uint8' || from === 'int16' || from === 'uint16') {
        for (let i = 0; i < n; i++) y[i] = src[i]!;
      } else {
        const round = to === 'float16' ? toFloat16 : toBFloat16;
        for (let i = 0; i < n; i++) y[i] = round(src[i]!);
      }
      return y;
    default:
      // float32 / float64 stores round; int8..uint32 stores truncate toward zero and wrap (NaN → 0).
      for (let i = 0; i < n; i++) y[i] = src[i]!;
      return y;
  }
}

export function castTensor(x: Tensor, to: DType, ctx: { node: { label: string } }): Tensor {
  if (x.dtype === to) return x;
  if (to === 'string') return new Tensor('string', x.shape, toStrings(x));
  if (x.dtype === 'string') {
    const vals = x.strings!.map((s) => parseNumber(s, ctx));
    return finish(to, x.shape, convert(vals, 'float64', to));
  }
  return finish(to, x.shape, convert(x.data, x.dtype, to));
}

function targetOf(ctx: InferContext | EvalContext): DType {
  const code = ctx.attrs.int('to');
  const d = dtypeFromOnnx(code);
  if (!d) throw new UserError(`Cast: unsupported target dtype code ${code}`, { node: ctx.node.label });
  return d;
}

const cast: OpDef = {
  op: 'Cast',
  family: 'elementwise',
  inputs: [1, 1],
  outputs: [1, 1],
  infer: (ctx) => [{ dtype: targetOf(ctx), shape: input(ctx, 0).shape }],
  evaluate: (ctx) => [castTensor(tensorAt(ctx, 0), targetOf(ctx), ctx)],
  flops: (ctx) => staticNumel(ctx.inputs[0]?.shape),
};

const castLike: OpDef = {
  op: 'CastLike',
  family: 'elementwise',
  inputs: [2, 2],
  outputs: [1, 1],
  infer: (ctx) => [{ dtype: input(ctx, 1).dtype, shape: input(ctx, 0).shape }],
  evaluate: (ctx) => [castTensor(tensorAt(ctx, 0), tensorAt(ctx, 1).dtype, ctx)],
  flops: (ctx) => staticNumel(ctx.inputs[0]?.shape),
};

export const castOps: OpDef[] = [cast, castLike];
