/**
 * The multi-device WebGPU runtime (SwiftShader in CI): the example transformers partitioned with
 * megatron run on several GPUDevices (one per mesh device, on one adapter) and match the CPU
 * runtime at rtol 1e-4, atol 1e-5; collective failures name device and collective. Devices are
 * acquired once for the file and destroyed in afterAll.
 */
import { Attrs } from '../../src/ir/attrs.js';
import { COLLECTIVE_DOMAIN, Graph, Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { importModel } from '../../src/onnx/import.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { runSpmd } from '../../src/targets/cpu/spmd.js';
import { WebGPUBackend } from '../../src/targets/webgpu/backend.js';
import type { WebGPUDevice } from '../../src/targets/webgpu/device.js';
import { acquireDevices, runSpmdWebGPU } from '../../src/targets/webgpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { str } from '../passes/graph-builder.js';
import { bertModel, gptModel, llamaModel } from '../../examples/models/transformers.js';

jest.setTimeout(120_000);

const registry = createCoreRegistry();
const TOL = { rtol: 1e-4, atol: 1e-5 };
let gpus: WebGPUDevice[] = [];
let backends: WebGPUBackend[] = [];

beforeAll(async () => {
  gpus = await acquireDevices(4);
  backends = gpus.map((g, d) => new WebGPUBackend(g.device, `device ${d}`));
});
afterAll(() => {
  for (const g of gpus) g.destroy();
});

const models: Record<string, () => Uint8Array> = {
  'gpt-tiny': () => gptModel().encode(),
  'bert-tiny': () => bertModel().encode(),
  'llama-tiny': () => llamaModel().encode(),
};

describe('example transformers on several WebGPU devices match the CPU runtime', () => {
  const bindings = { batch: 2, sequence: 5 };
  // SwiftShader is slow: a subset by default; SHARDC_WEBGPU_ALL=1 runs every model on every mesh.
  const meshes: [string, string][] = [['tp=1', 'megatron'], ['tp=2', 'megatron'], ['tp=4', 'megatron'], ['dp=2,tp=2', 'data+megatron']];
  const cases: [string, string, string][] = process.env['SHARDC_WEBGPU_ALL']
    ? Object.keys(models).flatMap((m) => meshes.map(([mesh, strategy]): [string, string, string] => [m, mesh, strategy]))
    : [
        ['gpt-tiny', 'tp=1', 'megatron'],
        ['gpt-tiny', 'tp=2', 'megatron'],
        ['gpt-tiny', 'tp=4', 'megatron'],
        ['gpt-tiny', 'dp=2,tp=2', 'data+megatron'],
        ['llama-tiny', 'tp=2', 'megatron'],
        ['llama-tiny', 'dp=2,tp=2', 'data+megatron'],
        ['bert-tiny', 'tp=2', 'megatron'],
      ];
  test.each(cases)('%s on %s (%s)', async (model, meshSpec, strategy) => {
    const bytes = models[model]!();
    const reference = importModel(bytes, { file: `${model}.onnx` }).graph;
    const feeds = randomInputs(reference, { seed: 3, dims: bindings });
    const want = runGraph(reference, feeds, { registry });
    const mesh = DeviceMesh.parse(meshSpec);
    const rules = createCoreShardingRules();
    const plan = shardGraph(importModel(bytes, { file: `${model}.onnx` }).graph, mesh, { strategy, registry, rules, bindings });
    const programs = lowerPlan(plan, { registry, rules });
    const got = await runSpmdWebGPU(programs, mesh, feeds, { registry, plan, backends: backends.slice(0, mesh.deviceCount) });
    expect(got.outputs.size).toBe(want.size);
    for (const [k, t] of want) {
      const r = compareTensors(got.outputs.get(k)!, t, TOL);
      expect(r.message).toBe(r.ok ? r.message : 'ok');
      expect(r.ok).toBe(true);
    }
    // Same as the CPU simulator of the same programs.
    const cpu = runSpmd(programs, mesh, feeds, { registry, plan });
    for (const [k, t] of cpu.outputs) expect(compareTensors(got.outputs.get(k)!, t, TOL).ok).toBe(true);
    if (mesh.deviceCount > 1) expect(got.stats.some((s) => s.stagedBytes > 0)).toBe(true);
  });
});

/** x (replicated) → Mul by the device-local weight → AllReduce(sum) over tp; hand-made programs. */
function allReducePrograms(mesh: DeviceMesh, labels: string[]): { programs: { device: number; coords: number[]; graph: Graph }[]; plan: ShardPlan } {
  const programs = labels.map((label, d) => {
    const g = new Graph(`dev${d}`);
    const x = new Value('x', 'float32', [3]);
    const w = new Value('w', 'float32', [3]);
    w.constant = { load: () => Tensor.from('float32', [3], [d + 1, 10 * (d + 1), 100 * (d + 1)]) } as unknown as Value['constant'];
    const p = new Value('p', 'float32', [3]);
    const y = new Value('y', 'float32', [3]);
    g.inputs = [x];
    g.initializers = [w];
    g.addNode(new Node('Mul', [x, w], [p], new Attrs(), 'mul'));
    g.addNode(new Node('AllReduce', [p], [y], new Attrs([['axis', str('tp')]]), label, COLLECTIVE_DOMAIN));
    g.outputs = [y];
    return { device: d, coords: [d], graph: g };
  });
  const global = new Graph('global');
  global.inputs = [new Value('x', 'float32', [3])];
  global.outputs = [new Value('y', 'float32', [3])];
  return { programs, plan: { graph: global, mesh, strategy: 'test', bindings: {}, collectives: [], seeds: new Map() } as unknown as ShardPlan };
}

describe('collectives on WebGPU', () => {
  const mesh = DeviceMesh.parse('tp=2');
  const feeds = new Map([['x', Tensor.from('float32', [3], [1, 2, 3])]]);

  test('an all-reduce over two devices sums their partial products (hand-computed)', async () => {
    const { programs, plan } = allReducePrograms(mesh, ['ar', 'ar']);
    const got = await runSpmdWebGPU(programs, mesh, feeds, { registry, plan, backends: backends.slice(0, 2) });
    // x·w0 + x·w1 = [1·1+1·2, 2·10+2·20, 3·100+3·200]
    expect(Array.from(got.outputs.get('y')!.data)).toEqual([3, 60, 900]);
    expect(Array.from(got.perDevice[1]!.get('y')!.data)).toEqual([3, 60, 900]);
  });

  test('devices waiting at different collectives fail with an error naming both (no hang)', async () => {
    const { programs, plan } = allReducePrograms(mesh, ['ar-a', 'ar-b']);
    await expect(runSpmdWebGPU(programs, mesh, feeds, { registry, plan, backends: backends.slice(0, 2) })).rejects.toThrow(
      /stuck: device 0 waits at collective AllReduce over tp "ar-a": device 1 waits at collective AllReduce over tp "ar-b" instead/,
    );
  });
});
