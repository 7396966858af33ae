import type { Attrs } from '../../../src/ir/attrs.js';
import type { DType } from '../../../src/ir/dtype.js';
import { UserError } from '../../../src/ir/errors.js';
import type { Node } from '../../../src/ir/graph.js';
import { createCoreRegistry } from '../../../src/ir/ops/index.js';
import type { TypeInfo } from '../../../src/ir/registry.js';
import { Tensor } from '../../../src/ir/tensor.js';
import { type AttrIn, attrsOf, opNode } from '../../helpers/ops.js';

const registry = createCoreRegistry();

const nodeOf = (op: string, nIn: number, nOut: number, attrs: Attrs): Node => opNode(op, nIn, nOut, attrs, `my_${op}`);

function run(op: string, inputs: (Tensor | undefined)[], a: Record<string, AttrIn> = {}, nOut = 1): Tensor[] {
  const attrs = attrsOf(a);
  const node = nodeOf(op, inputs.length, nOut, attrs);
  return registry.get(op)!.evaluate({ node, attrs, inputs });
}

function infer(op: string, inputs: (TypeInfo | undefined)[], a: Record<string, AttrIn> = {}, consts: (Tensor | undefined)[] = [], nOut = 1): TypeInfo[] {
  const attrs = attrsOf(a);
  const node = nodeOf(op, inputs.length, nOut, attrs);
  return registry.get(op)!.infer({ node, attrs, inputs, constant: (i) => consts[i] });
}

const f32 = (shape: number[], v: number[]): Tensor => Tensor.from('float32', shape, v);
const i64 = (shape: number[], v: number[]): Tensor => Tensor.from('int64', shape, v);
const close = (t: Tensor, shape: number[], v: number[], dtype?: DType): void => {
  expect(t.shape).toEqual(shape);
  if (dtype) expect(t.dtype).toBe(dtype);
  expect(t.toArray().length).toBe(v.length);
  t.toArray().forEach((x, i) => expect(x).toBeCloseTo(v[i]!, 5));
};

describe('Gather', () => {
  it('gathers rows (axis 0) with 2-D indices', () => {
    const [y] = run('Gather', [f32([3, 2], [1, 2, 3, 4, 5, 6]), i64([2, 2], [0, 1, 1, 2])]);
    close(y!, [2, 2, 2], [1, 2, 3, 4, 3, 4, 5, 6]);
  });
  it('gathers columns (axis 1) with negative indices and int32 indices', () => {
    const data = f32([3, 3], [1, 1.2, 1.9, 2.3, 3.4, 3.9, 4.5, 5.7, 5.9]);
    const [y] = run('Gather', [data, Tensor.from('int32', [1, 2], [0, -1])], { axis: 1 });
    close(y!, [3, 1, 2], [1, 1.9, 2.3, 3.9, 4.5, 5.9]);
  });
  it('drops the axis for a scalar index, and gathers strings', () => {
    const [y] = run('Gather', [f32([2, 3], [1, 2, 3, 4, 5, 6]), i64([], [1])], { axis: 1 });
    close(y!, [2], [2, 5]);
    const [s] = run('Gather', [new Tensor('string', [3], ['a', 'b', 'c']), i64([2], [2, 0])]);
    expect(s!.strings).toEqual(['c', 'a']);
  });
  it('rejects an out-of-range index naming the node', () => {
    expect(() => run('Gather', [f32([3], [1, 2, 3]), i64([1], [3])])).toThrow(UserError);
    expect(() => run('Gather', [f32([3], [1, 2, 3]), i64([1], [-4])])).toThrow(/my_Gather.*out of range/);
  });
  it('infers symbolic shapes and rejects a bad axis', () => {
    const [t] = infer('Gather', [{ dtype: 'float32', shape: ['vocab', 768] }, { dtype: 'int64', shape: ['batch', 'seq'] }]);
    expect(t).toEqual({ dtype: 'float32', shape: ['batch', 'seq', 768] });
    expect(infer('Gather', [{ dtype: 'float32', shape: [4, 5] }, { dtype: 'int64' }])[0]!.shape).toBeUndefined();
    expect(() => infer('Gather', [{ dtype: 'float32', shape: [4, 5] }, { dtype: 'int64', shape: [2] }], { axis: 2 })).toThrow(/my_Gather/);
  });
});

