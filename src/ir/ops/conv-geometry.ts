/**
 * Window geometry shared by Conv, ConvTranspose and the pools: attribute parsing (kernel_shape,
 * strides, dilations, pads, auto_pad, ceil_mode), output sizes per spatial dim (static or
 * symbolic), and "tap tables" that map every (kernel tap, position) pair to a flat spatial offset
 * once, so the evaluation loops are plain typed-array walks with no per-element index arithmetic.
 */
import type { Attrs } from '../attrs.js';
import { UserError } from '../errors.js';
import type { Dim } from '../shape.js';

export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
const AUTO_PADS: readonly string[] = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'];

/** Window attributes of a node, validated against the number of spatial dims. */
export interface WindowAttrs {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Explicit pads: begins of every spatial dim, then ends (ONNX order). */
  pads: number[];
  autoPad: AutoPad;
  ceilMode: boolean;
}

/** Geometry of one evaluation: static spatial sizes and resolved pads. */
export interface WindowGeometry {
  inSpatial: number[];
  outSpatial: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  padsBegin: number[];
  padsEnd: number[];
}

type Where = { node: { label: string } };

/**
 * Reads and validates the window attributes. `kernelFallback` is the kernel taken from the weight
 * shape (Conv), used when kernel_shape is absent; pools require kernel_shape.
 */
export function readWindowAttrs(ctx: Where, attrs: Attrs, nSpatial: number, kernelFallback?: readonly Dim[]): WindowAttrs {
  const label = ctx.node.label;
  const fail = (reason: string): never => {
    throw new UserError(reason, { node: label });
  };
  let kernel = attrs.maybeInts('kernel_shape');
  if (kernel === undefined) {
    if (kernelFallback === undefined) fail(`required attribute 'kernel_shape' is missing`);
    if (kernelFallback!.some((d) => typeof d !== 'number')) fail(`kernel shape must be static`);
    kernel = kernelFallback as number[];
  }
  const strides = attrs.ints('strides', new Array<number>(nSpatial).fill(1));
  const dilations = attrs.ints('dilations', new Array<number>(nSpatial).fill(1));
  const pads = attrs.ints('pads', new Array<number>(2 * nSpatial).fill(0));
  const autoPad = attrs.string('auto_pad', 'NOTSET');
  if (!AUTO_PADS.includes(autoPad)) fail(`auto_pad must be one of ${AUTO_PADS.join(', ')}, got '${autoPad}'`);
  if (kernel.length !== nSpatial) fail(`kernel_shape has ${kernel.length} dims but the input has ${nSpatial} spatial dims`);
  if (strides.length !== nSpatial) fail(`strides has ${strides.length} values, expected ${nSpatial}`);
  if (dilations.length !== nSpatial) fail(`dilations has ${dilations.length} values, expected ${nSpatial}`);
  if (pads.length !== 2 * nSpatial) fail(`pads has ${pads.length} values, expected ${2 * nSpatial}`);
  if (kernel.some((k) => !(k >= 1))) fail(`kernel_shape [${kernel}] must be positive`);
  if (strides.some((s) => !(s >= 1))) fail(`strides [${strides}] must be positive`);
  if (dilations.some((d) => !(d >= 1))) fail(`dilations [${dilations}] must be positive`);
  if (pads.some((p) => !(p >= 0))) fail(`pads [${pads}] must be non-negative`);
  return { kernel, strides, dilations, pads, autoPad: autoPad as AutoPad, ceilMode: attrs.int('ceil_mode', 0) !== 0 };
}

const effectiveKernel = (k: number, d: number): number => d * (k - 1) + 1;

