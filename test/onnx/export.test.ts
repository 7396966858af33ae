/**
 * IR → ONNX export: round trips through our importer and through onnxruntime-node, opset
 * fix-ups, every attribute kind, and per-shard export of lowered device graphs.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Attrs } from '../../src/ir/attrs.js';
import { UserError } from '../../src/ir/errors.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { LazyTensor, Tensor } from '../../src/ir/tensor.js';
import { verifyGraph } from '../../src/ir/verify.js';
import { ModelBuilder } from '../../src/onnx/builder.js';
import { exportModel, exportModelProto } from '../../src/onnx/export.js';
import { importModel, loadModel } from '../../src/onnx/import.js';
import { decodeModelProto } from '../../src/onnx/proto.js';
import { readTensorFile } from '../../src/onnx/tensor-file.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { ShardingRuleRegistry } from '../../src/passes/sharding/rule.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { runSpmd } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { compareOutputs } from '../../src/verify/conformance.js';
import { feedsFromFiles, numberedTensorFiles, testDataSets } from '../../src/verify/feeds.js';
import { runWithOrt } from '../../src/verify/ort.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { mlp, plan, registry, rnd } from '../sharding/lowering-fixtures.js';

const ROOT = join(__dirname, '..', '..');
const NODE_TESTS = join(ROOT, '..', 'shared', 'onnx-node-tests');
const tmp = mkdtempSync(join(tmpdir(), 'shardc-export-'));
let fileNo = 0;

function save(bytes: Uint8Array): string {
  const f = join(tmp, `m${fileNo++}.onnx`);
  writeFileSync(f, bytes);
  return f;
}

const reimport = (bytes: Uint8Array, file = 'exported.onnx'): Graph => importModel(bytes, { file, baseDir: tmp }).graph;

function expectSame(got: ReadonlyMap<string, Tensor>, want: ReadonlyMap<string, Tensor>, tol = { rtol: 0, atol: 0 }): void {
  expect([...got.keys()]).toEqual([...want.keys()]);
  for (const [k, t] of want) expect(`${k}: ${compareTensors(got.get(k)!, t, tol).message}`).toBe(`${k}: `);
}

describe('example models', () => {
  for (const name of ['gpt-tiny.onnx', 'bert-tiny.onnx', 'llama-tiny.onnx']) {
    test(`${name}: exported, re-imported and run gives the same outputs; onnxruntime-node agrees`, async () => {
      const file = join(ROOT, 'examples', name);
      const graph = loadModel(file).graph;
      const feeds = randomInputs(graph, { seed: 5, dims: { batch: 2, sequence: 7 } });
      const want = runGraph(graph, feeds, { registry });
      const bytes = exportModel(graph);
      const back = reimport(bytes);
      verifyGraph(back, registry);
      expect(back.nodes.map((n) => n.op)).toEqual(graph.nodes.map((n) => n.op));
      expectSame(runGraph(back, feeds, { registry }), want);
      const ort = await runWithOrt(save(bytes), feeds);
      expectSame(ort, want, { rtol: 1e-4, atol: 1e-5 });
    });
  }
});

describe('conformance models', () => {
  const expected = JSON.parse(readFileSync(join(ROOT, 'test', 'conformance', 'expected-cpu.json'), 'utf8')) as Record<string, string>;
  const passing = Object.keys(expected)
    .filter((t) => expected[t] === 'pass')
    .sort();

  test('there are passing conformance models to round-trip', () => {
    expect(passing.length).toBeGreaterThan(600);
  });

  test('every passing conformance model still passes after export and re-import', () => {
    const failures: string[] = [];
    for (const t of passing) {
      const dir = join(NODE_TESTS, t);
      try {
        const graph = reimport(exportModel(loadModel(join(dir, 'model.onnx')).graph), join(dir, 'model.onnx'));
        for (const set of testDataSets(dir)) {
          const inputs = numberedTensorFiles(set, 'input').map((f) => readTensorFile(f));
          const want = numberedTensorFiles(set, 'output').map((f) => readTensorFile(f));
          const got = runGraph(graph, feedsFromFiles(graph, inputs, set), { registry });
          const m = compareOutputs(graph, got, want, { rtol: 1e-3, atol: 1e-7 });
          if (m) throw new Error(m);
        }
      } catch (e) {
        failures.push(`${t}: ${(e as Error).message}`);
      }
    }
    expect(failures).toEqual([]);
  });

  // onnxruntime-node lacks some kernels (BitShift uint16, bfloat16 Cast, ...): there the exported
  // model must fail exactly like the original; elsewhere both give identical outputs.
  test('onnxruntime-node gives the exported model the same outputs (or the same error) as the original', async () => {
    const differences: string[] = [];
    const outcome = async (file: string, feeds: Map<string, Tensor>): Promise<Map<string, Tensor> | string> => {
      try {
        return await runWithOrt(file, feeds);
      } catch (e) {
        return (e as Error).message.replace(/^.*?: onnxruntime-node/, 'onnxruntime-node').replace(/node with name '[^']*'/, '');
      }
    };
    let compared = 0;
    for (const t of passing) {
      const dir = join(NODE_TESTS, t);
      const original = join(dir, 'model.onnx');
      const graph = loadModel(original).graph;
      const exported = save(exportModel(graph));
      const set = testDataSets(dir)[0]!;
      const feeds = feedsFromFiles(graph, numberedTensorFiles(set, 'input').map((f) => readTensorFile(f)), set);
      const a = await outcome(original, feeds);
      const b = await outcome(exported, feeds);
      if (typeof a === 'string' || typeof b === 'string') {
        if (a !== b) differences.push(`${t}: ${typeof a === 'string' ? a : 'runs'} vs ${typeof b === 'string' ? b : 'runs'}`);
        continue;
      }
      compared++;
      for (const [k, x] of a) {
        const y = b.get(k);
        const m = y ? compareTensors(y, x, { rtol: 0, atol: 0 }).message : 'missing';
        if (m && !/^test_training_dropout/.test(t)) differences.push(`${t} ${k}: ${m}`); // training dropout is random
      }
    }
    expect(differences).toEqual([]);
    expect(compared).toBeGreaterThan(600);
  });
});

describe('opset fix-ups', () => {
  /** Opset 11: Softmax over axis 1 of a 3-D tensor (flatten-to-2D semantics), LogSoftmax over the last axis, ReduceMean/Squeeze with axes attributes, Split. */
  function legacyModel(): Uint8Array {
    const b = new ModelBuilder({ opset: 11 });
    const x = b.input('x', 'float32', [2, 4, 3]);
    const s = b.op('Softmax', [x], { axis: 1 });
    const ls = b.op('LogSoftmax', [x], { axis: 2 });
    const m = b.op('ReduceMean', [s], { axes: [2], keepdims: 1 });
    const q = b.op('Squeeze', [m], { axes: [2] });
    b.node('Split', [ls], { axis: 1 }, { outputs: ['p0', 'p1'] });
    b.output(q, 'float32', [2, 4]);
    b.output('p0', 'float32', [2, 2, 3]);
    b.output('p1', 'float32', [2, 2, 3]);
    return b.encode();
  }

  test('an opset-11 model is written at opset 18 with legacy Softmax expanded; ours and onnxruntime-node agree', async () => {
    const bytes = legacyModel();
    const graph = importModel(bytes, { file: 'legacy.onnx' }).graph;
    const proto = exportModelProto(graph);
    expect(proto.opsetImport).toEqual([{ domain: '', version: 18 }]);
    expect(proto.irVersion).toBe(8);
    const ops = proto.graph!.node!.map((n) => n.opType);
    expect(ops).toEqual(['Shape', 'Flatten', 'Softmax', 'Reshape', 'LogSoftmax', 'ReduceMean', 'Squeeze', 'Split']);
    const split = proto.graph!.node!.find((n) => n.opType === 'Split')!;
    expect(split.attribute!.find((a) => a.name === 'num_outputs')?.i).toBe(2);
    for (const n of proto.graph!.node!) expect((n.attribute ?? []).some((a) => a.name!.startsWith('_'))).toBe(false);

    const feeds = new Map([['x', rnd([2, 4, 3], 17)]]);
    const want = runGraph(graph, feeds, { registry });
    const out = exportModel(graph);
    expectSame(runGraph(reimport(out), feeds, { registry }), want);
    const fromOrt = await runWithOrt(save(out), feeds);
    expectSame(fromOrt, want, { rtol: 1e-5, atol: 1e-6 });
    const original = await runWithOrt(save(bytes), feeds);
    expectSame(original, want, { rtol: 1e-5, atol: 1e-6 });
  });

  test('an explicit opset keeps legacy Softmax as it is; one too low for a node is a user error naming it', () => {
    const b = new ModelBuilder({ opset: 11 });
    const x = b.input('x', 'float32', [2, 3, 4]);
    b.output(b.op('Softmax', [x], { axis: 1 }, 'sm'), 'float32', [2, 3, 4]);
    const graph = importModel(b.encode(), { file: 'sm.onnx' }).graph;
    const p = exportModelProto(graph);
    expect(p.opsetImport).toEqual([{ domain: '', version: 11 }]);
    expect(p.graph!.node!.map((n) => [n.opType, n.attribute!.map((a) => `${a.name}=${a.i}`)])).toEqual([['Softmax', ['axis=1']]]);

    const c = new ModelBuilder({ opset: 13 });
    const y = c.input('y', 'float32', [2, 1]);
    c.output(c.op('Squeeze', [y, c.initializer('ax', Tensor.from('int64', [1], [1]))], {}, 'sq'), 'float32', [2]);
    const g2 = importModel(c.encode(), { file: 'sq.onnx' }).graph;
    expect(() => exportModelProto(g2, { opset: 12 })).toThrow(UserError);
    expect(() => exportModelProto(g2, { opset: 12 })).toThrow(/node "sq": cannot export at opset 12: Squeeze in this form needs opset 13/);
  });
});

