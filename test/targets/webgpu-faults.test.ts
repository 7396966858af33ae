/**
 * WebGPU runtime faults (issue 5, "Bad input"), on SwiftShader with tiny programs: no adapter, a
 * lost device (destroyed mid-session: the next run — and a run in flight — rejects with a UserError
 * naming the device and the reason, no hang), kernels over the device's limits (workgroup memory,
 * invocations, storage buffers per stage) refused before any pipeline is created, naming kernel,
 * node and limit. And float16: model tensors computed as f32 on the device, results rounded to
 * float16 on the way back, equal to the CPU runtime.
 */
import { add, f32, load, param, variable } from '../../src/codegen/expr.js';
import { planMemory } from '../../src/codegen/host/memory.js';
import type { HostProgram } from '../../src/codegen/host/program.js';
import { recordHostProgram } from '../../src/codegen/host/record.js';
import { type Kernel, makeKernel } from '../../src/codegen/kernel.js';
import { renderKernel } from '../../src/codegen/wgsl/kernel.js';
import type { DType } from '../../src/ir/dtype.js';
import { Attrs } from '../../src/ir/attrs.js';
import { UserError } from '../../src/ir/errors.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { compareTensors } from '../../src/verify/compare.js';
import { type WebGPUDevice, acquireBrowserDevice, acquireDevice, deviceFromGpu } from '../../src/targets/webgpu/device.js';
import { WebGPUMeshSession } from '../../src/targets/webgpu/mesh-session.js';
import { PipelineCache, WebGPUSession, deviceLoss, workgroupStorageBytes } from '../../src/targets/webgpu/session.js';

jest.setTimeout(120_000);

const registry = createCoreRegistry();

/**
 * Every device acquired here stays referenced until the file ends: Dawn for Node crashes when the
 * garbage collector finalizes an instance (with its destroyed device and live buffers) mid-run.
 */
const held: WebGPUDevice[] = [];
async function freshDevice(): Promise<WebGPUDevice> {
  const g = await acquireDevice();
  held.push(g);
  return g;
}
afterAll(() => {
  for (const g of held) g.destroy();
});

/** y = a + b (float32 [4]) recorded as a host program. */
function addProgram(device = 0, dtype: DType = 'float32'): HostProgram {
  const g = new Graph('add');
  const a = new Value('a', dtype, [4]);
  const b = new Value('b', dtype, [4]);
  const y = new Value('y', dtype, [4]);
  g.inputs = [a, b];
  g.addNode(new Node('Add', [a, b], [y], new Attrs(), 'add'));
  g.outputs = [y];
  return planMemory(recordHostProgram(g, [{ name: 'a', dtype, shape: [4] }, { name: 'b', dtype, shape: [4] }], { registry, device }));
}

const FEEDS = new Map([
  ['a', Tensor.from('float32', [4], [1, 2, 3, 4])],
  ['b', Tensor.from('float32', [4], [10, 20, 30, 40])],
]);

/** A host program of one dispatch of `k` (inputs and output of `n` f32 elements, all role temp). */
function oneKernelProgram(k: Kernel, n: number, params: Record<string, number> = {}): HostProgram {
  const names = [...k.inputs, ...k.outputs].map((b) => b.name);
  return {
    format: 'shardc-host-program/1',
    device: 0,
    kernels: [k],
    buffers: names.map((name, id) => ({ id, type: 'f32', length: n, role: 'temp', value: name, slot: id })),
    slots: names.map(() => ({ bytes: n * 4 })),
    inputs: [],
    outputs: [],
    steps: [{ kind: 'dispatch', node: 'big_node', op: 'Test', kernel: 0, params, bindings: Object.fromEntries(names.map((name, id) => [name, id])) }],
  };
}

