import { Graph } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { printGraph } from '../../src/ir/text.js';
import { graphProblems } from '../../src/ir/verify.js';
import { MatchContext, MatchState, type Pattern, type RewriteRule, applyRules, matchNode, matchValue } from '../../src/passes/rewrite.js';
import { scalarOf } from '../../src/passes/util.js';
import { GraphBuilder } from './graph-builder.js';

const isZero: Pattern = { constant: (t) => scalarOf(t) === 0 };

/** x + 0 → x and 0 + x → x */
const addZero: RewriteRule = {
  name: 'add-zero',
  pattern: { op: 'Add', commute: true, inputs: [{ bind: 'x' }, isZero] },
  rewrite: (m) => [m.get('x')],
};

/** Neg(Neg(x)) → x */
const negNeg: RewriteRule = {
  name: 'neg-neg',
  pattern: { op: 'Neg', inputs: [{ op: 'Neg', inputs: [{ bind: 'x' }] }] },
  rewrite: (m) => [m.get('x')],
};

/** Mul(x, x) → Pow(x, 2) (creates a node and a constant) */
const square: RewriteRule = {
  name: 'square',
  pattern: { op: 'Mul', inputs: [{ bind: 'x' }, { bind: 'x' }] },
  rewrite: (m, rw) => rw.node('Pow', [m.get('x'), rw.constant(Tensor.scalar('float32', 2), 'two')], {}, { like: [m.root.outputs[0]] }),
};


describe('pattern matching', () => {
  function setup() {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const y = b.input('y', 'float32', [2]);
    const zero = b.scalar('zero', 0);
    const s = b.op('Mul', [x, x], {}, 's');
    const d = b.op('Mul', [x, y], {}, 'd');
    const a = b.op('Add', [zero, s], {}, 'a');
    b.output(a, d);
    return { b, x, y, zero, s, d, a, ctx: new MatchContext(b.g) };
  }

  it('binds names, and a name bound twice must be the same value', () => {
    const { ctx, s, d, x } = setup();
    const p: Pattern = { op: 'Mul', inputs: [{ bind: 'v' }, { bind: 'v' }] };
    const m = new MatchState(ctx);
    expect(matchValue(s, p, m)).toBe(true);
    expect(m.get('v')).toBe(x);
    expect(m.nodes).toEqual([s.producer]);
    const m2 = new MatchState(ctx);
    expect(matchValue(d, p, m2)).toBe(false);
    expect(m2.values.size).toBe(0); // restored on failure
  });

  it('tries commuted inputs, alternatives, constants and one-use conditions', () => {
    const { ctx, a, s, x } = setup();
    const m = new MatchState(ctx);
    expect(matchNode(a.producer!, addZero.pattern, m)).toBe(true);
    expect(m.get('x')).toBe(s);
    const noCommute: Pattern = { op: 'Add', inputs: [{ bind: 'x' }, isZero] };
    expect(matchNode(a.producer!, noCommute, new MatchState(ctx))).toBe(false);
    const alt: Pattern = { anyOf: [{ op: 'Sub' }, { op: 'Mul', inputs: [{ bind: 'q' }] }] };
    const m3 = new MatchState(ctx);
    expect(matchValue(s, alt, m3)).toBe(true);
    expect(m3.get('q')).toBe(x);
    expect(matchValue(s, { op: 'Mul', oneUse: true }, new MatchState(ctx))).toBe(true);
    expect(matchValue(x, { oneUse: true }, new MatchState(ctx))).toBe(false); // x has three uses
    expect(matchValue(s, { constant: true }, new MatchState(ctx))).toBe(false);
  });
});

describe('applyRules', () => {
  it('runs rules to a fixpoint and keeps the graph valid', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const zero = b.scalar('zero', 0);
    let v = x;
    for (let i = 0; i < 3; i++) v = b.op('Neg', [b.op('Add', [v, zero])]);
    v = b.op('Neg', [v]);
    const out = b.op('Relu', [v], {}, 'out');
    b.output(out);
    const applied: string[] = [];
    const n = applyRules(b.g, [addZero, negNeg], { onRewrite: (r) => applied.push(r) });
    expect(graphProblems(b.g)).toEqual([]);
    // Four Neg collapse to none; the three Adds are bypassed.
    expect(out.producer!.inputs[0]).toBe(x);
    expect(n).toBe(applied.length);
    expect(applied.filter((r) => r === 'add-zero')).toHaveLength(3);
    expect(applied.filter((r) => r === 'neg-neg').length).toBeGreaterThanOrEqual(2);
  });

  it('inserts new nodes and constants at the root position with fresh names', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const s = b.op('Mul', [x, x], {}, 's');
    b.output(b.op('Relu', [s], {}, 'r'));
    expect(applyRules(b.g, [square])).toBe(1);
    expect(printGraph(b.g)).toBe(
      [
        'graph main(%x: float32[2]) -> (%r) {',
        '  %two = const float32[] [2]',
        '  %s_0 = Pow(%x, %two) : ?',
        '  %r = Relu(%s_0) : ?',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('keeps graph outputs: an existing value cannot replace one, a new node takes it over', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const zero = b.scalar('zero', 0);
    const a = b.op('Add', [x, zero], {}, 'a');
    const s = b.op('Mul', [a, a], {}, 'sq');
    b.output(a, s);
    expect(applyRules(b.g, [addZero, square])).toBe(1);
    expect(b.g.outputs).toEqual([a, s]);
    expect(a.producer!.op).toBe('Add'); // kept: replacing would rename the graph output
    expect(s.producer!.op).toBe('Pow'); // the new node defines the old value
    expect(graphProblems(b.g)).toEqual([]);
  });

  it('does not replace values captured by a subgraph', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const zero = b.scalar('zero', 0);
    const a = b.op('Add', [x, zero], {}, 'a');
    const body = new GraphBuilder('body');
    body.output(body.op('Neg', [a], {}, 'inner'));
    const cond = b.const('cond', 'bool', [], [1]);
    const out = b.ops('If', [cond], { then_branch: { kind: 'graph', value: body.g }, else_branch: { kind: 'graph', value: body.g } }, ['out'])[0]!;
    b.output(out);
    expect(applyRules(b.g, [addZero])).toBe(0);
  });

  it('a declining rule changes nothing', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    b.output(b.op('Neg', [x], {}, 'y'));
    const before = printGraph(b.g);
    const decline: RewriteRule = { name: 'no', pattern: { op: 'Neg' }, rewrite: () => undefined };
    expect(applyRules(b.g, [decline])).toBe(0);
    expect(printGraph(b.g)).toBe(before);
    expect(() => applyRules(new Graph(), [{ name: 'bad', pattern: {}, rewrite: () => undefined }])).toThrow(/no root op/);
  });
});
