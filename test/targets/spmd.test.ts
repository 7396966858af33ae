/** The simulated multi-device runtime: real collective semantics, lockstep failures, global assembly. */
import { Attrs } from '../../src/ir/attrs.js';
import { UserError } from '../../src/ir/errors.js';
import { Tensor } from '../../src/ir/tensor.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { ShardingRuleRegistry } from '../../src/passes/sharding/rule.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { runCollective } from '../../src/targets/cpu/collectives.js';
import { runSpmd } from '../../src/targets/cpu/spmd.js';
import { verifyGraph } from '../../src/ir/verify.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { GPT_TINY, bertModel, gptModel, llamaModel } from '../../examples/models/transformers.js';
import { int, str } from '../passes/graph-builder.js';
import {
  P,
  S,
  TwinBuilder,
  allReduce,
  expectClose,
  gather,
  layout,
  mlp,
  plan,
  registry,
  rnd,
} from '../sharding/lowering-fixtures.js';
import { userErrorMessage } from '../helpers/ops.js';

const rules = new ShardingRuleRegistry();
const f32 = (shape: number[], xs: number[]): Tensor => Tensor.from('float32', shape, xs);
const attrs = (o: Record<string, ReturnType<typeof int>>): Attrs => new Attrs(Object.entries(o));

describe('collective semantics on hand-computed values', () => {
  const a = f32([2, 2], [1, 2, 3, 4]);
  const b = f32([2, 1], [10, 20]);
  const c = f32([2, 2], [-1, 5, 0, 9]);

  test('AllReduce sum/max/min', () => {
    expect(runCollective('AllReduce', attrs({ reduce: str('sum') }), [a, c]).map((t) => t.toArray())).toEqual([
      [0, 7, 3, 13],
      [0, 7, 3, 13],
    ]);
    expect(runCollective('AllReduce', attrs({ reduce: str('max') }), [a, c])[1]!.toArray()).toEqual([1, 5, 3, 9]);
    expect(runCollective('AllReduce', attrs({ reduce: str('min') }), [a, c])[0]!.toArray()).toEqual([-1, 2, 0, 4]);
  });

  test('AllGather concatenates uneven shards in axis order', () => {
    const [o0, o1] = runCollective('AllGather', attrs({ dim: int(1) }), [a, b]);
    expect(o0!.shape).toEqual([2, 3]);
    expect(o0!.toArray()).toEqual([1, 2, 10, 3, 4, 20]);
    expect(o1).toBe(o0);
  });

  test('ReduceScatter in blocks of unit', () => {
    const x = f32([6], [1, 2, 3, 4, 5, 6]);
    const y = f32([6], [10, 20, 30, 40, 50, 60]);
    // 6 elements in blocks of 2 over 2 members: 3 blocks → 2 blocks (4 elements) and 1 block.
    const out = runCollective('ReduceScatter', attrs({ dim: int(0), unit: int(2) }), [x, y]);
    expect(out.map((t) => t.toArray())).toEqual([
      [11, 22, 33, 44],
      [55, 66],
    ]);
  });

  test('AllToAll moves the split from one dim to another', () => {
    // Global [4,3] split on dim 0 over 2 (rows 0-1, 2-3) → split on dim 1 (cols 0-1, col 2).
    const g = [0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32];
    const x0 = f32([2, 3], g.slice(0, 6));
    const x1 = f32([2, 3], g.slice(6));
    const [y0, y1] = runCollective('AllToAll', attrs({ from_dim: int(0), to_dim: int(1) }), [x0, x1]);
    expect(y0!.shape).toEqual([4, 2]);
    expect(y0!.toArray()).toEqual([0, 1, 10, 11, 20, 21, 30, 31]);
    expect(y1!.shape).toEqual([4, 1]);
    expect(y1!.toArray()).toEqual([2, 12, 22, 32]);
  });

  test('LocalShard, LocalPartial, Broadcast', () => {
    const x = f32([5], [1, 2, 3, 4, 5]);
    expect(runCollective('LocalShard', attrs({ dim: int(0) }), [x, x, x]).map((t) => t.toArray())).toEqual([[1, 2], [3, 4], [5]]);
    expect(runCollective('LocalPartial', attrs({ reduce: str('sum') }), [x, x]).map((t) => t.toArray())).toEqual([
      [1, 2, 3, 4, 5],
      [0, 0, 0, 0, 0],
    ]);
    expect(runCollective('Broadcast', attrs({ root: int(1) }), [a, c])[0]!.toArray()).toEqual([-1, 5, 0, 9]);
  });

  test('mismatched shapes are user errors', () => {
    expect(() => runCollective('AllReduce', attrs({}), [a, b])).toThrow(UserError);
    expect(() => runCollective('AllGather', attrs({ dim: int(0) }), [a, b])).toThrow(/differ outside dim 0/);
  });
});

