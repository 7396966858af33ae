/**
 * Lowering rows of the conv family: Conv, ConvTranspose, MaxPool (with Indices), AveragePool,
 * GlobalAveragePool and GlobalMaxPool. Windows are direct loops: each output element folds its
 * window taps (flattened over input channel × kernel taps) in a loop-folded let, with the tap's
 * input coordinates computed inline and padding taps masked by `select` (loads are clamped to
 * index 0 there, so they never leave the buffer). The global pools use the row-reduction template.
 */
import { readWindowAttrs, windowGeometry } from '../../ir/ops/conv-geometry.js';
import { numel, stridesOf } from '../../ir/shape.js';
import { type Expr, add, bin, bool, cast, cmp, div, f32, i32, mul, rem, select, sub, substitute, variable } from '../expr.js';
import { Params, deviceTypeOrThrow, loadTyped } from '../index-map.js';
import type { Let, ReduceBody } from '../kernel.js';
import { type LowerContext, type LowerRow, type Lowered, kernels, launch, need, unsupported } from './index.js';
import { MapBuilder } from './map.js';
import { inlineCoords, rowGeometry } from './rows.js';

const prod = (a: readonly number[]): number => a.reduce((x, y) => x * y, 1);

function requireF32(ctx: LowerContext, k = 0): void {
  const v = need(ctx, k);
  if (v.dtype !== 'float32') throw unsupported(ctx, `dtype ${v.dtype}`);
}

/** Conjunction of conditions (true when empty). */
const all = (cs: Expr[]): Expr => (cs.length ? cs.reduce((a, c) => bin('&&', a, c)) : bool(true));

interface Taps {
  /** Input spatial offset (Σ x_d · stride_d) of tap `tap` for the output position. */
  offset: Expr;
  /** Whether every tap coordinate lies in [lo_d, hi_d). */
  inRange: (lo: number[], hi: number[], prefix?: string) => Expr;
  /** Input coordinates of the tap per spatial dim. */
  xs: Expr[];
}

/**
 * Input coordinates of a forward window tap: x_d = o_d · s_d − pb_d + t_d · dil_d, with the tap's
 * coordinates decomposed from the flat tap index `tap` over `kernel`.
 */
function forwardTaps(mb: MapBuilder, o: Expr[], tap: Expr, kernel: number[], strides: number[], dil: number[], pb: number[], inSpatial: number[]): Taps {
  const p = mb.p;
  const tc = inlineCoords(p, 'tap', tap, kernel);
  const inSt = stridesOf(inSpatial);
  const xs = o.map((od, d) => {
    const start = mb.let(`start${d}`, sub(mul(od, p.int(`s${d}`, strides[d]!)), p.int(`pb${d}`, pb[d]!)));
    return tc[d]!.k === 'const' ? start : add(start, mul(tc[d]!, p.int(`dil${d}`, dil[d]!)));
  });
  let offset: Expr | undefined;
  xs.forEach((x, d) => {
    const term = inSt[d] === 1 ? x : mul(x, p.int(`in_st${d}`, inSt[d]!));
    offset = offset === undefined ? term : add(offset, term);
  });
  const inRange = (lo: number[], hi: number[], prefix = ''): Expr =>
    all(xs.flatMap((x, d) => [cmp('>=', x, p.int(`${prefix}lo${d}`, lo[d]!)), cmp('<', x, p.int(`${prefix}hi${d}`, hi[d]!))]));
  return { offset: offset ?? i32(0), inRange, xs };
}

// ---- pools ---------------------------------------------------------------------------------

