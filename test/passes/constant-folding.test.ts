import { Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { LazyTensor, Tensor } from '../../src/ir/tensor.js';
import { graphProblems } from '../../src/ir/verify.js';
import { foldConstants } from '../../src/passes/constant-folding.js';
import { eliminateDeadCode } from '../../src/passes/dead-code.js';
import { inferShapes } from '../../src/passes/shape-inference.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { GraphBuilder, float, int, tensorAttr } from './graph-builder.js';

const registry = createCoreRegistry();

describe('foldConstants', () => {
  it('evaluates all-constant chains, Constant nodes and Shape of a static shape', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const c = b.op('Constant', [], { value: tensorAttr(Tensor.from('float32', [3], [1, 2, 3])) }, 'c');
    const two = b.op('Constant', [], { value_float: float(2) }, 'two');
    const c2 = b.op('Mul', [c, two], {}, 'c2'); // [2, 4, 6]
    const c3 = b.op('Sqrt', [b.op('Add', [c2, c2], {}, 'c4')], {}, 'c3'); // [2, 2.83, 3.46]
    const shape = b.op('Shape', [x], {}, 'shape'); // x is not constant, its shape is
    const flat = b.op('ReduceProd', [shape], { keepdims: int(0) }, 'n'); // 6
    const y = b.op('Reshape', [b.op('Mul', [x, c3], {}, 'xs'), b.op('Unsqueeze', [flat, b.const('ax', 'int64', [1], [0])], {}, 'target')], {}, 'y');
    b.output(y);
    const feeds = new Map([['x', Tensor.from('float32', [2, 3], [1, 2, 3, 4, 5, 6])]]);
    const before = runGraph(b.g, feeds, { registry }).get('y')!.toArray();
    inferShapes(b.g, registry);
    const folded = foldConstants(b.g, registry);
    eliminateDeadCode(b.g);
    expect(graphProblems(b.g, registry)).toEqual([]);
    expect(folded).toBe(8);
    expect(b.g.nodes.map((n) => n.op)).toEqual(['Mul', 'Reshape']);
    expect(c3.constant!.load().toArray()).toEqual([2, Math.fround(Math.sqrt(8)), Math.fround(Math.sqrt(12))]);
    expect(c3.producer).toBeUndefined();
    expect(b.g.initializers.map((v) => v.name).sort()).toEqual(['c3', 'target']);
    expect(runGraph(b.g, feeds, { registry }).get('y')!.toArray()).toEqual(before);
    expect(y.shape).toEqual([6]);
  });

  it('moves a Constant node tensor to an initializer without loading it', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [4]);
    let loads = 0;
    const lazy = new LazyTensor('float32', [4], { kind: 'external', path: 'w.bin', offset: 0, length: 16 }, () => {
      loads++;
      return Tensor.from('float32', [4], [1, 2, 3, 4]);
    });
    const w = b.op('Constant', [], { value: { kind: 'tensor', value: lazy } }, 'w');
    b.output(b.op('Add', [x, w], {}, 'y'));
    expect(foldConstants(b.g, registry)).toBe(1);
    expect(w.constant).toBe(lazy);
    expect(loads).toBe(0);
  });

  it('never loads a large external weight to fold, and skips outputs above the limit', () => {
    const b = new GraphBuilder();
    const big = new Value('big', 'float32', [1000, 1000]);
    big.constant = new LazyTensor('float32', [1000, 1000], { kind: 'external', path: 'w.bin', offset: 0, length: 4e6 }, () => {
      throw new Error('must not load');
    });
    b.g.initializers.push(big);
    const t = b.op('Transpose', [big], {}, 't');
    const small = b.const('small', 'float32', [2, 2], [1, 2, 3, 4]);
    const tiled = b.op('Tile', [small, b.const('reps', 'int64', [2], [100, 100])], {}, 'tiled'); // 40000 elements
    const y = b.op('Add', [b.op('ReduceSum', [t], { keepdims: int(0) }, 's'), b.op('ReduceSum', [tiled], { keepdims: int(0) }, 's2')], {}, 'y');
    b.output(y);
    inferShapes(b.g, registry);
    expect(foldConstants(b.g, registry, { maxElements: 1000 })).toBe(0);
    expect(b.g.nodes.map((n) => n.op)).toEqual(['Transpose', 'Tile', 'ReduceSum', 'ReduceSum', 'Add']);
    // With a higher limit the Tile and its ReduceSum fold; the external weight still is not loaded.
    expect(foldConstants(b.g, registry, { maxElements: 100000 })).toBe(2);
    expect(b.g.nodes.map((n) => n.op)).toEqual(['Transpose', 'ReduceSum', 'Add']);
    expect(b.g.initializers.find((v) => v.name === 's2')!.constant!.load().toArray()).toEqual([100000]);
  });

  it('keeps nodes that produce graph outputs, random ops and graph inputs with defaults', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    x.constant = LazyTensor.of(Tensor.from('float32', [2], [1, 2]));
    b.g.initializers.push(x);
    const c = b.const('c', 'float32', [2], [3, 4]);
    const neg = b.op('Neg', [c], {}, 'neg');
    const r = b.op('RandomNormal', [], { shape: { kind: 'ints', value: [2] } }, 'r');
    const y = b.op('Add', [x, neg], {}, 'y');
    b.output(y, r, neg);
    expect(foldConstants(b.g, registry)).toBe(0);
  });
});

describe('eliminateDeadCode', () => {
  it('removes nodes and initializers that do not reach an output', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const unusedInput = b.input('u', 'float32', [2]);
    const w = b.const('w', 'float32', [2], [1, 2]);
    const dead = b.const('dead', 'float32', [2], [1, 2]);
    const a = b.op('Add', [x, w], {}, 'a');
    const d1 = b.op('Mul', [a, dead], {}, 'd1');
    b.op('Neg', [d1], {}, 'd2');
    const [s1] = b.ops('Split', [a], { axis: int(0) }, ['s1', 's2']);
    b.output(b.op('Relu', [s1!], {}, 'y'));
    expect(eliminateDeadCode(b.g)).toBe(3);
    expect(b.g.nodes.map((n) => n.op)).toEqual(['Add', 'Split', 'Relu']);
    expect(b.g.initializers).toEqual([w]);
    expect(b.g.inputs).toEqual([x, unusedInput]);
    expect(eliminateDeadCode(b.g)).toBe(0);
  });

  it('keeps values used by subgraphs and cleans the subgraphs', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const cond = b.input('cond', 'bool', []);
    const captured = b.op('Neg', [x], {}, 'captured');
    const body = new GraphBuilder('then');
    body.op('Exp', [x], {}, 'unused_inner');
    body.output(body.op('Abs', [captured], {}, 'inner'));
    const out = b.ops('If', [cond], { then_branch: { kind: 'graph', value: body.g }, else_branch: { kind: 'graph', value: body.g } }, ['out'])[0]!;
    b.output(out);
    expect(eliminateDeadCode(b.g)).toBe(1); // the Exp in the body (shared by both branches)
    expect(b.g.nodes.map((n) => n.op)).toEqual(['Neg', 'If']);
    expect(body.g.nodes.map((n) => n.op)).toEqual(['Abs']);
  });
});
