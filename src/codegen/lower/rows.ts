/**
 * Row geometry shared by the reduce and normalization lowerings: a tensor seen as `rows × len`
 * where the reduced (or normalized) axes are any subset of dims — no transpose. The offset of
 * element (row, r) is a dot product of the row's coordinates over the kept dims and r's
 * coordinates over the reduced dims with the tensor's strides; dims and strides are params.
 */
import { numel, stridesOf } from '../../ir/shape.js';
import { type Expr, div, i32, rem, variable } from '../expr.js';
import { type Params, madd } from '../index-map.js';

/** Coordinates of `flat` over `shape` as inline expressions (size-1 dims give constant 0). */
export function inlineCoords(p: Params, prefix: string, flat: Expr, shape: readonly number[]): Expr[] {
  const st = stridesOf(shape);
  return shape.map((dim, d) => {
    if (dim === 1) return i32(0);
    let v = st[d] === 1 ? flat : div(flat, p.int(`${prefix}_st${d}`, st[d]!));
    if (d > 0 && numel(shape.slice(0, d)) > 1) v = rem(v, p.int(`${prefix}_dim${d}`, dim));
    return v;
  });
}

export interface RowGeometry {
  rows: number;
  len: number;
  /** Offset of element (row, r) in the input (vars `row`, `r`). */
  offset: Expr;
}

/** Rows over the dims not in `axes`, r over the dims in `axes` (both in dim order). */
export function rowGeometry(p: Params, shape: readonly number[], axes: readonly number[]): RowGeometry {
  const strides = stridesOf(shape);
  const kept = shape.map((_, d) => d).filter((d) => !axes.includes(d));
  const red = shape.map((_, d) => d).filter((d) => axes.includes(d));
  const keptShape = kept.map((d) => shape[d]!);
  const redShape = red.map((d) => shape[d]!);
  // Contiguous trailing axes: offset = row * len + r.
  const trailing = red.length > 0 && red.every((d, k) => d === shape.length - red.length + k);
  const len = numel(redShape);
  if (trailing || red.length === 0) {
    const lenP = p.int('len', len);
    return { rows: numel(keptShape), len, offset: madd(variable('r'), variable('row'), lenP) };
  }
  const rc = inlineCoords(p, 'row', variable('row'), keptShape);
  const cc = inlineCoords(p, 'r', variable('r'), redShape);
  let off: Expr | undefined;
  kept.forEach((d, k) => rc[k]!.k !== 'const' && (off = madd(off, rc[k]!, p.int(`x_s${d}`, strides[d]!))));
  red.forEach((d, k) => cc[k]!.k !== 'const' && (off = madd(off, cc[k]!, p.int(`x_s${d}`, strides[d]!))));
  return { rows: numel(keptShape), len, offset: off ?? i32(0) };
}
