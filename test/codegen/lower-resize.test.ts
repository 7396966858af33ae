/**
 * Resize lowering (host-computed tap tables passed as constant kernel buffers): the CPU executor
 * of the kernel IR against the reference op on combinations the ONNX node tests do not cover
 * (axes, antialias, rank 3, integer data, keep_aspect_ratio_policy, half_pixel_symmetric,
 * extrapolation on several axes), hand-computed values, and one node on a real WebGPU adapter.
 */
import { Attrs } from '../../src/ir/attrs.js';
import type { Graph } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { compareTensors } from '../../src/verify/compare.js';
import { runGraphKernelsCpu } from '../../src/codegen/cpu-backend.js';
import { createLoweringTable } from '../../src/codegen/lower/index.js';
import { type WebGPUDevice, acquireDevice } from '../../src/targets/webgpu/device.js';
import { runGraphWebGPU } from '../../src/targets/webgpu/run.js';
import { feedsOf, oneNodeGraph } from './one-node.js';

const registry = createCoreRegistry();

type AttrVal = number | number[] | string;
function attrs(a: Record<string, AttrVal>): Attrs {
  return new Attrs(
    Object.entries(a).map(([k, v]) => [k, typeof v === 'string' ? { kind: 'string', value: v } : Array.isArray(v) ? { kind: 'ints', value: v } : Number.isInteger(v) ? { kind: 'int', value: v } : { kind: 'float', value: v }]) as never,
  );
}

const n = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const f = (shape: number[], mod = 23): Tensor => Tensor.from('float32', shape, Array.from({ length: n(shape) }, (_, i) => ((i * 7) % mod) / 10 - 1));
const empty = (): Tensor => Tensor.from('float32', [0], []);

/** Resize(x, roi, scales, sizes) with roi/scales/sizes as constants (empty = absent). */
function resize(x: Tensor, o: { roi?: number[]; scales?: number[]; sizes?: number[] }, a: Record<string, AttrVal>): [Graph, Map<string, Tensor>] {
  const inputs = [
    { name: 'x', t: x },
    { name: 'roi', t: o.roi ? Tensor.from('float32', [o.roi.length], o.roi) : empty(), constant: true },
    { name: 'scales', t: o.scales ? Tensor.from('float32', [o.scales.length], o.scales) : empty(), constant: true },
    { name: 'sizes', t: o.sizes ? Tensor.from('int64', [o.sizes.length], o.sizes) : Tensor.from('int64', [0], []), constant: true },
  ];
  return [oneNodeGraph('Resize', inputs, attrs(a)), feedsOf(inputs)];
}

async function expectSameAsReference([g, feeds]: [Graph, Map<string, Tensor>]): Promise<void> {
  const want = runGraph(g, feeds, { registry });
  const got = await runGraphKernelsCpu(g, feeds, { registry });
  for (const [name, t] of want) {
    expect(got.get(name)!.shape).toEqual(t.shape);
    const r = compareTensors(got.get(name)!, t, { rtol: 1e-5, atol: 1e-5 });
    expect({ name, message: r.message }).toEqual({ name, message: '' });
  }
}