test('every attribute kind, inputs with defaults, value_info, metadata and custom domains round-trip', () => {
  const g = new Graph('kinds');
  g.opsets = { '': 17, 'com.example': 3 };
  g.meta.set('doc_string', 'a doc');
  g.meta.set('metadata.author', 'me');
  const x = new Value('x', 'float32', ['batch', 3]);
  const d = new Value('d', 'int64', [2]);
  d.constant = LazyTensor.of(Tensor.from('int64', [2], [4, -5]));
  g.inputs.push(x, d);
  g.initializers.push(d);
  const body = new Graph('body');
  const bi = new Value('bi', 'float32', [3]);
  const bo = new Value('bo', 'float32', [3]);
  body.inputs.push(bi);
  body.nodes.push(new Node('Neg', [x], [bo]));
  body.outputs.push(bo);
  const attrs = new Attrs([
    ['i', { kind: 'int', value: -7 }],
    ['f', { kind: 'float', value: 0.25 }],
    ['s', { kind: 'string', value: 'héllo' }],
    ['is', { kind: 'ints', value: [1, -2, 3] }],
    ['fs', { kind: 'floats', value: [0.5, -1.5] }],
    ['ss', { kind: 'strings', value: ['a', 'b'] }],
    ['t', { kind: 'tensor', value: LazyTensor.of(Tensor.from('float32', [2], [1.5, 2.5])) }],
    ['ts', { kind: 'tensors', value: [LazyTensor.of(Tensor.from('int32', [1], [9]))] }],
    ['g', { kind: 'graph', value: body }],
    ['gs', { kind: 'graphs', value: [body] }],
    ['_internal', { kind: 'int', value: 1 }],
  ]);
  const y = new Value('y', 'float32', ['batch', 3]);
  g.nodes.push(new Node('Custom', [x, null, d], [y], attrs, 'custom_node', 'com.example'));
  const z = new Value('z', 'float32', ['batch', 3]);
  g.nodes.push(new Node('Relu', [y], [z], undefined, 'relu'));
  g.outputs.push(z);

  const proto = exportModelProto(g, { producer: 'me-too' });
  expect(proto.producerName).toBe('me-too');
  expect(proto.docString).toBe('a doc');
  expect(proto.metadataProps).toEqual([{ key: 'author', value: 'me' }]);
  expect(proto.opsetImport).toEqual([
    { domain: '', version: 17 },
    { domain: 'com.example', version: 3 },
  ]);
  expect(proto.graph!.valueInfo!.map((v) => v.name)).toEqual(['y']);
  const bytes = exportModel(g);
  decodeModelProto(bytes, { file: 'kinds.onnx' });
  const back = reimport(bytes);
  expect(back.inputs.map((v) => `${v.name}:${v.dtype}[${v.shape}]:${!!v.constant}`)).toEqual(['x:float32[batch,3]:false', 'd:int64[2]:true']);
  expect(back.valuesByName().get('y')!.shape).toEqual(['batch', 3]);
  const n = back.nodes[0]!;
  expect([n.op, n.domain, n.name, n.inputs.map((v) => v?.name ?? null)]).toEqual(['Custom', 'com.example', 'custom_node', ['x', null, 'd']]);
  expect(n.attrs.int('i')).toBe(-7);
  expect(n.attrs.float('f')).toBe(0.25);
  expect(n.attrs.string('s')).toBe('héllo');
  expect(n.attrs.ints('is')).toEqual([1, -2, 3]);
  expect(n.attrs.floats('fs')).toEqual([0.5, -1.5]);
  expect(n.attrs.strings('ss')).toEqual(['a', 'b']);
  expect(n.attrs.tensor('t')!.load().toArray()).toEqual([1.5, 2.5]);
  const ts = n.attrs.get('ts');
  expect(ts?.kind === 'tensors' && ts.value[0]!.load().toArray()).toEqual([9]);
  expect(n.attrs.int('_internal')).toBe(1); // kept outside the default domain
  const sub = n.attrs.graph('g')!;
  expect(sub.nodes[0]!.op).toBe('Neg');
  expect(sub.nodes[0]!.inputs[0]!.name).toBe('x');
  const gs = n.attrs.get('gs');
  expect(gs?.kind === 'graphs' && gs.value.length).toBe(1);
  expect(back.meta.get('doc_string')).toBe('a doc');
  expect(back.meta.get('metadata.author')).toBe('me');
});