describe('runSpmd matches the unsharded run', () => {
  const cases = [
    { mesh: 'tp=2', o: { batch: 4, din: 8, hidden: 8, dout: 6, tp: 'tp' } },
    { mesh: 'tp=3', o: { batch: 3, din: 5, hidden: 10, dout: 4, tp: 'tp' } },
    { mesh: 'tp=4', o: { batch: 2, din: 3, hidden: 6, dout: 5, tp: 'tp' } },
    { mesh: 'dp=2', o: { batch: 4, din: 8, hidden: 8, dout: 6, dp: 'dp' } },
    { mesh: 'dp=3', o: { batch: 5, din: 4, hidden: 7, dout: 3, dp: 'dp' } },
    { mesh: 'dp=2,tp=2', o: { batch: 4, din: 6, hidden: 10, dout: 3, dp: 'dp', tp: 'tp' } },
    { mesh: 'dp=2,tp=3', o: { batch: 3, din: 6, hidden: 10, dout: 3, dp: 'dp', tp: 'tp' } },
  ];
  test.each(cases)('MLP on $mesh', ({ mesh: spec, o }) => {
    const { graph, plain } = mlp(o);
    const mesh = DeviceMesh.parse(spec);
    const p = plan(graph, mesh);
    const programs = lowerPlan(p, { registry, rules });
    const feeds = new Map([['x', rnd([o.batch, o.din], 11)]]);
    const want = runGraph(plain, feeds, { registry });
    const got = runSpmd(programs, mesh, feeds, { registry, plan: p });
    expectClose(got.outputs.get('out'), want.get('out'));
    expect(got.perDevice.length).toBe(mesh.deviceCount);
    if (o.dp) {
      // Batch split: each device holds its rows of the output.
      const rows = got.perDevice.map((m) => m.get('out')!.shape[0]);
      expect(rows.reduce((s, n) => s + n!, 0)).toBe(o.batch * (o.tp ? mesh.axis('tp').size : 1));
    } else for (const m of got.perDevice) expectClose(m.get('out'), want.get('out'));
  });

  test('every collective in one graph, uneven (x[5,7] on tp=3)', () => {
    const b = new TwinBuilder();
    const x = b.input('x', 'float32', [5, 7]);
    const xs = b.collective('LocalShard', x, layout({ tp: S(1) }), gather('tp', 1), 'xs'); // cols 3,2,2
    const t = b.op('Tanh', [xs], layout({ tp: S(1) }), {}, 't');
    const t2 = b.collective('AllToAll', t, layout({ tp: S(0) }), { axis: str('tp'), from_dim: int(1), to_dim: int(0), unit: int(1) }, 't2'); // rows 2,2,1
    const e = b.op('Exp', [t2], layout({ tp: S(0) }), {}, 'e');
    const g = b.collective('AllGather', e, new Map(), gather('tp', 0), 'g');
    const pz = b.collective('LocalPartial', g, layout({ tp: P('sum') }), { axis: str('tp'), reduce: str('sum') }, 'pz');
    const two = b.weight('two', Tensor.scalar('float32', 2));
    const m = b.op('Mul', [pz, two], layout({ tp: P('sum') }), {}, 'm');
    const rs = b.collective('ReduceScatter', m, layout({ tp: S(1) }), { axis: str('tp'), dim: int(1), unit: int(1), reduce: str('sum') }, 'rs');
    const mx = b.op('Neg', [rs], layout({ tp: S(1) }), {}, 'neg');
    const ag = b.collective('AllGather', mx, new Map(), gather('tp', 1), 'ag');
    const bc = b.collective('Broadcast', ag, new Map(), { axis: str('tp'), root: int(2) }, 'out');
    const sh = b.op('Sigmoid', [rs], layout({ tp: S(1) }), {}, 'sharded_out');
    const { graph, plain } = b.build([bc, sh]);
    const mesh = DeviceMesh.parse('tp=3');
    const p = plan(graph, mesh);
    const programs = lowerPlan(p, { registry, rules });
    const feeds = new Map([['x', rnd([5, 7], 3)]]);
    const want = runGraph(plain, feeds, { registry });
    const got = runSpmd(programs, mesh, feeds, { registry, plan: p });
    expectClose(got.outputs.get('out'), want.get('out'));
    expectClose(got.outputs.get('sharded_out'), want.get('sharded_out'));
    expect(got.perDevice.map((d) => d.get('sharded_out')!.shape)).toEqual([
      [5, 3],
      [5, 2],
      [5, 2],
    ]);
  });

  test('a partial output is reduced when assembled', () => {
    const b = new TwinBuilder();
    const x = b.input('x', 'float32', [2, 6], layout({ tp: S(1) }));
    const w = b.weight('w', rnd([6, 3], 8), layout({ tp: S(0) }));
    const y = b.op('MatMul', [x, w], layout({ tp: P('sum') }), {}, 'y');
    const { graph, plain } = b.build([y]);
    const mesh = DeviceMesh.parse('tp=4');
    const p = plan(graph, mesh);
    const feeds = new Map([['x', rnd([2, 6], 4)]]);
    const got = runSpmd(lowerPlan(p, { registry, rules }), mesh, feeds, { registry, plan: p });
    expectClose(got.outputs.get('y'), runGraph(plain, feeds, { registry }).get('y'));
  });
});