function lowerPool(ctx: LowerContext, kind: 'max' | 'avg'): Lowered {
  requireF32(ctx);
  const x = need(ctx, 0);
  const ns = x.shape.length - 2;
  if (ns < 1) throw unsupported(ctx, 'input must have spatial dims');
  const win = readWindowAttrs(ctx, ctx.attrs, ns);
  const inSpatial = x.shape.slice(2);
  const g = windowGeometry(ctx, inSpatial, win);
  const out = ctx.outputs[0]!;
  if (numel(out.shape) === 0) return kernels();
  const mb = new MapBuilder(out.shape);
  const c = mb.coord();
  const inS = prod(inSpatial);
  const planeBase = mb.let('plane', mul(add(mul(c[0]!, mb.p.int('C', x.shape[1]!)), c[1]!), mb.p.int('in_size', inS)));
  const tap = variable('t');
  const taps = forwardTaps(mb, c.slice(2), tap, g.kernel, g.strides, g.dilations, g.padsBegin, inSpatial);
  const inb = taps.inRange(inSpatial.map(() => 0), inSpatial);
  const off = add(planeBase, taps.offset);
  const xv = loadTyped('x0', 'float32', select(inb, off, i32(0)));
  const K = mb.p.int('taps', prod(g.kernel));
  if (kind === 'max') {
    mb.lets.push({ name: 'acc', value: select(inb, xv, f32(-Infinity)), loop: { var: 't', count: K, op: 'max' } });
    const extra = [];
    const wantsIdx = ctx.node.outputs[1] !== undefined && ctx.node.outputs[1]!.name !== '';
    if (wantsIdx) {
      mb.lets.push({ name: 'best', value: select(inb, xv, f32(-Infinity)), loop: { var: 'tb', count: K, op: 'argmax' } });
      // Indices: flat input index, row-major (storage_order 0) or column-major spatial dims (1).
      let sp = taps.offset;
      if (ctx.attrs.int('storage_order', 0) !== 0) {
        let st = 1;
        sp = i32(0);
        taps.xs.forEach((xd, d) => {
          sp = add(sp, st === 1 ? xd : mul(xd, mb.p.int(`cm_st${d}`, st)));
          st *= inSpatial[d]!;
        });
      }
      const idx = substitute(add(planeBase, sp), { t: variable('best') });
      extra.push({ buf: 'y1', index: variable('i'), value: cast(idx, deviceTypeOrThrow(ctx.outputs[1]!.dtype)) });
    }
    // The argmax loop reuses the tap expressions over its own variable.
    if (wantsIdx) {
      const l = mb.lets[mb.lets.length - 1]!;
      mb.lets[mb.lets.length - 1] = { ...l, value: substitute(l.value, { t: variable('tb') }) };
    }
    return kernels(mb.build(ctx, 'y0', out.dtype, variable('acc', 'f32'), undefined, extra));
  }
  mb.lets.push({ name: 'acc', value: select(inb, xv, f32(0)), loop: { var: 't', count: K, op: 'sum' } });
  const includePad = ctx.attrs.int('count_include_pad', 0) !== 0;
  let countLet: Let;
  if (includePad) {
    const lo = g.padsBegin.map((p) => -p);
    const hi = inSpatial.map((d, k) => d + g.padsEnd[k]!);
    const inPad = substitute(taps.inRange(lo, hi, 'pad_'), { t: variable('v') });
    countLet = { name: 'cnt', value: select(inPad, f32(1), f32(0)), loop: { var: 'v', count: K, op: 'sum' } };
  } else countLet = { name: 'cnt', value: substitute(select(inb, f32(1), f32(0)), { t: variable('v') }), loop: { var: 'v', count: K, op: 'sum' } };
  mb.lets.push(countLet);
  return kernels(mb.build(ctx, 'y0', out.dtype, div(variable('acc', 'f32'), variable('cnt', 'f32'))));
}

function lowerGlobalPool(ctx: LowerContext, op: 'sum' | 'max'): Lowered {
  requireF32(ctx);
  const x = need(ctx, 0);
  const p = new Params();
  const g = rowGeometry(p, x.shape, x.shape.map((_, d) => d).filter((d) => d >= 2));
  if (g.rows === 0) return kernels();
  const len = p.int('len', g.len);
  const acc = variable('acc', 'f32');
  const body: ReduceBody = {
    kind: 'reduce', op, rows: p.int('rows', g.rows), len,
    value: loadTyped('x0', 'float32', g.offset),
    out: { buf: 'y0', index: variable('row'), value: op === 'sum' ? div(acc, cast(len, 'f32')) : acc },
  };
  return kernels(launch(ctx, body, p));
}