describe('per-shard export', () => {
  test('tp=2 device graphs are valid ONNX with the collective domain; they re-import and still run as SPMD', () => {
    const { graph } = mlp({ batch: 3, din: 4, hidden: 6, dout: 2, tp: 'tp' });
    const mesh = DeviceMesh.parse('tp=2');
    const p = plan(graph, mesh);
    const rules = new ShardingRuleRegistry();
    const programs = lowerPlan(p, { registry, rules });
    const exported = programs.map((prog) => exportModel(prog.graph));
    const protos = programs.map((prog) => exportModelProto(prog.graph));
    for (const pr of protos) expect(pr.opsetImport).toEqual([{ domain: '', version: 17 }, { domain: 'shardc.collective', version: 1 }]);
    const ar = protos[1]!.graph!.node!.find((n) => n.opType === 'AllReduce')!;
    expect(ar.domain).toBe('shardc.collective');
    expect(ar.attribute!.map((a) => a.name)).toEqual(['_group', '_local_shape', 'axis', 'reduce']);
    expect(protos[1]!.metadataProps).toEqual(expect.arrayContaining([{ key: 'shardc.device', value: '1' }, { key: 'shardc.mesh', value: 'tp=2' }]));
    const w1 = protos[1]!.graph!.initializer!.find((t) => t.name === 'w1')!;
    expect(w1.dims!.map(Number)).toEqual([4, 3]);

    const back = exported.map((b, d) => ({ device: d, coords: mesh.coords(d), graph: reimport(b) }));
    for (const b of back) verifyGraph(b.graph, registry);
    const feeds = new Map([['x', rnd([3, 4], 2)]]);
    const want = runSpmd(programs, mesh, feeds, { registry, plan: p });
    const got = runSpmd(back, mesh, feeds, { registry, plan: p });
    expectSame(got.outputs, want.outputs);
  });

  test('dp=2 device graphs (no collectives) load in onnxruntime-node and give each device its rows', async () => {
    const { graph, plain } = mlp({ batch: 5, din: 4, hidden: 6, dout: 3, dp: 'dp' });
    const mesh = DeviceMesh.parse('dp=2');
    const p = plan(graph, mesh);
    const programs = lowerPlan(p, { registry, rules: new ShardingRuleRegistry() });
    const x = rnd([5, 4], 21);
    const sim = runSpmd(programs, mesh, new Map([['x', x]]), { registry, plan: p });
    expectSame(sim.outputs, runGraph(plain, new Map([['x', x]]), { registry }), { rtol: 1e-5, atol: 1e-6 });
    const rows = [
      [0, 3],
      [3, 5],
    ];
    for (const prog of programs) {
      const proto = exportModelProto(prog.graph);
      expect(proto.opsetImport).toEqual([{ domain: '', version: 17 }]);
      const [lo, hi] = rows[prog.device]!;
      const local = Tensor.from('float32', [hi! - lo!, 4], x.toArray().slice(lo! * 4, hi! * 4));
      const out = await runWithOrt(save(exportModel(prog.graph)), new Map([['x', local]]));
      expectSame(out, sim.perDevice[prog.device]!, { rtol: 1e-5, atol: 1e-6 });
    }
  });
});
