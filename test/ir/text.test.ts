import { Attrs } from '../../src/ir/attrs.js';
import { UserError } from '../../src/ir/errors.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { Partial, Replicate, Shard } from '../../src/ir/layout.js';
import { LazyTensor, Tensor } from '../../src/ir/tensor.js';
import { parseGraph, printGraph } from '../../src/ir/text.js';
import { GraphBuilder, float, floats, int, ints, str, tensorAttr } from '../passes/graph-builder.js';
import { expectGolden } from '../passes/golden.js';

/** A graph using every feature of the text form. */
function kitchenSink(): Graph {
  const b = new GraphBuilder('main');
  const x = b.input('x', 'float32', ['batch', 128, 'batch*seq']);
  const odd = b.input('onnx::weird name', 'float16', undefined);
  const unknown = new Value('u');
  b.g.inputs.push(unknown);
  const withDefault = b.input('scale', 'float32', [2]);
  withDefault.constant = LazyTensor.of(Tensor.from('float32', [2], [0.5, 2]));
  b.g.initializers.push(withDefault);
  const w = b.const('w', 'float32', [3], [0.1, -0, NaN]);
  const big = b.const('big', 'float32', [100], Array.from({ length: 100 }, (_, i) => i));
  const ext = new Value('ext', 'float32', [768, 768]);
  ext.constant = new LazyTensor('float32', [768, 768], { kind: 'external', path: 'weights.bin', offset: 64, length: 2359296 }, () => {
    throw new Error('printing must not load external data');
  });
  ext.layout = new Map([['tp', Shard(1)]]);
  b.g.initializers.push(ext);
  const s = new Value('names', 'string', [2]);
  s.constant = LazyTensor.of(new Tensor('string', [2], ['a "quoted"', 'ü']));
  b.g.initializers.push(s);
  const h = b.const('half', 'float16', [2], [0.1, 65504]);
  const i64 = b.const('i64', 'int64', [2], [-(2 ** 40), 7]);

  const body = new GraphBuilder('body');
  const bi = body.input('it', 'int64', []);
  body.op('Add', [bi, x], {}, 'inner');
  body.output(body.g.nodes[0]!.outputs[0]!);
  const elseBody = new Graph('else');
  elseBody.outputs.push(w);

  const y = b.op(
    'MatMul',
    [x, ext],
    {
      transB: int(0),
      alpha: float(1),
      beta: float(0.2),
      mode: str('constant'),
      perm: ints([0, 2, 1]),
      scales: floats([1, 2.5]),
      empty: ints([]),
      emptyF: floats([]),
      names: { kind: 'strings', value: ['a', 'b'] },
      noNames: { kind: 'strings', value: [] },
      value: tensorAttr(Tensor.from('int64', [2], [1, 2])),
      values: { kind: 'tensors', value: [LazyTensor.of(Tensor.scalar('float32', 1.5))] },
      noTensors: { kind: 'tensors', value: [] },
      then_branch: { kind: 'graph', value: body.g },
      branches: { kind: 'graphs', value: [elseBody] },
      noGraphs: { kind: 'graphs', value: [] },
    },
    'y',
  );
  y.dtype = 'float32';
  y.shape = ['batch', 128, 768];
  y.layout = new Map([
    ['tp', Shard(2)],
    ['dp', Replicate],
  ]);
  y.meta.set('z', 'last').set('a', 'first');
  const mm = y.producer!;
  mm.name = 'matmul/0';
  mm.meta.set('pattern', 'Attention#0');

  const [o1, o2, none] = b.ops('Split', [y, null, big], { axis: int(-1) }, ['o1', 'o2', ''], '', '');
  o1!.layout = new Map([['tp', Partial('sum')]]);
  void o2;
  void none;
  b.ops('Print', [o1!], {}, [], 'printer', 'com.example');
  const m = b.op('FusedMatMul', [odd, h, i64, withDefault, unknown, s], {}, 'z w');
  m.producer!.domain = 'com.microsoft';
  b.g.opsets = { '': 17, 'com.microsoft': 1 };
  b.g.meta.set('producer', 'test');
  return b.output(y, m, w);
}

