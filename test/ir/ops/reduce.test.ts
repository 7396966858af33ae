import { type Attr, Attrs } from '../../../src/ir/attrs.js';
import type { DType } from '../../../src/ir/dtype.js';
import { UserError } from '../../../src/ir/errors.js';
import { Node, Value } from '../../../src/ir/graph.js';
import { reduceOps } from '../../../src/ir/ops/reduce.js';
import type { OpDef, TypeInfo } from '../../../src/ir/registry.js';
import { type Dim, stridesOf } from '../../../src/ir/shape.js';
import { Tensor } from '../../../src/ir/tensor.js';

// ---- harness ----
type AttrIn = number | number[];
const row = (op: string): OpDef => reduceOps.find((d) => d.op === op)!;

function nodeOf(op: string, nIn: number, attrs: Record<string, AttrIn>): Node {
  const a = new Attrs(
    Object.entries(attrs).map(([k, v]): [string, Attr] => [k, Array.isArray(v) ? { kind: 'ints', value: v } : { kind: 'int', value: v }]),
  );
  const ins = Array.from({ length: nIn }, (_, i) => new Value(`in${i}`));
  return new Node(op, ins, [new Value('out')], a, `${op.toLowerCase()}_0`);
}

function run(op: string, x: Tensor, axes?: number[], attrs: Record<string, AttrIn> = {}): Tensor {
  const inputs = axes ? [x, Tensor.from('int64', [axes.length], axes)] : [x];
  const node = nodeOf(op, inputs.length, attrs);
  return row(op).evaluate({ node, attrs: node.attrs, inputs })[0]!;
}

function infer(op: string, inputs: TypeInfo[], consts: (Tensor | undefined)[] = [], attrs: Record<string, AttrIn> = {}): TypeInfo[] {
  const node = nodeOf(op, inputs.length, attrs);
  return row(op).infer({ node, attrs: node.attrs, inputs, constant: (i) => consts[i] });
}

const f32 = (shape: number[], v: number[]) => Tensor.from('float32', shape, v);
const close = (t: Tensor, expected: number[], digits = 5) => {
  expect(t.data.length).toBe(expected.length);
  expected.forEach((e, i) => {
    if (Number.isNaN(e)) expect(Number.isNaN(t.data[i]!)).toBe(true);
    else if (!Number.isFinite(e)) expect(t.data[i]).toBe(e);
    else expect(t.data[i]).toBeCloseTo(e, digits);
  });
};

// x = [[1, 2, 3], [4, 5, 6]]
const X = f32([2, 3], [1, 2, 3, 4, 5, 6]);

