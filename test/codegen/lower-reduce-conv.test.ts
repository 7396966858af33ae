/**
 * Lowering rows of the reduce/normalization/conv families built on loop-folded lets (arg
 * reductions, scans, windows, conv taps): the CPU executor of the kernel IR against the ops'
 * reference evaluation on attribute combinations the ONNX node tests do not cover, hand-computed
 * values, the WGSL rendering of a folded let, and a few nodes on a real WebGPU adapter.
 */
import { Attrs } from '../../src/ir/attrs.js';
import type { Graph } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { compareTensors } from '../../src/verify/compare.js';
import { executeLaunch } from '../../src/codegen/cpu.js';
import { f32, i32, load, mul, variable } from '../../src/codegen/expr.js';
import { type MapBody, makeKernel } from '../../src/codegen/kernel.js';
import { runGraphKernelsCpu } from '../../src/codegen/cpu-backend.js';
import { renderKernel } from '../../src/codegen/wgsl/kernel.js';
import { type WebGPUDevice, acquireDevice } from '../../src/targets/webgpu/device.js';
import { runGraphWebGPU } from '../../src/targets/webgpu/run.js';
import { type NodeInput, feedsOf, oneNodeGraph } from './one-node.js';

const registry = createCoreRegistry();

type AttrVal = number | number[] | string;
function attrs(a: Record<string, AttrVal>): Attrs {
  return new Attrs(
    Object.entries(a).map(([k, v]) => [k, typeof v === 'string' ? { kind: 'string', value: v } : Array.isArray(v) ? { kind: 'ints', value: v } : Number.isInteger(v) ? { kind: 'int', value: v } : { kind: 'float', value: v }]) as never,
  );
}

/** One-node graph; `constant` inputs are initializers, the rest graph inputs fed with their tensor. */
function oneNode(op: string, inputs: NodeInput[], a: Attrs = new Attrs(), outputs = 1): [Graph, Map<string, Tensor>] {
  return [oneNodeGraph(op, inputs, a, outputs), feedsOf(inputs)];
}

const n = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
/** Deterministic values with repeats (ties for the arg reductions). */
const f = (shape: number[], mod = 23): Tensor => Tensor.from('float32', shape, Array.from({ length: n(shape) }, (_, i) => ((i * 7) % mod) / 10 - 1));
const ints = (shape: number[], v: number[], dtype: 'int64' | 'int32' = 'int64'): Tensor => Tensor.from(dtype, shape, v);

async function expectSameAsReference([g, feeds]: [Graph, Map<string, Tensor>]): Promise<void> {
  const want = runGraph(g, feeds, { registry });
  const got = await runGraphKernelsCpu(g, feeds, { registry });
  for (const [name, t] of want) {
    const r = compareTensors(got.get(name)!, t, { rtol: 1e-5, atol: 1e-5 });
    expect({ name, message: r.message }).toEqual({ name, message: '' });
  }
}

const cases: [string, () => [Graph, Map<string, Tensor>]][] = [
  ['ArgMax axis 1 keepdims=0 with ties', () => oneNode('ArgMax', [{ name: 'x', t: f([3, 5, 2], 4) }], attrs({ axis: 1, keepdims: 0 }))],
  ['ArgMin select_last_index on int32', () => oneNode('ArgMin', [{ name: 'x', t: ints([2, 6], [3, 1, 1, 4, 1, 9, 0, 0, 5, 0, 2, 7], 'int32') }], attrs({ axis: -1, select_last_index: 1 }))],
  ['Hardmax axis 0', () => oneNode('Hardmax', [{ name: 'x', t: f([4, 3], 5) }], attrs({ axis: 0 }))],
  ['Hardmax legacy 2-D flattening', () => oneNode('Hardmax', [{ name: 'x', t: f([2, 3, 4]) }], attrs({ axis: 1, _legacy_axis_2d: 1 }))],
  ['CumSum float32 axis 1', () => oneNode('CumSum', [{ name: 'x', t: f([2, 4, 3]) }, { name: 'a', t: ints([], [1]), constant: true }])],
  ['CumSum int64 reverse exclusive', () => oneNode('CumSum', [{ name: 'x', t: ints([2, 4], [1, 2, 3, 4, 10, 20, 30, 40]) }, { name: 'a', t: ints([], [-1]), constant: true }], attrs({ reverse: 1, exclusive: 1 }))],
  ['Conv groups, dilations, strides, asymmetric pads, bias', () =>
    oneNode('Conv', [{ name: 'x', t: f([2, 4, 7, 6]) }, { name: 'w', t: f([6, 2, 3, 2], 13), constant: true }, { name: 'b', t: f([6], 5), constant: true }],
      attrs({ group: 2, dilations: [2, 1], strides: [1, 2], pads: [1, 0, 2, 1] }))],
  ['Conv 1-D SAME_LOWER', () => oneNode('Conv', [{ name: 'x', t: f([1, 3, 9]) }, { name: 'w', t: f([2, 3, 4], 11), constant: true }], attrs({ auto_pad: 'SAME_LOWER', strides: [2] }))],
  ['ConvTranspose groups, strides, dilations, output_padding, bias', () =>
    oneNode('ConvTranspose', [{ name: 'x', t: f([1, 4, 3, 3]) }, { name: 'w', t: f([4, 3, 2, 3], 13), constant: true }, { name: 'b', t: f([6], 5), constant: true }],
      attrs({ group: 2, strides: [2, 3], dilations: [2, 1], output_padding: [1, 0], pads: [1, 0, 0, 2] }))],
  ['ConvTranspose output_shape', () => oneNode('ConvTranspose', [{ name: 'x', t: f([1, 2, 3]) }, { name: 'w', t: f([2, 1, 3], 7), constant: true }], attrs({ strides: [2], output_shape: [8] }))],
  ['MaxPool ceil_mode, dilations, pads with Indices', () =>
    oneNode('MaxPool', [{ name: 'x', t: f([1, 2, 6, 7]) }], attrs({ kernel_shape: [2, 3], dilations: [2, 1], strides: [2, 2], pads: [1, 1, 0, 1], ceil_mode: 1 }), 2)],
  ['AveragePool count_include_pad with ceil_mode', () =>
    oneNode('AveragePool', [{ name: 'x', t: f([1, 1, 5, 5]) }], attrs({ kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1, ceil_mode: 1 }))],
  ['AveragePool 3-D excluding pads', () => oneNode('AveragePool', [{ name: 'x', t: f([1, 2, 4, 3, 5]) }], attrs({ kernel_shape: [2, 2, 3], pads: [1, 0, 1, 0, 1, 1] }))],
  ['GlobalMaxPool', () => oneNode('GlobalMaxPool', [{ name: 'x', t: f([2, 3, 4, 5]) }])],
  ['LRN size 3', () => oneNode('LRN', [{ name: 'x', t: f([2, 5, 2, 2]) }], attrs({ size: 3, alpha: 0.02, beta: 0.5, bias: 2 }))],
  ['MeanVarianceNormalization over the last axis', () => oneNode('MeanVarianceNormalization', [{ name: 'x', t: f([3, 2, 6]) }], attrs({ axes: [2] }))],
  ['BatchNormalization training outputs', () =>
    oneNode('BatchNormalization', [{ name: 'x', t: f([3, 2, 2, 3]) }, { name: 's', t: f([2], 3) }, { name: 'b', t: f([2], 5) }, { name: 'm', t: f([2], 7) }, { name: 'v', t: Tensor.from('float32', [2], [0.5, 2]) }],
      attrs({ training_mode: 1, momentum: 0.8 }), 3)],
];