describe('no adapter', () => {
  it('is a UserError with the message the caller gives (acquireDevice: the install command)', async () => {
    const gpu = { requestAdapter: async () => null } as unknown as GPU;
    const err = await deviceFromGpu(gpu, { noAdapterMessage: 'no WebGPU adapter found; install one with: apt-get install chromium libvulkan1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe('no WebGPU adapter found; install one with: apt-get install chromium libvulkan1');
  });

  it('in Node, Dawn on a backend this machine lacks names the install command', async () => {
    const err = await acquireDevice({ dawnOptions: ['backend=d3d12'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/^no WebGPU adapter found .*install one with: apt-get install chromium libvulkan1$/);
  });

  it('a page without navigator.gpu says what WebGPU needs', async () => {
    const err = await acquireBrowserDevice().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/navigator\.gpu is missing: .*secure context.*--enable-unsafe-webgpu/);
  });
});

describe('device lost', () => {
  it('a run after device.destroy() rejects with a UserError naming the device and the reason', async () => {
    const gpu = await freshDevice();
    const s = await WebGPUSession.create(gpu.device, addProgram(), { name: 'device 0' });
    expect(Array.from((await s.run(FEEDS)).get('y')!.data)).toEqual([11, 22, 33, 44]);
    gpu.device.destroy();
    const err = await s.run(FEEDS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/^the WebGPU device of device 0 was lost \(it was destroyed.*\); create a new session on a new device$/);
    expect(deviceLoss(gpu.device)?.reason).toBe('destroyed');
    // Every later run too, and a new session on the lost device.
    await expect(s.run(FEEDS)).rejects.toThrow(/device 0 was lost/);
    await expect(WebGPUSession.create(gpu.device, addProgram(), { name: 'device 0' })).rejects.toThrow(/device 0 was lost/);
    s.destroy();
  });

  it('a run in flight when the device is destroyed rejects (no hang)', async () => {
    const gpu = await freshDevice();
    const s = await WebGPUSession.create(gpu.device, addProgram(), { name: 'device 0' });
    const run = s.run(FEEDS);
    gpu.device.destroy();
    await expect(run).rejects.toThrow(/^the WebGPU device of device 0 was lost \(it was destroyed/);
    s.destroy();
  });

  it('a mesh session on one shared device names the logical devices it held', async () => {
    const gpu = await freshDevice();
    const mesh = DeviceMesh.parse('tp=2');
    const global = new Graph('global');
    global.inputs = [new Value('a', 'float32', [4]), new Value('b', 'float32', [4])];
    global.outputs = [new Value('y', 'float32', [4])];
    const plan = { graph: global, mesh, strategy: 'test', bindings: {}, collectives: [], seeds: new Map() } as unknown as ShardPlan;
    const s = await WebGPUMeshSession.fromHostPrograms([addProgram(0), addProgram(1)], mesh, plan, { devices: [gpu], shareDevice: true });
    expect(Array.from((await s.run(FEEDS)).outputs.get('y')!.data)).toEqual([11, 22, 33, 44]);
    gpu.destroy();
    await expect(s.run(FEEDS)).rejects.toThrow(/^the WebGPU device of devices 0-1 of mesh tp=2 \(sharing .*\) was lost \(it was destroyed/);
    s.destroy();
  });
});

describe('kernels over the device limits are refused before pipeline creation', () => {
  let gpu: WebGPUDevice;
  beforeAll(async () => {
    gpu = await freshDevice();
  });

  it('counts the workgroup memory a kernel declares', () => {
    // tile 16: two 16×16 f32 tiles; tile 8, block 4: two (8·4)×8 f32 tiles.
    const mm = (tile: number, block: number): Kernel =>
      makeKernel('mm', {
        kind: 'matmul', tile, block, batch: f32(1) as never, m: variable('M'), n: variable('N'), k: variable('K'),
        a: load('A', 'f32', variable('k')), b: load('B', 'f32', variable('k')), out: { buf: 'C', index: variable('n'), value: variable('acc', 'f32') },
      });
    expect(workgroupStorageBytes(renderKernel(mm(16, 1)))).toBe(2 * 16 * 16 * 4);
    expect(workgroupStorageBytes(renderKernel(mm(8, 4)))).toBe(2 * 32 * 8 * 4);
    expect(workgroupStorageBytes('var<workgroup> part: array<f32, 64>;\nvar<workgroup> x: vec4<i32>;')).toBe(64 * 4 + 16);
  });

  it('workgroup memory over maxComputeWorkgroupStorageSize', async () => {
    const limit = gpu.device.limits.maxComputeWorkgroupStorageSize;
    // A row reduction keeps one partial per invocation in workgroup memory.
    const wgSize = limit / 4 + 64;
    const k = makeKernel(
      'sum_rows',
      { kind: 'reduce', op: 'sum', rows: param('R'), len: param('L'), value: load('x', 'f32', variable('r')), out: { buf: 'y', index: variable('row'), value: variable('acc', 'f32') } },
      wgSize,
    );
    const cache = new PipelineCache();
    const err = await WebGPUSession.create(gpu.device, oneKernelProgram(k, 4, { R: 1, L: 4 }), { name: 'device 0', cache }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).reason).toBe(
      `kernel sum_rows needs ${wgSize * 4} bytes of workgroup memory, more than the device limit maxComputeWorkgroupStorageSize (${limit}) on device 0`,
    );
    expect((err as UserError).location.node).toBe('big_node');
    expect(cache.compiled).toBe(0);
  });

  it('invocations per workgroup over maxComputeInvocationsPerWorkgroup', async () => {
    const limit = gpu.device.limits.maxComputeInvocationsPerWorkgroup;
    const k = makeKernel('wide', { kind: 'map', count: param('n'), lets: [], stores: [{ buf: 'y', index: variable('i'), value: load('x', 'f32', variable('i')) }] }, limit * 2);
    const cache = new PipelineCache();
    const err = await WebGPUSession.create(gpu.device, oneKernelProgram(k, 4, { n: 4 }), { name: 'device 0', cache }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).reason).toBe(`kernel wide runs ${limit * 2} invocations per workgroup, more than the device limit maxComputeInvocationsPerWorkgroup (${limit}) on device 0`);
    expect(cache.compiled).toBe(0);
  });

  it('storage buffers per shader stage over maxStorageBuffersPerShaderStage', async () => {
    const limit = gpu.device.limits.maxStorageBuffersPerShaderStage;
    // y = x0 + x1 + ... : limit inputs and one output.
    let sum = load('x0', 'f32', variable('i'));
    for (let j = 1; j < limit; j++) sum = add(sum, load(`x${j}`, 'f32', variable('i')));
    const k = makeKernel('sum_many', { kind: 'map', count: param('n'), lets: [], stores: [{ buf: 'y', index: variable('i'), value: sum }] });
    const cache = new PipelineCache();
    const err = await WebGPUSession.create(gpu.device, oneKernelProgram(k, 4, { n: 4 }), { name: 'device 0', cache }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).reason).toBe(`kernel sum_many binds ${limit + 1} storage buffers, more than the device limit maxStorageBuffersPerShaderStage (${limit}) on device 0`);
    expect((err as UserError).location.node).toBe('big_node');
    expect(cache.compiled).toBe(0);
  });
});

describe('float16 tensors (f32 on the device, rounded to float16 on the way back)', () => {
  it('Add and MatMul in float16 match the CPU runtime; results are float16 numbers', async () => {
    const gpu = await freshDevice();
    try {
      const g = new Graph('f16');
      const v = (name: string, shape: number[]): Value => new Value(name, 'float16', shape);
      const [a, b, c, s, y, z] = [v('a', [3, 5]), v('b', [5, 4]), v('c', [3, 4]), v('s', [3, 4]), v('y', [3, 4]), v('z', [3, 4])];
      g.inputs = [a, b, c];
      g.addNode(new Node('MatMul', [a, b], [s], new Attrs(), 'mm'));
      g.addNode(new Node('Add', [s, c], [y], new Attrs(), 'add'));
      g.addNode(new Node('Add', [c, c], [z], new Attrs(), 'twice'));
      g.outputs = [s, y, z];
      const feeds = new Map([
        ['a', Tensor.from('float16', [3, 5], Array.from({ length: 15 }, (_, i) => 0.1 * (i + 1) - 0.7))],
        ['b', Tensor.from('float16', [5, 4], Array.from({ length: 20 }, (_, i) => 0.37 * ((i * 7) % 11) - 1.3))],
        ['c', Tensor.from('float16', [3, 4], Array.from({ length: 12 }, (_, i) => 1000.3 + i / 3))],
      ]);
      const want = runGraph(g, feeds, { registry });
      const p = planMemory(recordHostProgram(g, [...feeds].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] })), { registry }));
      const session = await WebGPUSession.create(gpu.device, p, { name: 'device 0' });
      const got = await session.run(feeds);
      session.destroy();
      for (const name of ['s', 'y', 'z']) {
        const t = got.get(name)!;
        expect({ name, dtype: t.dtype, shape: t.shape }).toEqual({ name, dtype: 'float16', shape: [3, 4] });
        // Rounded to float16 numbers on download.
        expect(Array.from(t.data)).toEqual(Array.from(Tensor.from('float16', [12], t.data).data));
        // One float16 ulp: the device sums the MatMul in its own order, in f32.
        expect({ name, message: compareTensors(t, want.get(name)!, { rtol: 1e-3, atol: 1e-3 }).message }).toEqual({ name, message: '' });
      }
      // An Add of float16 inputs is exact: f32 sum, rounded once, as on the CPU.
      expect(Array.from(got.get('z')!.data)).toEqual(Array.from(want.get('z')!.data));
      // s + c lies in [512, 1024), where float16 steps by 0.5: rounded there, not at f32 precision.
      expect(Array.from(got.get('y')!.data).every((x) => x >= 512 && x < 1024 && Number.isInteger(x * 2))).toBe(true);
    } finally {
      gpu.destroy();
    }
  });
});
