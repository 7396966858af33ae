/**
 * The compiled WebGPU runtime (SwiftShader in CI): host programs run by WebGPUSession (one device)
 * and WebGPUMeshSession (tp=2, on separate devices with host-staged collectives and on one shared
 * device with collective kernels) match the CPU reference runtime at rtol 1e-4, atol 1e-5; one run
 * is one submit with one dispatch per kernel step; uneven AllGather/ReduceScatter on the shared
 * device equal runCollective; limits and mismatched collectives fail with errors naming them.
 */
import { planMemory } from '../../src/codegen/host/memory.js';
import type { HostProgram } from '../../src/codegen/host/program.js';
import { recordHostProgram } from '../../src/codegen/host/record.js';
import { Attrs } from '../../src/ir/attrs.js';
import { UserError } from '../../src/ir/errors.js';
import { Graph, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { importModel } from '../../src/onnx/import.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { type DeviceProgram, lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { runCollective } from '../../src/targets/cpu/collectives.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import type { WebGPUDevice } from '../../src/targets/webgpu/device.js';
import { WebGPUMeshSession } from '../../src/targets/webgpu/mesh-session.js';
import { WebGPUSession } from '../../src/targets/webgpu/session.js';
import { acquireDevices } from '../../src/targets/webgpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { gptModel, llamaModel } from '../../examples/models/transformers.js';
import { int, str } from '../passes/graph-builder.js';

jest.setTimeout(180_000);

const registry = createCoreRegistry();
const TOL = { rtol: 1e-4, atol: 1e-5 };
const bindings = { batch: 2, sequence: 5 };
let gpus: WebGPUDevice[] = [];

beforeAll(async () => {
  gpus = await acquireDevices(3);
});
afterAll(() => {
  for (const g of gpus) g.destroy();
});

const models: Record<string, () => Uint8Array> = {
  'gpt-tiny': () => gptModel().encode(),
  'llama-tiny': () => llamaModel().encode(),
};

function expectClose(got: ReadonlyMap<string, Tensor>, want: ReadonlyMap<string, Tensor>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, t] of want) expect({ k, message: compareTensors(got.get(k)!, t, TOL).message }).toEqual({ k, message: '' });
}

test('gpt-tiny on one device: the session equals the CPU runtime; one submit, one dispatch per kernel step', async () => {
  const graph = importModel(models['gpt-tiny']!(), { file: 'gpt-tiny.onnx' }).graph;
  const feeds = randomInputs(graph, { seed: 3, dims: bindings });
  const want = runGraph(graph, feeds, { registry });
  const p = planMemory(recordHostProgram(graph, [...feeds].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] })), { registry }));
  const s = await WebGPUSession.create(gpus[0]!.device, p, { name: 'device 0' });
  try {
    expectClose(await s.run(feeds), want);
    // A second run with other inputs reuses everything and is right too.
    const feeds2 = randomInputs(graph, { seed: 4, dims: bindings });
    expectClose(await s.run(feeds2), runGraph(graph, feeds2, { registry }));
    expect(s.stats.dispatches).toBe(p.steps.filter((x) => x.kind === 'dispatch').length);
    expect(s.stats.submits).toBe(1);
    expect(s.stats.pipelines).toBe(p.kernels.length);
    await expect(s.run(new Map([['input_ids', Tensor.zeros('int64', [2, 6])]]))).rejects.toThrow(/compiled for int64\[2,5\]/);
  } finally {
    s.destroy();
  }
});