const cases: [string, () => [Graph, Map<string, Tensor>]][] = [
  ['linear on axes [2, 1] of a rank-3 tensor', () => resize(f([2, 3, 4]), { scales: [1.5, 0.7] }, { mode: 'linear', axes: [2, 1] })],
  ['cubic antialias downsample', () => resize(f([1, 2, 9, 7]), { scales: [1, 1, 0.45, 0.6] }, { mode: 'cubic', antialias: 1 })],
  ['linear antialias with sizes', () => resize(f([1, 1, 8, 8]), { sizes: [1, 1, 3, 5] }, { mode: 'linear', antialias: 1 })],
  ['nearest on int64 with ceil and half_pixel_symmetric', () =>
    resize(Tensor.from('int64', [2, 5], [1, -2, 3, 40, 5, 6, 7, -8, 9, 10]), { scales: [1.5, 1.7] }, { mode: 'nearest', nearest_mode: 'ceil', coordinate_transformation_mode: 'half_pixel_symmetric' })],
  ['linear on int32 truncates', () => resize(Tensor.from('int32', [1, 4], [0, 3, 7, -5]), { scales: [1, 2.5] }, { mode: 'linear' })],
  ['sizes with keep_aspect_ratio_policy not_smaller', () => resize(f([1, 1, 4, 6]), { sizes: [3, 5] }, { mode: 'linear', axes: [2, 3], keep_aspect_ratio_policy: 'not_smaller' })],
  ['tf_crop_and_resize extrapolating on two axes', () =>
    resize(f([1, 2, 5, 4]), { roi: [0, 0, -0.2, 0.3, 1, 1, 0.9, 1.4], sizes: [1, 2, 4, 5] }, { mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: 7.5 })],
  ['cubic exclude_outside pytorch_half_pixel 1-D', () => resize(f([11]), { scales: [0.4] }, { mode: 'cubic', exclude_outside: 1, coordinate_transformation_mode: 'pytorch_half_pixel' })],
  ['identity scales copy the input', () => resize(f([2, 3]), { scales: [1, 1] }, { mode: 'cubic' })],
];

describe('Resize lowering on the CPU executor matches the reference evaluation', () => {
  it.each(cases)('%s', async (_, make) => expectSameAsReference(make()));
});

describe('Resize lowering details', () => {
  it('hand-computed 1-D linear asymmetric upsample (edge clamp)', async () => {
    const [g, feeds] = resize(Tensor.from('float32', [2], [0, 10]), { scales: [2] }, { mode: 'linear', coordinate_transformation_mode: 'asymmetric' });
    const got = await runGraphKernelsCpu(g, feeds, { registry });
    expect([...(got.get('y0')!.data as Float32Array)]).toEqual([0, 5, 10, 10]);
  });

  it('tables travel as launch constants; cubic on two axes sums 16 taps', () => {
    const row = createLoweringTable().get('Resize')!;
    const [g] = resize(f([1, 1, 4, 4]), { scales: [1, 1, 2, 2] }, { mode: 'cubic' });
    const node = g.nodes[0]!;
    const inputs = node.inputs.map((v) => {
      const t = v!.constant ? v!.constant.load() : undefined;
      return { dtype: v!.dtype ?? 'float32', shape: t ? [...t.shape] : [1, 1, 4, 4], host: t };
    });
    const lowered = row.lower({ node, attrs: node.attrs, inputs, outputs: [{ dtype: 'float32', shape: [1, 1, 8, 8] }] });
    if (lowered.kind !== 'kernels') throw new Error('expected kernels');
    const l = lowered.launches[0]!;
    expect(l.params.taps).toBe(16);
    // two axes × 8 output coordinates × 4 taps
    expect(l.constants!.rw!.shape).toEqual([64]);
    expect(l.constants!.ri!.dtype).toBe('int32');
    // cubic weights of each output coordinate sum to 1
    const w = l.constants!.rw!.data as Float32Array;
    for (let o = 0; o < 16; o++) expect(w[o * 4]! + w[o * 4 + 1]! + w[o * 4 + 2]! + w[o * 4 + 3]!).toBeCloseTo(1, 6);
  });
});

describe('Resize on WebGPU', () => {
  let gpu: WebGPUDevice;
  beforeAll(async () => {
    gpu = await acquireDevice();
  });
  afterAll(() => gpu?.destroy());

  it('cubic antialias and tf_crop_and_resize match the CPU reference', async () => {
    for (const i of [1, 6]) {
      const [g, feeds] = cases[i]![1]();
      const want = runGraph(g, feeds, { registry });
      const got = await runGraphWebGPU(g, feeds, { registry, device: gpu });
      for (const [name, t] of want) expect({ name, message: compareTensors(got.get(name)!, t, { rtol: 1e-4, atol: 1e-5 }).message }).toEqual({ name, message: '' });
    }
  });
});
