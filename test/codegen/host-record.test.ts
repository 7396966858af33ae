/**
 * Host programs without a GPU: the example transformers recorded ahead of time (record.ts), memory
 * planned (memory.ts) and run on the kernel-IR CPU executor over the planned slots (cpu-run.ts)
 * equal the CPU reference runtime, on one device and as tp=2 megatron programs in lockstep; the
 * plan reuses memory and never lets two simultaneously live buffers share a slot; a node that
 * needs a device value on the host cannot be compiled ahead of time.
 */
import { runHostProgramCpu, runHostProgramsCpu } from '../../src/codegen/host/cpu-run.js';
import { collectiveLaunches } from '../../src/codegen/host/collective-kernels.js';
import { collectiveAttrs, localCollectiveHost, lockstepSchedule } from '../../src/codegen/host/lockstep.js';
import { executeLaunch } from '../../src/codegen/cpu.js';
import { runCollective } from '../../src/targets/cpu/collectives.js';
import { liveIntervals, memoryStats, planMemory } from '../../src/codegen/host/memory.js';
import type { CollectiveStep, HostProgram } from '../../src/codegen/host/program.js';
import { recordHostProgram } from '../../src/codegen/host/record.js';
import { UserError } from '../../src/ir/errors.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { importModel } from '../../src/onnx/import.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { type DeviceProgram, lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { assembleOutputs, scatterFeeds } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { bertModel, gptModel, llamaModel } from '../../examples/models/transformers.js';
import { Attrs } from '../../src/ir/attrs.js';

const registry = createCoreRegistry();
const TOL = { rtol: 1e-5, atol: 1e-5 };
const bindings = { batch: 2, sequence: 5 };
const models: Record<string, () => Uint8Array> = {
  'gpt-tiny': () => gptModel().encode(),
  'bert-tiny': () => bertModel().encode(),
  'llama-tiny': () => llamaModel().encode(),
};

const shapesOf = (feeds: ReadonlyMap<string, Tensor>) => [...feeds].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] }));

function expectClose(got: ReadonlyMap<string, Tensor>, want: ReadonlyMap<string, Tensor>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, t] of want) expect({ k, message: compareTensors(got.get(k)!, t, TOL).message }).toEqual({ k, message: '' });
}

/** No two buffers with overlapping live intervals share a slot (checked over every pair). */
function expectSoundPlan(p: HostProgram): void {
  const live = liveIntervals(p);
  const ids = [...live.keys()];
  let conflicts = 0;
  for (let a = 0; a < ids.length; a++)
    for (let b = a + 1; b < ids.length; b++) {
      const x = live.get(ids[a]!)!, y = live.get(ids[b]!)!;
      if (p.buffers[ids[a]!]!.slot === p.buffers[ids[b]!]!.slot && x.start <= y.end && y.start <= x.end) conflicts++;
    }
  expect(conflicts).toBe(0);
  const slotOwners = new Map<number, string>();
  for (const b of p.buffers) {
    expect(p.slots[b.slot]!.bytes).toBeGreaterThanOrEqual(Math.max(1, b.length) * 4);
    // Inputs and constants own their slots.
    if (b.role !== 'temp') {
      expect(slotOwners.has(b.slot)).toBe(false);
      slotOwners.set(b.slot, b.role);
    }
  }
  for (const b of p.buffers) if (b.role === 'temp') expect(slotOwners.has(b.slot)).toBe(false);
}

