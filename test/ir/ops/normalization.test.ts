import type { DType } from '../../../src/ir/dtype.js';
import { UserError } from '../../../src/ir/errors.js';
import { createCoreRegistry } from '../../../src/ir/ops/index.js';
import { normalizationOps } from '../../../src/ir/ops/normalization.js';
import type { OpDef, TypeInfo } from '../../../src/ir/registry.js';
import type { Dim } from '../../../src/ir/shape.js';
import { Tensor } from '../../../src/ir/tensor.js';
import { ModelBuilder } from '../../../src/onnx/builder.js';
import { importModel } from '../../../src/onnx/import.js';
import { runGraph } from '../../../src/targets/cpu/interpreter.js';
import { rowHarness } from '../../helpers/ops.js';

// ---- harness: build a node, evaluate or infer one row ----
const row = (op: string): OpDef => normalizationOps.find((d) => d.op === op)!;

const { run, infer, flops } = rowHarness(row);

const t = (shape: number[], values: number[], dtype: DType = 'float32'): Tensor => Tensor.from(dtype, shape, values);
const f32 = (shape?: Dim[]): TypeInfo => ({ dtype: 'float32', shape });
const eps0 = { epsilon: { float: 0 } };

function expectClose(actual: Tensor, shape: number[], expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.shape).toEqual(shape);
  expect(actual.size).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    if (!(Math.abs(actual.data[i]! - e) <= tol * (1 + Math.abs(e)))) throw new Error(`element ${i}: got ${actual.data[i]}, expected ${e}`);
  }
}

const SOFTMAX_123 = [0.09003057317038046, 0.24472847105479767, 0.6652409557748219];
const SOFTMAX_0123 = [0.03205860328008499, 0.08714431874203257, 0.23688281808991013, 0.6439142598879722];
const S = [0.11920292202211755, 0.8807970779778823]; // softmax([0, 2])

describe('Softmax family', () => {
  test('softmax and logsoftmax along the last axis, stable for large inputs', () => {
    expectClose(run('Softmax', [t([1, 3], [1, 2, 3])])[0]!, [1, 3], SOFTMAX_123);
    expectClose(run('Softmax', [t([1, 3], [1000, 1001, 1002])])[0]!, [1, 3], SOFTMAX_123);
    expectClose(run('LogSoftmax', [t([3], [1, 2, 3])])[0]!, [3], [-2.4076059644443806, -1.4076059644443806, -0.4076059644443806]);
    expectClose(run('LogSoftmax', [t([2], [1000, 0])])[0]!, [2], [0, -1000]);
  });

  test('an inner axis normalises strided columns', () => {
    const y = run('Softmax', [t([2, 3], [1, 2, 3, 3, 2, 1])], { axis: 0 })[0]!;
    expectClose(y, [2, 3], [S[0]!, 0.5, S[1]!, S[1]!, 0.5, S[0]!]); // softmax([1, 3]) = softmax([0, 2])
  });

  test('_legacy_axis_2d flattens to [prod(dims[:axis]), prod(dims[axis:])]', () => {
    const x = t([2, 2, 2], [0, 1, 2, 3, 0, 0, 0, 0]);
    // Latest semantics: axis 1 alone.
    expectClose(run('Softmax', [x], { axis: 1 })[0]!, [2, 2, 2], [S[0]!, S[0]!, S[1]!, S[1]!, 0.5, 0.5, 0.5, 0.5]);
    // Legacy: each batch row of 4 together.
    expectClose(run('Softmax', [x], { axis: 1, _legacy_axis_2d: 1 })[0]!, [2, 2, 2], [...SOFTMAX_0123, 0.25, 0.25, 0.25, 0.25]);
    const log = run('LogSoftmax', [x], { axis: 1, _legacy_axis_2d: 1 })[0]!;
    expectClose(log, [2, 2, 2], [...SOFTMAX_0123.map(Math.log), ...new Array(4).fill(Math.log(0.25))]);
    // Legacy axis 0: one softmax over all eight elements.
    const all = run('Softmax', [x], { axis: 0, _legacy_axis_2d: 1 })[0]!;
    const e = [0, 1, 2, 3, 0, 0, 0, 0].map(Math.exp);
    const sum = e.reduce((a, b) => a + b, 0);
    expectClose(all, [2, 2, 2], e.map((v) => v / sum));
  });

  test('hardmax marks the first maximum', () => {
    expectClose(run('Hardmax', [t([2, 3], [3, 1, 3, 0, 5, 5])])[0]!, [2, 3], [1, 0, 0, 0, 1, 0]);
    expectClose(run('Hardmax', [t([2, 2], [1, 2, 4, 3])], { axis: 0 })[0]!, [2, 2], [0, 0, 1, 1]);
    expectClose(run('Hardmax', [t([2, 2, 2], [0, 1, 3, 2, 5, 5, 0, 0])], { axis: 1, _legacy_axis_2d: 1 })[0]!, [2, 2, 2], [0, 0, 1, 0, 1, 0, 0, 0]);
  });

  test('infer keeps the shape and rejects bad axes and integer inputs', () => {
    expect(infer('Softmax', [f32(['b', 's', 128])])).toEqual([f32(['b', 's', 128])]);
    expect(() => infer('Softmax', [f32([2, 3])], { axis: 2 })).toThrow(/softmax_0.*axis 2 is out of range/);
    expect(() => infer('Softmax', [{ dtype: 'int32', shape: [2] }])).toThrow(UserError);
    expect(() => run('LogSoftmax', [t([2, 3], [1, 2, 3, 4, 5, 6])], { axis: -3 })).toThrow(UserError);
  });

  test('a model at opset 11 runs with the legacy semantics through the importer', () => {
    const b = new ModelBuilder({ opset: 11 });
    const x = b.input('x', 'float32', [2, 2, 2]);
    b.node('Softmax', [x], {}, { outputs: ['y'] }); // opset 11 default axis is 1
    b.output('y', 'float32', [2, 2, 2]);
    const model = importModel(b.encode(), { file: 'legacy.onnx' });
    const out = runGraph(model.graph, new Map([['x', t([2, 2, 2], [0, 1, 2, 3, 0, 0, 0, 0])]]), { registry: createCoreRegistry() });
    expectClose(out.get('y')!, [2, 2, 2], [...SOFTMAX_0123, 0.25, 0.25, 0.25, 0.25]);
  });
});