describe('GatherElements', () => {
  it('gathers along axis 1 and axis 0 with negative indices', () => {
    const [y] = run('GatherElements', [f32([2, 2], [1, 2, 3, 4]), i64([2, 2], [0, 0, 1, 0])], { axis: 1 });
    close(y!, [2, 2], [1, 1, 4, 3]);
    const data = f32([3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const [z] = run('GatherElements', [data, i64([2, 3], [-1, -2, 0, -2, 0, 0])], { axis: 0 });
    close(z!, [2, 3], [7, 5, 3, 4, 2, 3]);
  });
  it('rejects a rank mismatch', () => {
    expect(() => run('GatherElements', [f32([2, 2], [1, 2, 3, 4]), i64([2], [0, 1])])).toThrow(/rank/);
  });
});

describe('GatherND', () => {
  it('gathers elements and slices', () => {
    const data = Tensor.from('int32', [2, 2], [0, 1, 2, 3]);
    close(run('GatherND', [data, i64([2, 2], [0, 0, 1, 1])])[0]!, [2], [0, 3], 'int32');
    close(run('GatherND', [data, i64([2, 1], [1, 0])])[0]!, [2, 2], [2, 3, 0, 1]);
    const d3 = f32([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]);
    close(run('GatherND', [d3, i64([2, 1, 1], [1, 0])])[0]!, [2, 1, 2, 2], [4, 5, 6, 7, 0, 1, 2, 3]);
  });
  it('honours batch_dims', () => {
    const d3 = Tensor.from('int32', [2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]);
    const [y] = run('GatherND', [d3, i64([2, 1], [1, 0])], { batch_dims: 1 });
    close(y!, [2, 2], [2, 3, 4, 5]);
    const [t] = infer('GatherND', [{ dtype: 'int32', shape: ['b', 2, 2] }, { dtype: 'int64', shape: ['b', 1] }], { batch_dims: 1 });
    expect(t!.shape).toEqual(['b', 2]);
  });
  it('rejects an out-of-range index', () => {
    expect(() => run('GatherND', [f32([2, 2], [0, 1, 2, 3]), i64([1, 2], [0, 2])])).toThrow(/my_GatherND/);
  });
});

describe('ScatterElements', () => {
  it('scatters along axis 0', () => {
    const [y] = run('ScatterElements', [
      f32([3, 3], new Array(9).fill(0)),
      i64([2, 3], [1, 0, 2, 0, 2, 1]),
      f32([2, 3], [1, 1.1, 1.2, 2, 2.1, 2.2]),
    ]);
    close(y!, [3, 3], [2, 1.1, 0, 1, 0, 2.2, 0, 2.1, 1.2]);
  });
  it('applies reductions on duplicate and negative indices', () => {
    const data = f32([1, 5], [1, 2, 3, 4, 5]);
    const ind = i64([1, 2], [1, -4]);
    const upd = f32([1, 2], [1.1, 2.1]);
    close(run('ScatterElements', [data, ind, upd], { axis: 1, reduction: 'add' })[0]!, [1, 5], [1, 5.2, 3, 4, 5]);
    close(run('ScatterElements', [data, ind, upd], { axis: 1, reduction: 'mul' })[0]!, [1, 5], [1, 4.62, 3, 4, 5]);
    close(run('ScatterElements', [data, ind, upd], { axis: 1, reduction: 'max' })[0]!, [1, 5], [1, 2.1, 3, 4, 5]);
    close(run('ScatterElements', [data, ind, upd], { axis: 1, reduction: 'min' })[0]!, [1, 5], [1, 1.1, 3, 4, 5]);
    close(run('ScatterElements', [data, ind, upd], { axis: 1 })[0]!, [1, 5], [1, 2.1, 3, 4, 5]);
    expect(() => run('ScatterElements', [data, ind, upd], { axis: 1, reduction: 'avg' })).toThrow(/reduction/);
  });
});

describe('ScatterND', () => {
  it('scatters elements and slices, with reductions', () => {
    const data = f32([8], [1, 2, 3, 4, 5, 6, 7, 8]);
    const [y] = run('ScatterND', [data, i64([4, 1], [4, 3, 1, 7]), f32([4], [9, 10, 11, 12])]);
    close(y!, [8], [1, 11, 3, 10, 9, 6, 7, 12]);
    const d2 = f32([2, 3], [1, 2, 3, 4, 5, 6]);
    const [z] = run('ScatterND', [d2, i64([2, 1], [1, 1]), f32([2, 3], [1, 1, 1, 2, 2, 2])], { reduction: 'add' });
    close(z!, [2, 3], [1, 2, 3, 7, 8, 9]);
    const [m] = run('ScatterND', [d2, i64([1, 2], [0, -1]), f32([1], [10])], { reduction: 'mul' });
    close(m!, [2, 3], [1, 2, 30, 4, 5, 6]);
  });
  it('rejects updates of the wrong shape', () => {
    expect(() => run('ScatterND', [f32([4], [1, 2, 3, 4]), i64([2, 1], [0, 1]), f32([3], [1, 2, 3])])).toThrow(/updates shape/);
  });
});

describe('OneHot', () => {
  it('encodes with negative indices on the last axis, out of range → off', () => {
    const [y] = run('OneHot', [i64([4], [0, -7, -8, 12]), Tensor.from('float32', [], [10]), f32([2], [1, 3])]);
    const want = new Array(40).fill(1);
    want[0] = 3;
    want[10 + 3] = 3;
    want[20 + 2] = 3;
    close(y!, [4, 10], want);
  });
  it('encodes along axis 0 (and -2), with the values dtype', () => {
    const ind = Tensor.from('float32', [2], [1, 2.7]);
    const [y] = run('OneHot', [ind, i64([1], [3]), i64([2], [0, 5])], { axis: 0 });
    close(y!, [3, 2], [0, 0, 5, 0, 0, 5], 'int64');
    const [z] = run('OneHot', [ind, i64([1], [3]), i64([2], [0, 5])], { axis: -2 });
    close(z!, [3, 2], [0, 0, 5, 0, 0, 5]);
  });
  it('infers the shape from a constant depth', () => {
    const [t] = infer('OneHot', [{ dtype: 'int64', shape: ['n', 4] }, { dtype: 'int64', shape: [] }, { dtype: 'float32', shape: [2] }], { axis: 1 }, [
      undefined,
      i64([], [7]),
    ]);
    expect(t).toEqual({ dtype: 'float32', shape: ['n', 7, 4] });
  });
});

describe('EyeLike', () => {
  it('puts ones on the k-th diagonal with an output dtype', () => {
    const x = Tensor.zeros('float32', [3, 4]);
    close(run('EyeLike', [x], { k: 1 })[0]!, [3, 4], [0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], 'float32');
    close(run('EyeLike', [x], { k: -1, dtype: 6 })[0]!, [3, 4], [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0], 'int32');
    expect(infer('EyeLike', [{ dtype: 'float32', shape: [3, 4] }], { dtype: 7 })[0]).toEqual({ dtype: 'int64', shape: [3, 4] });
  });
});

describe('Trilu', () => {
  const x = f32([3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  it('keeps the upper triangle, with k', () => {
    close(run('Trilu', [x])[0]!, [3, 3], [1, 2, 3, 0, 5, 6, 0, 0, 9]);
    close(run('Trilu', [x, i64([], [1])])[0]!, [3, 3], [0, 2, 3, 0, 0, 6, 0, 0, 0]);
    close(run('Trilu', [x, i64([], [-1])])[0]!, [3, 3], [1, 2, 3, 4, 5, 6, 0, 8, 9]);
  });
  it('keeps the lower triangle, batched, with k out of range', () => {
    close(run('Trilu', [x], { upper: 0 })[0]!, [3, 3], [1, 0, 0, 4, 5, 0, 7, 8, 9]);
    close(run('Trilu', [x, i64([], [-1])], { upper: 0 })[0]!, [3, 3], [0, 0, 0, 4, 0, 0, 7, 8, 0]);
    close(run('Trilu', [x, i64([], [5])], { upper: 0 })[0]!, [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const b = f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
    close(run('Trilu', [b], { upper: 0 })[0]!, [2, 2, 2], [1, 0, 3, 4, 5, 0, 7, 8]);
  });
});

describe('CumSum', () => {
  const x = f32([5], [1, 2, 3, 4, 5]);
  const axis0 = i64([], [0]);
  it('sums inclusive / exclusive, forward / reverse', () => {
    close(run('CumSum', [x, axis0])[0]!, [5], [1, 3, 6, 10, 15]);
    close(run('CumSum', [x, axis0], { exclusive: 1 })[0]!, [5], [0, 1, 3, 6, 10]);
    close(run('CumSum', [x, axis0], { reverse: 1 })[0]!, [5], [15, 14, 12, 9, 5]);
    close(run('CumSum', [x, axis0], { reverse: 1, exclusive: 1 })[0]!, [5], [14, 12, 9, 5, 0]);
  });
  it('sums along a (negative) axis of a 2-D int tensor', () => {
    const m = Tensor.from('int32', [2, 3], [1, 2, 3, 4, 5, 6]);
    close(run('CumSum', [m, Tensor.from('int32', [], [-1])])[0]!, [2, 3], [1, 3, 6, 4, 9, 15], 'int32');
    close(run('CumSum', [m, axis0])[0]!, [2, 3], [1, 2, 3, 5, 7, 9]);
    expect(() => run('CumSum', [m, i64([], [2])])).toThrow(/axis 2/);
  });
});

describe('TopK', () => {
  const x = f32([3, 4], [0, 1, 2, 3, 4, 5, 6, 7, 11, 10, 9, 8]);
  it('returns the largest / smallest with int64 indices', () => {
    const [v, i] = run('TopK', [x, i64([1], [3])], {}, 2);
    close(v!, [3, 3], [3, 2, 1, 7, 6, 5, 11, 10, 9]);
    close(i!, [3, 3], [3, 2, 1, 3, 2, 1, 0, 1, 2], 'int64');
    const [sv, si] = run('TopK', [x, i64([1], [2])], { largest: 0, axis: 0 }, 2);
    close(sv!, [2, 4], [0, 1, 2, 3, 4, 5, 6, 7]);
    close(si!, [2, 4], [0, 0, 0, 0, 1, 1, 1, 1]);
  });
  it('breaks ties by the lower index, in both selection paths', () => {
    const [v, i] = run('TopK', [f32([5], [1, 3, 3, 2, 3]), i64([1], [3])], {}, 2);
    close(v!, [3], [3, 3, 3]);
    close(i!, [3], [1, 2, 4]);
    for (const [n, k, largest] of [
      [100, 60, 0], // full sort
      [1000, 50, 1], // binary insertion
      [1000, 50, 0],
    ] as const) {
      const vals = Array.from({ length: n }, (_, j) => (j * 37) % 17);
      const [bv, bi] = run('TopK', [f32([n], vals), i64([1], [k])], { largest }, 2);
      const sgn = largest ? -1 : 1;
      const want = vals.map((v, j) => [v, j]).sort((a, b) => sgn * (a[0]! - b[0]!) || a[1]! - b[1]!).slice(0, k);
      expect(bv!.toArray()).toEqual(want.map((p) => p[0]));
      expect(bi!.toArray()).toEqual(want.map((p) => p[1]));
    }
  });
  it('infers with a constant K and rejects K beyond the axis', () => {
    const ts = infer('TopK', [{ dtype: 'float32', shape: ['b', 10] }, { dtype: 'int64', shape: [1] }], {}, [undefined, i64([1], [4])], 2);
    expect(ts).toEqual([
      { dtype: 'float32', shape: ['b', 4] },
      { dtype: 'int64', shape: ['b', 4] },
    ]);
    expect(() => run('TopK', [x, i64([1], [5])], {}, 2)).toThrow(/my_TopK.*K = 5/);
  });
});