describe('reductions: hand-computed', () => {
  test('ReduceSum over axis 1 keeps dims by default', () => {
    const y = run('ReduceSum', X, [1]);
    expect(y.shape).toEqual([2, 1]);
    close(y, [6, 15]);
  });

  test('every reduction over axis 0, keepdims=0', () => {
    const cases: [string, number[]][] = [
      ['ReduceSum', [5, 7, 9]],
      ['ReduceMean', [2.5, 3.5, 4.5]],
      ['ReduceMax', [4, 5, 6]],
      ['ReduceMin', [1, 2, 3]],
      ['ReduceProd', [4, 10, 18]],
      ['ReduceL1', [5, 7, 9]],
      ['ReduceL2', [Math.sqrt(17), Math.sqrt(29), Math.sqrt(45)]],
      ['ReduceLogSum', [Math.log(5), Math.log(7), Math.log(9)]],
      ['ReduceLogSumExp', [Math.log(Math.E + Math.E ** 4), Math.log(Math.E ** 2 + Math.E ** 5), Math.log(Math.E ** 3 + Math.E ** 6)]],
      ['ReduceSumSquare', [17, 29, 45]],
    ];
    for (const [op, want] of cases) {
      const y = run(op, X, [0], { keepdims: 0 });
      expect(y.shape).toEqual([3]);
      close(y, want, 4);
    }
  });

  test('negative values: L1 uses |x|', () => {
    close(run('ReduceL1', f32([3], [-1, 2, -3]), [0]), [6]);
    close(run('ReduceSumSquare', f32([3], [-1, 2, -3]), [-1]), [14]);
  });

  test('non-adjacent axes [0, 2] of a [2,2,2] tensor', () => {
    const x = f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
    // y[j] = sum over i,k of x[i,j,k]: j=0 → 1+2+5+6, j=1 → 3+4+7+8
    const y = run('ReduceSum', x, [0, 2], { keepdims: 0 });
    expect(y.shape).toEqual([2]);
    close(y, [14, 22]);
    const m = run('ReduceMean', x, [0, -1]);
    expect(m.shape).toEqual([1, 2, 1]);
    close(m, [3.5, 5.5]);
  });

  test('axes absent reduces everything; noop_with_empty_axes returns the input', () => {
    const all = run('ReduceSum', X);
    expect(all.shape).toEqual([1, 1]);
    close(all, [21]);
    const allFlat = run('ReduceMax', X, [], { keepdims: 0 });
    expect(allFlat.shape).toEqual([]);
    close(allFlat, [6]);
    const noop = run('ReduceSum', X, [], { noop_with_empty_axes: 1 });
    expect(noop.shape).toEqual([2, 3]);
    close(noop, [1, 2, 3, 4, 5, 6]);
  });

  test('LogSumExp is stable for large inputs', () => {
    close(run('ReduceLogSumExp', f32([2], [1000, 1000]), [0]), [1000 + Math.log(2)], 3);
    close(run('ReduceLogSumExp', f32([2], [-Infinity, -Infinity]), [0]), [-Infinity]);
  });

  test('Max/Min propagate NaN', () => {
    close(run('ReduceMax', f32([3], [1, NaN, 3]), [0]), [NaN]);
    close(run('ReduceMin', f32([3], [NaN, 0, 3]), [0]), [NaN]);
  });

  test('empty-set reductions give the identity of each op', () => {
    const empty = Tensor.zeros('float32', [2, 0, 2]);
    const want: [string, number][] = [
      ['ReduceSum', 0],
      ['ReduceMax', -Infinity],
      ['ReduceMin', Infinity],
      ['ReduceProd', 1],
      ['ReduceL1', 0],
      ['ReduceL2', 0],
      ['ReduceSumSquare', 0],
      ['ReduceLogSum', -Infinity],
      ['ReduceLogSumExp', -Infinity],
    ];
    for (const [op, v] of want) {
      const y = run(op, empty, [1]);
      expect(y.shape).toEqual([2, 1, 2]);
      close(y, [v, v, v, v]);
    }
    close(run('ReduceMean', empty, [1], { keepdims: 0 }), [NaN, NaN, NaN, NaN]);
    // Reducing a kept zero-size dim's neighbours leaves an empty output.
    expect(run('ReduceSum', empty, [2]).shape).toEqual([2, 0, 1]);
  });

  test('integer dtypes: mean truncates, empty max is the type minimum', () => {
    const xi = Tensor.from('int32', [2, 2], [1, 2, -3, -4]);
    const m = run('ReduceMean', xi, [1], { keepdims: 0 });
    expect(m.dtype).toBe('int32');
    expect(m.toArray()).toEqual([1, -3]);
    const s = run('ReduceSum', Tensor.from('int64', [3], [2 ** 40, 2 ** 40, 1]), [0]);
    expect(s.toArray()).toEqual([2 ** 41 + 1]);
    expect(run('ReduceMax', Tensor.zeros('int32', [0, 3]), [0], { keepdims: 0 }).toArray()).toEqual([-2147483648, -2147483648, -2147483648]);
  });

  test('float16 results are rounded to float16', () => {
    const y = run('ReduceSum', Tensor.from('float16', [2], [1, 0.0001]), [0]);
    expect(y.dtype).toBe('float16');
    expect(y.data[0]).toBe(1); // 1.0001 is not a float16
  });

  test('bad axis is a UserError naming the node', () => {
    expect(() => run('ReduceSum', X, [2])).toThrow(UserError);
    expect(() => run('ReduceSum', X, [2])).toThrow(/reducesum_0/);
  });
});