describe('loop-folded lowerings on the CPU executor match the reference evaluation', () => {
  for (const [name, make] of cases) it(name, async () => expectSameAsReference(make()));
});

describe('hand-computed values', () => {
  it('MaxPool Indices are flat input offsets (column-major spatial with storage_order 1)', async () => {
    const x = Tensor.from('float32', [1, 1, 2, 3], [1, 9, 2, 8, 3, 7]);
    for (const [order, want] of [[0, [1, 1]], [1, [2, 2]]] as const) {
      const [g, feeds] = oneNode('MaxPool', [{ name: 'x', t: x }], attrs({ kernel_shape: [2, 2], storage_order: order }), 2);
      const got = await runGraphKernelsCpu(g, feeds, { registry });
      expect([...got.get('y0')!.data]).toEqual([9, 9]);
      expect([...got.get('y1')!.data]).toEqual(want);
    }
  });

  it('ArgMax picks the first or the last tie', async () => {
    const x = Tensor.from('float32', [1, 4], [2, 5, 5, 1]);
    for (const [last, want] of [[0, 1], [1, 2]]) {
      const [g, feeds] = oneNode('ArgMax', [{ name: 'x', t: x }], attrs({ axis: 1, select_last_index: last! }));
      expect([...(await runGraphKernelsCpu(g, feeds, { registry })).get('y0')!.data]).toEqual([want]);
    }
  });

  it('a folded let renders as a WGSL loop and runs the same on the CPU', () => {
    const body = (loopVar: string): MapBody => ({
      kind: 'map', count: i32(2),
      lets: [{ name: 'acc', value: mul(load('a', 'f32', variable(loopVar)), f32(2)), loop: { var: loopVar, count: mul(variable('i'), i32(3)), op: 'sum' } }],
      stores: [{ buf: 'y', index: variable('i'), value: variable('acc', 'f32') }],
    });
    const k = makeKernel('dot', body('k'));
    expect(renderKernel(k)).toContain('  var acc = 0.0f;\n  for (var k = 0; k < (i * 3i); k++) {\n    acc = acc + (a[k] * 2.0f);\n  }\n');
    const y = new Float32Array(2);
    executeLaunch({ kernel: k, params: {} }, { a: Float32Array.from([1, 2, 3]), y });
    expect([...y]).toEqual([0, 12]);
    expect(() => renderKernel(makeKernel('bad', body('u')))).toThrow(/shadows/);
  });
});

describe('on WebGPU', () => {
  let gpu: WebGPUDevice;
  beforeAll(async () => {
    gpu = await acquireDevice();
  });
  afterAll(() => gpu?.destroy());

  it('grouped Conv, MaxPool with Indices and ArgMin match the CPU reference', async () => {
    for (const i of [6, 10, 1]) {
      const [g, feeds] = cases[i]![1]();
      const want = runGraph(g, feeds, { registry });
      const got = await runGraphWebGPU(g, feeds, { registry, device: gpu });
      for (const [name, t] of want) expect({ name, message: compareTensors(got.get(name)!, t, { rtol: 1e-4, atol: 1e-5 }).message }).toEqual({ name, message: '' });
    }
  });
});
