/**
 * Lowering rows of the shape family, part 2: data-dependent index maps (Gather, GatherElements),
 * multi-buffer maps (Concat: one launch per input writing its slab of the output; Split: one
 * launch per output), Pad, Trilu, and generators (Range, ConstantOfShape).
 */
import { numel, stridesOf } from '../../ir/shape.js';
import { type Expr, add, cast, cmp, constOf, i32, max, min, mul, rem, select, sub, un, variable } from '../expr.js';
import { Params, coordinates, deviceTypeOrThrow, flatIndex, linearOffset, loadTyped, madd } from '../index-map.js';
import type { Let } from '../kernel.js';
import { type LaunchSpec, type LowerContext, type LowerRow, type Lowered, hostInts, kernels, launch, need, unsupported } from './index.js';
import { indexingNdLowerings } from './indexing-nd.js';
import { MapBuilder, indexMap } from './map.js';

const axisAttr = (ctx: LowerContext, rank: number, def = 0): number => {
  const a = ctx.attrs.int('axis', def);
  return a < 0 ? a + rank : a;
};

/** Index `j` (i32) made non-negative for a dim of size `dim`. */
const wrapNegative = (j: Expr, dim: Expr): Expr => select(cmp('<', j, i32(0)), add(j, dim), j);

const gather: LowerRow = {
  op: 'Gather',
  family: 'shape',
  lower: (ctx) => {
    const data = need(ctx, 0);
    const idx = need(ctx, 1);
    const axis = axisAttr(ctx, data.shape.length);
    const q = idx.shape.length;
    const ds = stridesOf(data.shape);
    const is = stridesOf(idx.shape);
    return indexMap(ctx, 0, (mb, c) => {
      const idxOff = linearOffset(mb.p, 'x1', c.slice(axis, axis + q), is);
      const j = wrapNegative(loadTyped('x1', idx.dtype, idxOff), mb.p.int('x0_axis_dim', data.shape[axis]!));
      let off = madd(undefined, j, mb.p.int(`x0_s${axis}`, ds[axis]!));
      data.shape.forEach((_, d) => {
        if (d === axis || ds[d] === 0) return;
        const coord = d < axis ? c[d]! : c[d + q - 1]!;
        off = madd(off, coord, mb.p.int(`x0_s${d}`, ds[d]!));
      });
      return off;
    });
  },
};

const gatherElements: LowerRow = {
  op: 'GatherElements',
  family: 'shape',
  lower: (ctx) => {
    const data = need(ctx, 0);
    const idx = need(ctx, 1);
    const axis = axisAttr(ctx, data.shape.length);
    const ds = stridesOf(data.shape);
    return indexMap(ctx, 0, (mb, c) => {
      const j = wrapNegative(loadTyped('x1', idx.dtype, flatIndex()), mb.p.int('x0_axis_dim', data.shape[axis]!));
      let off = madd(undefined, j, mb.p.int(`x0_s${axis}`, ds[axis]!));
      data.shape.forEach((_, d) => d !== axis && (off = madd(off, c[d]!, mb.p.int(`x0_s${d}`, ds[d]!))));
      return off;
    });
  },
};

const concat: LowerRow = {
  op: 'Concat',
  family: 'shape',
  lower: (ctx) => {
    const out = ctx.outputs[0]!;
    const axis = axisAttr(ctx, out.shape.length);
    const os = stridesOf(out.shape);
    const launches: LaunchSpec[] = [];
    let at = 0;
    ctx.inputs.forEach((v, k) => {
      if (!v) return;
      if (numel(v.shape) > 0) {
        // The same kernel for every part: it reads `x`, writes `y` at its slab (bound per launch).
        const p = new Params();
        const lets: Let[] = [];
        const c = coordinates(p, lets, 'c', flatIndex(), v.shape);
        const index = add(p.int('y_base', at * os[axis]!), linearOffset(p, 'y', c, os));
        const value = loadTyped('x', v.dtype, flatIndex());
        const body = { kind: 'map' as const, count: p.int('n', numel(v.shape)), lets, stores: [{ buf: 'y', index, value: cast(value, deviceTypeOrThrow(out.dtype)) }] };
        launches.push(launch(ctx, body, p, `part ${k}`, { x: `x${k}`, y: 'y0' }));
      }
      at += v.shape[axis]!;
    });
    return kernels(...launches);
  },
};

const split: LowerRow = {
  op: 'Split',
  family: 'shape',
  hostInputs: [1],
  lower: (ctx) => {
    const x = need(ctx, 0);
    const axis = axisAttr(ctx, x.shape.length);
    const xs = stridesOf(x.shape);
    const launches: LaunchSpec[] = [];
    let at = 0;
    ctx.outputs.forEach((o, k) => {
      if (numel(o.shape) > 0) {
        const mb = new MapBuilder(o.shape);
        const off = add(mb.p.int('x_base', at * xs[axis]!), linearOffset(mb.p, 'x', mb.coord(), xs));
        const spec = mb.build(ctx, 'y', o.dtype, loadTyped('x', x.dtype, off), `part ${k}`);
        launches.push({ ...spec, bind: { x: 'x0', y: `y${k}` } });
      }
      at += o.shape[axis]!;
    });
    return kernels(...launches);
  },
};

