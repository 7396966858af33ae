/**
 * summa2d (strategies/summa2d.ts): 2-D SUMMA over a tpr × tpc mesh. Checked on hand-built MLPs and
 * the GPT example: every big weight stored 1/(P·Q) per device (local shapes of the lowered
 * programs), SUMMA's panel broadcasts as all-gathers (activations along tpc, weights along tpr, no
 * reduction), square and rectangular meshes with uneven shards, the user errors, golden plans, and
 * every plan run on the simulated devices against the unsharded CPU run.
 */
import { GPT_TINY, type TransformerConfig, gptModel } from '../../examples/models/transformers.js';
import type { Graph } from '../../src/ir/graph.js';
import { formatPlacement } from '../../src/ir/layout.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { ModelBuilder, prng } from '../../src/onnx/builder.js';
import { importModel } from '../../src/onnx/import.js';
import { defaultPipeline } from '../../src/passes/manager.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { type DeviceProgram, lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';
import { printPlan } from '../../src/passes/sharding/print-plan.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { splitDim } from '../../src/passes/sharding/shards.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { runSpmd } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { GPT_TINY as GPT_TINY_FILE, cli } from '../bundle/cli-helper.js';
import { expectUserError } from '../helpers/ops.js';
import { expectGolden } from '../passes/golden.js';

const registry = createCoreRegistry();
const rules = createCoreShardingRules();

/** x[batch, 16] → MatMul 16×32 → Relu → MatMul 32×16 → y. */
function smallMlp(): Uint8Array {
  const b = new ModelBuilder({ name: 'mlp' });
  const rand = prng(11);
  const w = (shape: number[]): Tensor => Tensor.from('float32', shape, Array.from({ length: shape[0]! * (shape[1] ?? 1) }, () => rand() - 0.5));
  b.input('x', 'float32', ['batch', 16]);
  b.initializer('w1', w([16, 32]));
  b.initializer('w2', w([32, 16]));
  const h = b.op('Relu', [b.op('MatMul', ['x', 'w1'])]);
  b.node('MatMul', [h, 'w2'], {}, { outputs: ['y'] });
  b.output('y', 'float32', ['batch', 16]);
  return b.encode();
}

/** x[batch, seq, 24] → (MatMul 24×40 + b1) → Gelu-ish Tanh → (MatMul 40×36 + b2) → Sigmoid·x → MatMul 36×20 → y. */
function bigMlp(): Uint8Array {
  const b = new ModelBuilder({ name: 'mlp3', opset: 17 });
  const rand = prng(12);
  const t = (shape: number[]): Tensor => Tensor.from('float32', shape, Array.from({ length: shape.reduce((a, c) => a * c, 1) }, () => rand() - 0.5));
  b.input('x', 'float32', ['batch', 'seq', 24]);
  b.initializer('fc1.weight', t([24, 40]));
  b.initializer('fc1.bias', t([40]));
  b.initializer('fc2.weight', t([40, 36]));
  b.initializer('fc2.bias', t([36]));
  b.initializer('fc3.weight', t([36, 20]));
  const h1 = b.op('Tanh', [b.op('Add', [b.op('MatMul', ['x', 'fc1.weight']), 'fc1.bias'])]);
  const a2 = b.op('Add', [b.op('MatMul', [h1, 'fc2.weight']), 'fc2.bias']);
  const h2 = b.op('Mul', [a2, b.op('Sigmoid', [a2])]);
  b.node('MatMul', [h2, 'fc3.weight'], {}, { outputs: ['y'] });
  b.output('y', 'float32', ['batch', 'seq', 20]);
  return b.encode();
}

const gpt = (cfg: Partial<TransformerConfig> = {}): Uint8Array => gptModel({ ...GPT_TINY, ...cfg }).encode();
const load = (bytes: Uint8Array): Graph => importModel(bytes, { file: 'model.onnx' }).graph;

function shard(bytes: Uint8Array, mesh: string, dims: Record<string, number>, strategy = 'summa2d'): ShardPlan {
  return shardGraph(load(bytes), DeviceMesh.parse(mesh), { strategy, registry, rules, bindings: dims });
}