describe('LayerNormalization and RMSNormalization', () => {
  test('last-axis layer norm with scale, bias, Mean and InvStdDev', () => {
    const x = t([2, 4], [1, 2, 3, 4, 2, 2, 2, 6]);
    const [y, mean, inv] = run('LayerNormalization', [x, t([4], [1, 1, 2, 2]), t([4], [0, 0, 1, 1])], eps0, 3);
    // Row 0: mean 2.5, var 1.25; row 1: mean 3, var 3.
    expectClose(y!, [2, 4], [-1.3416407865, -0.4472135955, 1.894427191, 3.683281573, -0.5773502692, -0.5773502692, -0.1547005384, 4.464101615]);
    expectClose(mean!, [2, 1], [2.5, 3]);
    expectClose(inv!, [2, 1], [0.894427191, 0.5773502692]);
    expect(inv!.dtype).toBe('float32');
  });

  test('axis 0 normalises everything; scale broadcasts over the normalized shape', () => {
    const [y, mean] = run('LayerNormalization', [t([2, 2], [1, 2, 3, 4]), t([2], [1, 10])], { axis: 0, epsilon: { float: 0 } }, 2);
    expectClose(y!, [2, 2], [-1.3416407865, -4.472135955, 0.4472135955, 13.416407865]);
    expectClose(mean!, [1, 1], [2.5]);
  });

  test('epsilon defaults to 1e-5', () => {
    const [y] = run('LayerNormalization', [t([2], [0, 2]), t([2], [1, 1])]);
    expectClose(y!, [2], [-1 / Math.sqrt(1 + 1e-5), 1 / Math.sqrt(1 + 1e-5)], 1e-7);
  });

  test('RMS norm divides by the root mean square', () => {
    const [y] = run('RMSNormalization', [t([1, 4], [1, 2, 3, 4]), t([4], [1, 1, 1, 2])], eps0);
    const r = Math.sqrt(7.5);
    expectClose(y!, [1, 4], [1 / r, 2 / r, 3 / r, 8 / r]);
    expect(() => run('RMSNormalization', [t([1, 4], [1, 2, 3, 4]), t([3], [1, 1, 1])])).toThrow(/Scale of shape \[3\]/);
  });

  test('infer: symbolic dims pass through; statistics keep leading dims', () => {
    const types = infer('LayerNormalization', [f32(['b', 's', 768]), f32([768]), f32([768])], {}, 3);
    expect(types).toEqual([f32(['b', 's', 768]), f32(['b', 's', 1]), f32(['b', 's', 1])]);
    expect(infer('LayerNormalization', [f32(['b', 's', 768]), f32([768])], {}, 1)).toHaveLength(1);
    expect(infer('RMSNormalization', [f32(['b', 4096]), f32([4096])])).toEqual([f32(['b', 4096])]);
    expect(() => infer('LayerNormalization', [f32([2, 4]), f32([3])])).toThrow(/layernormalization_0.*does not broadcast/);
    expect(flops('LayerNormalization', [f32([2, 4]), f32([4])])).toBe(40);
  });
});

