/**
 * Unit analysis (units.ts) and propagation (propagate.ts, through shardGraph with spec-file
 * seeds on small graphs), checked by the chosen candidates, the collectives, and by running the
 * plans on the simulated devices against the unsharded CPU run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Graph, Value } from '../../src/ir/graph.js';
import { formatLayout } from '../../src/ir/layout.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { mulberry32 } from '../../src/ir/random.js';
import { Tensor } from '../../src/ir/tensor.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';
import { printPlan } from '../../src/passes/sharding/print-plan.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { UnitAnalysis, analyseUnits, nodeCandidates } from '../../src/passes/sharding/units.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { runSpmd } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomTensor } from '../../src/verify/random-inputs.js';
import { GraphBuilder, ints } from '../passes/graph-builder.js';

const registry = createCoreRegistry();
const rules = createCoreShardingRules();
const TOL = { rtol: 1e-5, atol: 1e-6 };
const rnd = (shape: number[], seed: number): Tensor => randomTensor('float32', shape, mulberry32(seed));

function weight(b: GraphBuilder, name: string, shape: number[], seed: number): Value {
  return b.const(name, 'float32', shape, Array.from(rnd(shape, seed).data));
}

function specFile(rulesJson: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shardc-spec-'));
  const f = path.join(dir, 'spec.json');
  fs.writeFileSync(f, JSON.stringify({ rules: rulesJson }));
  return f;
}

/** Shards `make()` and checks the simulated run against the unsharded one. */
function shardAndRun(make: () => Graph, mesh: string, spec: unknown, feeds: Map<string, Tensor>): ShardPlan {
  const ref = make();
  const want = runGraph(ref, feeds, { registry });
  const m = DeviceMesh.parse(mesh);
  const plan = shardGraph(make(), m, { strategy: specFile(spec), registry, rules });
  const got = runSpmd(lowerPlan(plan, { registry, rules }), m, feeds, { registry, plan });
  for (const [k, t] of want) expect(compareTensors(got.outputs.get(k)!, t, TOL).message).toBe('');
  return plan;
}

const kinds = (plan: ShardPlan): string[] => plan.collectives.map((c) => `${c.kind}:${c.tensor}`);
const node = (plan: ShardPlan, out: string) => plan.graph.nodes.find((n) => n.outputs.some((o) => o.name === out))!;

describe('unit analysis', () => {
  test('ratios along links give the smallest consistent integers', () => {
    const a = new Value('a', 'float32', [2, 32]);
    const b = new Value('b', 'float32', [2, 4, 8]);
    const c = new Value('c', 'float32', [4, 2]);
    const ua = new UnitAnalysis();
    expect(ua.link(a, 1, 8, b, 1, 1)).toBe(true); // unit(a,1) = 8·unit(b,1)
    expect(ua.link(b, 1, 1, c, 0, 1)).toBe(true);
    expect([ua.unit(a, 1), ua.unit(b, 1), ua.unit(c, 0), ua.unit(a, 0)]).toEqual([8, 1, 1, 1]);
    // c[0] = 2·x: everything scales so that x is an integer unit 1 → c 2, b 2, a 16.
    const x = new Value('x', 'float32', [2]);
    ua.link(c, 0, 2, x, 0, 1);
    expect([ua.unit(a, 1), ua.unit(b, 1), ua.unit(c, 0), ua.unit(x, 0)]).toEqual([16, 2, 2, 1]);
  });

  test('a conflicting link is recorded and ignored; a unit that does not divide its dim falls back', () => {
    const a = new Value('a', 'float32', [64]);
    const b = new Value('b', 'float32', [8]);
    const ua = new UnitAnalysis();
    ua.link(a, 0, 8, b, 0, 1);
    expect(ua.link(a, 0, 4, b, 0, 1)).toBe(false);
    expect(ua.conflicts).toHaveLength(1);
    expect(ua.unit(a, 0)).toBe(8);
    const c = new Value('c', 'float32', [6]);
    const d = new Value('d', 'float32', [6]);
    ua.link(c, 0, 4, d, 0, 1);
    expect(ua.unit(c, 0)).toBe(2); // gcd(4, 6)
    expect(ua.conflicts.some((m) => m.includes('does not divide'))).toBe(true);
  });

  test('a reshape into heads gives the hidden dim the head size as unit (from the real rules)', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3, 32]);
    const shape = b.const('shape', 'int64', [4], [2, 3, 4, 8]);
    const r = b.op('Reshape', [x, shape], {}, 'r');
    const t = b.op('Transpose', [r], { perm: ints([0, 2, 1, 3]) }, 't');
    b.output(t);
    r.dtype = t.dtype = 'float32';
    r.shape = [2, 3, 4, 8];
    t.shape = [2, 4, 3, 8];
    const cands = new Map(b.g.nodes.map((n) => [n, nodeCandidates(n, rules, 2)]));
    const ua = analyseUnits(b.g, cands);
    expect(ua.unit(x, 2)).toBe(8);
    expect(ua.unit(r, 2)).toBe(1);
    expect(ua.unit(t, 1)).toBe(1);
    expect(ua.unit(x, 0)).toBe(1);
  });
});

