/**
 * Numeric comparison of a computed tensor with a reference, as the ONNX backend tests do it:
 * floats with `|got - expected| <= atol + rtol * |expected|` (numpy's assert_allclose), NaN equal
 * to NaN, infinities equal when they have the same sign; integers, bools and strings exactly.
 * The dtype and the shape must match first.
 */
import { isFloat } from '../ir/dtype.js';
import type { Tensor } from '../ir/tensor.js';

export interface Tolerance {
  /** Relative tolerance (ONNX backend tests: 1e-3). */
  rtol: number;
  /** Absolute tolerance (ONNX backend tests: 1e-7). */
  atol: number;
}

/** The tolerance of ONNX's backend node tests. */
export const ONNX_TEST_TOLERANCE: Tolerance = { rtol: 1e-3, atol: 1e-7 };

/** The element that is furthest outside the tolerance. */
export interface WorstElement {
  /** Flat (row-major) index. */
  flat: number;
  /** Multi-dimensional index. */
  index: number[];
  got: number | string;
  expected: number | string;
  /** |got - expected| (Infinity for NaN or infinity mismatches and for strings). */
  absDiff: number;
}

export interface CompareResult {
  ok: boolean;
  /** Empty when ok; else why, e.g. `dtype int32, expected int64` or `2 of 6 elements differ; worst at [1,0]: got 3, expected 4`. */
  message: string;
  /** Number of elements outside the tolerance. */
  mismatches: number;
  /** The worst element (absent when the dtype or shape differs, or when everything matches). */
  worst?: WorstElement;
  /** Largest |got - expected| over finite pairs (0 when empty). */
  maxAbsDiff: number;
}

/** Row-major flat index → multi-dimensional index. */
export function unflatten(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  let rest = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    idx[d] = n > 0 ? rest % n : 0;
    rest = n > 0 ? Math.floor(rest / n) : 0;
  }
  return idx;
}

export function formatNumber(v: number | string): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(8)));
}

function formatWorst(w: WorstElement): string {
  return `worst at [${w.index.join(',')}]: got ${formatNumber(w.got)}, expected ${formatNumber(w.expected)}`;
}

/** Compares `got` with `expected`. Tolerances apply to float dtypes only. */
export function compareTensors(got: Tensor, expected: Tensor, tol: Tolerance = ONNX_TEST_TOLERANCE): CompareResult {
  if (got.dtype !== expected.dtype)
    return { ok: false, message: `dtype ${got.dtype}, expected ${expected.dtype}`, mismatches: expected.size, maxAbsDiff: 0 };
  if (got.shape.length !== expected.shape.length || got.shape.some((d, i) => d !== expected.shape[i]))
    return {
      ok: false,
      message: `shape [${got.shape.join(',')}], expected [${expected.shape.join(',')}]`,
      mismatches: expected.size,
      maxAbsDiff: 0,
    };
  if (expected.dtype === 'string') return compareStrings(got, expected);

  const a = got.data as ArrayLike<number>;
  const b = expected.data as ArrayLike<number>;
  const n = b.length;
  const float = isFloat(expected.dtype);
  const atol = float ? tol.atol : 0;
  const rtol = float ? tol.rtol : 0;
  let mismatches = 0;
  let maxAbsDiff = 0;
  let worstFlat = -1;
  let worstScore = -Infinity; // how far outside the tolerance: (diff - allowed)
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue; // also equal infinities
    const nanX = x !== x;
    const nanY = y !== y;
    if (nanX && nanY) continue;
    const diff = Math.abs(x - y);
    let score: number;
    if (nanX || nanY || !Number.isFinite(diff)) score = Infinity;
    else {
      if (diff > maxAbsDiff) maxAbsDiff = diff;
      const allowed = atol + rtol * Math.abs(y);
      if (diff <= allowed) continue;
      score = diff - allowed;
    }
    mismatches++;
    if (score > worstScore) {
      worstScore = score;
      worstFlat = i;
    }
  }
  if (mismatches === 0) return { ok: true, message: '', mismatches: 0, maxAbsDiff };
  const x = a[worstFlat]!;
  const y = b[worstFlat]!;
  const worst: WorstElement = {
    flat: worstFlat,
    index: unflatten(worstFlat, expected.shape),
    got: x,
    expected: y,
    absDiff: Number.isFinite(x - y) ? Math.abs(x - y) : Infinity,
  };
  return {
    ok: false,
    message: `${mismatches} of ${n} elements differ; ${formatWorst(worst)}`,
    mismatches,
    worst,
    maxAbsDiff,
  };
}

function compareStrings(got: Tensor, expected: Tensor): CompareResult {
  const a = got.strings ?? [];
  const b = expected.strings ?? [];
  let mismatches = 0;
  let first = -1;
  for (let i = 0; i < b.length; i++)
    if (a[i] !== b[i]) {
      mismatches++;
      if (first < 0) first = i;
    }
  if (mismatches === 0) return { ok: true, message: '', mismatches: 0, maxAbsDiff: 0 };
  const worst: WorstElement = {
    flat: first,
    index: unflatten(first, expected.shape),
    got: a[first] ?? '',
    expected: b[first]!,
    absDiff: Infinity,
  };
  return { ok: false, message: `${mismatches} of ${b.length} elements differ; ${formatWorst(worst)}`, mismatches, worst, maxAbsDiff: 0 };
}
