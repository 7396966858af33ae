/**
 * `auto` (strategies/auto.ts): every applicable preset planned, cost = communication + compute +
 * memory, the cheapest wins, axis names as roles; the choice and every candidate's costs are in
 * plan.autoChoice, deterministic.
 */
import { Layers } from '../../examples/models/layers.js';
import { GPT_TINY, gptModel } from '../../examples/models/transformers.js';
import { UserError } from '../../src/ir/errors.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { ModelBuilder } from '../../src/onnx/builder.js';
import { importModel } from '../../src/onnx/import.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { type AutoChoiceDetail, MAX_MICRO_BATCHES_PER_STAGE, autoCandidates, cloneGraph, planCost, planPeak } from '../../src/passes/sharding/strategies/auto.js';
import { type CostModel, DEFAULT_COST } from '../../src/passes/sharding/propagate.js';
import { PRESETS } from '../../src/passes/sharding/strategies/index.js';
import { printGraph } from '../../src/ir/text.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { runSpmd } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';

const registry = createCoreRegistry();
const rules = createCoreShardingRules();

const GPT = (): Uint8Array => gptModel({ ...GPT_TINY, maxSeq: 64 }).encode();
/** x [batch, din] → Linear → Relu → Linear → y. */
function mlp(din: number, hidden: number): Uint8Array {
  const b = new ModelBuilder({ opset: 17, name: 'mlp' });
  const L = new Layers(b, 5, 17);
  const x = b.input('x', 'float32', ['batch', din]);
  const h = b.op('Relu', [L.linear(x, 'fc1', din, hidden)]);
  b.node('Identity', [L.linear(h, 'fc2', hidden, din)], {}, { outputs: ['y'] });
  b.output('y', 'float32', ['batch', din]);
  return b.encode();
}

const auto = (bytes: Uint8Array, mesh: string, dims: Record<string, number>): ShardPlan =>
  shardGraph(importModel(bytes, { file: 'm.onnx' }).graph, DeviceMesh.parse(mesh), { strategy: 'auto', registry, rules, bindings: dims });
const costOf = (p: ShardPlan, strategy: string): number => p.autoChoice!.candidates.find((c) => c.strategy === strategy)!.cost!.total;

test('gpt-tiny on tp=2 (batch 8, sequence 64): megatron, cheaper than sequence; the axis name rules data out', () => {
  const p = auto(GPT(), 'tp=2', { batch: 8, sequence: 64 });
  expect(p.strategy).toBe('auto (megatron on tp)');
  const choice = p.autoChoice!;
  expect(choice.chosen).toBe('megatron on tp');
  const eligible = choice.candidates.filter((c) => c.eligible).map((c) => c.strategy);
  expect(eligible).toEqual(['megatron on tp', 'sequence on tp']);
  expect(costOf(p, 'megatron on tp')).toBeLessThan(costOf(p, 'sequence on tp'));
  const data = choice.candidates.find((c) => c.strategy === 'data on tp')!;
  expect(data.eligible).toBe(false);
  expect(data.note).toMatch(/axis names ask for megatron on tp or sequence on tp/);
  // The plan is megatron's: 2 all-reduces per layer + the embedding's, the logits gathered.
  expect(p.collectives.filter((c) => c.kind === 'AllReduce')).toHaveLength(2 * GPT_TINY.layers + 1);
  // Its cost parts are positive and add up.
  const c = choice.candidates[0]!.cost!;
  expect(c.communication).toBeGreaterThan(0);
  expect(c.compute).toBeGreaterThan(0);
  expect(c.memory).toBeGreaterThan(0);
  expect(c.total).toBeCloseTo(c.communication + c.compute + c.memory, 15);
});

test('a batch-heavy MLP: data on a dp axis, and data by cost alone on an axis no preset owns', () => {
  const onDp = auto(mlp(16, 32), 'dp=2', { batch: 256 });
  expect(onDp.strategy).toBe('auto (data on dp)');
  const open = auto(mlp(16, 32), 'x=2', { batch: 256 });
  expect(open.strategy).toBe('auto (data on x)');
  const costed = open.autoChoice!.candidates.filter((c) => c.cost).map((c) => c.strategy);
  expect(costed).toEqual(expect.arrayContaining(['megatron on x', 'data on x', 'pipeline on x']));
  for (const other of costed) if (other !== 'data on x') expect(costOf(open, 'data on x')).toBeLessThan(costOf(open, other));
  // A pipeline of 2 stages runs its micro-batches in (M + P - 1) clocks: its compute term is
  // stretched by the bubble, so it never beats splitting the batch on this model.
  const pipe = open.autoChoice!.candidates.find((c) => c.strategy === 'pipeline on x')!.cost!;
  expect(pipe.compute).toBeGreaterThan(open.autoChoice!.candidates.find((c) => c.strategy === 'data on x')!.cost!.compute);
  // Candidates that do not fit the model say why.
  expect(open.autoChoice!.candidates.find((c) => c.strategy.startsWith('sequence'))?.note).toMatch(/no LayerNorm/);
});