describe('printGraph / parseGraph', () => {
  it('round-trips every feature: print(parse(print(g))) === print(g)', () => {
    const text = printGraph(kitchenSink());
    const again = printGraph(parseGraph(text));
    expect(again).toBe(text);
    expectGolden('ir/kitchen-sink.txt', text);
  });

  it('keeps attribute kinds, constant values and layouts through parsing', () => {
    const g = parseGraph(printGraph(kitchenSink()));
    const mm = g.nodes[0]!;
    expect(mm.name).toBe('matmul/0');
    expect(mm.attrs.get('alpha')).toEqual({ kind: 'float', value: 1 });
    expect(mm.attrs.get('transB')).toEqual({ kind: 'int', value: 0 });
    expect(mm.attrs.get('beta')).toEqual({ kind: 'float', value: Math.fround(0.2) });
    expect(mm.attrs.get('scales')).toEqual({ kind: 'floats', value: [1, 2.5] });
    expect(mm.attrs.get('empty')).toEqual({ kind: 'ints', value: [] });
    expect(mm.attrs.get('emptyF')).toEqual({ kind: 'floats', value: [] });
    expect(mm.attrs.tensor('value')!.load().toArray()).toEqual([1, 2]);
    expect(mm.attrs.tensor('value')!.dtype).toBe('int64');
    expect(mm.meta.get('pattern')).toBe('Attention#0');
    const y = mm.outputs[0]!;
    expect(y.shape).toEqual(['batch', 128, 768]);
    expect([...y.layout!.entries()]).toEqual([
      ['tp', Shard(2)],
      ['dp', Replicate],
    ]);
    // The subgraph's use of %x resolves to the outer graph's value.
    const body = mm.attrs.graph('then_branch')!;
    expect(body.nodes[0]!.inputs[1]).toBe(g.inputs[0]);
    // Values.
    const w = g.initializers.find((v) => v.name === 'w')!;
    const wv = w.constant!.load().toArray();
    expect(wv[0]).toBe(Math.fround(0.1));
    expect(Object.is(wv[1], -0)).toBe(true);
    expect(wv[2]).toBeNaN();
    expect(g.initializers.find((v) => v.name === 'i64')!.constant!.load().toArray()).toEqual([-(2 ** 40), 7]);
    expect(g.initializers.find((v) => v.name === 'names')!.constant!.load().strings).toEqual(['a "quoted"', 'ü']);
    // An input with a default stays an input, with its data, and an initializer.
    const scale = g.inputs.find((v) => v.name === 'scale')!;
    expect(scale.constant!.load().toArray()).toEqual([0.5, 2]);
    expect(g.initializers).toContain(scale);
    // External data keeps its location; loading it without a loader is a user error.
    const ext = g.initializers.find((v) => v.name === 'ext')!;
    expect(ext.constant!.location).toEqual({ kind: 'external', path: 'weights.bin', offset: 64, length: 2359296 });
    expect(() => ext.constant!.load()).toThrow(UserError);
    // Absent input, unnamed output, no-output node in another domain.
    const split = g.nodes[1]!;
    expect(split.inputs[1]).toBeNull();
    expect(split.outputs.map((o) => o.name)).toEqual(['o1', 'o2', '']);
    expect(g.nodes[2]!.domain).toBe('com.example');
    expect(g.nodes[2]!.outputs).toEqual([]);
    expect(g.opsets).toEqual({ '': 17, 'com.microsoft': 1 });
    expect(g.outputs.map((v) => v.name)).toEqual(['y', 'z w', 'w']);
  });

  it('prints a small graph in the documented form', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['batch', 4]);
    const w = b.const('w', 'float32', [4, 2], [1, 2, 3, 4, 5, 6, 7, 8.5]);
    const y = b.op('MatMul', [x, w], {}, 'y');
    y.dtype = 'float32';
    y.shape = ['batch', 2];
    const r = b.op('Relu', [y], {}, 'r');
    r.producer!.meta.set('pattern', 'X#0');
    b.output(r);
    expect(printGraph(b.g)).toBe(
      [
        'graph main(%x: float32[batch,4]) -> (%r) {',
        '  %w = const float32[4,2] [1, 2, 3, 4, 5, 6, 7, 8.5]',
        '  %y = MatMul(%x, %w) : float32[batch,2]',
        '  %r = Relu(%y) meta {pattern="X#0"} : ?',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('prints floats as the shortest decimal of their dtype, and attributes sorted', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [3]);
    b.const('f32', 'float32', [3], [0.1, 1 / 3, 1e-7]);
    b.const('f16', 'float16', [2], [0.1, 1 / 3]);
    b.const('f64', 'float64', [1], [0.1]);
    const y = new Value('y');
    b.g.addNode(new Node('LeakyRelu', [x], [y], new Attrs([['zeta', int(1)], ['alpha', float(0.01)]])));
    b.output(y);
    const text = printGraph(b.g);
    expect(text).toContain('%f32 = const float32[3] [0.1, 0.33333334, 1e-7]');
    expect(text).toContain('%f16 = const float16[2] [0.1, 0.3333]');
    expect(text).toContain('%f64 = const float64[1] [0.1]');
    expect(text).toContain('{alpha=0.01, zeta=1}');
  });

  it('elides large constants with a hash of their data and never loads external data', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [100]);
    const c = b.const('c', 'float32', [100], Array.from({ length: 100 }, (_, i) => i));
    b.output(b.op('Add', [x, c], {}, 'y'));
    const t1 = printGraph(b.g);
    expect(t1).toMatch(/%c = const float32\[100\] <elided fnv1a:[0-9a-f]{8}>/);
    c.constant!.load().data[5] = 42;
    const t2 = printGraph(b.g);
    expect(t2).not.toBe(t1);
    expect(printGraph(b.g, { maxInlineElements: 1000 })).toContain('[0, 1, 2, 3, 4, 42, 6,');
    // An elided constant parses back and prints the same hash; loading it is a user error.
    const g = parseGraph(t2);
    expect(printGraph(g)).toBe(t2);
    expect(() => g.initializers[0]!.constant!.load()).toThrow(UserError);
  });

  it('loads external data through the loadExternal hook', () => {
    const text = 'graph g() -> (%w) {\n  %w = const float32[2] <external "w.bin"@8+8>\n}\n';
    const g = parseGraph(text, { loadExternal: (loc, dtype, shape) => Tensor.from(dtype, shape, [loc.offset, loc.length]) });
    expect(g.initializers[0]!.constant!.load().toArray()).toEqual([8, 8]);
    expect(printGraph(g)).toBe(text);
  });

  it('accepts comments and free whitespace', () => {
    const g = parseGraph(`// a comment
      graph g(%a: int64[2]) -> (%b) {   // trailing
        %b = Neg(%a)
      }`);
    expect(g.nodes[0]!.op).toBe('Neg');
    expect(g.nodes[0]!.inputs[0]).toBe(g.inputs[0]);
    expect(g.nodes[0]!.outputs[0]!.dtype).toBeUndefined();
  });

  it('reports errors with line and column', () => {
    const bad = (text: string, msg: RegExp): void => {
      let err: unknown;
      try {
        parseGraph(text, { file: 'g.txt' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(msg);
    };
    bad('graph g() -> (%y) {\n  %y = Neg(%x)\n}', /g\.txt: line 2, column 3: value %"x" is not defined/);
    bad('graph g(%x: float32[2]) -> (%x) {\n  %x = Neg(%x)\n}', /defined twice/);
    bad('graph g(%x: floaty[2]) -> () {}', /expected a dtype/);
    bad('graph g() -> (%c) {\n  %c = const float32[3] [1, 2]\n}', /constant has 2 values but its shape \[3\] needs 3/);
    bad('graph g() -> (%c) {\n  %c = const float32[n] [1]\n}', /static shape/);
    bad('graph g() -> () {\n  %a = Foo() {x=[]}\n}', /empty list needs its kind/);
    bad('graph g() -> () {\n', /closing the graph/);
    bad('graph g() -> () {} extra', /unexpected text/);
    bad('graph g(%x: float32[2] layout {tp: Q}) -> () {}', /not a placement/);
  });
});