describe('one device: record + plan + CPU run equals the reference runtime', () => {
  test.each(Object.keys(models))('%s', (model) => {
    const graph = importModel(models[model]!(), { file: `${model}.onnx` }).graph;
    const feeds = randomInputs(graph, { seed: 5, dims: bindings });
    const want = runGraph(graph, feeds, { registry });
    const recorded = recordHostProgram(graph, shapesOf(feeds), { registry });
    const p = planMemory(recorded);
    expectSoundPlan(p);
    const stats = memoryStats(p);
    expect(stats.peakBytes).toBeLessThan(stats.totalTempBytes / 2);
    expect(stats.peakBytes).toBeGreaterThanOrEqual(stats.liveBytes);
    expectClose(runHostProgramCpu(p, feeds), want);
    // Deterministic: recording twice gives the same program.
    expect(JSON.stringify(planMemory(recordHostProgram(graph, shapesOf(feeds), { registry })))).toBe(JSON.stringify(p));
    // Kernels are shared between layers (deduplicated by code).
    expect(p.kernels.length).toBeLessThan(p.steps.length / 2);
  });
});

function megatron(model: string, mesh: DeviceMesh): { programs: DeviceProgram[]; plan: ReturnType<typeof shardGraph> } {
  const bytes = models[model]!();
  const rules = createCoreShardingRules();
  const plan = shardGraph(importModel(bytes, { file: `${model}.onnx` }).graph, mesh, { strategy: 'megatron', registry, rules, bindings });
  return { programs: lowerPlan(plan, { registry, rules }), plan };
}

describe('tp=2 megatron: per-device host programs in lockstep equal the reference runtime', () => {
  test.each(['gpt-tiny', 'llama-tiny', 'bert-tiny'])('%s', (model) => {
    const reference = importModel(models[model]!(), { file: `${model}.onnx` }).graph;
    const feeds = randomInputs(reference, { seed: 7, dims: bindings });
    const want = runGraph(reference, feeds, { registry });
    const mesh = DeviceMesh.parse('tp=2');
    const { programs, plan } = megatron(model, mesh);
    const local = scatterFeeds(programs, plan, mesh, feeds);
    const hosts = programs.map((p, d) => planMemory(recordHostProgram(p.graph, shapesOf(local[d]!), { registry, device: d, mesh })));
    for (const h of hosts) {
      expectSoundPlan(h);
      expect(h.steps.some((s) => s.kind === 'collective' && s.op === 'AllReduce' && s.group.join() === '0,1')).toBe(true);
    }
    const perDevice = runHostProgramsCpu(hosts, local);
    expectClose(assembleOutputs(plan, perDevice, mesh), want);
  });
});

