/**
 * Lowering rows of the indexing family, part 3: data-dependent gathers and scatters (GatherND,
 * ScatterElements, ScatterND), generators (OneHot, EyeLike), block moves (DepthToSpace,
 * SpaceToDepth) and TopK. Scatters are gathers seen from the output: each output element folds
 * over the updates that target it with a loop let (`last` matching update for reduction
 * 'none', else the reduction), so the result is deterministic and needs no atomics.
 */
import { numel, stridesOf } from '../../ir/shape.js';
import {
  type Expr, type ScalarType, add, bin, cast, cmp, constOf, div, i32, max, min, mul, rem, select, sub, variable,
} from '../expr.js';
import { Params, deviceTypeOrThrow, flatIndex, linearOffset, loadTyped, madd } from '../index-map.js';
import type { Let, LoopOp, Store } from '../kernel.js';
import { type LowerContext, type LowerRow, hostInts, kernels, launch, need, unsupported } from './index.js';
import { MapBuilder, indexMap } from './map.js';

const and = (a: Expr | undefined, b: Expr): Expr => (a ? bin('&&', a, b) : b);
/** Index `j` made non-negative for a dim of size `dim` (cast to i32 first). */
const wrapIndex = (j: Expr, dim: Expr): Expr => {
  const v = cast(j, 'i32');
  return select(cmp('<', v, i32(0)), add(v, dim), v);
};
const normAxis = (a: number, rank: number): number => (a < 0 ? a + rank : a);

/** A loop-folded let bound on `mb`; returns its variable. */
function loopLet(mb: MapBuilder, name: string, loopVar: string, count: Expr, op: LoopOp, value: Expr, last = false): Expr {
  const l: Let = { name, value, loop: { var: loopVar, count, op, last } };
  mb.lets.push(l);
  return variable(name, op === 'argmax' || op === 'argmin' ? 'i32' : value.t);
}

const gatherND: LowerRow = {
  op: 'GatherND',
  family: 'shape',
  lower: (ctx) => {
    const data = need(ctx, 0);
    const idx = need(ctx, 1);
    const b = ctx.attrs.int('batch_dims', 0);
    const q = idx.shape.length;
    const k = idx.shape[q - 1]!;
    const ds = stridesOf(data.shape);
    const is = stridesOf(idx.shape);
    return indexMap(ctx, 0, (mb, c) => {
      const idxBase = linearOffset(mb.p, 'x1', c.slice(0, q - 1), is.slice(0, q - 1));
      let off: Expr | undefined;
      for (let d = 0; d < b; d++) off = madd(off, c[d]!, mb.p.int(`x0_s${d}`, ds[d]!));
      for (let j = 0; j < k; j++) {
        const v = loadTyped('x1', idx.dtype, j === 0 ? idxBase : add(idxBase, i32(j)));
        off = madd(off, wrapIndex(v, mb.p.int(`x0_dim${b + j}`, data.shape[b + j]!)), mb.p.int(`x0_s${b + j}`, ds[b + j]!));
      }
      for (let d = b + k; d < data.shape.length; d++) off = madd(off, c[q - 1 + d - b - k]!, mb.p.int(`x0_s${d}`, ds[d]!));
      return off ?? i32(0);
    });
  },
};

const REDUCE: Record<string, { op: LoopOp; identity: (t: ScalarType) => number; combine: (a: Expr, b: Expr) => Expr }> = {
  add: { op: 'sum', identity: () => 0, combine: add },
  mul: { op: 'prod', identity: () => 1, combine: mul },
  max: { op: 'max', identity: (t) => (t === 'f32' ? -Infinity : -(2 ** 31)), combine: max },
  min: { op: 'min', identity: (t) => (t === 'f32' ? Infinity : 2 ** 31 - 1), combine: min },
};

/**
 * out[i] = data[i] combined with the updates whose target (`match` over the loop var) is i:
 * 'none' takes the last matching update, the reductions fold all of them.
 */
