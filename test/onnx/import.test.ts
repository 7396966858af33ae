import * as fs from 'node:fs';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { OpRegistry, type OpDef } from '../../src/ir/registry.js';
import { importModel, loadModel, unsupportedOps } from '../../src/onnx/import.js';
import { AT, floatTensor, graphAttr, model, node, onnx, userError, valueInfo } from './proto-helpers.js';

const TESTS = '/work/shared/onnx-node-tests';
const itData = fs.existsSync(`${TESTS}/test_add/model.onnx`) ? it : it.skip;
const imp = (bytes: Uint8Array) => importModel(bytes, { file: 'm.onnx', baseDir: '/nonexistent' });

describe('conformance models', () => {
  itData('test_add: inputs, outputs, shapes, opset', () => {
    const m = loadModel(`${TESTS}/test_add/model.onnx`);
    expect(m.irVersion).toBe(7);
    expect(m.opsets['']).toBe(14);
    expect(m.graph.opsets['']).toBe(14);
    expect(m.file).toBe(`${TESTS}/test_add/model.onnx`);
    const g = m.graph;
    expect(g.inputs.map((v) => [v.name, v.dtype, v.shape])).toEqual([
      ['x', 'float32', [3, 4, 5]],
      ['y', 'float32', [3, 4, 5]],
    ]);
    expect(g.nodes).toHaveLength(1);
    const n = g.nodes[0]!;
    expect([n.op, n.domain, n.inputs.map((v) => v?.name), n.outputs.map((v) => v.name)]).toEqual(['Add', '', ['x', 'y'], ['sum']]);
    expect(n.inputs[0]).toBe(g.inputs[0]);
    expect(g.outputs[0]).toBe(n.outputs[0]);
    expect(n.outputs[0]!.producer).toBe(n);
  });

  itData('test_constant keeps a Constant node whose value attribute matches the expected output', async () => {
    const m = loadModel(`${TESTS}/test_constant/model.onnx`);
    const n = m.graph.nodes[0]!;
    expect(n.op).toBe('Constant');
    const value = n.attrs.tensor('value')!.load();
    const { readTensorFile } = await import('../../src/onnx/tensor-file.js');
    const expected = readTensorFile(`${TESTS}/test_constant/test_data_set_0/output_0.pb`).tensor;
    expect(value.shape).toEqual([5, 5]);
    expect(Array.from(value.data)).toEqual(Array.from(expected.data));
  });

  itData('test_squeeze (opset 13) already takes axes as an input and is left alone', () => {
    const g = loadModel(`${TESTS}/test_squeeze/model.onnx`).graph;
    expect(g.nodes[0]!.inputs.map((v) => v?.name)).toEqual(['x', 'axes']);
  });

  itData('ReduceMean at opset 13: axes attribute becomes a constant int64 input', () => {
    const g = loadModel(`${TESTS}/test_reduce_mean_keepdims_example/model.onnx`).graph;
    const n = g.nodes[0]!;
    expect(n.attrs.has('axes')).toBe(false);
    expect(n.attrs.int('keepdims')).toBe(1);
    const axes = n.inputs[1]!;
    expect(axes.constant!.load().dtype).toBe('int64');
    expect(axes.constant!.load().toArray()).toEqual([1]);
    expect(g.initializers).toContain(axes);
  });

  itData('Upsample (opset 9) becomes Resize(X, "", scales) with the pre-11 coordinate mode', () => {
    const g = loadModel(`${TESTS}/test_upsample_nearest/model.onnx`).graph;
    const n = g.nodes[0]!;
    expect(n.op).toBe('Resize');
    expect(n.inputs.map((v) => v?.name ?? null)).toEqual(['X', null, 'scales']);
    expect(n.attrs.string('coordinate_transformation_mode')).toBe('asymmetric');
    expect(n.attrs.string('nearest_mode')).toBe('floor');
  });

  itData('If subgraphs are imported and may use outer values', () => {
    const g = loadModel(`${TESTS}/test_if/model.onnx`).graph;
    const n = g.nodes[0]!;
    expect(n.op).toBe('If');
    const then = n.attrs.graph('then_branch')!;
    expect(then).toBeInstanceOf(Graph);
    expect(then.outputs).toHaveLength(1);
  });

  itData('models declaring an old opset load when their op has not changed since (Not at opset 1)', () => {
    const m = loadModel(`${TESTS}/test_not_2d/model.onnx`);
    expect(m.opsets['']).toBe(1);
    expect(m.graph.nodes[0]!.op).toBe('Not');
  });

  itData('every conformance model imports or fails with a UserError', () => {
    let ok = 0;
    for (const t of fs.readdirSync(TESTS)) {
      const f = `${TESTS}/${t}/model.onnx`;
      if (!fs.existsSync(f)) continue;
      loadModel(f);
      ok++;
    }
    expect(ok).toBeGreaterThan(900);
  });
});

