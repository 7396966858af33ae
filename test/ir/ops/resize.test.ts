/**
 * Resize against values of the ONNX reference (the backend test cases, including the opset-18
 * ones that the stored conformance data lacks: antialias, axes, keep_aspect_ratio_policy,
 * half_pixel_symmetric) and hand-computed ones.
 */
import type { Attrs } from '../../../src/ir/attrs.js';
import { Node, Value } from '../../../src/ir/graph.js';
import { createCoreRegistry } from '../../../src/ir/ops/index.js';
import type { TypeInfo } from '../../../src/ir/registry.js';
import { Tensor } from '../../../src/ir/tensor.js';
import { type AttrIn, attrsOf } from '../../helpers/ops.js';

const registry = createCoreRegistry();

function nodeOf(n: number, attrs: Attrs): Node {
  return new Node('Resize', Array.from({ length: n }, (_, i) => new Value(`in${i}`)), [new Value('y')], attrs, 'my_resize');
}

interface Args {
  roi?: number[];
  scales?: number[];
  sizes?: number[];
}
function resize(x: Tensor, args: Args, a: Record<string, AttrIn> = {}): Tensor {
  const attrs = attrsOf(a);
  const inputs = [
    x,
    args.roi ? Tensor.from('float32', [args.roi.length], args.roi) : undefined,
    args.scales ? Tensor.from('float32', [args.scales.length], args.scales) : undefined,
    args.sizes ? Tensor.from('int64', [args.sizes.length], args.sizes) : undefined,
  ];
  return registry.get('Resize')!.evaluate({ node: nodeOf(4, attrs), attrs, inputs })[0]!;
}

function infer(inputs: (TypeInfo | undefined)[], consts: (Tensor | undefined)[], a: Record<string, AttrIn> = {}): TypeInfo {
  const attrs = attrsOf(a);
  return registry.get('Resize')!.infer({ node: nodeOf(4, attrs), attrs, inputs, constant: (i) => consts[i] })[0]!;
}

const img = (h: number, w: number, v?: number[]): Tensor =>
  Tensor.from('float32', [1, 1, h, w], v ?? Array.from({ length: h * w }, (_, i) => i + 1));
const expectClose = (t: Tensor, shape: number[], v: number[], digits = 4): void => {
  expect(t.shape).toEqual(shape);
  expect(t.size).toBe(v.length);
  t.toArray().forEach((x, i) => expect(x).toBeCloseTo(v[i]!, digits));
};