// ---- Conv and ConvTranspose ------------------------------------------------------------------

/** The checked operands and window attributes shared by Conv and ConvTranspose. */
function convOperands(ctx: LowerContext) {
  requireF32(ctx);
  const x = need(ctx, 0);
  const w = need(ctx, 1);
  const ns = x.shape.length - 2;
  if (ns < 1) throw unsupported(ctx, 'input must have spatial dims');
  const group = ctx.attrs.int('group', 1);
  const win = readWindowAttrs(ctx, ctx.attrs, ns, w.shape.slice(2));
  return { x, w, group, win, inSpatial: x.shape.slice(2) };
}

function lowerConv(ctx: LowerContext): Lowered {
  const { x, w, group, win, inSpatial } = convOperands(ctx);
  const g = windowGeometry(ctx, inSpatial, win);
  const out = ctx.outputs[0]!;
  if (numel(out.shape) === 0) return kernels();
  const [C, M] = [x.shape[1]!, w.shape[0]!];
  const Cg = C / group;
  const Mg = M / group;
  const K = prod(g.kernel);
  const inS = prod(inSpatial);
  const mb = new MapBuilder(out.shape);
  const p = mb.p;
  const c = mb.coord();
  const grp = Mg === M ? i32(0) : div(c[1]!, p.int('Mg', Mg));
  // x base: (n·C + g·Cg)·inS; w base: m·Cg·K.
  const xBase = mb.let('x_base', mul(add(mul(c[0]!, p.int('C', C)), mul(grp, p.int('Cg', Cg))), p.int('in_size', inS)));
  const wBase = mb.let('w_base', mul(c[1]!, p.int('w_st0', Cg * K)));
  const t = variable('t');
  const ci = div(t, p.int('taps', K));
  const tap = rem(t, p.int('taps', K));
  const taps = forwardTaps(mb, c.slice(2), tap, g.kernel, g.strides, g.dilations, g.padsBegin, inSpatial);
  const inb = taps.inRange(inSpatial.map(() => 0), inSpatial);
  const xoff = add(add(xBase, mul(ci, p.int('in_size', inS))), taps.offset);
  const xv = loadTyped('x0', 'float32', select(inb, xoff, i32(0)));
  const wv = loadTyped('x1', 'float32', add(wBase, t));
  mb.lets.push({ name: 'acc', value: select(inb, mul(xv, wv), f32(0)), loop: { var: 't', count: p.int('loop_len', Cg * K), op: 'sum' } });
  let y: Expr = variable('acc', 'f32');
  if (ctx.inputs[2]) y = add(y, loadTyped('x2', 'float32', c[1]!));
  return kernels(mb.build(ctx, 'y0', out.dtype, y));
}

/** Begin pads of ConvTranspose per spatial dim (the op's shape rules, for static dims). */
function transposePadsBegin(ctx: LowerContext, inSpatial: number[], outSpatial: number[], kernel: number[], strides: number[], dil: number[], pads: number[], autoPad: string): number[] {
  const n = inSpatial.length;
  const outPad = ctx.attrs.ints('output_padding', new Array<number>(n).fill(0));
  const hasShape = ctx.attrs.maybeInts('output_shape') !== undefined;
  return inSpatial.map((size, i) => {
    const natural = strides[i]! * (size - 1) + outPad[i]! + dil[i]! * (kernel[i]! - 1) + 1;
    if (hasShape || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      const total = natural - outSpatial[i]!;
      const half = Math.floor(total / 2);
      return autoPad === 'SAME_UPPER' ? half : total - half;
    }
    return autoPad === 'VALID' ? 0 : pads[i]!;
  });
}

