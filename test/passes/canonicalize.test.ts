import type { Graph } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { printGraph } from '../../src/ir/text.js';
import { graphProblems } from '../../src/ir/verify.js';
import { canonicalize } from '../../src/passes/canonicalize.js';
import { eliminateDeadCode } from '../../src/passes/dead-code.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { GraphBuilder, int, ints } from './graph-builder.js';

const registry = createCoreRegistry();

function run(g: Graph, x: Tensor): number[] {
  return [...runGraph(g, new Map([['x', x]]), { registry }).values()].flatMap((t) => t.toArray());
}

/** Canonicalizes + removes dead code; checks validity and that outputs are unchanged. */
function canon(g: Graph, x: Tensor): string[] {
  const before = run(g, x);
  const rules: string[] = [];
  canonicalize(g, { registry, onRewrite: (r) => rules.push(r) });
  eliminateDeadCode(g);
  expect(graphProblems(g, registry)).toEqual([]);
  expect(run(g, x)).toEqual(before);
  return rules;
}

const x23 = Tensor.from('float32', [2, 3], [1, -2, 3, -4, 5, -6]);
const x234 = Tensor.from('float32', [2, 3, 4], Array.from({ length: 24 }, (_, i) => i - 7));

describe('canonicalize', () => {
  it('removes Identity, inference Dropout and same-dtype Cast', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const i = b.op('Identity', [x]);
    const [d] = b.ops('Dropout', [i], {}, ['d', '']);
    const c = b.op('Cast', [d!], { to: int(1) });
    const y = b.op('Relu', [c], {}, 'y');
    b.output(y);
    expect(canon(b.g, x23).sort()).toEqual(['cast-same-dtype', 'dropout-inference', 'identity']);
    expect(b.g.nodes.map((n) => n.op)).toEqual(['Relu']);
    expect(y.producer!.inputs[0]).toBe(x);
  });

  it('keeps a Cast to another dtype, a training Dropout and a used mask', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const c = b.op('Cast', [x], { to: int(11) });
    const [d, mask] = b.ops('Dropout', [x], {}, ['d', 'mask']);
    const t = b.scalar('training', 1, 'bool');
    const [e] = b.ops('Dropout', [x, null, t], {}, ['e']);
    b.output(c, d!, mask!, e!);
    expect(canonicalize(b.g, { registry })).toBe(0);
  });

  it('replaces a graph output with an Identity that keeps its name', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const [d] = b.ops('Dropout', [x], {}, ['out']);
    b.output(d!);
    expect(canon(b.g, x23)).toEqual(['dropout-inference']);
    expect(printGraph(b.g)).toBe('graph main(%x: float32[2,3]) -> (%out) {\n  %out = Identity(%x) : ?\n}\n');
    // The Identity is already minimal: a second run changes nothing.
    expect(canonicalize(b.g, { registry })).toBe(0);
  });

  it('merges Reshape of Reshape unless the outer shape copies a dim (0)', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3, 4]);
    const s1 = b.const('s1', 'int64', [2], [6, 4]);
    const s2 = b.const('s2', 'int64', [2], [4, -1]);
    const r1 = b.op('Reshape', [x, s1]);
    const r2 = b.op('Reshape', [r1, s2], {}, 'y');
    b.output(r2);
    expect(canon(b.g, x234)).toEqual(['reshape-reshape']);
    expect(b.g.nodes).toHaveLength(1);
    expect(r2.producer!.inputs).toEqual([x, s2]);

    const c = new GraphBuilder();
    const cx = c.input('x', 'float32', [2, 3, 4]);
    const c1 = c.op('Reshape', [cx, c.const('s1', 'int64', [2], [6, 4])]);
    c.output(c.op('Reshape', [c1, c.const('s2', 'int64', [3], [0, 2, 2])], {}, 'y'));
    expect(canon(c.g, x234)).toEqual([]);
  });

  it('drops a Reshape to the same static shape', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const r = b.op('Reshape', [x, b.const('s', 'int64', [2], [2, 3])]);
    r.dtype = 'float32';
    r.shape = [2, 3];
    b.output(b.op('Neg', [r], {}, 'y'));
    expect(canon(b.g, x23)).toEqual(['reshape-noop']);
  });

  it('composes Transpose of Transpose, and removes identity permutations', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3, 4]);
    const t1 = b.op('Transpose', [x], { perm: ints([1, 2, 0]) });
    const t2 = b.op('Transpose', [t1], { perm: ints([0, 2, 1]) }, 'y');
    b.output(t2);
    expect(canon(b.g, x234)).toEqual(['transpose-transpose']);
    expect(t2.producer!.attrs.ints('perm')).toEqual([1, 0, 2]);
    expect(t2.producer!.inputs[0]).toBe(x);

    const c = new GraphBuilder();
    const cx = c.input('x', 'float32', [2, 3, 4]);
    const u1 = c.op('Transpose', [cx]); // default: reversed
    const u2 = c.op('Transpose', [u1], { perm: ints([2, 1, 0]) });
    const u3 = c.op('Transpose', [u2], { perm: ints([0, 1, 2]) });
    c.output(c.op('Neg', [u3], {}, 'y'));
    const rules = canon(c.g, x234);
    expect(rules).toContain('transpose-transpose');
    expect(c.g.nodes.map((n) => n.op)).toEqual(['Neg']);
  });

  it('accepts extra rules', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    b.output(b.op('Neg', [b.op('Neg', [x])], {}, 'y'));
    const n = canonicalize(b.g, {
      rules: [{ name: 'neg-neg', pattern: { op: 'Neg', inputs: [{ op: 'Neg', inputs: [{ bind: 'x' }] }] }, rewrite: (m, rw) => rw.node('Identity', [m.get('x')]) }],
    });
    expect(n).toBe(1); // then the Identity of the graph output stays
    expect(b.g.outputs[0]!.producer!.op).toBe('Identity');
  });
});