describe('BatchNormalization', () => {
  test('inference mode uses the given statistics', () => {
    const x = t([1, 2, 1, 2], [1, 2, 3, 4]);
    const [y] = run('BatchNormalization', [x, t([2], [1, 2]), t([2], [0, 1]), t([2], [1.5, 3.5]), t([2], [0.25, 0.25])], eps0);
    expectClose(y!, [1, 2, 1, 2], [-1, 1, -1, 3]);
  });

  test('training mode normalises with batch statistics and updates the running ones', () => {
    const x = t([2, 1, 2], [1, 2, 3, 4]);
    const [y, rm, rv] = run('BatchNormalization', [x, t([1], [1]), t([1], [0]), t([1], [0]), t([1], [1])], { ...eps0, training_mode: 1 }, 3);
    expectClose(y!, [2, 1, 2], [-1.3416407865, -0.4472135955, 0.4472135955, 1.3416407865]);
    // running = input * momentum + batch * (1 - momentum), momentum 0.9; the variance is the population one.
    expectClose(rm!, [1], [0.25]);
    expectClose(rv!, [1], [1.025]);
  });

  test('infer checks per-channel parameter shapes', () => {
    const p = f32([3]);
    expect(infer('BatchNormalization', [f32(['n', 3, 8, 8]), p, p, p, p])).toEqual([f32(['n', 3, 8, 8])]);
    expect(infer('BatchNormalization', [f32(['n', 3, 8]), p, p, p, p], { training_mode: 1 }, 3)).toEqual([f32(['n', 3, 8]), p, p]);
    expect(() => infer('BatchNormalization', [f32([1, 3, 4, 4]), f32([4]), p, p, p])).toThrow(/scale must have shape \[3\]/);
  });
});

describe('InstanceNormalization, MeanVarianceNormalization, LRN', () => {
  test('instance norm per (n, c) over spatial dims', () => {
    const [y] = run('InstanceNormalization', [t([1, 2, 2], [1, 3, 2, 2]), t([2], [2, 5]), t([2], [1, -1])]);
    const k = 1 / Math.sqrt(1 + 1e-5);
    expectClose(y!, [1, 2, 2], [1 - 2 * k, 1 + 2 * k, -1, -1]);
    expect(() => infer('InstanceNormalization', [f32([1, 2, 2]), f32([3]), f32([2])])).toThrow(UserError);
  });

  test('MVN over the default axes [0, 2, 3] and over custom axes', () => {
    const [y] = run('MeanVarianceNormalization', [t([1, 2, 1, 2], [1, 3, 5, 5])]);
    expectClose(y!, [1, 2, 1, 2], [-1, 1, 0, 0]);
    const [z] = run('MeanVarianceNormalization', [t([2, 2], [1, 3, 0, 4])], { axes: [1] });
    expectClose(z!, [2, 2], [-1, 1, -1, 1]);
    expect(() => infer('MeanVarianceNormalization', [f32([2, 2])])).toThrow(/axis 2 is out of range/);
  });

  test('LRN sums squares over a channel window (floor before, ceil after)', () => {
    const x = t([1, 3, 1, 1], [1, 2, 3]);
    // alpha / size = 1, beta = 1, bias = 1: y = x / (1 + sum of squares).
    expectClose(run('LRN', [x], { size: 3, alpha: { float: 3 }, beta: { float: 1 } })[0]!, [1, 3, 1, 1], [1 / 6, 2 / 15, 3 / 14]);
    expectClose(run('LRN', [x], { size: 2, alpha: { float: 2 }, beta: { float: 1 } })[0]!, [1, 3, 1, 1], [1 / 6, 2 / 14, 3 / 10]);
    expect(() => infer('LRN', [f32([1, 3, 4, 4])])).toThrow(/'size'/);
  });
});
