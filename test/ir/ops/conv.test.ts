import type { DType } from '../../../src/ir/dtype.js';
import { UserError } from '../../../src/ir/errors.js';
import { convOps } from '../../../src/ir/ops/conv.js';
import type { OpDef, TypeInfo } from '../../../src/ir/registry.js';
import type { Dim } from '../../../src/ir/shape.js';
import { Tensor } from '../../../src/ir/tensor.js';
import { rowHarness } from '../../helpers/ops.js';

// ---- harness: build a node, evaluate or infer one row ----
const row = (op: string): OpDef => convOps.find((d) => d.op === op)!;

const { run, infer, flops } = rowHarness(row);

const t = (shape: number[], values: number[], dtype: DType = 'float32'): Tensor => Tensor.from(dtype, shape, values);
const iota = (shape: number[]): Tensor => t(shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i));
const filled = (shape: number[], v: number): Tensor => t(shape, new Array(shape.reduce((a, b) => a * b, 1)).fill(v));
const f32 = (shape?: Dim[]): TypeInfo => ({ dtype: 'float32', shape });

function random(shape: number[], seed: number): Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = Math.round((s / 2 ** 32 - 0.5) * 16) / 8; // exact eighths keep float32 sums exact-ish
  }
  return t(shape, v);
}

function expectClose(actual: Tensor, shape: number[], expected: ArrayLike<number>, tol = 1e-4): void {
  expect(actual.shape).toEqual(shape);
  expect(actual.size).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    if (Math.abs(actual.data[i]! - e) > tol * (1 + Math.abs(e))) throw new Error(`element ${i}: got ${actual.data[i]}, expected ${e}`);
  }
}

// ---- naive 2-D oracle (direct loops over the definition), to check the fast paths ----
function naiveConv2d(
  x: Tensor,
  w: Tensor,
  b: Tensor | undefined,
  o: { group: number; strides: number[]; dilations: number[]; pads: number[] },
): { shape: number[]; data: number[] } {
  const [N, C, H, W] = x.shape as number[];
  const [M, Cg, KH, KW] = w.shape as number[];
  const [sh, sw] = o.strides;
  const [dh, dw] = o.dilations;
  const [pt, pl, pb, pr] = o.pads;
  const OH = Math.floor((H! + pt! + pb! - dh! * (KH! - 1) - 1) / sh!) + 1;
  const OW = Math.floor((W! + pl! + pr! - dw! * (KW! - 1) - 1) / sw!) + 1;
  const Mg = M! / o.group;
  const out: number[] = [];
  for (let n = 0; n < N!; n++)
    for (let m = 0; m < M!; m++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let s = b ? b.data[m]! : 0;
          const g = Math.floor(m / Mg);
          for (let c = 0; c < Cg!; c++)
            for (let kh = 0; kh < KH!; kh++)
              for (let kw = 0; kw < KW!; kw++) {
                const ih = oh * sh! - pt! + kh * dh!;
                const iw = ow * sw! - pl! + kw * dw!;
                if (ih < 0 || ih >= H! || iw < 0 || iw >= W!) continue;
                s += x.data[((n * C! + g * Cg! + c) * H! + ih) * W! + iw]! * w.data[((m * Cg! + c) * KH! + kh) * KW! + kw]!;
              }
          out.push(s);
        }
  return { shape: [N!, M!, OH, OW], data: out };
}