describe('failures name the device and the collective', () => {
  function setup() {
    const { graph } = mlp({ batch: 2, din: 4, hidden: 6, dout: 2, tp: 'tp' });
    const mesh = DeviceMesh.parse('tp=3');
    const p = plan(graph, mesh);
    return { p, mesh, programs: lowerPlan(p, { registry, rules }), feeds: new Map([['x', rnd([2, 4], 1)]]) };
  }

  const message = userErrorMessage;

  test('a device that never reaches the collective', () => {
    const { p, mesh, programs, feeds } = setup();
    const g = programs[2]!.graph;
    // Device 2's program skips the AllReduce (its output comes straight from the partial).
    const ar = g.nodes.findIndex((n) => n.op === 'AllReduce');
    const add = g.nodes[ar + 1]!;
    add.inputs[0] = g.nodes[ar]!.inputs[0]!;
    g.nodes.splice(ar, 1);
    const msg = message(() => runSpmd(programs, mesh, feeds, { registry, plan: p }));
    expect(msg).toMatch(/device 0 waits at collective AllReduce over tp "AllReduce_y": device 2 never reaches it \(its program ended\)/);
  });

  test('a device that waits at another collective', () => {
    const { p, mesh, programs, feeds } = setup();
    const ar = programs[1]!.graph.nodes.find((n) => n.op === 'AllReduce')!;
    ar.name = 'other';
    const msg = message(() => runSpmd(programs, mesh, feeds, { registry, plan: p }));
    expect(msg).toMatch(/device 0 waits at collective AllReduce over tp "AllReduce_y": device 1 waits at collective AllReduce over tp "other" instead/);
  });

  test('a device whose op fails', () => {
    const { p, mesh, programs, feeds } = setup();
    const w1 = programs[1]!.graph.initializers.find((v) => v.name === 'w1')!;
    w1.constant = { ...w1.constant!, load: () => Tensor.zeros('float32', [3, 2]) } as typeof w1.constant;
    const msg = message(() => runSpmd(programs, mesh, feeds, { registry, plan: p }));
    expect(msg).toMatch(/device 1 failed: .*device 0 waits at collective AllReduce over tp "AllReduce_y"/);
    expect(msg).toMatch(/node "MatMul\(h\)"/);
  });

  test('a collective whose result does not have the shape the program expects', () => {
    const { p, mesh, programs, feeds } = setup();
    for (const prog of programs) {
      const ar = prog.graph.nodes.find((n) => n.op === 'AllReduce')!;
      ar.op = 'AllGather';
      ar.attrs.set('dim', int(0));
    }
    expect(message(() => runSpmd(programs, mesh, feeds, { registry, plan: p }))).toMatch(
      /collective AllGather over tp "AllReduce_y" gives device 0 shape \[6,2\] but its program expects \[2,2\]/,
    );
  });

  test('inputs of the wrong global shape and missing inputs', () => {
    const { p, mesh, programs } = setup();
    expect(message(() => runSpmd(programs, mesh, new Map([['x', rnd([3, 4], 1)]]), { registry, plan: p }))).toMatch(
      /tensor "x": input has shape \[3,4\] but the plan was made for \[2,4\]/,
    );
    expect(message(() => runSpmd(programs, mesh, new Map(), { registry, plan: p }))).toMatch(/tensor "x": missing graph input/);
  });
});

