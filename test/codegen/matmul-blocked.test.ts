/**
 * The register-blocked matmul template (MatmulBody.block): the same lowered MatMul/Gemm launches
 * with block 1, 2 and 4 run on WebGPU (SwiftShader) and must equal the CPU executor of the kernel
 * IR at 1e-5 — odd sizes that are not multiples of any tile (bounds checks on M, N and K),
 * batched with a broadcast operand, and transposed operands (index expressions, no copy). Also
 * the block choice by size, the dispatch size, and a golden of the blocked kernel's WGSL.
 */
import { Attrs } from '../../src/ir/attrs.js';
import { Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { allocDeviceArray, executeLaunch, type DeviceArray } from '../../src/codegen/cpu.js';
import { toDeviceArray } from '../../src/codegen/device-data.js';
import { type Launch, type MatmulBody, dispatchSize } from '../../src/codegen/kernel.js';
import { type LowerValue, createLoweringTable } from '../../src/codegen/lower/index.js';
import { matmulBlocking } from '../../src/codegen/lower/matmul.js';
import { renderKernel } from '../../src/codegen/wgsl/kernel.js';
import { type GpuBuf, WebGPUBackend } from '../../src/targets/webgpu/backend.js';
import { type WebGPUDevice, acquireDevice } from '../../src/targets/webgpu/device.js';
import { expectGolden } from '../passes/golden.js';

const registry = createCoreRegistry();
const table = createLoweringTable();

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): number[] {
  let s = seed * 2654435761 >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** The single launch of `op` on float32 inputs of these shapes, plus the input tensors. */
function lowered(op: string, shapes: number[][], attrs = new Attrs()): { launch: Launch; inputs: Tensor[]; outLength: number } {
  const inputs = shapes.map((s, k) => Tensor.from('float32', s, values(s.reduce((a, b) => a * b, 1), k + 1)));
  const node = new Node(op, inputs.map((t, k) => new Value(`in${k}`, 'float32', [...t.shape])), [new Value('out')], attrs, op);
  const lv: LowerValue[] = inputs.map((t) => ({ dtype: t.dtype, shape: [...t.shape] }));
  const types = registry.forNode(node).infer({ node, attrs, inputs: lv, constant: () => undefined });
  const out = { dtype: types[0]!.dtype, shape: types[0]!.shape as number[] };
  const low = table.get(op)!.lower({ node, attrs, inputs: lv, outputs: [out] });
  if (low.kind !== 'kernels' || low.launches.length !== 1) throw new Error(`${op} did not lower to one launch`);
  const l = low.launches[0]!;
  return { launch: { kernel: l.kernel, params: l.params }, inputs, outLength: Math.max(1, out.shape.reduce((a, b) => a * b, 1)) };
}

/** The launch with its matmul body's block replaced. */
function withBlock(l: Launch, block: number): Launch {
  const body = l.kernel.body as MatmulBody;
  return { ...l, kernel: { ...l.kernel, body: { ...body, block } } };
}

function runCpu(l: Launch, inputs: Tensor[], outLength: number): Float32Array {
  const bufs: Record<string, DeviceArray> = { y0: allocDeviceArray('f32', outLength) };
  inputs.forEach((t, k) => (bufs[`x${k}`] = toDeviceArray(t)));
  executeLaunch(l, bufs);
  return bufs.y0 as Float32Array;
}

let gpu: WebGPUDevice;
let backend: WebGPUBackend;
beforeAll(async () => {
  gpu = await acquireDevice();
  backend = new WebGPUBackend(gpu.device, gpu.description);
});
afterAll(() => gpu?.destroy());

async function runGpu(l: Launch, inputs: Tensor[], outLength: number): Promise<Float32Array> {
  const bufs: Record<string, GpuBuf> = { y0: backend.alloc('f32', outLength) };
  inputs.forEach((t, k) => (bufs[`x${k}`] = backend.upload(t)));
  try {
    await backend.dispatch(l, bufs);
    return (await backend.download(bufs.y0!, 'float32', [outLength])).data as Float32Array;
  } finally {
    for (const b of Object.values(bufs)) backend.release(b);
  }
}

function maxRelErr(got: Float32Array, want: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!)));
  return worst;
}

const CASES: { name: string; op: string; shapes: number[][]; attrs?: Attrs }[] = [
  { name: '1×1×1', op: 'MatMul', shapes: [[1, 1], [1, 1]] },
  { name: '7×13×5 (M×K×N)', op: 'MatMul', shapes: [[7, 13], [13, 5]] },
  { name: '65×33×70', op: 'MatMul', shapes: [[65, 33], [33, 70]] },
  { name: 'batched 3×(9×20×67), B broadcast over the batch', op: 'MatMul', shapes: [[3, 9, 20], [20, 67]] },
  { name: 'Gemm 70×17 · (66×17)ᵀ + bias (transposed B, epilogue)', op: 'Gemm', shapes: [[70, 17], [66, 17], [66]], attrs: new Attrs([['transB', { kind: 'int', value: 1 }]]) },
  { name: 'Gemm (17×33)ᵀ · 17×40, transposed A', op: 'Gemm', shapes: [[17, 33], [17, 40]], attrs: new Attrs([['transA', { kind: 'int', value: 1 }], ['alpha', { kind: 'float', value: 0.5 }]]) },
];

describe('register-blocked matmul on WebGPU (SwiftShader) equals the CPU executor', () => {
  for (const c of CASES)
    it(c.name, async () => {
      const { launch, inputs, outLength } = lowered(c.op, c.shapes, c.attrs);
      const want = runCpu(launch, inputs, outLength);
      // The CPU executor does not depend on the block (semantics), the dispatch does.
      expect(runCpu(withBlock(launch, 4), inputs, outLength)).toEqual(want);
      for (const block of [1, 2, 4]) {
        const got = await runGpu(withBlock(launch, block), inputs, outLength);
        expect({ block, err: maxRelErr(got, want) < 1e-5 }).toEqual({ block, err: true });
      }
    });
});

describe('blocking choice and dispatch', () => {
  it('picks the block by output size (small matrices keep one output per invocation)', () => {
    expect(matmulBlocking(12, 256)).toEqual({ tile: 16 });
    expect(matmulBlocking(32, 40)).toEqual({ tile: 16, block: 2 });
    expect(matmulBlocking(64, 512)).toEqual({ tile: 16, block: 4 });
    expect((lowered('MatMul', [[2, 100, 8], [8, 70]]).launch.kernel.body as MatmulBody).block).toBe(4);
    expect((lowered('MatMul', [[2, 10, 8], [8, 70]]).launch.kernel.body as MatmulBody).block).toBeUndefined();
  });

  it('dispatches ceil(N / (tile·block)) × ceil(M / (tile·block)) × batch workgroups of tile × tile', () => {
    const { launch } = lowered('MatMul', [[3, 65, 20], [20, 130]]);
    expect(launch.kernel.workgroupSize).toBe(256);
    expect(dispatchSize(withBlock(launch, 1))).toEqual([9, 5, 3]);
    expect(dispatchSize(withBlock(launch, 4))).toEqual([3, 2, 3]);
  });

  it('emits the blocked kernel (golden), independent of sizes within a block class', () => {
    const wgsl = renderKernel(lowered('MatMul', [[2, 64, 16], [16, 64]]).launch.kernel);
    expect(renderKernel(lowered('MatMul', [[3, 100, 7], [7, 90]]).launch.kernel)).toBe(wgsl);
    expectGolden('wgsl/matmul-blocked.wgsl', wgsl);
  });
});