/** ConvTranspose by its definition: every input element scatters x * w into the output. */
function naiveConvTranspose2d(
  x: Tensor,
  w: Tensor,
  o: { group: number; strides: number[]; pads: number[]; outputPadding: number[] },
): { shape: number[]; data: number[] } {
  const [N, C, H, W] = x.shape as number[];
  const [, Mg, KH, KW] = w.shape as number[];
  const M = Mg! * o.group;
  const Cg = C! / o.group;
  const [sh, sw] = o.strides;
  const [pt, pl, pb, pr] = o.pads;
  const OH = sh! * (H! - 1) + o.outputPadding[0]! + KH! - pt! - pb!;
  const OW = sw! * (W! - 1) + o.outputPadding[1]! + KW! - pl! - pr!;
  const out = new Array<number>(N! * M * OH * OW).fill(0);
  for (let n = 0; n < N!; n++)
    for (let c = 0; c < C!; c++)
      for (let m = 0; m < Mg!; m++)
        for (let ih = 0; ih < H!; ih++)
          for (let iw = 0; iw < W!; iw++)
            for (let kh = 0; kh < KH!; kh++)
              for (let kw = 0; kw < KW!; kw++) {
                const oh = ih * sh! - pt! + kh;
                const ow = iw * sw! - pl! + kw;
                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                const oc = Math.floor(c / Cg) * Mg! + m;
                out[((n * M + oc) * OH + oh) * OW + ow]! += x.data[((n * C! + c) * H! + ih) * W! + iw]! * w.data[((c * Mg! + m) * KH! + kh) * KW! + kw]!;
              }
  return { shape: [N!, M, OH, OW], data: out };
}