test('an AllReduce of replicas sums them (the simulator does not second-guess the plan)', () => {
  const b = new TwinBuilder();
  const x = b.input('x', 'float32', [3]);
  const y = b.collective('AllReduce', x, new Map(), allReduce('tp'), 'y');
  const { graph } = b.build([y]);
  const mesh = DeviceMesh.parse('tp=2');
  const p = plan(graph, mesh);
  const got = runSpmd(lowerPlan(p, { registry, rules }), mesh, new Map([['x', f32([3], [1, 2, 3])]]), { registry, plan: p });
  expect(got.outputs.get('y')!.toArray()).toEqual([2, 4, 6]);
});

/**
 * Whole models through the sharding pipeline: shardGraph (propagation helper) → lowerPlan →
 * runSpmd, compared with the unsharded CPU run. Uneven sizes: 4 heads on tp=3, 6 heads on tp=4,
 * vocabulary 97 on tp=4.
 */
describe('example transformers: shardGraph + lowerPlan + runSpmd match the unsharded run', () => {
  const bindings = { batch: 2, sequence: 5 };
  const models: Record<string, () => Uint8Array> = {
    'gpt-tiny': () => gptModel().encode(),
    'bert-tiny': () => bertModel().encode(),
    'llama-tiny': () => llamaModel().encode(),
    'gpt-uneven': () => gptModel({ ...GPT_TINY, hidden: 48, heads: 6, vocab: 97, ffn: 90 }).encode(),
  };
  const cases: [string, string, string][] = [];
  for (const m of Object.keys(models)) {
    for (const tp of ['tp=2', 'tp=3', 'tp=4']) cases.push([m, tp, 'megatron']);
    cases.push([m, 'dp=2', 'data'], [m, 'dp=2,tp=2', 'data+megatron']);
  }
  test.each(cases)('%s on %s (%s)', (model, meshSpec, strategy) => {
    const bytes = models[model]!();
    const reference = importModel(bytes, { file: `${model}.onnx` }).graph;
    const feeds = randomInputs(reference, { seed: 3, dims: bindings });
    const want = runGraph(reference, feeds, { registry });
    const graph = importModel(bytes, { file: `${model}.onnx` }).graph;
    const mesh = DeviceMesh.parse(meshSpec);
    const rules = createCoreShardingRules();
    const p = shardGraph(graph, mesh, { strategy, registry, rules, bindings });
    const programs = lowerPlan(p, { registry, rules });
    for (const prog of programs) verifyGraph(prog.graph, registry);
    const got = runSpmd(programs, mesh, feeds, { registry, plan: p });
    for (const [k, t] of want) expectClose(got.outputs.get(k), t);
    // Each device's program exports as ONNX, re-imports, and runs to the same result.
    const back = programs.map((prog) => ({ ...prog, graph: importModel(exportModel(prog.graph), { file: `${model}-${prog.device}.onnx` }).graph }));
    const again = runSpmd(back, mesh, feeds, { registry, plan: p });
    for (const [k, t] of got.outputs) expectClose(again.outputs.get(k), t, { rtol: 0, atol: 0 });
  });
});