describe('memory plan', () => {
  test('a chain of elementwise ops reuses two slots (peak < sum of temps)', () => {
    const g = new Graph('chain');
    const x = new Value('x', 'float32', [64]);
    g.inputs = [x];
    let h = x;
    for (let i = 0; i < 6; i++) {
      const y = new Value(`h${i}`, 'float32', [64]);
      g.addNode(new Node(i % 2 ? 'Neg' : 'Exp', [h], [y], new Attrs(), `n${i}`));
      h = y;
    }
    g.outputs = [h];
    const p = planMemory(recordHostProgram(g, [{ name: 'x', dtype: 'float32', shape: [64] }], { registry }));
    expectSoundPlan(p);
    const s = memoryStats(p);
    expect(s.totalTempBytes).toBe(6 * 64 * 4);
    expect(s.peakBytes).toBe(2 * 64 * 4);
    expect(s.slots).toBe(3); // input + two alternating temps
    const xs = Tensor.from('float32', [64], Array.from({ length: 64 }, (_, i) => i / 64));
    expectClose(runHostProgramCpu(p, new Map([['x', xs]])), runGraph(g, new Map([['x', xs]]), { registry }));
  });

  test('graph outputs that alias an input or a constant still work', () => {
    const g = new Graph('alias');
    const x = new Value('x', 'float32', [2, 3]);
    const c = new Value('c', 'float32', [2]);
    c.constant = { load: () => Tensor.from('float32', [2], [4, 5]) } as unknown as Value['constant'];
    const shape = new Value('shape', 'int64', [1]);
    shape.constant = { load: () => Tensor.from('int64', [1], [6]) } as unknown as Value['constant'];
    const y = new Value('y', 'float32', [6]);
    const d = new Value('d', 'float32', [2]);
    g.inputs = [x];
    g.initializers = [c, shape];
    g.addNode(new Node('Reshape', [x, shape], [y], new Attrs(), 'flat'));
    g.addNode(new Node('Identity', [c], [d], new Attrs(), 'id'));
    g.outputs = [y, x, c, d];
    const p = planMemory(recordHostProgram(g, [{ name: 'x', dtype: 'float32', shape: [2, 3] }], { registry }));
    expect(p.steps).toHaveLength(0);
    expect(p.outputs[0]!.buffer).toBe(p.inputs[0]!.buffer);
    expect(p.outputs[2]!.host?.toArray()).toEqual([4, 5]);
    const xs = Tensor.from('float32', [2, 3], [1, 2, 3, 4, 5, 6]);
    const got = runHostProgramCpu(p, new Map([['x', xs]]));
    expect(got.get('y')!.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(got.get('y')!.shape).toEqual([6]);
    expect(got.get('d')!.toArray()).toEqual([4, 5]);
  });
});

describe('errors', () => {
  test('a shape computed on the device is data-dependent: UserError naming the node', () => {
    const g = new Graph('dd');
    const x = new Value('x', 'float32', [2, 3]);
    const s = new Value('s', 'int64', [2]);
    const s2 = new Value('s2', 'int64', [2]);
    const y = new Value('y', 'float32', [3, 2]);
    g.inputs = [x, s];
    g.addNode(new Node('Neg', [s], [s2], new Attrs(), 'neg_shape'));
    g.addNode(new Node('Reshape', [x, s2], [y], new Attrs(), 'reshape_dd'));
    g.outputs = [y];
    const run = () => recordHostProgram(g, [{ name: 'x', dtype: 'float32', shape: [2, 3] }, { name: 's', dtype: 'int64', shape: [2] }], { registry });
    expect(run).toThrow(UserError);
    expect(run).toThrow(/data-dependent Reshape.*"s2".*cannot be compiled ahead of time/);
    try {
      run();
    } catch (e) {
      expect((e as UserError).location.node).toBe('reshape_dd');
    }
  });

  test('devices reaching different collectives fail before a run, naming both', () => {
    const mk = (d: number, label: string): HostProgram => ({
      format: 'shardc-host-program/1', device: d, kernels: [], slots: [{ bytes: 12 }, { bytes: 12 }],
      buffers: [
        { id: 0, type: 'f32', length: 3, role: 'input', value: 'x', slot: 0 },
        { id: 1, type: 'f32', length: 3, role: 'temp', value: 'y', slot: 1 },
      ],
      inputs: [{ name: 'x', dtype: 'float32', shape: [3], buffer: 0 }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [3], buffer: 1 }],
      steps: [{ kind: 'collective', node: label, op: 'AllReduce', axis: 'tp', group: [0, 1], attributes: { reduce: 'sum' }, input: 0, output: 1, dtype: 'float32', inputShape: [3], outputShape: [3] }],
    });
    expect(() => lockstepSchedule([mk(0, 'ar-a'), mk(1, 'ar-b')])).toThrow(
      /stuck: device 0 waits at collective AllReduce over tp "ar-a": device 1 waits at collective AllReduce over tp "ar-b" instead/,
    );
    const x = (v: number) => new Map([['x', Tensor.from('float32', [3], [v, 2 * v, 3 * v])]]);
    const out = runHostProgramsCpu([mk(0, 'ar'), mk(1, 'ar')], [x(1), x(10)]);
    expect(out[1]!.get('y')!.toArray()).toEqual([11, 22, 33]);
  });
});