describe('Resize: nearest', () => {
  it('upsamples by scales (round_prefer_floor, half_pixel)', () => {
    const y = resize(img(2, 2), { scales: [1, 1, 2, 3] });
    expectClose(y, [1, 1, 4, 6], [1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4]);
  });
  it('downsamples by scales', () => {
    expectClose(resize(img(2, 4), { scales: [1, 1, 0.6, 0.6] }), [1, 1, 1, 2], [1, 3]);
  });
  it('honours nearest_mode with the coordinate mode', () => {
    // asymmetric, 1-D 4 → 8: x/2 = 0, .5, 1, 1.5, ...: ceil on ties picks the right neighbour.
    const x = Tensor.from('float32', [4], [10, 20, 30, 40]);
    const ceil = resize(x, { sizes: [8] }, { coordinate_transformation_mode: 'asymmetric', nearest_mode: 'round_prefer_ceil' });
    expectClose(ceil, [8], [10, 20, 20, 30, 30, 40, 40, 40]);
    const floor = resize(x, { sizes: [8] }, { coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
    expectClose(floor, [8], [10, 10, 20, 20, 30, 30, 40, 40]);
  });
  it('resizes only the given axes, in any order', () => {
    const want = [1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4];
    expectClose(resize(img(2, 2), { scales: [3, 2] }, { axes: [3, 2] }), [1, 1, 4, 6], want);
    const y = resize(img(2, 2), { sizes: [8, 7] }, { axes: [3, -2] });
    const row1 = [1, 1, 1, 1, 2, 2, 2, 2];
    const row3 = [3, 3, 3, 3, 4, 4, 4, 4];
    expectClose(y, [1, 1, 7, 8], [...row1, ...row1, ...row1, ...row1, ...row3, ...row3, ...row3]);
  });
  it('keeps the aspect ratio (not_larger / not_smaller)', () => {
    const up = (policy: string) => resize(img(2, 2), { sizes: [7, 8] }, { axes: [2, 3], keep_aspect_ratio_policy: policy });
    expect(up('not_larger').shape).toEqual([1, 1, 7, 7]);
    expect(up('not_smaller').shape).toEqual([1, 1, 8, 8]);
    expectClose(up('not_larger'), [1, 1, 7, 7], [1, 1, 1, 1, 2, 2, 2].concat(...new Array(3).fill([1, 1, 1, 1, 2, 2, 2]), ...new Array(3).fill([3, 3, 3, 3, 4, 4, 4])));
    const down = (policy: string) => resize(img(2, 4), { sizes: [1, 3] }, { axes: [2, 3], keep_aspect_ratio_policy: policy });
    expectClose(down('not_larger'), [1, 1, 1, 2], [1, 3]);
    expectClose(down('not_smaller'), [1, 1, 2, 3], [1, 2, 4, 5, 6, 8]);
  });
});

describe('Resize: linear', () => {
  it('upsamples with half_pixel', () => {
    const y = resize(img(2, 2), { scales: [1, 1, 2, 2] }, { mode: 'linear' });
    expectClose(y, [1, 1, 4, 4], [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4]);
  });
  it('uses the fractional output length with align_corners', () => {
    // width 4 → 2.4 → 2: x_original = 1 × 3 / 1.4
    const y = resize(img(2, 4), { scales: [1, 1, 0.6, 0.6] }, { mode: 'linear', coordinate_transformation_mode: 'align_corners' });
    expectClose(y, [1, 1, 1, 2], [1, 1 + 3 / 1.4]);
  });
  it('supports half_pixel_symmetric', () => {
    const m = { mode: 'linear', coordinate_transformation_mode: 'half_pixel_symmetric' };
    expectClose(resize(img(1, 4), { scales: [1, 1, 1, 0.6] }, m), [1, 1, 1, 2], [1.6666667, 3.3333333]);
    const y = resize(img(2, 2), { scales: [1, 1, 2.3, 2.94] }, m);
    expectClose(y, [1, 1, 4, 5], [
      1, 1.15986395, 1.5, 1.84013605, 2, 1.56521738, 1.72508133, 2.06521738, 2.40535343, 2.56521738, 2.43478262, 2.59464657,
      2.93478262, 3.27491867, 3.43478262, 3, 3.15986395, 3.5, 3.84013605, 4,
    ]);
  });
  it('crops and resizes with extrapolation, also on axes', () => {
    const y = resize(
      img(4, 4),
      { roi: [0, 0, 0.4, 0.6, 1, 1, 1.2, 1.7], sizes: [1, 1, 3, 3] },
      { mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: { float: 10 } },
    );
    expectClose(y, [1, 1, 3, 3], [7.6, 10, 10, 12.4, 10, 10, 10, 10, 10]);
    const z = resize(
      img(4, 4),
      { roi: [0.6, 0.4, 0.8, 0.6], sizes: [3, 3] },
      { mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize', axes: [3, 2] },
    );
    expectClose(z, [1, 1, 3, 3], [7.6, 7.9, 8.2, 8.8, 9.1, 9.4, 10, 10.3, 10.6]);
  });
  it('antialiases when downsampling', () => {
    const y = resize(img(4, 4), { scales: [1, 1, 0.6, 0.6] }, { mode: 'linear', antialias: 1 });
    expectClose(y, [1, 1, 2, 2], [2.875, 4.5, 9.375, 11]);
    const z = resize(img(4, 4), { sizes: [1, 1, 3, 3] }, { mode: 'linear', antialias: 1 });
    expectClose(z, [1, 1, 3, 3], [2.3636363, 3.590909, 4.818182, 7.2727275, 8.5, 9.727273, 12.181818, 13.409091, 14.636364]);
  });
});

describe('Resize: cubic', () => {
  it('downsamples with A = -0.75', () => {
    const y = resize(img(4, 4), { scales: [1, 1, 0.8, 0.8] }, { mode: 'cubic' });
    expectClose(y, [1, 1, 3, 3], [1.47119141, 2.78125, 4.08251953, 6.71142578, 8.02148438, 9.32275391, 11.91650391, 13.2265625, 14.52783203]);
  });
  it('antialiases when downsampling', () => {
    const y = resize(img(4, 4), { scales: [1, 1, 0.6, 0.6] }, { mode: 'cubic', antialias: 1 });
    expectClose(y, [1, 1, 2, 2], [2.5180721, 4.2858863, 9.589329, 11.357142]);
    const z = resize(img(4, 4), { sizes: [1, 1, 3, 3] }, { mode: 'cubic', antialias: 1 });
    expectClose(z, [1, 1, 3, 3], [1.7750092, 3.1200073, 4.4650054, 7.1550016, 8.5, 9.844998, 12.534994, 13.8799925, 15.224991]);
  });
  it('renormalises with exclude_outside', () => {
    // 1-D [1,2,3,4] → 2 (half_pixel): x_original = 0.5 and 2.5; A = -0.5, taps -1..2 and 1..4.
    const x = Tensor.from('float32', [4], [1, 2, 3, 4]);
    const y = resize(x, { scales: [0.5] }, { mode: 'cubic', cubic_coeff_a: { float: -0.5 }, exclude_outside: 1 });
    // weights at ratio 0.5 with A = -0.5: [-0.0625, 0.5625, 0.5625, -0.0625]; the outside tap dropped.
    const w = [0.5625, 0.5625, -0.0625];
    const s = w[0]! + w[1]! + w[2]!;
    expectClose(y, [2], [(w[0]! * 1 + w[1]! * 2 + w[2]! * 3) / s, (w[2]! * 2 + w[0]! * 3 + w[1]! * 4) / s]);
  });
});

describe('Resize: types and errors', () => {
  it('accepts empty roi/scales tensors, keeps integer dtypes', () => {
    const x = Tensor.from('uint8', [1, 2], [10, 20]);
    const attrs = attrsOf({ mode: 'linear' });
    const y = registry.get('Resize')!.evaluate({
      node: nodeOf(4, attrs),
      attrs,
      inputs: [x, Tensor.from('float32', [0], []), Tensor.from('float32', [0], []), Tensor.from('int64', [2], [1, 4])],
    })[0]!;
    expect(y.dtype).toBe('uint8');
    expect(y.toArray()).toEqual([10, 12, 17, 20]); // 12.5 and 17.5 truncated, as the reference casts
  });
  it('rejects both or neither of scales and sizes, naming the node', () => {
    expect(() => resize(img(2, 2), { scales: [1, 1, 2, 2], sizes: [1, 1, 4, 4] })).toThrow(/my_resize.*only one/);
    expect(() => resize(img(2, 2), {})).toThrow(/my_resize/);
    expect(() => resize(img(2, 2), { scales: [2, 2] })).toThrow(/scales has 2 values/);
  });
  it('infers output shapes from constant scales or sizes', () => {
    const x = { dtype: 'float32' as const, shape: ['n', 3, 32, 48] };
    const scales = Tensor.from('float32', [4], [1, 1, 2, 0.5]);
    expect(infer([x, undefined, { dtype: 'float32', shape: [4] }], [undefined, undefined, scales]).shape).toEqual(['n', 3, 64, 24]);
    const sizes = Tensor.from('int64', [2], [10, 20]);
    const t = infer([x, undefined, undefined, { dtype: 'int64', shape: [2] }], [undefined, undefined, undefined, sizes], { axes: [2, 3] });
    expect(t.shape).toEqual(['n', 3, 10, 20]);
    expect(infer([x, undefined, { dtype: 'float32', shape: [4] }], []).shape).toBeUndefined();
    expect(() => infer([x], [], { mode: 'bicubic' })).toThrow(/my_resize.*mode/);
  });
});