function scatterValue(ctx: LowerContext, mb: MapBuilder, count: number, match: Expr, updOffset: (r: Expr) => Expr): Expr {
  const data = need(ctx, 0);
  const upd = need(ctx, 2);
  const t = deviceTypeOrThrow(data.dtype);
  if (t === 'bool') throw unsupported(ctx, 'bool data');
  const reduction = ctx.attrs.string('reduction', 'none');
  const r = variable('r');
  const n = mb.p.int('upd_n', count);
  const old = loadTyped('x0', data.dtype, flatIndex());
  if (reduction === 'none') {
    const lastR = loopLet(mb, 'hit', 'r', n, 'max', select(match, r, i32(-1)));
    const u = loadTyped('x2', upd.dtype, updOffset(max(lastR, i32(0))));
    return select(cmp('>=', lastR, i32(0)), u, old);
  }
  const red = REDUCE[reduction];
  if (!red) throw unsupported(ctx, `reduction ${reduction}`);
  const u = cast(loadTyped('x2', upd.dtype, updOffset(r)), t);
  const acc = loopLet(mb, 'folded', 'r', n, red.op, select(match, u, constOf(t, red.identity(t))));
  return red.combine(old, acc);
}

const scatterElements = (op: string): LowerRow => ({
  op,
  family: 'shape',
  lower: (ctx) => {
    const data = need(ctx, 0);
    const idx = need(ctx, 1);
    const rank = data.shape.length;
    const axis = normAxis(ctx.attrs.int('axis', 0), rank);
    const out = ctx.outputs[0]!;
    const mb = new MapBuilder(out.shape);
    if (numel(idx.shape) === 0) return kernels(mb.build(ctx, 'y0', out.dtype, loadTyped('x0', data.dtype, flatIndex())));
    const c = mb.coord();
    const is = stridesOf(idx.shape);
    // Offset in indices/updates of (c with axis = r); coordinates beyond the indices' extent never match.
    let inside: Expr | undefined;
    let base: Expr | undefined;
    idx.shape.forEach((dim, d) => {
      if (d === axis) return;
      let cd = c[d]!;
      if (dim < data.shape[d]!) {
        const dimP = mb.p.int(`x1_dim${d}`, dim);
        inside = and(inside, cmp('<', cd, dimP));
        cd = min(cd, sub(dimP, i32(1)));
      }
      base = madd(base, cd, mb.p.int(`x1_s${d}`, is[d]!));
    });
    const off = (r: Expr): Expr => madd(base, r, mb.p.int(`x1_s${axis}`, is[axis]!));
    const j = wrapIndex(loadTyped('x1', idx.dtype, off(variable('r'))), mb.p.int('x0_axis_dim', data.shape[axis]!));
    const match = and(inside, cmp('==', j, c[axis]!));
    return kernels(mb.build(ctx, 'y0', out.dtype, scatterValue(ctx, mb, idx.shape[axis]!, match, off)));
  },
});

const scatterND: LowerRow = {
  op: 'ScatterND',
  family: 'shape',
  lower: (ctx) => {
    const data = need(ctx, 0);
    const idx = need(ctx, 1);
    const k = idx.shape[idx.shape.length - 1]!;
    const n = numel(idx.shape.slice(0, -1));
    const slice = numel(data.shape.slice(k));
    const out = ctx.outputs[0]!;
    const mb = new MapBuilder(out.shape);
    if (n === 0) return kernels(mb.build(ctx, 'y0', out.dtype, loadTyped('x0', data.dtype, flatIndex())));
    const c = mb.coord();
    const kP = mb.p.int('k', k);
    const r = variable('r');
    let match: Expr | undefined;
    for (let j = 0; j < k; j++) {
      const v = loadTyped('x1', idx.dtype, add(mul(r, kP), i32(j)));
      match = and(match, cmp('==', wrapIndex(v, mb.p.int(`x0_dim${j}`, data.shape[j]!)), c[j]!));
    }
    const sliceP = mb.p.int('slice', slice);
    const tail = slice === 1 ? undefined : rem(flatIndex(), sliceP);
    const off = (rr: Expr): Expr => (tail ? add(mul(rr, sliceP), tail) : mul(rr, sliceP));
    return kernels(mb.build(ctx, 'y0', out.dtype, scatterValue(ctx, mb, n, match ?? constOf('bool', 1), off)));
  },
};