describe('hand-built models', () => {
  it('maps attributes of every kind', () => {
    const sub = { name: 'body', node: [node('Identity', ['x'], ['y'])], output: [valueInfo('y')] };
    const attrs = [
      { name: 'f', type: AT.FLOAT, f: 0.5 },
      { name: 'i', type: AT.INT, i: -3 },
      { name: 's', type: AT.STRING, s: new TextEncoder().encode('héllo') },
      { name: 'fs', type: AT.FLOATS, floats: [1.5, 2] },
      { name: 'is', type: AT.INTS, ints: [1, -2, 2 ** 40] },
      { name: 'ss', type: AT.STRINGS, strings: [new TextEncoder().encode('a'), new TextEncoder().encode('b')] },
      { name: 't', type: AT.TENSOR, t: floatTensor('', [2], [1, 2]) },
      { name: 'ts', type: AT.TENSORS, tensors: [floatTensor('', [1], [3])] },
      graphAttr('g', sub),
      { name: 'gs', type: AT.GRAPHS, graphs: [sub, sub] },
    ];
    const m = imp(model({ node: [node('Custom', ['x'], ['z'], attrs)], input: [valueInfo('x', 1, [2])], output: [valueInfo('z')] }));
    const a = m.graph.nodes[0]!.attrs;
    expect(a.float('f')).toBe(0.5);
    expect(a.int('i')).toBe(-3);
    expect(a.string('s')).toBe('héllo');
    expect(a.floats('fs')).toEqual([1.5, 2]);
    expect(a.ints('is')).toEqual([1, -2, 2 ** 40]);
    expect(a.strings('ss')).toEqual(['a', 'b']);
    expect(a.tensor('t')!.load().toArray()).toEqual([1, 2]);
    expect(a.get('ts')).toMatchObject({ kind: 'tensors' });
    const g = a.graph('g')!;
    // The subgraph's Identity reads the OUTER graph's x.
    expect(g.nodes[0]!.inputs[0]).toBe(m.graph.inputs[0]);
    expect(a.get('gs')).toMatchObject({ kind: 'graphs' });
  });

  it('shapes: dim_value, dim_param (sanitised) and missing dims', () => {
    const m = imp(model({ node: [node('Relu', ['x'], ['y'])], input: [valueInfo('x', 1, ['batch', 'seq len', null, 4])], output: [valueInfo('y', 1)] }));
    const x = m.graph.inputs[0]!;
    expect(x.shape![0]).toBe('batch');
    expect(x.shape![1]).toBe('seq_len');
    expect(typeof x.shape![2]).toBe('string');
    expect(x.shape![2]).toMatch(/^unk__\d+$/);
    expect(x.shape![3]).toBe(4);
    expect(m.graph.outputs[0]!.shape).toBeUndefined();
    expect(m.graph.outputs[0]!.dtype).toBe('float32');
  });

  it('inputs with an initializer are inputs with defaults (IR ≥ 4) or constants (IR < 4)', () => {
    const graph = {
      node: [node('Add', ['x', 'w'], ['y'])],
      input: [valueInfo('x', 1, [2]), valueInfo('w', 1, [2])],
      initializer: [floatTensor('w', [2], [10, 20])],
      output: [valueInfo('y', 1, [2])],
    };
    const g8 = imp(model(graph, 13, 8)).graph;
    expect(g8.inputs.map((v) => v.name)).toEqual(['x', 'w']);
    expect(g8.inputs[1]!.constant!.load().toArray()).toEqual([10, 20]);
    expect(g8.initializers[0]).toBe(g8.inputs[1]);
    const g3 = imp(model(graph, 13, 3)).graph;
    expect(g3.inputs.map((v) => v.name)).toEqual(['x']);
    expect(g3.initializers[0]!.constant!.load().toArray()).toEqual([10, 20]);
    expect(g3.nodes[0]!.inputs[1]).toBe(g3.initializers[0]);
  });

  it('orders nodes topologically and keeps absent optional inputs as null', () => {
    const m = imp(
      model({
        node: [node('Clip', ['a', '', 'hi'], ['b']), node('Relu', ['x'], ['a'])],
        input: [valueInfo('x', 1, [2]), valueInfo('hi', 1, [])],
        output: [valueInfo('b')],
      }),
    );
    expect(m.graph.nodes.map((n) => n.op)).toEqual(['Relu', 'Clip']);
    expect(m.graph.nodes[1]!.inputs[1]).toBeNull();
  });

  it('ai.onnx is the default domain; other domains are kept', () => {
    const bytes = onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: 'ai.onnx', version: 15 }, { domain: 'com.microsoft', version: 1 }],
      graph: { node: [{ opType: 'Relu', domain: 'ai.onnx', input: ['x'], output: ['y'] }, { opType: 'Gelu', domain: 'com.microsoft', input: ['y'], output: ['z'] }], input: [valueInfo('x')], output: [valueInfo('z')] },
    }).finish();
    const m = imp(bytes);
    expect(m.opsets).toEqual({ '': 15, 'com.microsoft': 1 });
    expect(m.graph.nodes.map((n) => n.domain)).toEqual(['', 'com.microsoft']);
  });
});