/** The plan on the simulated devices vs the unsharded CPU run (rtol 1e-5, atol 1e-5). */
function expectMatchesUnsharded(bytes: Uint8Array, plan: ShardPlan, programs: DeviceProgram[], dims: Record<string, number>): void {
  const ref = load(bytes);
  const feeds = randomInputs(ref, { seed: 7, dims });
  defaultPipeline({ registry, bindings: dims }).run(ref);
  const want = runGraph(ref, feeds, { registry });
  const got = runSpmd(programs, plan.mesh, feeds, { registry, plan });
  expect(want.size).toBeGreaterThan(0);
  for (const [k, t] of want) expect(`${k}: ${compareTensors(got.outputs.get(k)!, t, { rtol: 1e-5, atol: 1e-5 }).message}`).toBe(`${k}: `);
}

const layoutOf = (plan: ShardPlan, name: string): string => {
  const v = plan.graph.initializers.find((x) => x.name === name)!;
  return plan.mesh.axes.map((a) => `${a.name}: ${formatPlacement(v.layout!.get(a.name)!)}`).join(', ');
};

/** [kind, axis, tensor, dim attr] of every collective, in graph order. */
const collectives = (plan: ShardPlan): string[] =>
  plan.graph.nodes
    .filter((n) => n.domain === 'shardc.collective')
    .map((n) => `${n.op} ${n.attrs.string('axis', '')} ${n.inputs[0]!.name} dim=${n.attrs.int('dim', -1)}`);

/** Every device holds exactly its balanced block of a 2-D weight stored {tpr: S(0), tpc: S(1)}. */
function expectBlockWeights(plan: ShardPlan, programs: DeviceProgram[], names: string[]): void {
  const p = plan.mesh.axis('tpr').size;
  const q = plan.mesh.axis('tpc').size;
  for (const name of names) {
    const global = plan.graph.initializers.find((v) => v.name === name)!.shape as number[];
    const lt = plan.graph.initializers.find((v) => v.name === name)!.layout!;
    const unitOf = (axis: string): number => {
      const pl = lt.get(axis)!;
      return pl.kind === 'shard' ? (pl.unit ?? 1) : 1;
    };
    const rows = splitDim(global[0]!, p, unitOf('tpr'));
    const cols = splitDim(global[1]!, q, unitOf('tpc'));
    let total = 0;
    for (const prog of programs) {
      const local = prog.graph.initializers.find((v) => v.name === name)!;
      const [i, j] = prog.coords as [number, number];
      expect([name, prog.device, local.shape]).toEqual([name, prog.device, [rows[i]!.size, cols[j]!.size]]);
      total += rows[i]!.size * cols[j]!.size;
    }
    expect(total).toBe(global[0]! * global[1]!);
  }
}