/** Output size and pads of one spatial dim of a forward window (Conv, pools). */
export function windowDim(
  size: number,
  w: WindowAttrs,
  i: number,
): { out: number; padBegin: number; padEnd: number } {
  const n = w.kernel.length;
  const k = effectiveKernel(w.kernel[i]!, w.dilations[i]!);
  const s = w.strides[i]!;
  if (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER') {
    const out = Math.ceil(size / s);
    const total = Math.max(0, (out - 1) * s + k - size);
    const small = Math.floor(total / 2);
    const padBegin = w.autoPad === 'SAME_UPPER' ? small : total - small;
    return { out, padBegin, padEnd: total - padBegin };
  }
  const padBegin = w.autoPad === 'VALID' ? 0 : w.pads[i]!;
  const padEnd = w.autoPad === 'VALID' ? 0 : w.pads[i + n]!;
  const span = size + padBegin + padEnd - k;
  if (span < 0) return { out: 0, padBegin, padEnd };
  let out = (w.ceilMode ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // A ceil-mode window must start inside the input or its left padding.
  if (w.ceilMode && (out - 1) * s >= size + padBegin) out--;
  return { out, padBegin, padEnd };
}

/**
 * Output spatial dims for possibly symbolic input dims: a symbolic dim passes through when the
 * window cannot change it (stride 1 and SAME, or stride 1 with pads that exactly cover the
 * kernel); otherwise the result is undefined (shape unknown).
 */
export function windowOutDims(ctx: Where, inSpatial: readonly Dim[], w: WindowAttrs): Dim[] | undefined {
  const out: Dim[] = [];
  const n = inSpatial.length;
  for (let i = 0; i < n; i++) {
    const d = inSpatial[i]!;
    if (typeof d === 'number') {
      const r = windowDim(d, w, i);
      if (r.out <= 0)
        throw new UserError(`window of size ${effectiveKernel(w.kernel[i]!, w.dilations[i]!)} does not fit spatial dim ${i} of size ${d} (with padding)`, {
          node: ctx.node.label,
        });
      out.push(r.out);
      continue;
    }
    const k = effectiveKernel(w.kernel[i]!, w.dilations[i]!);
    const same = w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER';
    const padTotal = w.autoPad === 'NOTSET' ? w.pads[i]! + w.pads[i + n]! : 0;
    if (w.strides[i] === 1 && (same || padTotal === k - 1)) out.push(d);
    else return undefined;
  }
  return out;
}

/** Resolves the geometry of a forward window over static spatial dims (UserError when it does not fit). */
export function windowGeometry(ctx: Where, inSpatial: readonly number[], w: WindowAttrs): WindowGeometry {
  const g: WindowGeometry = {
    inSpatial: inSpatial.slice(),
    outSpatial: [],
    kernel: w.kernel,
    strides: w.strides,
    dilations: w.dilations,
    padsBegin: [],
    padsEnd: [],
  };
  for (let i = 0; i < inSpatial.length; i++) {
    const r = windowDim(inSpatial[i]!, w, i);
    if (r.out <= 0)
      throw new UserError(
        `window of size ${effectiveKernel(w.kernel[i]!, w.dilations[i]!)} does not fit spatial dim ${i} of size ${inSpatial[i]} (with padding)`,
        { node: ctx.node.label },
      );
    g.outSpatial.push(r.out);
    g.padsBegin.push(r.padBegin);
    g.padsEnd.push(r.padEnd);
  }
  return g;
}

export const prod = (a: readonly number[]): number => a.reduce((x, y) => x * y, 1);

/**
 * Tap table: for kernel tap t (row-major over `kernel`) and position p (row-major over `from`),
 * entry [t * |from| + p] is the row-major offset in `to` of coordinate
 * `p_d * stride_d - padBegin_d + t_d * dilation_d`, or -1 when that falls outside `to`.
 * Conv and pools use from = output, to = input; ConvTranspose uses from = input, to = output.
 */
export function tapTable(
  from: readonly number[],
  to: readonly number[],
  kernel: readonly number[],
  strides: readonly number[],
  dilations: readonly number[],
  padsBegin: readonly number[],
): Int32Array {
  const rank = from.length;
  const P = prod(from);
  const K = prod(kernel);
  const table = new Int32Array(K * P);
  const toStrides = new Array<number>(rank);
  for (let d = rank - 1, acc = 1; d >= 0; d--) {
    toStrides[d] = acc;
    acc *= to[d]!;
  }
  const tap = new Array<number>(rank).fill(0);
  const pos = new Array<number>(rank).fill(0);
  for (let t = 0; t < K; t++) {
    // Coordinate in `to` of position 0 for this tap, per dim.
    const base = new Array<number>(rank);
    for (let d = 0; d < rank; d++) base[d] = tap[d]! * dilations[d]! - padsBegin[d]!;
    pos.fill(0);
    const row = t * P;
    for (let p = 0; p < P; p++) {
      let off = 0;
      for (let d = 0; d < rank; d++) {
        const c = base[d]! + pos[d]! * strides[d]!;
        if (c < 0 || c >= to[d]!) {
          off = -1;
          break;
        }
        off += c * toStrides[d]!;
      }
      table[row + p] = off;
      for (let d = rank - 1; d >= 0; d--) {
        if (++pos[d]! < from[d]!) break;
        pos[d] = 0;
      }
    }
    for (let d = rank - 1; d >= 0; d--) {
      if (++tap[d]! < kernel[d]!) break;
      tap[d] = 0;
    }
  }
  return table;
}

/**
 * For every output position of a forward window, the number of kernel taps whose coordinate lies
 * within [lo_d, hi_d) on every dim (AveragePool divisors): lo = 0, hi = size counts real input
 * elements; lo = -padBegin, hi = size + padEnd also counts padding.
 */
export function tapCounts(g: WindowGeometry, includePad: boolean): Float64Array {
  const rank = g.outSpatial.length;
  // Per dim, the count of taps in range for each output coordinate; the total is their product.
  const perDim: Int32Array[] = [];
  for (let d = 0; d < rank; d++) {
    const lo = includePad ? -g.padsBegin[d]! : 0;
    const hi = includePad ? g.inSpatial[d]! + g.padsEnd[d]! : g.inSpatial[d]!;
    const counts = new Int32Array(g.outSpatial[d]!);
    for (let o = 0; o < counts.length; o++) {
      let c = 0;
      for (let k = 0; k < g.kernel[d]!; k++) {
        const x = o * g.strides[d]! - g.padsBegin[d]! + k * g.dilations[d]!;
        if (x >= lo && x < hi) c++;
      }
      counts[o] = c;
    }
    perDim.push(counts);
  }
  const P = prod(g.outSpatial);
  const out = new Float64Array(P);
  const pos = new Array<number>(rank).fill(0);
  for (let p = 0; p < P; p++) {
    let c = 1;
    for (let d = 0; d < rank; d++) c *= perDim[d]![pos[d]!]!;
    out[p] = c;
    for (let d = rank - 1; d >= 0; d--) {
      if (++pos[d]! < g.outSpatial[d]!) break;
      pos[d] = 0;
    }
  }
  return out;
}
