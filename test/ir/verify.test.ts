import { UserError } from '../../src/ir/errors.js';
import { Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { OpRegistry } from '../../src/ir/registry.js';
import { graphProblems, verifyGraph } from '../../src/ir/verify.js';
import { GraphBuilder } from '../passes/graph-builder.js';

const registry = createCoreRegistry();

function mlp(): GraphBuilder {
  const b = new GraphBuilder();
  const x = b.input('x', 'float32', ['batch', 4]);
  const w = b.const('w', 'float32', [4, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
  const y = b.op('MatMul', [x, w], {}, 'y');
  const r = b.op('Relu', [y], {}, 'r');
  b.output(r);
  return b;
}

describe('verifyGraph', () => {
  it('accepts a valid graph, with and without a registry', () => {
    const b = mlp();
    expect(graphProblems(b.g)).toEqual([]);
    expect(graphProblems(b.g, registry)).toEqual([]);
    expect(() => verifyGraph(b.g, registry)).not.toThrow();
  });

  it('reports a value defined twice', () => {
    const b = mlp();
    b.g.nodes[1]!.outputs[0]!.name = 'y';
    expect(graphProblems(b.g)).toEqual(['value "y" is defined twice (output of "MatMul(y)" and output of "Relu(y)")']);
  });

  it('reports a value used before its definition, and names a cycle', () => {
    const b = mlp();
    b.g.nodes.reverse();
    expect(graphProblems(b.g)).toEqual(['node "Relu(r)" input 0 "y" is used before it is defined']);

    const c = new GraphBuilder();
    const x = c.input('x', 'float32', [2]);
    const a = new Value('a');
    const d = new Value('d');
    c.g.addNode(new Node('Add', [x, d], [a], undefined, 'first'));
    c.g.addNode(new Node('Neg', [a], [d], undefined, 'second'));
    c.output(d);
    const problems = graphProblems(c.g);
    expect(problems).toContain('node "first" input 1 "d" is used before it is defined');
    expect(problems).toContain('graph has a cycle through nodes "first", "second"');
  });

  it('reports undefined inputs and outputs, and a wrong producer', () => {
    const b = mlp();
    const ghost = new Value('ghost', 'float32', [2]);
    b.g.nodes[1]!.inputs[0] = ghost;
    b.g.outputs.push(new Value('nowhere'));
    b.g.nodes[0]!.outputs[0]!.producer = b.g.nodes[1];
    expect(graphProblems(b.g)).toEqual([
      'value "y" is an output of "MatMul(y)" but its producer is "Relu(r)"',
      'node "Relu(r)" input 0 "ghost" is not defined in the graph',
      'graph output "nowhere" is not defined',
    ]);
  });

  it('checks arity against the op registry and names unknown ops', () => {
    const b = mlp();
    b.g.nodes[1]!.inputs.push(b.g.inputs[0]!);
    b.op('NoSuchOp', [b.g.inputs[0]!]);
    expect(graphProblems(b.g, registry)).toEqual([
      'node "Relu(r)": Relu takes 1..1 inputs, got 2',
      'node "NoSuchOp(t0)": unsupported op NoSuchOp',
    ]);
  });

  it('checks declared dtypes and static shapes against infer(), ignoring symbolic names', () => {
    const b = mlp();
    const y = b.g.nodes[0]!.outputs[0]!;
    y.dtype = 'float32';
    y.shape = ['n', 2]; // symbol vs batch: not compared
    expect(graphProblems(b.g, registry)).toEqual([]);
    y.shape = ['batch', 3];
    y.dtype = 'int64';
    expect(graphProblems(b.g, registry)).toEqual([
      'node "MatMul(y)" output "y" is declared int64 but infers float32',
      'node "MatMul(y)" output "y" is declared [batch,3] but infers [batch,2]',
    ]);
  });

  it('reports infer() errors on bad input as problems', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const w = b.input('w', 'float32', [4, 5]);
    b.output(b.op('MatMul', [x, w], {}, 'y'));
    const problems = graphProblems(b.g, registry);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^node "MatMul\(y\)": /);
  });

  it('verifies subgraphs, which may use values of the enclosing graph', () => {
    const b = mlp();
    const body = new GraphBuilder('body');
    const inner = body.op('Neg', [b.g.inputs[0]!], {}, 'inner');
    body.output(inner);
    const cond = b.const('cond', 'bool', [], [1]);
    b.ops('If', [cond], { then_branch: { kind: 'graph', value: body.g }, else_branch: { kind: 'graph', value: body.g } }, ['out']);
    expect(graphProblems(b.g)).toEqual([]);
    body.g.nodes[0]!.inputs[0] = new Value('missing');
    expect(graphProblems(b.g)).toEqual([
      'subgraph "body" of "If(out)": node "Neg(inner)" input 0 "missing" is not defined in the graph',
      'subgraph "body" of "If(out)": node "Neg(inner)" input 0 "missing" is not defined in the graph',
    ]);
  });

  it('throws one UserError listing the problems', () => {
    const b = mlp();
    b.g.nodes.reverse();
    b.g.outputs.push(new Value('nowhere'));
    let err: unknown;
    try {
      verifyGraph(b.g);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe(
      'graph "main" is invalid: node "Relu(r)" input 0 "y" is used before it is defined; graph output "nowhere" is not defined',
    );
  });

  it('accepts an input with a default that is also an initializer, and constants not listed', () => {
    const b = mlp();
    const x = b.g.inputs[0]!;
    b.g.initializers.push(x);
    x.constant = b.g.initializers[0]!.constant;
    expect(graphProblems(b.g)).toEqual([]);
    const empty = new OpRegistry();
    expect(graphProblems(b.g, empty)).toEqual(['node "MatMul(y)": unsupported op MatMul', 'node "Relu(r)": unsupported op Relu']);
  });
});