describe('summa2d on an MLP', () => {
  test('tpr=2,tpc=2: weights 2-D sharded (1/4 each), X gathered along tpc, W along tpr, no reduction', () => {
    const bytes = smallMlp();
    const dims = { batch: 4 };
    const plan = shard(bytes, 'tpr=2,tpc=2', dims);
    expect(layoutOf(plan, 'w1')).toBe('tpr: S(0), tpc: S(1)');
    expect(layoutOf(plan, 'w2')).toBe('tpr: S(0), tpc: S(1)');
    expect(plan.seeds.get('w1')).toContain("SUMMA's broadcast of W's panels");
    expect(collectives(plan)).toEqual([
      'AllGather tpc x dim=1', // X's k panels along the grid row
      'AllGather tpr w1 dim=0', // W's k panels down the grid column
      'AllGather tpc relu_2 dim=1',
      'AllGather tpr w2 dim=0',
      'AllGather tpc y.sharded dim=1', // the output, gathered at the end
      'AllGather tpr y.allgather_tpc dim=0',
    ]);
    for (const n of plan.graph.nodes.filter((x) => x.op === 'MatMul')) {
      expect(n.meta.get('sharding.tpr')).toBe('[S(0), R] -> [S(0)]');
      expect(n.meta.get('sharding.tpc')).toBe('[R, S(1)] -> [S(1)]');
    }
    for (const c of plan.collectives) expect(c.reason).toMatch(/needs R of .* on tp[rc]; it is S\(\d\)/);
    const programs = lowerPlan(plan, { registry, rules });
    expect(programs.map((p) => p.coords)).toEqual([[0, 0], [0, 1], [1, 0], [1, 1]]);
    for (const prog of programs) {
      expect(prog.graph.initializers.find((v) => v.name === 'w1')!.shape).toEqual([8, 16]);
      expect(prog.graph.initializers.find((v) => v.name === 'w2')!.shape).toEqual([16, 8]);
      expect(prog.graph.inputs.find((v) => v.name === 'x')!.shape).toEqual([2, 8]);
    }
    expectMatchesUnsharded(bytes, plan, programs, dims);
    expectGolden('plans/mlp-summa2d.tpr2tpc2.txt', printPlan(plan));
  });

  test.each([
    ['tpr=2,tpc=3', { batch: 4 }],
    ['tpr=3,tpc=2', { batch: 5 }],
    ['tpr=3,tpc=4', { batch: 7 }],
  ])('rectangular %s with uneven shards', (mesh, dims) => {
    const bytes = smallMlp();
    const plan = shard(bytes, mesh, dims);
    expect(plan.collectives.map((c) => `${c.kind} ${c.meshAxes}`)).toEqual([
      'AllGather tpc',
      'AllGather tpr',
      'AllGather tpc',
      'AllGather tpr',
      'AllGather tpc',
      'AllGather tpr',
    ]);
    const programs = lowerPlan(plan, { registry, rules });
    expectBlockWeights(plan, programs, ['w1', 'w2']);
    expectMatchesUnsharded(bytes, plan, programs, dims);
  });

  test('3 layers with biases on tpr=2,tpc=3 (uneven: rows 5 over 2; 40, 20 over 3): one X and one W gather per MatMul', () => {
    const bytes = bigMlp();
    const dims = { batch: 3, seq: 5 };
    const plan = shard(bytes, 'tpr=2,tpc=3', dims);
    const weights = ['fc1.weight', 'fc2.weight', 'fc3.weight'];
    for (const w of weights) expect(layoutOf(plan, w)).toBe('tpr: S(0), tpc: S(1)');
    // The biases follow their add's layout: sliced over tpc with the output columns.
    expect(layoutOf(plan, 'fc1.bias')).toBe('tpr: R, tpc: S(0)');
    const kinds = plan.collectives.map((c) => `${c.kind} ${c.meshAxes}`);
    expect(kinds.filter((k) => k === 'AllGather tpr')).toHaveLength(3 + 1);
    expect(kinds.filter((k) => k === 'AllGather tpc')).toHaveLength(3 + 1);
    expect(kinds).toHaveLength(8);
    const mms = plan.graph.nodes.filter((n) => n.op === 'MatMul');
    expect(mms).toHaveLength(3);
    for (const n of mms) {
      const [x, w] = n.inputs as [NonNullable<(typeof n.inputs)[0]>, NonNullable<(typeof n.inputs)[0]>];
      // X's k panels were gathered along tpc (before the MatMul, or before the elementwise ops
      // leading to it: the same bytes), its rows stay split over tpr.
      expect(formatPlacement(x.layout!.get('tpc')!)).toBe('R');
      expect(formatPlacement(x.layout!.get('tpr')!)).toBe('S(1)'); // the rows m of X[b, m, k]: 5 over 2
      expect(w.producer?.op).toBe('AllGather');
      expect(w.producer!.attrs.string('axis', '')).toBe('tpr');
      expect(weights).toContain(w.producer!.inputs[0]!.name);
      expect(n.meta.get('sharding.tpr')).toBe('[S(1), R] -> [S(1)]');
      expect(n.meta.get('sharding.tpc')).toBe('[R, S(1)] -> [S(2)]');
    }
    const programs = lowerPlan(plan, { registry, rules });
    expectBlockWeights(plan, programs, weights);
    // fc1: 24×40 over 2×3 → rows 12, columns 14,13,13.
    expect(programs.map((p) => p.graph.initializers.find((v) => v.name === 'fc1.weight')!.shape)).toEqual([
      [12, 14],
      [12, 13],
      [12, 13],
      [12, 14],
      [12, 13],
      [12, 13],
    ]);
    expectMatchesUnsharded(bytes, plan, programs, dims);
  });
});