describe('bad models', () => {
  const base = (nodes: ReturnType<typeof node>[], extra: object = {}) =>
    model({ node: nodes, input: [valueInfo('x', 1, [2])], output: [valueInfo(nodes.at(-1)!.output![0]!)], ...extra });

  it('undefined node inputs name the node and the input', () => {
    const e = userError(() => imp(base([node('Add', ['x', 'ghost'], ['y'], [], 'adder')])));
    expect(e.message).toMatch(/m\.onnx: node "adder": input "ghost" is not defined/);
  });

  it('duplicate definitions (SSA) are rejected', () => {
    const e = userError(() => imp(base([node('Relu', ['x'], ['y'], [], 'r1'), node('Relu', ['x'], ['y'], [], 'r2')])));
    expect(e.message).toMatch(/"y" is defined twice/);
    const e2 = userError(() => imp(base([node('Relu', ['x'], ['x'], [], 'r1')])));
    expect(e2.message).toMatch(/"x" is defined twice/);
  });

  it('cycles are rejected naming the nodes', () => {
    const e = userError(() => imp(base([node('Add', ['x', 'b'], ['a'], [], 'n1'), node('Relu', ['a'], ['b'], [], 'n2')])));
    expect(e.message).toMatch(/m\.onnx.*cycle.*"n1".*"n2"/);
  });

  it('opsets outside the supported range, and old forms of changed ops', () => {
    expect(userError(() => imp(model({ node: [node('Relu', ['x'], ['y'])], input: [valueInfo('x')], output: [valueInfo('y')] }, 22))).message).toMatch(
      /opset 22 .*not supported/,
    );
    expect(userError(() => imp(model({ node: [node('Add', ['x', 'x'], ['y'])], input: [valueInfo('x')], output: [valueInfo('y')] }, 6))).message).toMatch(
      /Add at opset 6/,
    );
    const noOpset = onnx.ModelProto.encode({ irVersion: 8, graph: { node: [node('Relu', ['x'], ['y'])], input: [valueInfo('x')], output: [valueInfo('y')] } }).finish();
    expect(userError(() => imp(noOpset)).message).toMatch(/no opset for the default ONNX domain/);
  });

  it('empty, truncated and random bytes', () => {
    expect(userError(() => imp(new Uint8Array(0))).message).toMatch(/m\.onnx: not a valid ONNX model \(the file is empty\)/);
    const good = base([node('Relu', ['x'], ['y'])]);
    for (const cut of [1, 5, good.length - 1]) expect(userError(() => imp(good.subarray(0, cut))).message).toMatch(/not a valid ONNX model/);
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let k = 0; k < 200; k++) {
      const junk = Uint8Array.from({ length: 1 + Math.floor(rand() * 300) }, () => Math.floor(rand() * 256));
      expect(() => imp(junk)).toThrow(expect.objectContaining({ name: 'UserError' }));
    }
  });

  it('a missing model file is a user error', () => {
    expect(userError(() => loadModel('/nonexistent/model.onnx')).message).toMatch(/model\.onnx: file not found/);
  });

  it('a bad initializer names the tensor', () => {
    const e = userError(() => imp(base([node('Relu', ['x'], ['y'])], { initializer: [{ name: 'w', dims: [4], dataType: 1, rawData: new Uint8Array(3) }] })));
    expect(e.message).toMatch(/tensor "w": raw_data holds 3 bytes/);
  });

  it('negative declared dims are rejected', () => {
    expect(userError(() => imp(model({ node: [node('Relu', ['x'], ['y'])], input: [valueInfo('x', 1, [-2])], output: [valueInfo('y')] }))).message).toMatch(
      /invalid dimension -2/,
    );
  });
});

describe('unsupportedOps', () => {
  it('names every unsupported op once with all its nodes, subgraphs included', () => {
    const reg = new OpRegistry().register({ op: 'Relu', family: 'elementwise', inputs: [1, 1], outputs: [1, 1], infer: () => [], evaluate: () => [] } as OpDef);
    const inner = new Graph('inner');
    const iv = new Value('i');
    inner.addNode(new Node('Foo', [], [iv], undefined, 'foo_inner'));
    const g = new Graph();
    const a = new Value('a');
    g.addNode(new Node('Foo', [], [a], undefined, 'foo1'));
    const ifNode = new Node('If', [a], [new Value('b')], undefined, 'if1');
    ifNode.attrs.set('then_branch', { kind: 'graph', value: inner });
    g.addNode(ifNode);
    g.addNode(new Node('Relu', [a], [new Value('c')]));
    expect(unsupportedOps(g, reg)).toEqual([
      { op: 'Foo', domain: '', nodes: ['foo1', 'foo_inner'] },
      { op: 'If', domain: '', nodes: ['if1'] },
    ]);
  });
});
