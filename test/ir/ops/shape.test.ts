import { type Attr, Attrs } from '../../../src/ir/attrs.js';
import type { DType } from '../../../src/ir/dtype.js';
import { Graph, Node, Value } from '../../../src/ir/graph.js';
import { OpRegistry, type TypeInfo } from '../../../src/ir/registry.js';
import type { Dim } from '../../../src/ir/shape.js';
import { LazyTensor, Tensor } from '../../../src/ir/tensor.js';
import { shapeOps } from '../../../src/ir/ops/shape.js';
import { runGraph } from '../../../src/targets/cpu/interpreter.js';
import { expectUserError, opNode } from '../../helpers/ops.js';

const registry = new OpRegistry().register(...shapeOps);
const INT64_MAX = 9.223372036854776e18;

type AttrMap = Record<string, Attr>;
const int = (value: number): Attr => ({ kind: 'int', value });
const ints = (value: number[]): Attr => ({ kind: 'ints', value });
const str = (value: string): Attr => ({ kind: 'string', value });

const f32 = (shape: number[], values: number[]): Tensor => Tensor.from('float32', shape, values);
const i64 = (values: number[], shape = [values.length]): Tensor => Tensor.from('int64', shape, values);
const iota = (shape: number[]): Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return f32(shape, Array.from({ length: n }, (_, i) => i));
};

const node = (op: string, nIn: number, nOut: number, attrs: AttrMap, present: boolean[] = []): Node =>
  opNode(op, nIn, nOut, new Attrs(Object.entries(attrs)), `${op}_test`, present);

/** Evaluates one op; `undefined` inputs are absent optionals. */
function run(op: string, inputs: (Tensor | undefined)[], attrs: AttrMap = {}, nOut = 1): Tensor[] {
  const n = node(op, inputs.length, nOut, attrs, inputs.map((t) => t !== undefined));
  return registry.get(op)!.evaluate({ node: n, attrs: n.attrs, inputs });
}

/** Infers one op; `consts[i]` is the compile-time value of input i. */
function infer(op: string, inputs: (TypeInfo | undefined)[], attrs: AttrMap = {}, consts: (Tensor | undefined)[] = [], nOut = 1): TypeInfo[] {
  const n = node(op, inputs.length, nOut, attrs, inputs.map((t) => t !== undefined));
  return registry.get(op)!.infer({ node: n, attrs: n.attrs, inputs, constant: (i) => consts[i] });
}

const ti = (shape: Dim[] | undefined, dtype: DType = 'float32'): TypeInfo => ({ dtype, shape });
const I64 = (n: number): TypeInfo => ti([n], 'int64');
const vals = (t: Tensor): number[] => t.toArray();

describe('Reshape', () => {
  test('0 copies a dim and -1 is inferred', () => {
    const [y] = run('Reshape', [iota([2, 3, 4]), i64([4, 0, -1])]);
    expect(y!.shape).toEqual([4, 3, 2]);
    expect(vals(y!)).toEqual(vals(iota([24])));
  });
  test('allowzero keeps a literal 0', () => {
    const [y] = run('Reshape', [f32([0, 3], []), i64([3, 0])], { allowzero: int(1) });
    expect(y!.shape).toEqual([3, 0]);
    // Without allowzero the 0 copies dim 1 (3): [3, 3] holds 9 elements, the input none.
    expectUserError(() => run('Reshape', [f32([0, 3], []), i64([3, 0])]), /cannot reshape \[0,3\]/);
  });
  test('element count mismatch is a user error naming the node', () => {
    expectUserError(() => run('Reshape', [iota([2, 3]), i64([4, 2])]), /Reshape_test.*cannot reshape \[2,3\]/);
    expectUserError(() => infer('Reshape', [ti([2, 3]), I64(2)], {}, [undefined, i64([4, -1])]), /cannot reshape/);
    expectUserError(() => run('Reshape', [iota([4]), i64([-1, -1])]), /more than one -1/);
  });
  test('symbolic dims stay symbolic', () => {
    const x = ti(['batch', 'seq', 768]);
    expect(infer('Reshape', [x, I64(4)], {}, [undefined, i64([0, -1, 12, 64])])[0]!.shape).toEqual(['batch', 'seq', 12, 64]);
    expect(infer('Reshape', [x, I64(2)], {}, [undefined, i64([-1, 768])])[0]!.shape).toEqual(['batch*seq', 768]);
    expect(infer('Reshape', [x, I64(2)], {}, [undefined, i64([-1, 5])])[0]!.shape).toBeUndefined();
    expect(infer('Reshape', [ti(undefined), I64(2)], {}, [undefined, i64([2, 3])])[0]!.shape).toEqual([2, 3]);
    expect(infer('Reshape', [x, I64(2)])[0]!.shape).toBeUndefined();
  });
});

