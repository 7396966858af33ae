/**
 * The tiny graphs `shardc bench --calibrate` times (src/bench/calibrate.ts), built directly in the
 * IR with static shapes and seeded inputs: one MatMul (flop rate), one elementwise kernel (memory
 * bandwidth), a chain of elementwise kernels (launch overhead), and an AllReduce of replicated
 * values over a `tp=N` mesh (the link), as a plan ready for lowerPlan.
 */
import { Attrs } from '../ir/attrs.js';
import { COLLECTIVE_DOMAIN, Graph, Node, Value } from '../ir/graph.js';
import { Replicate } from '../ir/layout.js';
import { mulberry32 } from '../ir/random.js';
import type { Tensor } from '../ir/tensor.js';
import { DeviceMesh } from '../passes/sharding/mesh.js';
import type { ShardPlan } from '../passes/sharding/plan.js';
import { randomTensor } from '../verify/random-inputs.js';

export interface ProbeGraph {
  graph: Graph;
  feeds: Map<string, Tensor>;
}

const seeded = (shape: number[], seed: number): Tensor => randomTensor('float32', shape, mulberry32(seed));

/** y = a · b with a, b of n×n float32: 2n³ flops. */
export function matmulGraph(n: number): ProbeGraph {
  const g = new Graph('calibrate-matmul');
  const a = new Value('a', 'float32', [n, n]);
  const b = new Value('b', 'float32', [n, n]);
  const y = new Value('y', 'float32', [n, n]);
  g.inputs.push(a, b);
  g.addNode(new Node('MatMul', [a, b], [y], new Attrs(), 'matmul'));
  g.outputs.push(y);
  return { graph: g, feeds: new Map([['a', seeded([n, n], 1)], ['b', seeded([n, n], 2)]]) };
}

/**
 * `length` elementwise kernels in a row (Neg, so values stay bounded) over `elements` float32s:
 * each reads and writes 4 bytes per element. Run unfused, it is `length` kernel launches.
 */
export function elementwiseChainGraph(elements: number, length: number): ProbeGraph {
  const g = new Graph('calibrate-elementwise');
  const x = new Value('x', 'float32', [elements]);
  g.inputs.push(x);
  let v = x;
  for (let i = 0; i < length; i++) {
    const out = new Value(i === length - 1 ? 'y' : `t${i}`, 'float32', [elements]);
    g.addNode(new Node('Neg', [v], [out], new Attrs(), `neg${i}`));
    v = out;
  }
  g.outputs.push(v);
  return { graph: g, feeds: new Map([['x', seeded([elements], 3)]]) };
}

/** An AllReduce (sum over `tp`) of a replicated float32 vector of `elements` on a mesh tp=`devices`. */
export function allReducePlan(elements: number, devices: number): { plan: ShardPlan; feeds: Map<string, Tensor> } {
  const mesh = DeviceMesh.parse(`tp=${devices}`);
  const g = new Graph('calibrate-allreduce');
  const x = new Value('x', 'float32', [elements]);
  const y = new Value('y', 'float32', [elements]);
  y.layout = new Map([['tp', Replicate]]);
  g.inputs.push(x);
  const attrs = new Attrs([
    ['axis', { kind: 'string', value: 'tp' }],
    ['reduce', { kind: 'string', value: 'sum' }],
  ]);
  g.addNode(new Node('AllReduce', [x], [y], attrs, 'allreduce', COLLECTIVE_DOMAIN));
  g.outputs.push(y);
  const plan: ShardPlan = { graph: g, mesh, strategy: 'calibrate', bindings: {}, collectives: [], seeds: new Map() };
  return { plan, feeds: new Map([['x', seeded([elements], 4)]]) };
}