describe('Conv', () => {
  // The ONNX operator documentation's examples: 5x5 ramp, 3x3 kernel of ones.
  test('3x3 ones kernel with and without padding', () => {
    const x = iota([1, 1, 5, 5]);
    const w = filled([1, 1, 3, 3], 1);
    expectClose(run('Conv', [x, w], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })[0]!, [1, 1, 5, 5], [
      12, 21, 27, 33, 24, 33, 54, 63, 72, 51, 63, 99, 108, 117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84,
    ]);
    expectClose(run('Conv', [x, w], { kernel_shape: [3, 3] })[0]!, [1, 1, 3, 3], [54, 63, 72, 99, 108, 117, 144, 153, 162]);
  });

  test('strides 2 with padding and with asymmetric padding', () => {
    const x = iota([1, 1, 7, 5]);
    const w = filled([1, 1, 3, 3], 1);
    expectClose(run('Conv', [x, w], { strides: [2, 2], pads: [1, 1, 1, 1] })[0]!, [1, 1, 4, 3], [12, 27, 24, 63, 108, 81, 123, 198, 141, 112, 177, 124]);
    expectClose(run('Conv', [x, w], { strides: [2, 2], pads: [1, 0, 1, 0] })[0]!, [1, 1, 4, 2], [21, 33, 99, 117, 189, 207, 171, 183]);
  });

  test('auto_pad SAME_UPPER / SAME_LOWER place the odd pad at the end / start', () => {
    const x = iota([1, 1, 4, 4]);
    const w = filled([1, 1, 2, 2], 1);
    // SAME_UPPER pads one row/col at the end: windows start at (i, j).
    const up = run('Conv', [x, w], { auto_pad: 'SAME_UPPER' })[0]!;
    expectClose(up, [1, 1, 4, 4], [10, 14, 18, 10, 26, 30, 34, 18, 42, 46, 50, 26, 25, 27, 29, 15]);
    const low = run('Conv', [x, w], { auto_pad: 'SAME_LOWER' })[0]!;
    expectClose(low, [1, 1, 4, 4], [0, 1, 3, 5, 4, 10, 14, 18, 12, 26, 30, 34, 20, 42, 46, 50]);
  });

  test('bias, groups, dilations, strides and pads agree with the direct definition', () => {
    const cases = [
      { C: 4, M: 6, group: 2, k: [3, 3], strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], H: 7, W: 6 },
      { C: 6, M: 6, group: 6, k: [3, 3], strides: [2, 1], dilations: [1, 1], pads: [1, 0, 0, 1], H: 8, W: 5 },
      { C: 3, M: 9, group: 1, k: [3, 2], strides: [1, 2], dilations: [2, 1], pads: [2, 1, 0, 1], H: 9, W: 7 },
      { C: 8, M: 5, group: 1, k: [1, 1], strides: [1, 1], dilations: [1, 1], pads: [0, 0, 0, 0], H: 4, W: 4 },
    ];
    cases.forEach((c, i) => {
      const x = random([2, c.C, c.H, c.W], 10 + i);
      const w = random([c.M, c.C / c.group, ...c.k], 20 + i);
      const b = random([c.M], 30 + i);
      const [y] = run('Conv', [x, w, b], { group: c.group, strides: c.strides, dilations: c.dilations, pads: c.pads });
      const ref = naiveConv2d(x, w, b, c);
      expectClose(y!, ref.shape, ref.data);
    });
  });

  test('1-D and 3-D convolutions', () => {
    // 1-D: [1,2,3,4,5] * [1,0,-1] -> x[i] - x[i+2]
    expectClose(run('Conv', [t([1, 1, 5], [1, 2, 3, 4, 5]), t([1, 1, 3], [1, 0, -1])])[0]!, [1, 1, 3], [-2, -2, -2]);
    // 3-D: 2x2x2 ones over a 3x3x3 ramp sums each cube: first = 0+1+3+4+9+10+12+13.
    const y = run('Conv', [iota([1, 1, 3, 3, 3]), filled([1, 1, 2, 2, 2], 1)])[0]!;
    expectClose(y, [1, 1, 2, 2, 2], [52, 60, 76, 84, 124, 132, 148, 156]);
  });

  test('float16 results are rounded to float16', () => {
    const y = run('Conv', [t([1, 1, 1, 2], [1, 1e-3], 'float16'), t([1, 1, 1, 2], [1, 1], 'float16')])[0]!;
    expect(y.dtype).toBe('float16');
    expect(y.data[0]).toBe(1.0009765625); // 1.001 rounded to the nearest half
  });

  test('infer: spatial dims from the formulas, symbolic batch passes through', () => {
    const [y] = infer('Conv', [f32(['batch', 3, 224, 224]), f32([64, 3, 7, 7]), f32([64])], { strides: [2, 2], pads: [3, 3, 3, 3] });
    expect(y).toEqual(f32(['batch', 64, 112, 112]));
    // stride 1 SAME keeps symbolic spatial dims; strided ones become unknown.
    expect(infer('Conv', [f32(['n', 8, 'h', 'w']), f32([4, 8, 3, 3])], { auto_pad: 'SAME_UPPER' })[0]).toEqual(f32(['n', 4, 'h', 'w']));
    expect(infer('Conv', [f32(['n', 8, 'h', 'w']), f32([4, 8, 3, 3])], { strides: [2, 2] })[0]!.shape).toBeUndefined();
    expect(infer('Conv', [f32(), f32([4, 8, 3, 3])])[0]!.shape).toBeUndefined();
  });

  test('infer rejects channel mismatch, bad group and bad bias with the node name', () => {
    expect(() => infer('Conv', [f32([1, 3, 8, 8]), f32([4, 2, 3, 3])])).toThrow(/conv_0.*3 channels/);
    expect(() => infer('Conv', [f32([1, 4, 8, 8]), f32([3, 2, 3, 3])], { group: 2 })).toThrow(/not divisible by group 2/);
    expect(() => infer('Conv', [f32([1, 4, 8, 8]), f32([4, 4, 3, 3]), f32([5])])).toThrow(/bias must have shape \[4\]/);
    expect(() => infer('Conv', [f32([1, 4, 2, 2]), f32([4, 4, 3, 3])])).toThrow(UserError);
    expect(() => run('Conv', [iota([1, 3, 4, 4]), filled([1, 2, 3, 3], 1)])).toThrow(UserError);
  });

  test('flops = 2 * N * Cout * outSpatial * Cin/group * kernel (+ bias adds)', () => {
    expect(flops('Conv', [f32([2, 4, 8, 8]), f32([6, 2, 3, 3])], { group: 2, pads: [1, 1, 1, 1] })).toBe(2 * 2 * 6 * 64 * 2 * 9);
    expect(flops('Conv', [f32([1, 3, 5, 5]), f32([2, 3, 3, 3]), f32([2])])).toBe(2 * 2 * 9 * 27 + 2 * 9);
  });
});