const oneHot: LowerRow = {
  op: 'OneHot',
  family: 'shape',
  hostInputs: [1],
  lower: (ctx) => {
    const idx = need(ctx, 0);
    const vals = need(ctx, 2);
    const depth = Math.trunc(hostInts(ctx, 1)![0]!);
    const out = ctx.outputs[0]!;
    const axis = normAxis(ctx.attrs.int('axis', -1), out.shape.length);
    const mb = new MapBuilder(out.shape);
    const c = mb.coord();
    const is = stridesOf(idx.shape);
    const ic = c.filter((_, d) => d !== axis);
    const raw = loadTyped('x0', idx.dtype, linearOffset(mb.p, 'x0', ic, is));
    const t = raw.t === 'f32' ? cast(raw, 'i32') : raw;
    const depthP = mb.p.int('depth', depth);
    const j = select(cmp('<', t, i32(0)), add(t, depthP), t);
    const on = loadTyped('x2', vals.dtype, i32(1));
    const off = loadTyped('x2', vals.dtype, i32(0));
    return kernels(mb.build(ctx, 'y0', out.dtype, select(cmp('==', j, c[axis]!), on, off)));
  },
};

const eyeLike: LowerRow = {
  op: 'EyeLike',
  family: 'shape',
  lower: (ctx) => {
    const out = ctx.outputs[0]!;
    const t = deviceTypeOrThrow(out.dtype);
    const mb = new MapBuilder(out.shape);
    const c = mb.coord();
    const on = cmp('==', sub(c[1]!, c[0]!), mb.p.int('k', ctx.attrs.int('k', 0)));
    return kernels(mb.build(ctx, 'y0', out.dtype, t === 'bool' ? on : select(on, constOf(t, 1), constOf(t, 0))));
  },
};

const depthToSpace: LowerRow = {
  op: 'DepthToSpace',
  family: 'shape',
  lower: (ctx) => {
    const x = need(ctx, 0);
    const bs = ctx.attrs.int('blocksize');
    const crd = ctx.attrs.string('mode', 'DCR') === 'CRD';
    const xs = stridesOf(x.shape);
    const cOut = x.shape[1]! / (bs * bs);
    return indexMap(ctx, 0, (mb, c) => {
      const b = mb.p.int('block', bs);
      const [bh, bw] = [rem(c[2]!, b), rem(c[3]!, b)];
      const blk = add(mul(bh, b), bw);
      const ch = crd ? add(mul(c[1]!, mb.p.int('block2', bs * bs)), blk) : add(mul(blk, mb.p.int('c_out', cOut)), c[1]!);
      const idx = [c[0]!, ch, div(c[2]!, b), div(c[3]!, b)];
      return linearOffset(mb.p, 'x0', idx, xs);
    });
  },
};

const spaceToDepth: LowerRow = {
  op: 'SpaceToDepth',
  family: 'shape',
  lower: (ctx) => {
    const x = need(ctx, 0);
    const bs = ctx.attrs.int('blocksize');
    const xs = stridesOf(x.shape);
    return indexMap(ctx, 0, (mb, c) => {
      const b = mb.p.int('block', bs);
      const cIn = mb.p.int('c_in', x.shape[1]!);
      const blk = div(c[1]!, cIn);
      const idx = [c[0]!, rem(c[1]!, cIn), add(mul(c[2]!, b), div(blk, b)), add(mul(c[3]!, b), rem(blk, b))];
      return linearOffset(mb.p, 'x0', idx, xs);
    });
  },
};