function lowerConvTranspose(ctx: LowerContext): Lowered {
  const { x, w, group, win, inSpatial } = convOperands(ctx);
  const out = ctx.outputs[0]!;
  if (numel(out.shape) === 0) return kernels();
  const outSpatial = out.shape.slice(2);
  const pb = transposePadsBegin(ctx, inSpatial, outSpatial, win.kernel, win.strides, win.dilations, win.pads, win.autoPad);
  const [C, Mg] = [x.shape[1]!, w.shape[1]!];
  const Cg = C / group;
  const K = prod(win.kernel);
  const inS = prod(inSpatial);
  const inSt = stridesOf(inSpatial);
  const mb = new MapBuilder(out.shape);
  const p = mb.p;
  const c = mb.coord();
  const grp = group === 1 ? i32(0) : div(c[1]!, p.int('Mg', Mg));
  const mm = group === 1 ? c[1]! : rem(c[1]!, p.int('Mg', Mg));
  // Input channel ic = g·Cg + ci; x base (n·C + g·Cg)·inS; w offset ((g·Cg + ci)·Mg + mm)·K + tap.
  const icBase = mb.let('ic_base', mul(grp, p.int('Cg', Cg)));
  const xBase = mb.let('x_base', mul(add(mul(c[0]!, p.int('C', C)), icBase), p.int('in_size', inS)));
  const t = variable('t');
  const ci = div(t, p.int('taps', K));
  const tap = rem(t, p.int('taps', K));
  const tc = inlineCoords(p, 'tap', tap, win.kernel);
  const conds: Expr[] = [];
  let sp: Expr | undefined;
  c.slice(2).forEach((o, d) => {
    const base = mb.let(`ob${d}`, add(o, p.int(`pb${d}`, pb[d]!)));
    const num = tc[d]!.k === 'const' ? base : sub(base, mul(tc[d]!, p.int(`dil${d}`, win.dilations[d]!)));
    const s = p.int(`s${d}`, win.strides[d]!);
    const q = win.strides[d] === 1 ? num : div(num, s);
    conds.push(cmp('>=', num, i32(0)));
    if (win.strides[d] !== 1) conds.push(cmp('==', rem(num, s), i32(0)));
    conds.push(cmp('<', q, p.int(`in${d}`, inSpatial[d]!)));
    const term = inSt[d] === 1 ? q : mul(q, p.int(`in_st${d}`, inSt[d]!));
    sp = sp === undefined ? term : add(sp, term);
  });
  const ok = all(conds);
  const xoff = add(add(xBase, mul(ci, p.int('in_size', inS))), sp!);
  const xv = loadTyped('x0', 'float32', select(ok, xoff, i32(0)));
  const woff = add(mul(add(mul(add(icBase, ci), p.int('Mg', Mg)), mm), p.int('taps', K)), tap);
  const wv = loadTyped('x1', 'float32', woff);
  mb.lets.push({ name: 'acc', value: select(ok, mul(xv, wv), f32(0)), loop: { var: 't', count: p.int('loop_len', Cg * K), op: 'sum' } });
  let y: Expr = variable('acc', 'f32');
  if (ctx.inputs[2]) y = add(y, loadTyped('x2', 'float32', c[1]!));
  return kernels(mb.build(ctx, 'y0', out.dtype, y));
}

export const convLowerings: LowerRow[] = [
  { op: 'Conv', family: 'conv', lower: lowerConv },
  { op: 'ConvTranspose', family: 'conv', lower: lowerConvTranspose },
  { op: 'MaxPool', family: 'conv', lower: (ctx) => lowerPool(ctx, 'max') },
  { op: 'AveragePool', family: 'conv', lower: (ctx) => lowerPool(ctx, 'avg') },
  { op: 'GlobalAveragePool', family: 'conv', lower: (ctx) => lowerGlobalPool(ctx, 'sum') },
  { op: 'GlobalMaxPool', family: 'conv', lower: (ctx) => lowerGlobalPool(ctx, 'max') },
];