describe('tp=2 megatron: the mesh session equals the CPU runtime', () => {
  const cases: [string, boolean][] = [
    ['gpt-tiny', true],
    ['gpt-tiny', false],
    ['llama-tiny', true],
    ['llama-tiny', false],
  ];
  test.each(cases)('%s, shareDevice %s', async (model, shareDevice) => {
    const bytes = models[model]!();
    const reference = importModel(bytes, { file: `${model}.onnx` }).graph;
    const feeds = randomInputs(reference, { seed: 3, dims: bindings });
    const want = runGraph(reference, feeds, { registry });
    const mesh = DeviceMesh.parse('tp=2');
    const rules = createCoreShardingRules();
    const plan = shardGraph(importModel(bytes, { file: `${model}.onnx` }).graph, mesh, { strategy: 'megatron', registry, rules, bindings });
    const programs = lowerPlan(plan, { registry, rules });
    const s = await WebGPUMeshSession.create(programs, mesh, plan, { registry, bindings, shareDevice, devices: gpus.slice(0, shareDevice ? 1 : 2) });
    try {
      const got = await s.run(feeds);
      expectClose(got.outputs, want);
      got.stats.forEach((st, d) => expect(st.dispatches).toBe(s.hostPrograms[d]!.steps.filter((x) => x.kind === 'dispatch').length));
      if (shareDevice) {
        expect(got.stats.every((st) => st.stagedBytes === 0)).toBe(true);
        expect(got.stats.some((st) => st.collectiveDispatches > 0)).toBe(true);
      } else expect(got.stats.every((st) => st.stagedBytes > 0)).toBe(true);
    } finally {
      s.destroy();
    }
  });
});

/** Hand-made host programs: device d gathers a[d] (uneven rows) and reduce-scatters b[d] (7 rows over 3). */
function gatherScatterPrograms(rows: number[]): { hosts: HostProgram[]; programs: DeviceProgram[]; plan: ShardPlan } {
  const k = rows.length;
  const total = rows.reduce((a, b) => a + b, 0);
  const scatter = [3, 2, 2]; // splitDim(7, 3)
  const hosts = rows.map((n, d): HostProgram => ({
    format: 'shardc-host-program/1',
    device: d,
    kernels: [],
    buffers: [
      { id: 0, type: 'f32', length: n * 3, role: 'input', value: `a${d}`, slot: 0 },
      { id: 1, type: 'f32', length: total * 3, role: 'temp', value: 'g', slot: 1 },
      { id: 2, type: 'f32', length: 14, role: 'input', value: `b${d}`, slot: 2 },
      { id: 3, type: 'f32', length: scatter[d]! * 2, role: 'temp', value: 'r', slot: 3 },
    ],
    slots: [{ bytes: n * 12 }, { bytes: total * 12 }, { bytes: 56 }, { bytes: scatter[d]! * 8 }],
    inputs: [
      { name: `a${d}`, dtype: 'float32', shape: [n, 3], buffer: 0 },
      { name: `b${d}`, dtype: 'float32', shape: [7, 2], buffer: 2 },
    ],
    outputs: [
      { name: 'g', dtype: 'float32', shape: [total, 3], buffer: 1 },
      { name: 'r', dtype: 'float32', shape: [scatter[d]!, 2], buffer: 3 },
    ],
    steps: [
      { kind: 'collective', node: 'gather', op: 'AllGather', axis: 'tp', group: [0, 1, 2].slice(0, k), attributes: { dim: 0 }, input: 0, output: 1, dtype: 'float32', inputShape: [n, 3], outputShape: [total, 3] },
      { kind: 'collective', node: 'scatter', op: 'ReduceScatter', axis: 'tp', group: [0, 1, 2].slice(0, k), attributes: { dim: 0, reduce: 'sum' }, input: 2, output: 3, dtype: 'float32', inputShape: [7, 2], outputShape: [scatter[d]!, 2] },
    ],
  }));
  const programs = rows.map((n, d) => {
    const g = new Graph(`dev${d}`);
    g.inputs = [new Value(`a${d}`, 'float32', [n, 3]), new Value(`b${d}`, 'float32', [7, 2])];
    return { device: d, coords: [d], graph: g } as DeviceProgram;
  });
  const global = new Graph('global');
  global.inputs = programs.flatMap((p) => p.graph.inputs);
  global.outputs = [new Value('g', 'float32', [total, 3])];
  return { hosts, programs, plan: { graph: global, collectives: [], seeds: new Map() } as unknown as ShardPlan };
}