describe('propagation', () => {
  /** x[4,16] · W1[16,32] + b1 → GELU-like chain (two consumers) → · W2[32,16] + b2 */
  function mlp(): Graph {
    const b = new GraphBuilder('mlp');
    const x = b.input('x', 'float32', [4, 16]);
    const h = b.op('Add', [b.op('MatMul', [x, weight(b, 'w1', [16, 32], 1)], {}, 'h0'), weight(b, 'b1', [32], 2)], {}, 'h');
    const half = b.op('Mul', [h, b.scalar('half', 0.5)], {}, 'half_h');
    const e = b.op('Erf', [b.op('Div', [h, b.scalar('sqrt2', Math.SQRT2)], {}, 'hs')], {}, 'e');
    const g = b.op('Mul', [half, b.op('Add', [e, b.scalar('one', 1)], {}, 'e1')], {}, 'g');
    const y = b.op('Add', [b.op('MatMul', [g, weight(b, 'w2', [32, 16], 3)], {}, 'y0'), weight(b, 'b2', [16], 4)], {}, 'y');
    return b.output(y);
  }
  const feeds = new Map([['x', rnd([4, 16], 9)]]);

  test('column then row parallel: the chain between stays sharded, one all-reduce at the end', () => {
    const plan = shardAndRun(mlp, 'tp=2', [{ match: 'w1', layout: { tp: 'S(1)' } }, { match: 'w2', layout: { tp: 'S(0)' } }], feeds);
    expect(kinds(plan)).toEqual(['AllReduce:y']);
    expect(node(plan, 'h0').meta.get('sharding.tp')).toBe('[R, S(1)] -> [S(1)]');
    for (const v of ['h', 'half_h', 'hs', 'e', 'e1', 'g']) expect(formatLayout(node(plan, v).outputs[0]!.layout!)).toBe('{tp: S(1)}');
    expect(node(plan, 'y0').meta.get('sharding.tp')).toBe('[S(1), S(0)] -> [P(sum)]');
    // The free bias b1 takes its consumer's layout; b2 is added as a partial (kept on one device).
    expect(formatLayout(plan.graph.initializers.find((v) => v.name === 'b1')!.layout!)).toBe('{tp: S(0)}');
    expect(formatLayout(plan.graph.initializers.find((v) => v.name === 'b2')!.layout!)).toBe('{tp: P(sum)}');
    expect(plan.graph.outputs[0]!.name).toBe('y');
    expect(plan.collectives[0]!.reason).toBe('graph output y needs R of y on tp; it is P(sum) (produced by Add(y))');
  });

  test('uneven: 3 devices over 32 and 16 columns', () => {
    const plan = shardAndRun(mlp, 'tp=3', [{ match: 'w1', layout: { tp: 'S(1)' } }, { match: 'w2', layout: { tp: 'S(0)' } }], feeds);
    expect(kinds(plan)).toEqual(['AllReduce:y']);
  });

  test('without seeds a small graph stays replicated (no collective)', () => {
    const plan = shardAndRun(mlp, 'tp=2', [{ match: 'x', layout: { tp: 'R' } }], feeds);
    expect(plan.collectives).toEqual([]);
    for (const n of plan.graph.nodes) expect(n.meta.get('sharding.tp')).toMatch(/^\[[R, -]*\] -> \[R\]$/);
  });

  test('a free constant needed in two layouts is cloned (no communication)', () => {
    const make = (): Graph => {
      const b = new GraphBuilder('twice');
      const x = b.input('x', 'float32', [4, 8]);
      const bias = weight(b, 'bias', [8], 5);
      const a1 = b.op('Add', [b.op('MatMul', [x, weight(b, 'w', [8, 8], 6)], {}, 'm'), bias], {}, 'a1');
      const a2 = b.op('Add', [x, bias], {}, 'a2');
      return b.output(a1, a2);
    };
    const plan = shardAndRun(make, 'tp=2', [{ match: 'w', layout: { tp: 'S(1)' } }], new Map([['x', rnd([4, 8], 7)]]));
    const biases = plan.graph.initializers.filter((v) => v.constant === plan.graph.initializers.find((w) => w.name === 'bias')!.constant);
    expect(biases.map((v) => `${v.name} ${formatLayout(v.layout!)}`).sort()).toEqual(['bias {tp: S(0)}', 'bias.tp_R {tp: R}']);
    expect(kinds(plan)).toEqual(['AllGather:a1']);
  });

  test('a seed on an intermediate value makes its producer run sharded', () => {
    const make = (): Graph => {
      const b = new GraphBuilder('pin');
      const x = b.input('x', 'float32', [4, 8]);
      const r = b.op('Relu', [x], {}, 'r');
      return b.output(b.op('Neg', [r], {}, 'n'));
    };
    const plan = shardAndRun(make, 'tp=2', [{ match: 'r', layout: { tp: 'S(0)' } }], new Map([['x', rnd([4, 8], 8)]]));
    // Relu runs sharded from a local slice of x, Neg too, and n is gathered at the end.
    expect(node(plan, 'r').meta.get('sharding.tp')).toBe('[S(0)] -> [S(0)]');
    expect(kinds(plan)).toEqual(['LocalShard:x', 'AllGather:n']);
    expect(plan.seeds.get('r')).toContain('rule 0 (r)');
  });

  test('deterministic: the same input gives the same printed plan', () => {
    const spec = [{ match: 'w1', layout: { tp: 'S(1)' } }, { match: 'w2', layout: { tp: 'S(0)' } }];
    const f = specFile(spec);
    const a = printPlan(shardGraph(mlp(), DeviceMesh.parse('tp=4'), { strategy: f, registry, rules }));
    const b = printPlan(shardGraph(mlp(), DeviceMesh.parse('tp=4'), { strategy: f, registry, rules }));
    expect(a).toBe(b);
  });
});