describe('reductions: random cross-check against a naive loop', () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;

  function naive(x: Tensor, axes: number[], kind: 'sum' | 'max'): number[] {
    const keep = x.shape.map((_, d) => !axes.includes(d));
    const outShape = x.shape.map((s, d) => (keep[d] ? s : 1));
    const out = new Array<number>(outShape.reduce((a, b) => a * b, 1)).fill(kind === 'sum' ? 0 : -Infinity);
    const os = stridesOf(outShape);
    const is = stridesOf(x.shape);
    for (let i = 0; i < x.size; i++) {
      let o = 0;
      x.shape.forEach((_, d) => {
        const idx = Math.floor(i / is[d]!) % x.shape[d]!;
        if (keep[d]) o += idx * os[d]!;
      });
      out[o] = kind === 'sum' ? out[o]! + x.data[i]! : Math.max(out[o]!, x.data[i]!);
    }
    return out;
  }

  test('random shapes and axis sets', () => {
    for (let trial = 0; trial < 60; trial++) {
      const rank = 1 + (trial % 5);
      const shape = Array.from({ length: rank }, () => 1 + Math.floor(((rand() + 1) / 2) * 4));
      const x = Tensor.from('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand));
      const axes = shape.map((_, d) => d).filter(() => rand() > 0);
      if (axes.length === 0) axes.push(rank - 1);
      close(run('ReduceSum', x, axes), naive(x, axes, 'sum'), 4);
      close(run('ReduceMax', x, axes), naive(x, axes, 'max'), 6);
    }
  });
});

describe('ArgMax / ArgMin', () => {
  const data = f32([2, 3], [2, 9, 9, 7, 1, 7]);
  test('axis 0 keepdims and axis 1 without', () => {
    const a = run('ArgMax', data, undefined, { axis: 0 });
    expect(a.dtype).toBe('int64');
    expect(a.shape).toEqual([1, 3]);
    expect(a.toArray()).toEqual([1, 0, 0]);
    const b = run('ArgMin', data, undefined, { axis: 1, keepdims: 0 });
    expect(b.shape).toEqual([2]);
    expect(b.toArray()).toEqual([0, 1]);
  });
  test('ties: first index by default, last with select_last_index', () => {
    expect(run('ArgMax', data, undefined, { axis: -1, keepdims: 0 }).toArray()).toEqual([1, 0]);
    expect(run('ArgMax', data, undefined, { axis: -1, keepdims: 0, select_last_index: 1 }).toArray()).toEqual([2, 2]);
    expect(run('ArgMin', f32([3], [4, 4, 5]), undefined, { select_last_index: 1 }).toArray()).toEqual([1]);
  });
  test('empty reduced axis is a UserError', () => {
    expect(() => run('ArgMax', Tensor.zeros('float32', [2, 0]), undefined, { axis: 1 })).toThrow(UserError);
  });
});

describe('inference', () => {
  const sym: Dim[] = ['batch', 'seq', 768];
  const axesT = (a: number[]) => Tensor.from('int64', [a.length], a);
  test('constant axes keep symbolic dims', () => {
    const [t] = infer('ReduceMean', [{ dtype: 'float32', shape: sym }, { dtype: 'int64', shape: [1] }], [undefined, axesT([-1])]);
    expect(t).toEqual({ dtype: 'float32', shape: ['batch', 'seq', 1] });
    const [u] = infer('ReduceSum', [{ dtype: 'float16', shape: sym }, { dtype: 'int64', shape: [2] }], [undefined, axesT([0, 2])], { keepdims: 0 });
    expect(u!.shape).toEqual(['seq']);
  });
  test('non-constant axes give an unknown shape; absent axes reduce all', () => {
    const [t] = infer('ReduceMax', [{ dtype: 'float32', shape: sym }, { dtype: 'int64', shape: [1] }]);
    expect(t!.shape).toBeUndefined();
    const [u] = infer('ReduceMax', [{ dtype: 'float32', shape: sym }]);
    expect(u!.shape).toEqual([1, 1, 1]);
    const [v] = infer('ReduceMax', [{ dtype: 'float32', shape: sym }], [], { noop_with_empty_axes: 1 });
    expect(v!.shape).toEqual(sym);
  });
  test('ArgMax gives int64; bad axis is a UserError naming the node', () => {
    const [t] = infer('ArgMax', [{ dtype: 'float32' as DType, shape: sym }], [], { axis: 1, keepdims: 0 });
    expect(t).toEqual({ dtype: 'int64', shape: ['batch', 768] });
    expect(() => infer('ArgMin', [{ dtype: 'float32', shape: sym }], [], { axis: 3 })).toThrow(/argmin_0/);
    expect(() =>
      infer('ReduceSum', [{ dtype: 'float32', shape: sym }, { dtype: 'int64', shape: [1] }], [undefined, axesT([5])]),
    ).toThrow(UserError);
  });
  test('flops are the input element count', () => {
    const node = nodeOf('ReduceSum', 1, {});
    const ctx = { node, attrs: node.attrs, inputs: [{ dtype: 'float32' as DType, shape: [4, 5] }], constant: () => undefined };
    expect(row('ReduceSum').flops!(ctx)).toBe(20);
  });
});