function naiveTranspose(x: Tensor, perm: number[]): number[] {
  const outShape = perm.map((p) => x.shape[p]!);
  const inStrides: number[] = [];
  let acc = 1;
  for (let d = x.rank - 1; d >= 0; d--) {
    inStrides[d] = acc;
    acc *= x.shape[d]!;
  }
  const out: number[] = [];
  const idx = new Array<number>(outShape.length).fill(0);
  for (let i = 0; i < x.size; i++) {
    let off = 0;
    for (let d = 0; d < idx.length; d++) off += idx[d]! * inStrides[perm[d]!]!;
    out.push(x.data[off]!);
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d]! < outShape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

describe('Transpose', () => {
  test('default perm reverses the dims', () => {
    const [y] = run('Transpose', [iota([2, 3])]);
    expect(y!.shape).toEqual([3, 2]);
    expect(vals(y!)).toEqual([0, 3, 1, 4, 2, 5]);
  });
  test('3-D perm', () => {
    const [y] = run('Transpose', [iota([2, 3, 2])], { perm: ints([1, 2, 0]) });
    expect(y!.shape).toEqual([3, 2, 2]);
    expect(vals(y!)).toEqual([0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]);
  });
  test.each([[[0, 2, 1, 3]], [[3, 1, 0, 2]], [[0, 1, 3, 2]], [[1, 0, 2, 3]]])('4-D perm %j matches a naive loop', (perm) => {
    const x = iota([2, 3, 17, 20]);
    const [y] = run('Transpose', [x], { perm: ints(perm) });
    expect(y!.shape).toEqual(perm.map((p) => x.shape[p]));
    expect(vals(y!)).toEqual(naiveTranspose(x, perm));
  });
  test('int64 and string tensors', () => {
    expect(vals(run('Transpose', [i64([1, 2, 3, 4], [2, 2])])[0]!)).toEqual([1, 3, 2, 4]);
    const s = new Tensor('string', [2, 2], ['a', 'b', 'c', 'd']);
    expect(run('Transpose', [s])[0]!.strings).toEqual(['a', 'c', 'b', 'd']);
  });
  test('infer keeps symbols and rejects a bad perm', () => {
    expect(infer('Transpose', [ti(['b', 's', 12, 64])], { perm: ints([0, 2, 1, 3]) })[0]!.shape).toEqual(['b', 12, 's', 64]);
    expectUserError(() => infer('Transpose', [ti([2, 3])], { perm: ints([0, 0]) }), /not a permutation/);
    expectUserError(() => infer('Transpose', [ti([2, 3])], { perm: ints([0, 1, 2]) }), /rank 2/);
  });
});

describe('Concat', () => {
  test('negative axis', () => {
    const [y] = run('Concat', [f32([2, 1], [1, 2]), f32([2, 2], [3, 4, 5, 6])], { axis: int(-1) });
    expect(y!.shape).toEqual([2, 3]);
    expect(vals(y!)).toEqual([1, 3, 4, 2, 5, 6]);
  });
  test('axis 0 with long rows', () => {
    const a = iota([2, 20]);
    const b = f32([1, 20], new Array(20).fill(7));
    const [y] = run('Concat', [a, b], { axis: int(0) });
    expect(vals(y!)).toEqual([...vals(a), ...vals(b)]);
  });
  test('strings', () => {
    const [y] = run('Concat', [new Tensor('string', [1], ['x']), new Tensor('string', [2], ['y', 'z'])], { axis: int(0) });
    expect(y!.strings).toEqual(['x', 'y', 'z']);
  });
  test('infer: symbols, sums and mismatches', () => {
    expect(infer('Concat', [ti(['b', 3]), ti(['b', 4])], { axis: int(1) })[0]!.shape).toEqual(['b', 7]);
    expect(infer('Concat', [ti(['b', 3]), ti(['b', 3])], { axis: int(0) })[0]!.shape).toEqual(['2*b', 3]);
    expect(infer('Concat', [ti(['p', 3]), ti(['s', 3])], { axis: int(0) })[0]!.shape).toBeUndefined();
    expectUserError(() => infer('Concat', [ti([2, 3]), ti([3, 3])], { axis: int(1) }), /Concat_test.*dim 0/);
    expectUserError(() => infer('Concat', [ti([2, 3]), ti([2, 3])], { axis: int(2) }), /axis 2 is out of range/);
  });
});

describe('Slice', () => {
  const x = iota([4, 5]);
  test('starts, ends, steps with INT64_MAX end', () => {
    const [y] = run('Slice', [x, i64([1, 0]), i64([3, INT64_MAX]), undefined, i64([1, 2])]);
    expect(y!.shape).toEqual([2, 3]);
    expect(vals(y!)).toEqual([5, 7, 9, 10, 12, 14]);
  });
  test('negative step to INT64_MIN reverses', () => {
    const [y] = run('Slice', [x, i64([-1]), i64([-INT64_MAX]), i64([1]), i64([-1])]);
    expect(y!.shape).toEqual([4, 5]);
    expect(vals(y!).slice(0, 5)).toEqual([4, 3, 2, 1, 0]);
    const [z] = run('Slice', [x, i64([3]), i64([0]), i64([0]), i64([-2])]);
    expect(vals(z!)).toEqual([15, 16, 17, 18, 19, 5, 6, 7, 8, 9]);
  });
  test('out-of-bounds starts and ends clamp', () => {
    expect(run('Slice', [x, i64([10]), i64([20]), i64([1])])[0]!.shape).toEqual([4, 0]);
    expect(vals(run('Slice', [x, i64([-100]), i64([1]), i64([0])])[0]!)).toEqual([0, 1, 2, 3, 4]);
  });
  test('infer: static, symbolic and errors', () => {
    const c = [undefined, i64([1]), i64([1000]), i64([1]), i64([2])];
    expect(infer('Slice', [ti([4, 5]), I64(1), I64(1), I64(1), I64(1)], {}, c)[0]!.shape).toEqual([4, 2]);
    const s = ti(['b', 'seq', 768]);
    const q = (st: number, en: number): Dim[] | undefined =>
      infer('Slice', [s, I64(1), I64(1), I64(1)], {}, [undefined, i64([st]), i64([en]), i64([1])])[0]!.shape;
    expect(q(0, 1)).toEqual(['b', 1, 768]);
    expect(q(0, INT64_MAX)).toEqual(['b', 'seq', 768]);
    expect(q(-1, INT64_MAX)).toEqual(['b', 1, 768]);
    expect(q(1, -1)).toBeUndefined();
    expectUserError(() => infer('Slice', [ti([4]), I64(1), I64(1), I64(1), I64(1)], {}, [undefined, i64([0]), i64([1]), i64([0]), i64([0])]), /contain 0/);
    expectUserError(() => run('Slice', [x, i64([0, 0]), i64([1, 1]), i64([1, -1])]), /repeat axis 1/);
  });
});

describe('Split', () => {
  test('equal split with a smaller last chunk', () => {
    const ys = run('Split', [iota([7])], {}, 3);
    expect(ys.map((y) => vals(y))).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
  });
  test('split sizes on axis 1', () => {
    const ys = run('Split', [iota([2, 6]), i64([2, 4])], { axis: int(1) }, 2);
    expect(ys[0]!.shape).toEqual([2, 2]);
    expect(vals(ys[0]!)).toEqual([0, 1, 6, 7]);
    expect(vals(ys[1]!)).toEqual([2, 3, 4, 5, 8, 9, 10, 11]);
  });
  test('zero-size splits', () => {
    const ys = run('Split', [iota([3]), i64([0, 3])], {}, 2);
    expect(ys[0]!.shape).toEqual([0]);
    expect(vals(ys[1]!)).toEqual([0, 1, 2]);
  });
  test('infer and errors', () => {
    expect(infer('Split', [ti(['b', '2*seq'])], { axis: int(1) }, [], 2).map((t) => t.shape)).toEqual([
      ['b', 'seq'],
      ['b', 'seq'],
    ]);
    expect(infer('Split', [ti([5, 3]), I64(2)], {}, [undefined, i64([1, 4])], 2).map((t) => t.shape)).toEqual([
      [1, 3],
      [4, 3],
    ]);
    expectUserError(() => infer('Split', [ti([5]), I64(2)], {}, [undefined, i64([1, 3])], 2), /sums to 4/);
    expectUserError(() => infer('Split', [ti([6])], { num_outputs: int(3) }, [], 2), /num_outputs is 3/);
  });
});

describe('Squeeze / Unsqueeze / Flatten', () => {
  test('Squeeze with and without axes', () => {
    const x = iota([1, 3, 1, 2]);
    expect(run('Squeeze', [x])[0]!.shape).toEqual([3, 2]);
    expect(run('Squeeze', [x, i64([-2])])[0]!.shape).toEqual([1, 3, 2]);
    expect(vals(run('Squeeze', [x, i64([0, 2])])[0]!)).toEqual([0, 1, 2, 3, 4, 5]);
    expectUserError(() => run('Squeeze', [x, i64([1])]), /size is 3/);
    expect(infer('Squeeze', [ti(['b', 1, 4]), I64(1)], {}, [undefined, i64([1])])[0]!.shape).toEqual(['b', 4]);
    expect(infer('Squeeze', [ti(['b', 1, 4])])[0]!.shape).toBeUndefined();
  });
  test('Unsqueeze', () => {
    expect(run('Unsqueeze', [iota([3, 2]), i64([0, -1])])[0]!.shape).toEqual([1, 3, 2, 1]);
    expect(run('Unsqueeze', [iota([3, 2]), i64([3, 1])])[0]!.shape).toEqual([3, 1, 2, 1]);
    expect(infer('Unsqueeze', [ti(['b', 's']), I64(1)], {}, [undefined, i64([1])])[0]!.shape).toEqual(['b', 1, 's']);
    expectUserError(() => run('Unsqueeze', [iota([3]), i64([0, 0])]), /repeat axis 0/);
    expectUserError(() => run('Unsqueeze', [iota([3]), i64([5])]), /axis 5 is out of range/);
  });
  test('Flatten', () => {
    const x = iota([2, 3, 4]);
    expect(run('Flatten', [x], { axis: int(2) })[0]!.shape).toEqual([6, 4]);
    expect(run('Flatten', [x], { axis: int(0) })[0]!.shape).toEqual([1, 24]);
    expect(run('Flatten', [x], { axis: int(-1) })[0]!.shape).toEqual([6, 4]);
    expect(run('Flatten', [x])[0]!.shape).toEqual([2, 12]);
    expect(infer('Flatten', [ti(['b', 's', 4])], { axis: int(2) })[0]!.shape).toEqual(['b*s', 4]);
    expectUserError(() => run('Flatten', [x], { axis: int(4) }), /axis 4/);
  });
});

describe('Expand / Tile', () => {
  test('Expand broadcasts both ways', () => {
    const [y] = run('Expand', [f32([3, 1], [1, 2, 3]), i64([2, 1, 2])]);
    expect(y!.shape).toEqual([2, 3, 2]);
    expect(vals(y!)).toEqual([1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]);
    expect(infer('Expand', [ti(['b', 1]), I64(2)], {}, [undefined, i64([1, 4])])[0]!.shape).toEqual(['b', 4]);
    expectUserError(() => run('Expand', [f32([3], [1, 2, 3]), i64([2])]), /cannot expand \[3\] to \[2\]/);
  });
  test('Tile', () => {
    const x = f32([2, 2], [1, 2, 3, 4]);
    expect(vals(run('Tile', [x, i64([1, 2])])[0]!)).toEqual([1, 2, 1, 2, 3, 4, 3, 4]);
    const [y] = run('Tile', [x, i64([2, 2])]);
    expect(y!.shape).toEqual([4, 4]);
    expect(vals(y!)).toEqual([1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4]);
    expect(infer('Tile', [ti(['b', 3]), I64(2)], {}, [undefined, i64([2, 1])])[0]!.shape).toEqual(['2*b', 3]);
    expectUserError(() => run('Tile', [x, i64([2])]), /rank 2/);
  });
});

describe('Pad', () => {
  const x = f32([3, 2], [1.0, 1.2, 2.3, 3.4, 4.5, 5.7]);
  const close = (t: Tensor, expected: number[]): void => vals(t).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
  test('constant, reflect, edge', () => {
    const pads = i64([0, 2, 0, 0]);
    close(run('Pad', [x, pads, f32([], [9])])[0]!, [9, 9, 1.0, 1.2, 9, 9, 2.3, 3.4, 9, 9, 4.5, 5.7]);
    close(run('Pad', [x, pads], { mode: str('reflect') })[0]!, [1.0, 1.2, 1.0, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7, 4.5, 5.7]);
    close(run('Pad', [x, pads], { mode: str('edge') })[0]!, [1.0, 1.0, 1.0, 1.2, 2.3, 2.3, 2.3, 3.4, 4.5, 4.5, 4.5, 5.7]);
  });
  test('wrap (ONNX spec example)', () => {
    const [y] = run('Pad', [x, i64([2, 1, 1, 1])], { mode: str('wrap') });
    expect(y!.shape).toEqual([6, 4]);
    close(y!, [3.4, 2.3, 3.4, 2.3, 5.7, 4.5, 5.7, 4.5, 1.2, 1.0, 1.2, 1.0, 3.4, 2.3, 3.4, 2.3, 5.7, 4.5, 5.7, 4.5, 1.2, 1.0, 1.2, 1.0]);
  });
  test('reflect wider than the input, negative pads crop, axes input', () => {
    expect(vals(run('Pad', [f32([3], [1, 2, 3]), i64([4, 0])], { mode: str('reflect') })[0]!)).toEqual([1, 2, 3, 2, 1, 2, 3]);
    expect(vals(run('Pad', [f32([5], [1, 2, 3, 4, 5]), i64([-1, 1]), f32([], [9])])[0]!)).toEqual([2, 3, 4, 5, 9]);
    const [y] = run('Pad', [iota([2, 2]), i64([1, 1]), undefined, i64([-1])]);
    expect(vals(y!)).toEqual([0, 0, 1, 0, 0, 2, 3, 0]);
  });
  test('infer', () => {
    expect(infer('Pad', [ti(['b', 3]), I64(4)], {}, [undefined, i64([0, 1, 0, 2])])[0]!.shape).toEqual(['b', 6]);
    expect(infer('Pad', [ti(['b', 3]), I64(4)], {}, [undefined, i64([1, 1, 0, 2])])[0]!.shape).toBeUndefined();
    expectUserError(() => infer('Pad', [ti([2, 3]), I64(2)], {}, [undefined, i64([0, 1])]), /pads has 2 entries but 4/);
    expectUserError(() => infer('Pad', [ti([2]), I64(2)], { mode: str('mirror') }), /unknown pad mode/);
  });
});

describe('DepthToSpace / SpaceToDepth', () => {
  // ONNX spec example input: channel c holds 9c + [0..5] (shape 1x8x2x3).
  const x = f32(
    [1, 8, 2, 3],
    Array.from({ length: 48 }, (_, i) => 9 * Math.floor(i / 6) + (i % 6)),
  );
  test('DCR (ONNX spec example)', () => {
    const [y] = run('DepthToSpace', [x], { blocksize: int(2) });
    expect(y!.shape).toEqual([1, 2, 4, 6]);
    expect(vals(y!).slice(0, 12)).toEqual([0, 18, 1, 19, 2, 20, 36, 54, 37, 55, 38, 56]);
    expect(vals(y!).slice(24, 30)).toEqual([9, 27, 10, 28, 11, 29]);
  });
  test('CRD (ONNX spec example)', () => {
    const [y] = run('DepthToSpace', [x], { blocksize: int(2), mode: str('CRD') });
    expect(vals(y!).slice(0, 12)).toEqual([0, 9, 1, 10, 2, 11, 18, 27, 19, 28, 20, 29]);
    expect(vals(y!).slice(24, 30)).toEqual([36, 45, 37, 46, 38, 47]);
  });
  test('SpaceToDepth inverts DepthToSpace DCR', () => {
    const [y] = run('DepthToSpace', [x], { blocksize: int(2) });
    const [z] = run('SpaceToDepth', [y!], { blocksize: int(2) });
    expect(z!.shape).toEqual([1, 8, 2, 3]);
    expect(vals(z!)).toEqual(vals(x));
  });
  test('infer', () => {
    expect(infer('DepthToSpace', [ti(['n', 8, 'h', 3])], { blocksize: int(2) })[0]!.shape).toEqual(['n', 2, '2*h', 6]);
    expect(infer('SpaceToDepth', [ti(['n', 3, 4, 6])], { blocksize: int(2) })[0]!.shape).toEqual(['n', 12, 2, 3]);
    expectUserError(() => infer('DepthToSpace', [ti([1, 6, 2, 2])], { blocksize: int(2) }), /not divisible/);
  });
});

describe('Shape / Size / Constant / ConstantOfShape / Range', () => {
  test('Shape with start and end', () => {
    const x = f32([2, 3, 4, 5], new Array(120).fill(0));
    expect(vals(run('Shape', [x])[0]!)).toEqual([2, 3, 4, 5]);
    expect(vals(run('Shape', [x], { start: int(1), end: int(-1) })[0]!)).toEqual([3, 4]);
    expect(vals(run('Shape', [x], { start: int(-10) })[0]!)).toEqual([2, 3, 4, 5]);
    expect(run('Shape', [x], { start: int(3), end: int(1) })[0]!.shape).toEqual([0]);
    expect(infer('Shape', [ti(['b', 4, 5])], { start: int(1) })[0]).toEqual({ dtype: 'int64', shape: [2] });
  });
  test('Size', () => {
    const [y] = run('Size', [iota([3, 4])]);
    expect(y!.dtype).toBe('int64');
    expect(y!.shape).toEqual([]);
    expect(vals(y!)).toEqual([12]);
  });
  test('Constant from each attribute kind', () => {
    const t = f32([2], [1.5, 2.5]);
    const c = (attrs: AttrMap): Tensor => run('Constant', [], attrs)[0]!;
    expect(vals(c({ value: { kind: 'tensor', value: LazyTensor.of(t) } }))).toEqual([1.5, 2.5]);
    expect(c({ value_float: { kind: 'float', value: 0.5 } }).shape).toEqual([]);
    expect(c({ value_ints: ints([3, 4]) }).dtype).toBe('int64');
    expect(c({ value_strings: { kind: 'strings', value: ['a', 'b'] } }).strings).toEqual(['a', 'b']);
    expect(infer('Constant', [], { value_ints: ints([3, 4, 5]) })[0]).toEqual({ dtype: 'int64', shape: [3] });
    expectUserError(() => c({}), /no value attribute/);
  });
  test('ConstantOfShape', () => {
    const [y] = run('ConstantOfShape', [i64([2, 3])], { value: { kind: 'tensor', value: LazyTensor.of(i64([5], [1])) } });
    expect(y!.dtype).toBe('int64');
    expect(vals(y!)).toEqual([5, 5, 5, 5, 5, 5]);
    const [z] = run('ConstantOfShape', [i64([0])]);
    expect(z!.dtype).toBe('float32');
    expect(z!.shape).toEqual([0]);
    expect(infer('ConstantOfShape', [I64(2)], {}, [i64([4, 1])])[0]).toEqual({ dtype: 'float32', shape: [4, 1] });
  });
  test('Range', () => {
    const s = (dtype: DType, v: number): Tensor => Tensor.scalar(dtype, v);
    expect(vals(run('Range', [s('float32', 1), s('float32', 5), s('float32', 1.5)])[0]!)).toEqual([1, 2.5, 4]);
    const [y] = run('Range', [s('int32', 10), s('int32', 4), s('int32', -3)]);
    expect(y!.dtype).toBe('int32');
    expect(vals(y!)).toEqual([10, 7]);
    expect(run('Range', [s('int64', 5), s('int64', 1), s('int64', 1)])[0]!.shape).toEqual([0]);
    const sc = ti([], 'int64');
    expect(infer('Range', [sc, sc, sc], {}, [s('int64', 0), s('int64', 10), s('int64', 3)])[0]!.shape).toEqual([4]);
    expect(infer('Range', [sc, sc, sc])[0]!.shape).toBeUndefined();
  });
});

describe('flops and a graph through the interpreter', () => {
  test('movement ops count no flops', () => {
    for (const def of shapeOps) expect(def.flops?.({} as never)).toBe(0);
  });
  test('Reshape → Transpose → Slice runs in a graph', () => {
    const g = new Graph('t');
    const x = new Value('x', 'float32', [6]);
    const shape = new Value('shape', 'int64', [2]);
    shape.constant = LazyTensor.of(i64([2, 3]));
    g.inputs.push(x);
    g.initializers.push(shape);
    const r = new Value('r');
    const t = new Value('t');
    const y = new Value('y');
    const starts = new Value('starts');
    starts.constant = LazyTensor.of(i64([1]));
    const ends = new Value('ends');
    ends.constant = LazyTensor.of(i64([INT64_MAX]));
    g.initializers.push(starts, ends);
    g.addNode(new Node('Reshape', [x, shape], [r]));
    g.addNode(new Node('Transpose', [r], [t]));
    g.addNode(new Node('Slice', [t, starts, ends], [y]));
    g.outputs.push(y);
    const out = runGraph(g, new Map([['x', iota([6])]]), { registry }).get('y')!;
    expect(out.shape).toEqual([2, 2]);
    expect(vals(out)).toEqual([1, 4, 2, 5]);
  });
});