test('a weight-heavy MLP (batch 2, 256×1024 weights) on an open axis: megatron, its sharded weights save memory traffic', () => {
  const p = auto(mlp(256, 1024), 'x=2', { batch: 2 });
  expect(p.strategy).toBe('auto (megatron on x)');
  const [m, d] = ['megatron on x', 'data on x'].map((s) => p.autoChoice!.candidates.find((c) => c.strategy === s)!.cost!);
  // Megatron holds half of the 2×256×1024 float weights per device: 1 MiB less memory traffic
  // (less the activations data splits and megatron does not: within 1%).
  const saved = 2 * 256 * 1024 * 4 * 0.5 * 5e-13;
  expect(Math.abs(d!.memory - m!.memory - saved) / saved).toBeLessThan(0.01);
  expect(d!.communication).toBeLessThan(m!.communication); // data's one AllGather sends less than megatron's AllReduce
});

test('the choice is deterministic: same plan text, same costs; the plan is made on a copy and moved into the graph given, as the preset plans it', () => {
  const g = importModel(GPT(), { file: 'm.onnx' }).graph;
  const a = shardGraph(g, DeviceMesh.parse('dp=2,tp=2'), { strategy: 'auto', registry, rules, bindings: { batch: 4, sequence: 16 } });
  const b = auto(GPT(), 'dp=2,tp=2', { batch: 4, sequence: 16 });
  expect(a.strategy).toBe('auto (data on dp, megatron on tp)');
  expect(JSON.stringify(b.autoChoice)).toBe(JSON.stringify(a.autoChoice));
  expect(printGraph(b.graph)).toBe(printGraph(a.graph));
  // shardGraph rewrites the graph it is given, with auto too.
  expect(a.graph).toBe(g);
  const preset = shardGraph(importModel(GPT(), { file: 'm.onnx' }).graph, DeviceMesh.parse('dp=2,tp=2'), { strategy: 'data+megatron', registry, rules, bindings: { batch: 4, sequence: 16 } });
  expect(printGraph(a.graph)).toBe(printGraph(preset.graph));
});

describe('pipelines: the micro-batch count with the least estimated total (the bubble against per-micro-batch collectives), under the memory limit', () => {
  const d = { batch: 8, sequence: 16 };
  const mesh = DeviceMesh.parse('pp=2');
  const run = (cost: CostModel, extra: object = {}): ShardPlan =>
    shardGraph(importModel(GPT(), { file: 'm.onnx' }).graph, mesh, { strategy: 'auto', registry, rules, bindings: d, cost, ...extra });
  /** The reference: the pipeline preset planned with m micro-batches, its planCost total and planPeak. */
  const preset = (m: number, cost: CostModel): { total: number; peak: number } => {
    const p = shardGraph(importModel(GPT(), { file: 'm.onnx' }).graph, mesh, { strategy: 'pipeline', registry, rules, bindings: d, cost, microBatches: m });
    return { total: planCost(p, registry, cost).total, peak: planPeak(p, { strategy: 'pipeline', registry, rules }) };
  };
  const choiceOf = (p: ShardPlan) => (p.autoChoice as AutoChoiceDetail).candidates.find((c) => c.strategy === 'pipeline on pp')!.microBatches!;

  test('compute-bound: the bubble (P-1)/(M+P-1) decides, the most micro-batches win (up to 4 per stage)', () => {
    const heavy: CostModel = { secondsPerFlop: 1e-9, secondsPerByte: 0, secondsPerCollective: 0 };
    const p = run(heavy);
    const mb = choiceOf(p);
    expect(mb.tried.map((t) => t.microBatches)).toEqual([1, 2, 4, 8]);
    expect(MAX_MICRO_BATCHES_PER_STAGE * 2).toBe(8);
    for (const t of mb.tried) expect(t.total! / preset(t.microBatches, heavy).total).toBeCloseTo(1, 12);
    expect(mb.chosen).toBe(8);
    expect(p.pipeline!.microBatches).toBe(8);
  });

  test('collective-bound (the default cost: 10 us per collective): one micro-batch; the counts stop once the total rises', () => {
    const p = run(DEFAULT_COST);
    const mb = choiceOf(p);
    expect(mb.tried.map((t) => t.microBatches)).toEqual([1, 2]);
    expect(mb.tried[1]!.total!).toBeGreaterThan(mb.tried[0]!.total!);
    expect(mb.chosen).toBe(1);
    expect(p.pipeline!.microBatches).toBe(1);
    // Given micro-batches are kept (no choice).
    const given = run(DEFAULT_COST, { microBatches: 4 });
    expect(given.pipeline!.microBatches).toBe(4);
    expect((given.autoChoice as AutoChoiceDetail).candidates.find((c) => c.strategy === 'pipeline on pp')!.microBatches).toBeUndefined();
  });

  test('a memory limit one micro-batch exceeds: the cheapest count that fits, and the plan runs correctly', () => {
    const refs = [1, 2, 4, 8].map((m) => ({ m, ...preset(m, DEFAULT_COST) }));
    // Forward only: the first stage's activations shrink with the micro-batch, so more micro-batches need less.
    expect(refs[1]!.peak).toBeLessThan(refs[0]!.peak);
    const limit = refs[0]!.peak - 1;
    const fitting = refs.filter((r) => r.peak <= limit);
    const want = fitting.reduce((a, b) => (b.total < a.total ? b : a));
    const p = run(DEFAULT_COST, { memoryLimit: limit });
    expect(choiceOf(p).chosen).toBe(want.m);
    expect(p.pipeline!.microBatches).toBe(want.m);
    expect((p.autoChoice as AutoChoiceDetail).memory!.peakBytes).toBeLessThanOrEqual(limit);
    const g = importModel(GPT(), { file: 'm.onnx' }).graph;
    const feeds = randomInputs(g, { dims: d, seed: 3 });
    const want0 = runGraph(g, feeds, { registry });
    const got = runSpmd(lowerPlan(p, { registry, rules }), p.mesh, feeds, { registry, plan: p });
    for (const o of g.outputs) expect(compareTensors(got.outputs.get(o.name)!, want0.get(o.name)!, { rtol: 1e-4, atol: 1e-5 }).message).toBe('');
  });
});