describe('ConvTranspose', () => {
  test('documentation example: 3x3 ramp, two 3x3 ones kernels', () => {
    const y = run('ConvTranspose', [iota([1, 1, 3, 3]), filled([1, 2, 3, 3], 1)])[0]!;
    const plane = [0, 1, 3, 3, 2, 3, 8, 15, 12, 7, 9, 21, 36, 27, 15, 9, 20, 33, 24, 13, 6, 13, 21, 15, 8];
    expectClose(y, [1, 2, 5, 5], [...plane, ...plane]);
  });

  test('strides, pads, output_padding and groups agree with the definition', () => {
    const cases = [
      { C: 2, Mg: 3, group: 1, strides: [3, 2], pads: [1, 2, 1, 2], outputPadding: [1, 1] },
      { C: 4, Mg: 2, group: 2, strides: [2, 2], pads: [0, 0, 1, 0], outputPadding: [0, 1] },
    ];
    cases.forEach((c, i) => {
      const x = random([2, c.C, 3, 4], 40 + i);
      const w = random([c.C, c.Mg, 3, 3], 50 + i);
      const [y] = run('ConvTranspose', [x, w], { group: c.group, strides: c.strides, pads: c.pads, output_padding: c.outputPadding });
      const ref = naiveConvTranspose2d(x, w, c);
      expectClose(y!, ref.shape, ref.data);
    });
  });

  test('output_shape and SAME auto_pad derive the pads', () => {
    const x = iota([1, 1, 3, 3]);
    const w = filled([1, 2, 3, 3], 1);
    // Natural size with strides 3 is 9; output_shape 10 x 8 gives total pads -1 / 1 (ONNX test_convtranspose_output_shape asks for [10, 8]).
    const [y] = run('ConvTranspose', [x, w], { strides: [3, 2], output_shape: [10, 8] });
    expect(y!.shape).toEqual([1, 2, 10, 8]);
    // The pads are -1 at the end: the last row and column get no contribution (the ONNX example's output).
    expect(Array.from(y!.data.slice(0, 8))).toEqual([0, 0, 1, 1, 3, 2, 2, 0]);
    expect(Array.from(y!.data.slice(72, 80))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    const [same] = run('ConvTranspose', [iota([1, 1, 3, 3]), filled([1, 1, 3, 3], 1)], { strides: [2, 2], auto_pad: 'SAME_UPPER' });
    expect(same!.shape).toEqual([1, 1, 6, 6]);
    // Natural output 7x7, total pad 1; SAME_UPPER puts total/2 = 0 at the start, so row 0 is the natural row 0.
    expect(Array.from(same!.data.slice(0, 6))).toEqual([0, 0, 1, 1, 3, 2]);
  });

  test('bias is added per output channel; infer gives channels W[1]*group', () => {
    const [y] = run('ConvTranspose', [t([1, 1, 1, 1], [2]), t([1, 2, 1, 1], [3, 4]), t([2], [10, 20])]);
    expectClose(y!, [1, 2, 1, 1], [16, 28]);
    expect(infer('ConvTranspose', [f32(['b', 4, 5, 5]), f32([4, 3, 3, 3])], { group: 2, strides: [2, 2] })[0]).toEqual(f32(['b', 6, 11, 11]));
    expect(() => infer('ConvTranspose', [f32([1, 3, 5, 5]), f32([4, 3, 3, 3])])).toThrow(/3 channels but weight has 4/);
  });
});

describe('MaxPool', () => {
  test('2x2 stride 2 with row-major and column-major indices', () => {
    const x = t([1, 1, 4, 4], Array.from({ length: 16 }, (_, i) => i + 1));
    const [y, idx] = run('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] }, 2);
    expectClose(y!, [1, 1, 2, 2], [6, 8, 14, 16]);
    expect(idx!.dtype).toBe('int64');
    expect(Array.from(idx!.data)).toEqual([5, 7, 13, 15]);
    const [, col] = run('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2], storage_order: 1 }, 2);
    // (h, w) = (1,1),(1,3),(3,1),(3,3) -> w*4 + h
    expect(Array.from(col!.data)).toEqual([5, 13, 7, 15]);
  });

  test('ceil_mode, pads, dilations', () => {
    const x = t([1, 1, 4, 4], Array.from({ length: 16 }, (_, i) => i + 1));
    expectClose(run('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 })[0]!, [1, 1, 2, 2], [11, 12, 15, 16]);
    expectClose(run('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2] })[0]!, [1, 1, 1, 1], [11]);
    expectClose(run('MaxPool', [x], { kernel_shape: [2, 2], dilations: [2, 2] })[0]!, [1, 1, 2, 2], [11, 12, 15, 16]);
    // Padding never wins, even against negative values.
    const neg = t([1, 1, 2, 2], [-1, -2, -3, -4]);
    expectClose(run('MaxPool', [neg], { kernel_shape: [2, 2], pads: [1, 1, 1, 1] })[0]!, [1, 1, 3, 3], [-1, -1, -2, -1, -1, -2, -3, -3, -4]);
  });

  test('uint8 input keeps its dtype; infer gives int64 indices with symbolic batch', () => {
    const [y] = run('MaxPool', [t([1, 1, 2, 2], [1, 200, 3, 4], 'uint8')], { kernel_shape: [2, 2] });
    expect(y!.dtype).toBe('uint8');
    expect(Array.from(y!.data)).toEqual([200]);
    const types = infer('MaxPool', [f32(['n', 3, 32, 32])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, 2);
    expect(types).toEqual([f32(['n', 3, 16, 16]), { dtype: 'int64', shape: ['n', 3, 16, 16] }]);
    expect(() => infer('MaxPool', [f32([1, 3, 4, 4])])).toThrow(/kernel_shape/);
  });
});

describe('AveragePool', () => {
  test('pads with and without count_include_pad', () => {
    const x = t([1, 1, 2, 2], [1, 2, 3, 4]);
    // Corner window of a 2x2 kernel over pad 1 covers one real element.
    const excl = run('AveragePool', [x], { kernel_shape: [2, 2], pads: [1, 1, 1, 1] })[0]!;
    expectClose(excl, [1, 1, 3, 3], [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
    const incl = run('AveragePool', [x], { kernel_shape: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 })[0]!;
    expectClose(incl, [1, 1, 3, 3], [0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1]);
  });

  test('ceil_mode divides partial windows by their real size; 1-D and dilations', () => {
    const x = t([1, 1, 4, 4], Array.from({ length: 16 }, (_, i) => i + 1));
    expectClose(run('AveragePool', [x], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 })[0]!, [1, 1, 2, 2], [6, 7.5, 12, 13.5]);
    expectClose(run('AveragePool', [t([1, 1, 5], [1, 2, 3, 4, 5])], { kernel_shape: [2] })[0]!, [1, 1, 4], [1.5, 2.5, 3.5, 4.5]);
    expectClose(run('AveragePool', [t([1, 1, 5], [1, 2, 3, 4, 5])], { kernel_shape: [2], dilations: [2] })[0]!, [1, 1, 3], [2, 3, 4]);
  });

  test('SAME_UPPER pads at the end and counts only real elements', () => {
    const x = t([1, 1, 1, 3], [1, 2, 4]);
    expectClose(run('AveragePool', [x], { kernel_shape: [1, 2], auto_pad: 'SAME_UPPER' })[0]!, [1, 1, 1, 3], [1.5, 3, 4]);
    expectClose(run('AveragePool', [x], { kernel_shape: [1, 2], auto_pad: 'SAME_LOWER' })[0]!, [1, 1, 1, 3], [1, 1.5, 3]);
  });
});

describe('global pools', () => {
  test('mean and max over all spatial dims', () => {
    const x = t([1, 2, 2, 2], [1, 2, 3, 4, -1, -5, -2, -3]);
    expectClose(run('GlobalAveragePool', [x])[0]!, [1, 2, 1, 1], [2.5, -2.75]);
    expectClose(run('GlobalMaxPool', [x])[0]!, [1, 2, 1, 1], [4, -1]);
    expect(infer('GlobalAveragePool', [f32(['b', 16, 'h', 'w'])])[0]).toEqual(f32(['b', 16, 1, 1]));
    expect(flops('GlobalMaxPool', [f32([2, 3, 4, 5])])).toBe(120);
  });
});