describe('collectives as box-copy kernels (CPU executor) equal runCollective', () => {
  const step = (op: string, attributes: CollectiveStep['attributes'], inShape: number[], outShape: number[], k: number): CollectiveStep => ({
    kind: 'collective', node: `${op}-test`, op, axis: 'tp', group: Array.from({ length: k }, (_, i) => i), attributes, input: 0, output: 1,
    dtype: 'float32', inputShape: inShape, outputShape: outShape,
  });
  const rand = (shape: number[], seed: number) => Tensor.from('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(seed * 7 + i * 1.3)));
  /** Runs the launches on the CPU executor over members' (input, output) arrays. */
  function runLaunches(steps: CollectiveStep[], inputs: Tensor[], maxBuffers = 8, index?: number): Tensor[] {
    const launches = collectiveLaunches(steps, maxBuffers, index)!;
    expect(launches).toBeDefined();
    const ins = inputs.map((t) => Float32Array.from(t.data as Float32Array));
    const outs = steps.map((s) => new Float32Array(s.outputShape.reduce((a, b) => a * b, 1)).fill(NaN));
    for (const l of launches) {
      const bufs: Record<string, Float32Array> = {};
      for (const [name, m] of Object.entries(l.bind)) bufs[name] = m.which === 'input' ? ins[m.member]! : outs[m.member]!;
      executeLaunch(l.launch, bufs);
    }
    return outs.map((o, m) => Tensor.from('float32', steps[m]!.outputShape, o));
  }
  const cases: [string, CollectiveStep['attributes'], number[][]][] = [
    ['AllReduce', { reduce: 'sum' }, [[2, 3], [2, 3], [2, 3]]],
    ['AllReduce', { reduce: 'max' }, [[4], [4]]],
    ['AllGather', { dim: 1 }, [[2, 3, 2], [2, 2, 2], [2, 2, 2]]],
    ['AllGather', { dim: 0 }, [[3, 2], [2, 2]]],
    ['ReduceScatter', { dim: 1, reduce: 'sum' }, [[2, 7, 2], [2, 7, 2], [2, 7, 2]]],
    ['ReduceScatter', { dim: 0, reduce: 'min', unit: 2 }, [[6, 3], [6, 3]]],
    ['AllToAll', { from_dim: 0, to_dim: 2, unit: 1 }, [[2, 3, 5], [1, 3, 5]]],
    ['AllToAll', { from_dim: 1, to_dim: 0 }, [[5, 2], [5, 3], [5, 1]]],
    ['Broadcast', { root: 1 }, [[2, 2], [2, 2], [2, 2]]],
  ];
  test.each(cases)('%s %j %j', (op, attributes, shapes) => {
    const inputs = shapes.map((s, m) => rand(s, m + 1));
    const want = runCollective(op, collectiveAttrs(step(op, attributes, [], [], shapes.length)), inputs);
    const steps = shapes.map((s, m) => step(op, attributes, s, [...want[m]!.shape], shapes.length));
    const got = runLaunches(steps, inputs, op === 'AllReduce' ? 4 : 8);
    got.forEach((t, m) => expect(compareTensors(t, want[m]!, { rtol: 1e-6, atol: 1e-6 }).message).toBe(''));
  });
  test.each([
    ['LocalShard', { dim: 1, unit: 1 }, [3, 5], [3, 2], 1],
    ['LocalPartial', { reduce: 'sum' }, [3, 5], [3, 5], 1],
    ['LocalPartial', { reduce: 'sum' }, [3, 5], [3, 5], 0],
  ] as [string, CollectiveStep['attributes'], number[], number[], number][])('%s %j', (op, attributes, inShape, outShape, index) => {
    const s = step(op, attributes, inShape, outShape, 2);
    const x = rand(inShape, 3);
    expect(runLaunches([s], [x], 8, index)[0]!.toArray()).toEqual(localCollectiveHost(s, x, index).toArray());
  });
  test('more members than buffers per kernel: not done by kernels', () => {
    const shapes = [[2], [2], [2], [2]];
    expect(collectiveLaunches(shapes.map((s) => step('AllReduce', {}, s, s, 4)), 4)).toBeUndefined();
  });
});