test('no eligible preset fits the model: the ineligible ones are planned, the cheapest wins; the auto plan runs correctly', () => {
  // An MLP has no norm for sequence; on tp=2 megatron fits. A plain elementwise model fits neither.
  const b = new ModelBuilder({ opset: 17, name: 'ew' });
  const x = b.input('x', 'float32', ['batch', 8]);
  b.node('Relu', [b.op('Tanh', [x])], {}, { outputs: ['y'] });
  b.output('y', 'float32', ['batch', 8]);
  const p = auto(b.encode(), 'tp=2', { batch: 4 });
  expect(p.strategy).toBe('auto (data on tp)');
  const g = importModel(b.encode(), { file: 'ew.onnx' }).graph;
  const feeds = randomInputs(g, { dims: { batch: 4 }, seed: 1 });
  const got = runSpmd(lowerPlan(p, { registry, rules }), p.mesh, feeds, { registry, plan: p });
  expect(compareTensors(got.outputs.get('y')!, runGraph(g, feeds, { registry }).get('y')!, { rtol: 1e-6, atol: 0 }).message).toBe('');
});

test('nothing applies: a UserError listing every candidate', () => {
  const b = new ModelBuilder({ opset: 17, name: 'scalar' });
  const x = b.input('x', 'float32', []);
  b.node('Neg', [x], {}, { outputs: ['y'] });
  b.output('y', 'float32', []);
  expect(() => auto(b.encode(), 'tp=2', {})).toThrow(UserError);
  expect(() => auto(b.encode(), 'tp=2', {})).toThrow(/strategy auto: no preset applies .*megatron on tp: .*data on tp: /);
});

test('candidates follow PRESETS (presets added later are considered), one per distinct assignment', () => {
  const names = [...new Set(PRESETS.map((p) => p.name))];
  const cands = autoCandidates(DeviceMesh.parse('x=4')).map((a) => a.presets.map((x) => x.preset.name).join('+'));
  // On a one-axis mesh every preset but those needing a 2-D mesh takes the only axis.
  for (const n of names) if (n !== 'summa2d') expect(cands).toContain(n);
  const two = autoCandidates(DeviceMesh.parse('dp=2,tp=2')).map((a) => a.presets.map((x) => `${x.axis}=${x.preset.name}`).join(','));
  expect(two).toContain('dp=data,tp=megatron');
  expect(new Set(two).size).toBe(two.length);
});

test('planCost on a hand-checkable plan; cloneGraph copies without sharing nodes or values', () => {
  const g = importModel(mlp(4, 8), { file: 'm.onnx' }).graph;
  const c = cloneGraph(g);
  expect(printGraph(c)).toBe(printGraph(g));
  expect(c.nodes.every((n, i) => n !== g.nodes[i] && n.outputs[0] !== g.nodes[i]!.outputs[0])).toBe(true);
  const p = shardGraph(g, DeviceMesh.parse('dp=2'), { strategy: 'data', registry, rules, bindings: { batch: 4 } });
  const cost = planCost(p, registry);
  // One AllGather of y [4,4] float: each device sends its 2×4 block (32 bytes) over a 300 GB/s link,
  // 5 us latency, 10 us collective launch.
  expect(p.collectives.map((r) => [r.kind, r.bytes])).toEqual([['AllGather', 32]]);
  expect(cost.communication).toBeCloseTo(32 / 300e9 + 5e-6 + 1e-5, 15);
});
