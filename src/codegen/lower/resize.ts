/**
 * Lowering row of Resize. The per-axis taps (source index, weight) are computed on the host in
 * float64 by the reference op's planner (src/ir/ops/resize.ts `resizePlan`), so every mode,
 * coordinate transformation, rounding rule and antialias filter matches the reference exactly;
 * they travel to the kernel as two constant tables (`rw`: f32 weights, `ri`: i32 source
 * indices; -1 marks a tf_crop_and_resize point outside the input, which gets
 * extrapolation_value). The kernel is one map over the output: each element is a sum over the
 * product of the resized axes' taps (nearest 1, linear 2, cubic 4 per axis; antialias more) of
 * the product of their weights times the input at their source indices. Axes whose taps copy the
 * input are left out of the product (the reference skips them too).
 */
import { numel, stridesOf } from '../../ir/shape.js';
import { resizePlan } from '../../ir/ops/resize.js';
import { Tensor } from '../../ir/tensor.js';
import { type Expr, add, bin, cast, cmp, div, f32, i32, load, max, mul, rem, select, variable } from '../expr.js';
import { loadTyped, madd } from '../index-map.js';
import { type LowerRow, kernels, need, unsupported } from './index.js';
import { MapBuilder, indexMap } from './map.js';

/** Most taps (product over the resized axes) one output element may sum. */
export const MAX_RESIZE_TAPS = 4096;

const resize: LowerRow = {
  op: 'Resize',
  family: 'conv',
  hostInputs: [1, 2, 3],
  lower: (ctx) => {
    const x = need(ctx, 0);
    const out = ctx.outputs[0]!;
    const host = (k: number) => ctx.inputs[k]?.host;
    const plan = resizePlan(ctx, x.shape, host(1), host(2), host(3));
    if (numel(out.shape) === 0) return kernels();
    const steps = plan.axes;
    if (steps.length === 0) return indexMap(ctx, 0, (mb) => mb.i);
    const total = steps.reduce((a, s) => a * s.taps.n, 1);
    if (total > MAX_RESIZE_TAPS) throw unsupported(ctx, `${total} taps per output element (more than ${MAX_RESIZE_TAPS})`);

    // Tables: step j occupies [base_j, base_j + outLen_j · n_j), row-major (output coordinate, tap).
    const len = steps.reduce((a, s) => a + s.outLen * s.taps.n, 0);
    const w = new Float64Array(len);
    const idx = new Float64Array(len);
    const bases: number[] = [];
    let at = 0;
    for (const s of steps) {
      bases.push(at);
      const { n, index, weight, extrapolate } = s.taps;
      for (let o = 0; o < s.outLen; o++)
        for (let t = 0; t < n; t++) {
          w[at + o * n + t] = weight[o * n + t]!;
          idx[at + o * n + t] = extrapolate[o] ? -1 : index[o * n + t]!;
        }
      at += s.outLen * n;
    }
    const crop = steps.some((s) => s.taps.extrapolate.some((e) => e !== 0));

    const mb = new MapBuilder(out.shape);
    const c = mb.coord();
    const xs = stridesOf(x.shape);
    const resized = new Set(steps.map((s) => s.axis));
    let off: Expr | undefined;
    x.shape.forEach((dim, d) => {
      if (!resized.has(d) && dim !== 1) off = madd(off, c[d]!, mb.p.int(`x0_s${d}`, xs[d]!));
    });
    const t = variable('t');
    let weight: Expr | undefined;
    let stride = 1;
    steps.forEach((s, j) => {
      const n = s.taps.n;
      let tj: Expr = stride === 1 ? t : div(t, mb.p.int(`tap_div${j}`, stride));
      if (stride * n < total) tj = rem(tj, mb.p.int(`taps${j}`, n));
      if (n === 1) tj = i32(0);
      stride *= n;
      const row = madd(mb.p.int(`tab_base${j}`, bases[j]!), c[s.axis]!, mb.p.int(`taps${j}`, n));
      const slot = n === 1 ? row : add(row, tj);
      const wj = load('rw', 'f32', slot);
      weight = weight ? mul(weight, wj) : wj;
      let src = load('ri', 'i32', slot);
      if (crop) src = max(src, i32(0));
      off = madd(off, src, mb.p.int(`x0_s${s.axis}`, xs[s.axis]!));
    });
    const term = mul(weight!, cast(loadTyped('x0', x.dtype, off ?? i32(0)), 'f32'));
    let value: Expr;
    if (total === 1) value = term;
    else {
      mb.lets.push({ name: 'acc', value: term, loop: { var: 't', count: mb.p.int('taps', total), op: 'sum' } });
      value = variable('acc', 'f32');
    }
    if (crop) {
      let outside: Expr | undefined;
      steps.forEach((s, j) => {
        const first = madd(mb.p.int(`tab_base${j}`, bases[j]!), c[s.axis]!, mb.p.int(`taps${j}`, s.taps.n));
        const o = cmp('<', load('ri', 'i32', first), i32(0));
        outside = outside ? bin('||', outside, o) : o;
      });
      value = select(outside!, f32(plan.extrapolation), value);
    }
    const spec = mb.build(ctx, 'y0', out.dtype, value);
    return kernels({ ...spec, constants: { rw: Tensor.from('float32', [len], w), ri: Tensor.from('int32', [len], idx) } });
  },
};

export const resizeLowerings: LowerRow[] = [resize];
