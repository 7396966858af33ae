/**
 * A custom op with its sharding rule, partitioned and verified: `npx tsx examples/api/custom-op.ts`.
 *
 *  1. `com.example::SquaredRelu` (y = max(x, 0)²) as an OpDef: type inference and the reference
 *     evaluation that the CPU runtime (and so every verification) uses;
 *  2. its sharding rule: pointwise, so a shard of the output is computed from the same shard of
 *     the input (broadcastShardCandidates); all-R is always added by shardc itself;
 *  3. a custom strategy, an annotation function: the MLP's first weight column-parallel, the
 *     second row-parallel (Megatron's MLP, written by hand);
 *  4. an MLP x·W1 → SquaredRelu → ·W2 built in the IR, sharded over tp=2, lowered to per-device
 *     programs, run on simulated devices and compared with the unsharded run.
 * The plan needs exactly one collective (the AllReduce of the partial sums at the output); without
 * the rule, the op would run replicated and the plan gathers its input first (printed for contrast).
 */
import {
  type AnnotateFn,
  type AxisSeeds,
  DeviceMesh,
  Graph,
  LazyTensor,
  Node,
  type OpDef,
  type OpRegistry,
  Shard,
  type ShardingRule,
  ShardingRuleRegistry,
  Tensor,
  UserError,
  Value,
  broadcastShardCandidates,
  collectiveCounts,
  compareTensors,
  createCoreRegistry,
  createCoreShardingRules,
  formatLayout,
  lowerPlan,
  prng,
  runGraph,
  runSpmd,
  shardGraph,
} from '../../src/index.js';

const DOMAIN = 'com.example';

const squaredRelu: OpDef = {
  op: 'SquaredRelu',
  domain: DOMAIN,
  family: 'elementwise',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = ctx.inputs[0]!;
    if (x.dtype !== 'float32') throw new UserError(`SquaredRelu takes float32, got ${x.dtype}`, { node: ctx.node.label });
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  evaluate(ctx) {
    const x = ctx.inputs[0]!;
    const y = new Float32Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const v = Math.max(Number(x.data[i]), 0);
      y[i] = v * v;
    }
    return [new Tensor('float32', x.shape, y)];
  },
  flops: (ctx) => 2 * (ctx.inputs[0]!.shape as number[]).reduce((a, b) => a * b, 1),
};

const squaredReluRule: ShardingRule = {
  op: 'SquaredRelu',
  domain: DOMAIN,
  // Pointwise: S(d) in → S(d) out for every dim d. Not linear, so no P(sum) candidate.
  candidates: (ctx) => broadcastShardCandidates(ctx, [0]),
};

/** The hand-written strategy: W1 column-parallel, W2 row-parallel, on whichever axis is asked. */
const mlpStrategy: AnnotateFn = function handMegatron(ctx): AxisSeeds {
  const seeds: AxisSeeds = new Map();
  const byName = new Map(ctx.graph.initializers.map((v) => [v.name, v]));
  seeds.set(byName.get('w1')!, { placement: Shard(1), why: `hand: w1 column-parallel on ${ctx.axis.name}` });
  seeds.set(byName.get('w2')!, { placement: Shard(0), why: `hand: w2 row-parallel on ${ctx.axis.name}` });
  return seeds;
};

const rand = prng(7);
const randn = (shape: number[]): Tensor => Tensor.from('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1));

const W1 = randn([16, 32]);
const W2 = randn([32, 16]);

/** x[4,16] · w1[16,32] → SquaredRelu → · w2[32,16] → y[4,16] (the same weights every call). */
function buildMlp(): Graph {
  const g = new Graph('mlp');
  g.opsets[DOMAIN] = 1;
  const x = new Value('x', 'float32', [4, 16]);
  const constant = (name: string, t: Tensor): Value => {
    const v = new Value(name, t.dtype, [...t.shape]);
    v.constant = LazyTensor.of(t);
    g.initializers.push(v);
    return v;
  };
  const w1 = constant('w1', W1);
  const w2 = constant('w2', W2);
  const h = new Value('h', 'float32', [4, 32]);
  const a = new Value('a', 'float32', [4, 32]);
  const y = new Value('y', 'float32', [4, 16]);
  g.inputs.push(x);
  g.addNode(new Node('MatMul', [x, w1], [h], undefined, 'fc1'));
  g.addNode(new Node('SquaredRelu', [h], [a], undefined, 'act', DOMAIN));
  g.addNode(new Node('MatMul', [a, w2], [y], undefined, 'fc2'));
  g.outputs.push(y);
  return g;
}

function shard(registry: OpRegistry, rules: ShardingRuleRegistry) {
  const graph = buildMlp();
  const mesh = DeviceMesh.parse('tp=2');
  const plan = shardGraph(graph, mesh, { strategy: mlpStrategy, registry, rules });
  return { plan, mesh };
}

const registry = createCoreRegistry().register(squaredRelu);
const rules = createCoreShardingRules().register(squaredReluRule);

const { plan, mesh } = shard(registry, rules);
const feeds = new Map([['x', randn([4, 16])]]);
const want = runGraph(buildMlp(), feeds, { registry }).get('y')!;
const got = runSpmd(lowerPlan(plan, { registry, rules }), mesh, feeds, { registry, plan }).outputs.get('y')!;
const cmp = compareTensors(got, want, { rtol: 1e-5, atol: 1e-6 });

const counts = (p: typeof plan): string => [...collectiveCounts(p)].map(([k, n]) => `${n} ${k}`).join(', ') || 'none';
console.log(`strategy ${plan.strategy} on ${mesh}: collectives ${counts(plan)}`);
const values = [...plan.graph.initializers, ...plan.graph.nodes.flatMap((n) => n.outputs)];
for (const name of ['w1', 'h', 'a', 'w2', 'y.sharded']) {
  const v = values.find((x) => x.name === name);
  console.log(`  ${name}: ${v?.layout ? formatLayout(v.layout) : '?'}`);
}
const without = shard(registry, createCoreShardingRules());
console.log(`without the SquaredRelu rule: collectives ${counts(without.plan)}`);
console.log(`sharded vs unsharded: ${cmp.message || `match (y[0] = ${Number(got.data[0]).toFixed(5)} vs ${Number(want.data[0]).toFixed(5)})`}`);
if (cmp.message) process.exitCode = 3;
