/**
 * Shapes with symbolic dims. A dim is a non-negative integer or a symbol expression: a product
 * of named symbols with an optional integer coefficient, written canonically as
 * `"batch"`, `"batch*sequence"`, `"4*batch"` (coefficient first, symbols sorted). That is enough
 * for transformer reshapes (batch*seq ↔ batch, seq) and keeps shapes printable and comparable
 * as strings. Symbols are bound to numbers at partition time (`--dim batch=1,sequence=128`).
 */
export type Dim = number | string;
export type Shape = Dim[];

interface Product {
  coef: number;
  syms: string[]; // sorted, with repetition
}

const SYMBOL = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;

export function isSymbolName(s: string): boolean {
  return SYMBOL.test(s);
}

function parseDim(d: Dim): Product {
  if (typeof d === 'number') return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const f of d.split('*')) {
    if (/^\d+$/.test(f)) coef *= Number(f);
    else syms.push(f);
  }
  syms.sort();
  return { coef, syms };
}

function formatProduct(p: Product): Dim {
  if (p.syms.length === 0 || p.coef === 0) return p.coef;
  const s = p.syms.join('*');
  return p.coef === 1 ? s : `${p.coef}*${s}`;
}

export function dimMul(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  const pa = parseDim(a);
  const pb = parseDim(b);
  return formatProduct({ coef: pa.coef * pb.coef, syms: [...pa.syms, ...pb.syms].sort() });
}

/** a / b when exact (numbers dividing evenly, or b's symbols a sub-multiset of a's); else undefined. */
export function dimDiv(a: Dim, b: Dim): Dim | undefined {
  if (typeof a === 'number' && typeof b === 'number') return b !== 0 && a % b === 0 ? a / b : undefined;
  const pa = parseDim(a);
  const pb = parseDim(b);
  if (pb.coef === 0 || pa.coef % pb.coef !== 0) return undefined;
  const rest = [...pa.syms];
  for (const s of pb.syms) {
    const i = rest.indexOf(s);
    if (i < 0) return undefined;
    rest.splice(i, 1);
  }
  return formatProduct({ coef: pa.coef / pb.coef, syms: rest });
}

export function dimProduct(dims: readonly Dim[]): Dim {
  let p: Dim = 1;
  for (const d of dims) p = dimMul(p, d);
  return p;
}

export const isStatic = (s: readonly Dim[]): s is number[] => s.every((d) => typeof d === 'number');

export function dimEq(a: Dim, b: Dim): boolean {
  return a === b || (typeof a === 'string' && typeof b === 'string' && formatProduct(parseDim(a)) === formatProduct(parseDim(b)));
}

export function shapeEq(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => dimEq(d, b[i]!));
}

/** Substitutes bound symbols; unbound ones stay symbolic. */
export function bindDim(d: Dim, bindings: ReadonlyMap<string, number> | Record<string, number>): Dim {
  if (typeof d === 'number') return d;
  const get = (s: string): number | undefined =>
    bindings instanceof Map ? bindings.get(s) : Object.prototype.hasOwnProperty.call(bindings, s) ? (bindings as Record<string, number>)[s] : undefined;
  const p = parseDim(d);
  const rest: string[] = [];
  let coef = p.coef;
  for (const s of p.syms) {
    const v = get(s);
    if (v === undefined) rest.push(s);
    else coef *= v;
  }
  return formatProduct({ coef, syms: rest });
}

export function symbolsOf(d: Dim): string[] {
  return typeof d === 'number' ? [] : parseDim(d).syms;
}

/** Number of elements of a static shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a static shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Normalises a possibly negative axis against `rank`; undefined when out of range. */
export function normAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
}

/**
 * Multidirectional (numpy) broadcasting of shapes. Returns undefined when incompatible.
 * A symbolic dim broadcasts with 1 and with an equal symbol.
 */
export function broadcastShapes(...shapes: readonly (readonly Dim[])[]): Dim[] | undefined {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = new Array(rank).fill(1);
  for (const s of shapes) {
    const off = rank - s.length;
    for (let i = 0; i < s.length; i++) {
      const d = s[i]!;
      const cur = out[off + i]!;
      if (cur === 1) out[off + i] = d;
      else if (d === 1 || dimEq(d, cur)) continue;
      else return undefined;
    }
  }
  return out;
}

export function formatShape(s: readonly Dim[] | undefined): string {
  return s === undefined ? '?' : `[${s.join(',')}]`;
}
