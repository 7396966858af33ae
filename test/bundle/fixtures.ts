/**
 * A hand-made sharding plan: a two-layer MLP y = relu(x·W1)·W2 with a column-parallel W1, a
 * row-parallel W2 and one all-reduce, on a `tp` mesh (hidden 16: uneven on 3 devices).
 */
import { Attrs } from '../../src/ir/attrs.js';
import { COLLECTIVE_DOMAIN, Graph, Node, Value } from '../../src/ir/graph.js';
import { Partial, Replicate, Shard } from '../../src/ir/layout.js';
import { LazyTensor, Tensor } from '../../src/ir/tensor.js';
import { prng } from '../../src/onnx/builder.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';

export function randomTensor(shape: number[], seed: number): Tensor {
  const r = prng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from('float32', shape, Array.from({ length: n }, () => r() * 2 - 1));
}

export function mlpGraph(): Graph {
  const g = new Graph('mlp');
  const x = new Value('x', 'float32', [4, 8]);
  const w1 = new Value('W1', 'float32', [8, 16]);
  w1.constant = LazyTensor.of(randomTensor([8, 16], 1));
  const w2 = new Value('W2', 'float32', [16, 8]);
  w2.constant = LazyTensor.of(randomTensor([16, 8], 2));
  const h = new Value('h', 'float32', [4, 16]);
  const r = new Value('r', 'float32', [4, 16]);
  const y = new Value('y', 'float32', [4, 8]);
  g.inputs = [x];
  g.initializers = [w1, w2];
  g.addNode(new Node('MatMul', [x, w1], [h], new Attrs(), 'mm1'));
  g.addNode(new Node('Relu', [h], [r], new Attrs(), 'relu'));
  g.addNode(new Node('MatMul', [r, w2], [y], new Attrs(), 'mm2'));
  g.outputs = [y];
  return g;
}

/** The MLP sharded over `tp` (a hand-made plan, as propagation would make it). */
export function mlpPlan(tp: number): ShardPlan {
  const g = mlpGraph();
  const mesh = new DeviceMesh([{ name: 'tp', size: tp }]);
  const v = g.valuesByName();
  const set = (name: string, p: ReturnType<typeof Shard> | typeof Replicate): void => void (v.get(name)!.layout = new Map([['tp', p]]));
  set('x', Replicate);
  set('W1', Shard(1));
  set('h', Shard(1));
  set('r', Shard(1));
  set('W2', Shard(0));
  // mm2 produces a partial sum; an all-reduce makes y replicated.
  const mm2 = g.nodes[2]!;
  const partial = new Value('y_partial', 'float32', [4, 8]);
  partial.layout = new Map([['tp', Partial('sum')]]);
  const y = mm2.outputs[0]!;
  mm2.outputs = [partial];
  partial.producer = mm2;
  y.layout = new Map([['tp', Replicate]]);
  const ar = new Node(
    'AllReduce',
    [partial],
    [y],
    new Attrs([
      ['axis', { kind: 'string', value: 'tp' }],
      ['reduce', { kind: 'string', value: 'sum' }],
    ]),
    'allreduce_y',
    COLLECTIVE_DOMAIN,
  );
  const reason = 'graph output y must be replicated; MatMul mm2 contracts over the sharded hidden dim and gives {tp: P(sum)}';
  ar.meta.set('reason', reason);
  ar.meta.set('from', '{tp: P(sum)}');
  ar.meta.set('to', '{tp: R}');
  g.addNode(ar);
  g.nodes[0]!.meta.set('sharding.tp', 'x: R, W1: S(1) -> S(1)');
  g.nodes[1]!.meta.set('sharding.tp', 'S(1) -> S(1)');
  g.nodes[2]!.meta.set('sharding.tp', 'r: S(1), W2: S(0) -> P(sum)');
  return {
    graph: g,
    mesh,
    strategy: 'megatron',
    bindings: {},
    collectives: [{ node: 'allreduce_y', kind: 'AllReduce', meshAxes: ['tp'], tensor: 'y_partial', bytes: Math.ceil((2 * (tp - 1) * 4 * 8 * 4) / tp), reason, from: '{tp: P(sum)}', to: '{tp: R}' }],
    seeds: new Map([
      ['W1', 'column-parallel first MLP weight'],
      ['W2', 'row-parallel second MLP weight'],
    ]),
  };
}