const pad: LowerRow = {
  op: 'Pad',
  family: 'shape',
  hostInputs: [1, 3],
  lower: (ctx): Lowered => {
    const x = need(ctx, 0);
    const rank = x.shape.length;
    const mode = ctx.attrs.string('mode', 'constant');
    const pads = hostInts(ctx, 1)!;
    const axes = (hostInts(ctx, 3) ?? x.shape.map((_, d) => d)).map((a) => (a < 0 ? a + rank : a));
    const begin = x.shape.map(() => 0);
    axes.forEach((a, k) => (begin[a] = pads[k]!));
    const xs = stridesOf(x.shape);
    const out = ctx.outputs[0]!;
    const mb = new MapBuilder(out.shape);
    const c = mb.coord();
    let valid: Expr | undefined;
    let off: Expr | undefined;
    x.shape.forEach((dim, d) => {
      const dimP = mb.p.int(`x0_dim${d}`, dim);
      let j = begin[d] ? sub(c[d]!, mb.p.int(`pad${d}`, begin[d]!)) : c[d]!;
      if (mode === 'constant') {
        const ok = cmp('<', j, dimP);
        const inside = begin[d] ? { k: 'bin' as const, t: 'bool' as const, op: '&&' as const, a: cmp('>=', j, i32(0)), b: ok } : ok;
        valid = valid ? { k: 'bin', t: 'bool', op: '&&', a: valid, b: inside } : inside;
        j = min(max(j, i32(0)), sub(dimP, i32(1)));
      } else if (mode === 'edge') j = min(max(j, i32(0)), sub(dimP, i32(1)));
      else if (mode === 'reflect') {
        j = un('abs', j);
        j = select(cmp('>=', j, dimP), sub(mul(i32(2), sub(dimP, i32(1))), j), j);
      } else if (mode === 'wrap') j = rem(add(rem(j, dimP), dimP), dimP);
      else throw unsupported(ctx, `mode ${mode}`);
      off = madd(off, j, mb.p.int(`x0_s${d}`, xs[d]!));
    });
    let value = loadTyped('x0', x.dtype, off ?? i32(0));
    if (mode === 'constant' && valid) {
      const cv = ctx.inputs[2] && numel(ctx.inputs[2].shape) > 0 ? loadTyped('x2', x.dtype, i32(0)) : constOf(value.t, 0);
      value = select(valid, value, cv);
    }
    return kernels(mb.build(ctx, 'y0', out.dtype, value));
  },
};

const trilu: LowerRow = {
  op: 'Trilu',
  family: 'shape',
  hostInputs: [1],
  lower: (ctx) => {
    const x = need(ctx, 0);
    const k = hostInts(ctx, 1)?.[0] ?? 0;
    const out = ctx.outputs[0]!;
    const mb = new MapBuilder(out.shape);
    const c = mb.coord();
    const rank = out.shape.length;
    const diff = sub(c[rank - 1]!, c[rank - 2]!);
    const kp = mb.p.int('k', k);
    const keep = ctx.attrs.int('upper', 1) ? cmp('>=', diff, kp) : cmp('<=', diff, kp);
    const v = loadTyped('x0', x.dtype, flatIndex());
    return kernels(mb.build(ctx, 'y0', out.dtype, select(keep, v, constOf(v.t, 0))));
  },
};

const range: LowerRow = {
  op: 'Range',
  family: 'shape',
  hostInputs: [0, 1, 2],
  lower: (ctx) => {
    const out = ctx.outputs[0]!;
    const mb = new MapBuilder(out.shape);
    const start = loadTyped('x0', need(ctx, 0).dtype, i32(0));
    const delta = loadTyped('x2', need(ctx, 2).dtype, i32(0));
    return kernels(mb.build(ctx, 'y0', out.dtype, add(start, mul(cast(variable('i'), start.t), delta))));
  },
};

const constantOfShape: LowerRow = {
  op: 'ConstantOfShape',
  family: 'shape',
  hostInputs: [0],
  lower: (ctx) => {
    const out = ctx.outputs[0]!;
    const t = ctx.attrs.tensor('value')?.load();
    const v = t ? Number(t.data[0] ?? 0) : 0;
    const mb = new MapBuilder(out.shape);
    return kernels(mb.build(ctx, 'y0', out.dtype, constOf(deviceTypeOrThrow(out.dtype), v)));
  },
};

export const indexingLowerings: LowerRow[] = [gather, gatherElements, concat, split, pad, trilu, range, constantOfShape, ...indexingNdLowerings];