test('uneven AllGather and ReduceScatter on the shared device equal runCollective', async () => {
  const rows = [2, 1, 2];
  const { hosts, programs, plan } = gatherScatterPrograms(rows);
  const mesh = DeviceMesh.parse('tp=3');
  const a = rows.map((n, d) => Tensor.from('float32', [n, 3], Array.from({ length: n * 3 }, (_, i) => d * 10 + i)));
  const b = rows.map((_, d) => Tensor.from('float32', [7, 2], Array.from({ length: 14 }, (_, i) => Math.cos(d + i))));
  const feeds = new Map<string, Tensor>([...a.map((t, d): [string, Tensor] => [`a${d}`, t]), ...b.map((t, d): [string, Tensor] => [`b${d}`, t])]);
  const s = await WebGPUMeshSession.create(programs, mesh, plan, { registry, hostPrograms: hosts, shareDevice: true, devices: gpus.slice(0, 1) });
  try {
    const got = await s.run(feeds);
    const gathered = runCollective('AllGather', new Attrs([['dim', int(0)]]), a);
    const scattered = runCollective('ReduceScatter', new Attrs([['dim', int(0)], ['reduce', str('sum')]]), b);
    rows.forEach((_, d) => {
      expect(got.perDevice[d]!.get('g')!.toArray()).toEqual(gathered[d]!.toArray());
      expect(compareTensors(got.perDevice[d]!.get('r')!, scattered[d]!, { rtol: 1e-6, atol: 1e-6 }).message).toBe('');
    });
    expect(got.stats.every((st) => st.stagedBytes === 0)).toBe(true);
  } finally {
    s.destroy();
  }
});

test('devices reaching different collectives fail at create, naming both (no hang)', async () => {
  const { hosts, programs, plan } = gatherScatterPrograms([1, 1]);
  (hosts[1]!.steps[0] as { node: string }).node = 'gather-other';
  await expect(WebGPUMeshSession.create(programs, DeviceMesh.parse('tp=2'), plan, { registry, hostPrograms: hosts, shareDevice: true, devices: gpus.slice(0, 1) })).rejects.toThrow(
    /stuck: device 0 waits at collective AllGather over tp "gather": device 1 waits at collective AllGather over tp "gather-other" instead/,
  );
});

test('a buffer over the device limit is a UserError naming the device, value and limit', async () => {
  const limit = gpus[0]!.device.limits.maxStorageBufferBindingSize;
  const n = limit / 4 + 1;
  const p: HostProgram = {
    format: 'shardc-host-program/1', device: 0, kernels: [], steps: [],
    buffers: [{ id: 0, type: 'f32', length: n, role: 'input', value: 'huge', slot: 0 }],
    slots: [{ bytes: n * 4 }],
    inputs: [{ name: 'huge', dtype: 'float32', shape: [n], buffer: 0 }],
    outputs: [],
  };
  const err = await WebGPUSession.create(gpus[0]!.device, p, { name: 'device 0' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UserError);
  expect((err as Error).message).toMatch(/slot 0: huge\) exceeds the device limit max\w+ \(\d+\) on device 0/);
});

test('profile: one time per step, named by node', async () => {
  const graph = importModel(models['gpt-tiny']!(), { file: 'gpt-tiny.onnx' }).graph;
  const feeds = randomInputs(graph, { seed: 3, dims: { batch: 1, sequence: 2 } });
  const p = planMemory(recordHostProgram(graph, [...feeds].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] })), { registry }));
  const s = await WebGPUSession.create(gpus[0]!.device, p, { profile: true });
  try {
    expectClose(await s.run(feeds), runGraph(graph, feeds, { registry }));
    const prof = s.lastProfile!;
    expect(prof.map((x) => x.node)).toEqual(p.steps.map((x) => x.node));
    expect(prof.every((x) => x.ms >= 0 && Number.isFinite(x.ms))).toBe(true);
    expect(prof.some((x) => x.ms > 0)).toBe(true);
  } finally {
    s.destroy();
  }
});