describe('summa2d on GPT', () => {
  const gptWeights = (plan: ShardPlan): string[] =>
    plan.graph.nodes
      .filter((n) => n.op === 'MatMul' && n.inputs[1]?.producer?.op === 'AllGather' && n.inputs[1].producer.inputs[0]!.constant)
      .map((n) => n.inputs[1]!.producer!.inputs[0]!.name);

  test('tpr=2,tpc=2, batch=1, sequence=8: every big weight 1/4 per device; gathers along rows and columns', () => {
    const bytes = gpt();
    const dims = { batch: 1, sequence: 8 };
    const plan = shard(bytes, 'tpr=2,tpc=2', dims);
    const layers = GPT_TINY.layers;
    const weights = gptWeights(plan);
    // q, k, v (unfused), attention output, MLP in and out per layer, and the LM head.
    expect(weights).toHaveLength(6 * layers + 1);
    for (const l of [0, 1])
      for (const w of ['attn.c_attn.weight.part0', 'attn.c_attn.weight.part1', 'attn.c_attn.weight.part2', 'attn.c_proj.weight', 'mlp.c_fc.weight', 'mlp.c_proj.weight'])
        expect(weights).toContain(`h${l}.${w}`);
    for (const w of weights) expect(layoutOf(plan, w)).toMatch(/^tpr: S\(0(:\d+)?\), tpc: S\(1(:\d+)?\)$/);
    expect(layoutOf(plan, 'h0.attn.c_attn.weight.part0')).toBe('tpr: S(0), tpc: S(1:8)'); // whole heads over tpc
    expect(layoutOf(plan, 'wte')).toBe('tpr: S(0), tpc: S(1)');

    const cs = plan.collectives;
    // No contraction is ever split: nothing is all-reduced.
    expect(cs.filter((c) => c.kind === 'AllReduce')).toHaveLength(0);
    // Weights are gathered along tpr only (dim 0: their k panels), once per MatMul.
    const constants = new Set(plan.graph.initializers.map((v) => v.name));
    const weightGathers = cs.filter((c) => constants.has(c.tensor));
    expect(weightGathers.map((c) => `${c.kind} ${c.meshAxes}`)).toEqual(weights.map(() => 'AllGather tpr'));
    expect(weightGathers.map((c) => c.tensor)).toEqual(weights);
    for (const c of weightGathers) expect(c.from).toMatch(/^\{tpr: S\(0(:\d+)?\), tpc: S\(1(:\d+)?\)\}$/);
    // Along tpc only activations are gathered (X's k panels before a MatMul or a layer norm).
    const tpc = cs.filter((c) => c.meshAxes[0] === 'tpc');
    expect(tpc.every((c) => c.kind === 'AllGather' && !constants.has(c.tensor))).toBe(true);
    // The vocabulary-parallel embedding: its masked lookup's partial sums are reduce-scattered onto the rows.
    expect(cs.filter((c) => c.kind === 'ReduceScatter').map((c) => `${c.meshAxes} ${c.tensor}`)).toEqual(['tpr gather_4']);
    const attn = plan.graph.nodes.find((n) => n.op === 'Softmax')!;
    expect(attn.meta.get('sharding.tpr')).toBe('[S(2)] -> [S(2)]'); // query rows (the sequence) over tpr
    expect(attn.meta.get('sharding.tpc')).toBe('[S(1)] -> [S(1)]'); // heads over tpc

    const programs = lowerPlan(plan, { registry, rules });
    expectBlockWeights(plan, programs, [...weights, 'wte']);
    for (const prog of programs) {
      expect(prog.graph.initializers.find((v) => v.name === 'h0.mlp.c_fc.weight')!.shape).toEqual([16, 64]);
      expect(prog.graph.initializers.find((v) => v.name === 'wte')!.shape).toEqual([48, 16]);
    }
    expectMatchesUnsharded(bytes, plan, programs, dims);
    expectGolden('plans/gpt-tiny-summa2d.tpr2tpc2.txt', printPlan(plan));
  });

  test.each([
    ['tpr=2,tpc=3', { batch: 2, sequence: 5 }, {}],
    ['tpr=3,tpc=2', { batch: 1, sequence: 7 }, {}],
    ['tpr=2,tpc=4', { batch: 1, sequence: 5 }, { hidden: 48, heads: 6, vocab: 97 }],
  ])('%s at %j, config %j: uneven heads, rows and vocabulary', (mesh, dims, cfg) => {
    const bytes = gpt(cfg);
    const plan = shard(bytes, mesh, dims);
    const weights = gptWeights(plan);
    expect(weights).toHaveLength(6 * GPT_TINY.layers + 1);
    expect(plan.collectives.filter((c) => c.kind === 'AllReduce')).toHaveLength(0);
    const programs = lowerPlan(plan, { registry, rules });
    expectBlockWeights(plan, programs, [...weights, 'wte']);
    expectMatchesUnsharded(bytes, plan, programs, dims);
  });

  test('data+summa2d on dp=2,tpr=2,tpc=2: batch over dp, sequence rows over tpr, weights 1/4 on every dp replica', () => {
    const bytes = gpt();
    const dims = { batch: 2, sequence: 6 };
    const plan = shard(bytes, 'dp=2,tpr=2,tpc=2', dims, 'data+summa2d');
    const ids = plan.graph.inputs.find((v) => v.name === 'input_ids')!;
    expect(plan.mesh.axes.map((a) => `${a.name}: ${formatPlacement(ids.layout!.get(a.name)!)}`)).toEqual(['dp: S(0)', 'tpr: S(1)', 'tpc: R']);
    const weights = gptWeights(plan);
    expect(weights).toHaveLength(6 * GPT_TINY.layers + 1);
    for (const w of weights) expect(layoutOf(plan, w)).toMatch(/^dp: R, tpr: S\(0(:\d+)?\), tpc: S\(1(:\d+)?\)$/);
    expect(plan.collectives.filter((c) => c.kind === 'AllReduce')).toHaveLength(0);
    expect(plan.collectives.filter((c) => c.meshAxes[0] === 'dp').map((c) => `${c.kind} ${c.tensor}`)).toEqual(['AllGather logits']);
    expectMatchesUnsharded(bytes, plan, lowerPlan(plan, { registry, rules }), dims);
  });

  test('two axes on one uneven dim (batch 2 over dp=2 and tpr=2) nest their splits and still match', () => {
    // x[2,16]: dp and tpr both shard the batch dim; 2 rows over 2×2 devices gives empty shards.
    const bytes = smallMlp();
    const dims = { batch: 2 };
    const plan = shard(bytes, 'dp=2,tpr=2,tpc=2', dims, 'data+summa2d');
    expectMatchesUnsharded(bytes, plan, lowerPlan(plan, { registry, rules }), dims);
  });

  test('shardc verify examples/gpt-tiny.onnx --mesh tpr=2,tpc=2 --strategy summa2d exits 0', async () => {
    const r = await cli('verify', GPT_TINY_FILE, '--mesh', 'tpr=2,tpc=2', '--strategy', 'summa2d', '--target', 'cpu', '--dim', 'batch=1,sequence=8');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('summa2d on tpr=2,tpc=2 (4 devices');
    expect(r.code).toBe(0);
  });
});

describe('summa2d: bad input', () => {
  test('a mesh without tpr and tpc', () => {
    for (const mesh of ['tp=4', 'tpr=2', 'tpc=2', 'tpr=2,tp=2'])
      expectUserError(() => shard(smallMlp(), mesh, { batch: 4 }), /summa2d needs a 2-D mesh with axes tpr .* and tpc/);
  });

  test('a model without a MatMul weight big enough for the grid', () => {
    expectUserError(() => shard(smallMlp(), 'tpr=64,tpc=2', { batch: 4 }), /no MatMul with a constant 2-D weight of at least 64×2/);
  });

  test('megatron still never gathers a weight at run time (Seed.use is summa2d-only)', () => {
    const plan = shard(smallMlp(), 'tp=2', { batch: 4 }, 'megatron');
    const constants = new Set(plan.graph.initializers.map((v) => v.name));
    expect(plan.collectives.filter((c) => constants.has(c.tensor))).toEqual([]);
    expect(plan.collectives.map((c) => c.kind)).toEqual(['AllReduce']);
  });
});
