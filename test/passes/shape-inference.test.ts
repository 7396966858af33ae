import { UserError } from '../../src/ir/errors.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { graphProblems } from '../../src/ir/verify.js';
import { inferShapes } from '../../src/passes/shape-inference.js';
import { GraphBuilder, int, ints, tensorAttr } from './graph-builder.js';

const registry = createCoreRegistry();

function mlp() {
  const b = new GraphBuilder();
  const x = b.input('x', 'float32', ['batch', 'seq', 8]);
  const w = b.const('w', 'float32', [8, 4], new Array(32).fill(0.5));
  const bias = b.const('bias', 'float32', [4], [1, 2, 3, 4]);
  const h = b.op('MatMul', [x, w], {}, 'h');
  const a = b.op('Add', [h, bias], {}, 'a');
  const r = b.op('Relu', [a], {}, 'r');
  const m = b.op('ReduceMean', [r, b.const('axes', 'int64', [1], [-1])], { keepdims: int(0) }, 'm');
  b.output(m);
  return { b, x, h, a, r, m };
}

describe('inferShapes', () => {
  it('sets dtypes and symbolic shapes through an MLP', () => {
    const { b, h, r, m } = mlp();
    expect(inferShapes(b.g, registry)).toBe(true);
    expect([h.dtype, h.shape]).toEqual(['float32', ['batch', 'seq', 4]]);
    expect(r.shape).toEqual(['batch', 'seq', 4]);
    expect(m.shape).toEqual(['batch', 'seq']);
    expect(graphProblems(b.g, registry)).toEqual([]);
    expect(inferShapes(b.g, registry)).toBe(false); // nothing new the second time
  });

  it('binds symbolic dims', () => {
    const { b, x, m } = mlp();
    inferShapes(b.g, registry, { bindings: { batch: 2 } });
    expect(x.shape).toEqual([2, 'seq', 8]);
    expect(m.shape).toEqual([2, 'seq']);
    inferShapes(b.g, registry, { bindings: { seq: 5 } });
    expect(m.shape).toEqual([2, 5]);
    expect(() => inferShapes(b.g, registry, { bindings: { seq: 1.5 } })).toThrow(/non-negative integer/);
  });

  it('computes Reshape targets from Shape → Gather → Concat at compile time', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 6, 4]);
    const shape = b.op('Shape', [x]);
    const batch = b.op('Gather', [shape, b.const('i0', 'int64', [1], [0])], { axis: int(0) });
    const target = b.op('Concat', [batch, b.const('rest', 'int64', [2], [-1, 8])], { axis: int(0) });
    const y = b.op('Reshape', [x, target], {}, 'y');
    // A Constant node also feeds infer() as a constant.
    const perm = b.op('Constant', [], { value: tensorAttr(Tensor.from('int64', [3], [0, 2, 1])) });
    const z = b.op('Transpose', [y], { perm: ints([0, 2, 1]) }, 'z');
    const e = b.op('Expand', [z, b.op('Shape', [z])], {}, 'e');
    b.output(e, perm);
    inferShapes(b.g, registry);
    expect(target.shape).toEqual([3]);
    expect(y.shape).toEqual([2, 3, 8]);
    expect(z.shape).toEqual([2, 8, 3]);
    expect(e.shape).toEqual([2, 8, 3]);
    expect(perm.shape).toEqual([3]);
    expect(perm.dtype).toBe('int64');
  });

  it('keeps a declared static dim over an inferred symbol, and fails on a conflict naming the node', () => {
    const { b, h, a } = mlp();
    h.shape = [3, 'seq', 4]; // value_info knows the batch
    inferShapes(b.g, registry);
    expect(a.shape).toEqual([3, 'seq', 4]);

    const c = mlp();
    c.h.shape = ['batch', 'seq', 5];
    let err: unknown;
    try {
      inferShapes(c.b.g, registry);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).location).toEqual({ node: 'MatMul(h)', tensor: 'h' });
    expect((err as Error).message).toMatch(/declared with shape \[batch,seq,5\] but the op gives \[batch,seq,4\]/);

    const d = mlp();
    d.h.dtype = 'float16';
    expect(() => inferShapes(d.b.g, registry)).toThrow(/declared float16 but the op gives float32/);
  });

  it('reports an invalid op input as a UserError naming the node', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const w = b.input('w', 'float32', [4, 5]);
    b.ops('MatMul', [x, w], {}, ['y'], 'proj');
    b.output(b.g.nodes[0]!.outputs[0]!);
    expect(() => inferShapes(b.g, registry)).toThrow(expect.objectContaining({ location: expect.objectContaining({ node: 'proj' }) }));
  });

  it('unknown ops are an error unless skipped; later nodes keep declared types', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const c = b.op('Custom', [x], {}, 'c');
    const y = b.op('Neg', [c], {}, 'y');
    b.output(y);
    expect(() => inferShapes(b.g, registry)).toThrow(/unsupported op Custom/);
    inferShapes(b.g, registry, { skipUnknownOps: true });
    expect(y.dtype).toBeUndefined();
    c.dtype = 'float32';
    c.shape = [2];
    inferShapes(b.g, registry, { skipUnknownOps: true });
    expect(y.shape).toEqual([2]);
  });

  it('sorts a graph whose nodes are out of order', () => {
    const { b, m } = mlp();
    b.g.nodes.reverse();
    inferShapes(b.g, registry);
    expect(m.shape).toEqual(['batch', 'seq']);
    expect(b.g.nodes[0]!.op).toBe('MatMul');
  });
});