/** Largest k above this are not lowered (the kernel unrolls one fold per selected element). */
export const TOPK_MAX_K = 32;

/**
 * TopK: one invocation per row (all positions but the axis); k unrolled folds, the j-th picking
 * the best element after the (j-1)-th in (value, index) order — ties by lower index, as the CPU op.
 */
const topK: LowerRow = {
  op: 'TopK',
  family: 'shape',
  hostInputs: [1],
  lower: (ctx) => {
    const x = need(ctx, 0);
    const rank = x.shape.length;
    const axis = normAxis(ctx.attrs.int('axis', -1), rank);
    const largest = ctx.attrs.int('largest', 1) !== 0;
    const k = hostInts(ctx, 1)![0]!;
    if (k > TOPK_MAX_K) throw unsupported(ctx, `k = ${k} (at most ${TOPK_MAX_K})`);
    const len = x.shape[axis]!;
    const inner = numel(x.shape.slice(axis + 1));
    const rows = numel(x.shape) / Math.max(1, len);
    const p = new Params();
    const lets: Let[] = [];
    const row = flatIndex();
    const innerP = p.int('inner', inner);
    const outer = inner === 1 ? row : div(row, innerP);
    const within = inner === 1 ? undefined : rem(row, innerP);
    const withIn = (e: Expr): Expr => (within ? add(e, within) : e);
    lets.push({ name: 'x_base', value: withIn(mul(outer, p.int('x_row', len * inner))) });
    lets.push({ name: 'y_base', value: withIn(mul(outer, p.int('y_row', k * inner))) });
    const xb = variable('x_base');
    const yb = variable('y_base');
    const at = (r: Expr): Expr => loadTyped('x0', x.dtype, add(xb, inner === 1 ? r : mul(r, innerP)));
    const t = deviceTypeOrThrow(x.dtype);
    if (t !== 'f32' && t !== 'i32') throw unsupported(ctx, `dtype ${x.dtype}`);
    const worst = constOf(t, largest ? (t === 'f32' ? -Infinity : -(2 ** 31)) : t === 'f32' ? Infinity : 2 ** 31 - 1);
    const stores: Store[] = [];
    const lenP = p.int('len', len);
    const r = variable('r');
    let prev: { v: Expr; i: Expr } | undefined;
    for (let j = 0; j < k; j++) {
      const xr = at(r);
      let value = xr;
      if (prev) {
        const after = bin('||', cmp(largest ? '<' : '>', xr, prev.v), bin('&&', cmp('==', xr, prev.v), cmp('>', r, prev.i)));
        value = select(after, xr, worst);
      }
      lets.push({ name: `top${j}`, value, loop: { var: 'r', count: lenP, op: largest ? 'argmax' : 'argmin' } });
      const iv = variable(`top${j}`);
      lets.push({ name: `top${j}_v`, value: at(iv) });
      prev = { v: variable(`top${j}_v`, t), i: iv };
      const yOff = j === 0 ? yb : add(yb, inner === 1 ? i32(j) : mul(i32(j), innerP));
      stores.push({ buf: 'y0', index: yOff, value: cast(prev.v, deviceTypeOrThrow(ctx.outputs[0]!.dtype)) });
      stores.push({ buf: 'y1', index: yOff, value: cast(iv, deviceTypeOrThrow(ctx.outputs[1]!.dtype)) });
    }
    if (k === 0 || rows === 0) return kernels();
    return kernels(launch(ctx, { kind: 'map', count: p.int('n', rows), lets, stores }, p));
  },
};

export const indexingNdLowerings: LowerRow[] = [
  gatherND, scatterElements('ScatterElements'), scatterND, oneHot, eyeLike, depthToSpace, spaceToDepth, topK,
];
