/**
 * Lowering rows of the shape family, part 1: views (Reshape, Squeeze, Unsqueeze, Flatten: the
 * output is the input's buffer), host shape math (Shape, Size, Constant), and index maps
 * (Transpose, Expand, Slice, Tile). Part 2 (indexing.ts) holds Gather, Concat, Split, Pad and generators.
 */
import { stridesOf } from '../../ir/shape.js';
import { type Expr, add, i32, rem } from '../expr.js';
import { linearOffset, madd } from '../index-map.js';
import { type LowerRow, hostInts, need } from './index.js';
import { indexingLowerings } from './indexing.js';
import { indexMap } from './map.js';

const view = (op: string, hostInputs?: number[]): LowerRow => ({ op, family: 'shape', hostInputs, lower: () => ({ kind: 'view', input: 0 }) });
const host = (op: string): LowerRow => ({ op, family: 'shape', lower: () => ({ kind: 'host' }) });

const transpose: LowerRow = {
  op: 'Transpose',
  family: 'shape',
  lower: (ctx) => {
    const x = need(ctx, 0);
    const rank = x.shape.length;
    const perm = ctx.attrs.ints('perm', Array.from({ length: rank }, (_, d) => rank - 1 - d));
    const st = stridesOf(x.shape);
    // Output dim d walks input dim perm[d].
    return indexMap(ctx, 0, (mb, c) => linearOffset(mb.p, 'x0', c, perm.map((pd) => (x.shape[pd] === 1 ? 0 : st[pd]!))));
  },
};

const expand: LowerRow = {
  op: 'Expand',
  family: 'shape',
  hostInputs: [1],
  lower: (ctx) => {
    const x = need(ctx, 0);
    return indexMap(ctx, 0, (mb) => {
      const v = mb.broadcastLoad('x0', x.dtype, x.shape);
      return v.k === 'load' ? v.index : i32(0);
    });
  },
};

const slice: LowerRow = {
  op: 'Slice',
  family: 'shape',
  hostInputs: [1, 2, 3, 4],
  lower: (ctx) => {
    const x = need(ctx, 0);
    const rank = x.shape.length;
    const starts = hostInts(ctx, 1)!;
    const axes = (hostInts(ctx, 3) ?? starts.map((_, k) => k)).map((a) => (a < 0 ? a + rank : a));
    const steps = hostInts(ctx, 4) ?? starts.map(() => 1);
    const st = stridesOf(x.shape);
    const step = x.shape.map(() => 1);
    let base = 0;
    axes.forEach((a, k) => {
      const dim = x.shape[a]!;
      const s = steps[k]!;
      let b = starts[k]!;
      if (b < 0) b += dim;
      b = s > 0 ? Math.min(Math.max(b, 0), dim) : Math.min(Math.max(b, 0), dim - 1);
      step[a] = s;
      base += b * st[a]!;
    });
    return indexMap(ctx, 0, (mb, c) => {
      const off = linearOffset(mb.p, 'x0', c, x.shape.map((_, d) => step[d]! * st[d]!));
      return base === 0 ? off : add(mb.p.int('x0_base', base), off);
    });
  },
};

const tile: LowerRow = {
  op: 'Tile',
  family: 'shape',
  hostInputs: [1],
  lower: (ctx) => {
    const x = need(ctx, 0);
    const st = stridesOf(x.shape);
    return indexMap(ctx, 0, (mb, c) => {
      let off: Expr | undefined;
      x.shape.forEach((dim, d) => {
        if (dim === 1) return;
        off = madd(off, rem(c[d]!, mb.p.int(`x0_dim${d}`, dim)), mb.p.int(`x0_s${d}`, st[d]!));
      });
      return off ?? i32(0);
    });
  },
};

export const shapeLowerings: LowerRow[] = [
  view('Reshape', [1]),
  view('Squeeze', [1]),
  view('Unsqueeze', [1]),
  view('Flatten'),
  host('Shape'),
  host('Size'),
  host('Constant'),
  transpose,
  expand,
  slice,
  tile,
  ...indexingLowerings,
];
