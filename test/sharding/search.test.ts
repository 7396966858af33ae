/**
 * `--strategy auto` as a layout search (strategies/auto.ts planAuto, search/*: one MILP per mesh
 * axis solved by HiGHS). Every auto plan is run on the CPU runtime and compared with the unsharded
 * run. Figures (solver time, sizes) live in bench/auto-vs-megatron.ts.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Layers } from '../../examples/models/layers.js';
import { GPT_TINY, gptModel } from '../../examples/models/transformers.js';
import { loadHardware, meshWithHardware } from '../../src/hardware/hardware.js';
import { UserError } from '../../src/ir/errors.js';
import type { Graph } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { ModelBuilder } from '../../src/onnx/builder.js';
import { importModel } from '../../src/onnx/import.js';
import { costModelOf } from '../../src/passes/sharding/cost.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';
import { DEFAULT_COST } from '../../src/passes/sharding/propagate.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { solveLp } from '../../src/passes/sharding/search/index.js';
import { type AutoChoiceDetail, SEARCH_MARGIN, collectiveShape, collectiveSignature, meshShapes, paramBytes, planCost, planPeak } from '../../src/passes/sharding/strategies/auto.js';
import { defaultPipeline } from '../../src/passes/manager.js';
import { realiseCandidate } from '../../src/passes/sharding/propagate.js';
import { divideHeavyOps, isHeavy, searchLayouts } from '../../src/passes/sharding/search/index.js';
import { unfuseSplitProjections } from '../../src/passes/sharding/unfuse-qkv.js';
import { analyseUnits, nodeCandidates } from '../../src/passes/sharding/units.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { runSpmd } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';

const root = join(__dirname, '..', '..');
const registry = createCoreRegistry();
const rules = createCoreShardingRules();
const hw = loadHardware(join(root, 'examples/hardware/h100-8x-nvlink.json'));
const cost = costModelOf(hw, DEFAULT_COST);
const dims = { batch: 1, sequence: 16 };
const load = (file: string): Graph => importModel(readFileSync(join(root, file)), { file }).graph;
const plan = (g: Graph, mesh: string, strategy: string, extra: object = {}): ShardPlan =>
  shardGraph(g, meshWithHardware(DeviceMesh.parse(mesh), hw), { strategy, registry, rules, bindings: dims, cost, search: true, ...extra });

/** Runs the plan on the CPU runtime and compares every output with the unsharded run. */
function verify(p: ShardPlan, original: Graph, d: Record<string, number> = dims): void {
  const feeds = randomInputs(original, { dims: d, seed: 7 });
  const want = runGraph(original, feeds, { registry });
  const got = runSpmd(lowerPlan(p, { registry, rules }), p.mesh, feeds, { registry, plan: p });
  for (const o of original.outputs) expect(compareTensors(got.outputs.get(o.name)!, want.get(o.name)!, { rtol: 1e-4, atol: 1e-5 }).message).toBe('');
}

test('highs solves a tiny MILP synchronously (worker thread)', () => {
  const r = solveLp('Maximize\n obj: x + 2 y\nSubject To\n c: x + y <= 1.5\nBounds\n 0 <= x <= 1\n 0 <= y <= 1\nBinary\n x y\nEnd\n', { output_flag: false });
  expect(r.Status).toBe('Optimal');
  expect(r.Columns.y!.Primal).toBe(1);
  expect(r.Columns.x!.Primal).toBe(0);
});

test('meshShapes: every factorisation with tp innermost', () => {
  expect(meshShapes(8)).toEqual(['tp=8', 'dp=2,tp=4', 'dp=4,tp=2', 'dp=8', 'pp=2,tp=4', 'pp=2,dp=2,tp=2', 'pp=2,dp=4', 'pp=4,tp=2', 'pp=4,dp=2']);
});

/** The per-node placements on one axis of every node output (by value name), for comparing plans. */
const placements = (p: ShardPlan, axis: string): Map<string, string> =>
  new Map(p.graph.nodes.flatMap((n) => n.outputs).filter((v) => v.layout).map((v) => [v.name, JSON.stringify(v.layout!.get(axis))]));

describe.each([
  ['GPT-like', 'examples/gpt-tiny.onnx', 2],
  ['GPT-like', 'examples/gpt-tiny.onnx', 4],
  ['GPT-like', 'examples/gpt-tiny.onnx', 8],
  ['Llama-like', 'examples/llama-tiny.onnx', 2],
  ['Llama-like', 'examples/llama-tiny.onnx', 4],
  ['Llama-like', 'examples/llama-tiny.onnx', 8],
])('%s (%s) at tp=%i on the H100 file', (_label, file, tp) => {
  test("the search by itself finds megatron's collectives (kinds, bytes, placements, order) at megatron's cost, and its plan runs correctly", () => {
    const mg = plan(load(file), `tp=${tp}`, 'megatron');
    const au = plan(load(file), `tp=${tp}`, 'auto', { preferSearch: true });
    const choice = au.autoChoice as AutoChoiceDetail;
    expect(choice.search!.status).toBe('optimal');
    expect(au.strategy).toBe('auto (search (ILP))');
    // Equal collectives: the same in every case but gpt tp=8, where the MLP's partial sum is reduced
    // after its bias add rather than before (same bytes, same cost).
    expect(collectiveShape(au)).toBe(collectiveShape(mg));
    if (choice.search!.sameAs === undefined) expect(choice.search!.equivalentTo).toBe('megatron on tp');
    else expect(choice.search!.sameAs).toBe('megatron on tp');
    expect(planCost(au, registry, cost).total).toBeCloseTo(planCost(mg, registry, cost).total, 12);
    // The weights split exactly as megatron splits them.
    expect(paramBytes(au, 'tp')).toBe(paramBytes(mg, 'tp'));
    verify(au, load(file));
  });
});

test('the modelling is what finds megatron: by time alone the search keeps (nearly) everything replicated at these sizes', () => {
  const g = load('examples/gpt-tiny.onnx');
  defaultPipeline({ registry, bindings: dims }).run(g);
  unfuseSplitProjections(g);
  const mesh = meshWithHardware(DeviceMesh.parse('tp=2'), hw);
  // The free program is a hard one (branch and bound up to its node limit, 15-25 s here): the
  // wall-clock safety net must not decide the comparison.
  const free = searchLayouts(g, mesh, { registry, rules, cost, free: true, timeLimit: 120 });
  const modelled = searchLayouts(g, mesh, { registry, rules, cost, splitWeights: ['tp'] });
  expect(free.status).toBe('optimal');
  expect(modelled.status).toBe('optimal');
  // Time alone is cheaper in the search's own terms (it communicates less) ...
  expect(free.axes[0]!.objective).toBeLessThan(modelled.axes[0]!.objective);
  // ... because it splits no weight: the MatMuls' weights stay replicated.
  const weightSplits = (r: typeof free): number =>
    [...r.chosen.get('tp')!].filter(([n, c]) => isHeavy(n, registry) && c.inputs.some((pl, i) => !!n.inputs[i]?.constant && pl?.kind === 'shard')).length;
  expect(weightSplits(free)).toBe(0);
  expect(weightSplits(modelled)).toBe(2 * 6 + 1); // 2 layers × (q, k, v, attention out, MLP in, MLP out) + the LM head
});

test('divideHeavyOps: column-parallel projections forced; grouped kv projections with fewer kv heads than devices left free', () => {
  const g = load('examples/llama-tiny.onnx');
  defaultPipeline({ registry, bindings: dims }).run(g);
  unfuseSplitProjections(g);
  const forcedOn = (k: number): string[] => {
    const given = new Map(g.nodes.map((n) => [n, nodeCandidates(n, rules, k)]));
    const units = analyseUnits(g, given);
    const realised = new Map([...given].map(([n, cs]) => [n, cs.map((c) => realiseCandidate(n, c, units))]));
    const graphInputs = new Set(g.inputs);
    const d = divideHeavyOps(g, realised, { registry, isConst: (v) => !!v.constant && !graphInputs.has(v), splitWeights: true });
    return [...d.forced].map((n) => n.inputs.find((v) => v?.constant && (v.shape?.length ?? 0) >= 2)?.name ?? n.op).filter((x) => x.includes('layers.0'));
  };
  // tp=2: 2 kv heads split one per device, so every projection of layer 0 divides.
  const layer0 = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'].map((w) => `layers.0.${w}.weight`);
  expect(forcedOn(2).sort()).toEqual(layer0.sort());
  // tp=4: the 2 kv heads cannot be split in 4 whole heads: k and v projections are not forced (megatron computes them replicated).
  expect(forcedOn(4)).not.toContain('layers.0.k_proj.weight');
  expect(forcedOn(4)).not.toContain('layers.0.v_proj.weight');
  expect(forcedOn(4)).toContain('layers.0.q_proj.weight');
});

test('the search is deterministic: the same seeds and objective on a second run', () => {
  const run = (): string => {
    const p = plan(load('examples/llama-tiny.onnx'), 'tp=4', 'auto', { preferSearch: true });
    return `${(p.autoChoice as AutoChoiceDetail).search!.axes[0]!.objective}\n${collectiveSignature(p)}\n${[...placements(p, 'tp')].join('\n')}`;
  };
  expect(run()).toBe(run());
});

test('a memory limit the tp=2 megatron plan exceeds: auto picks a plan that fits and says so; too small a limit says by how much', () => {
  const file = 'examples/gpt-tiny.onnx';
  const mg = plan(load(file), 'tp=2', 'megatron');
  const peak = planPeak(mg, { strategy: 'megatron', registry, rules });
  const limit = Math.floor(peak * 0.985);
  const au = plan(load(file), 'tp=2', 'auto', { memoryLimit: limit, searchTimeLimit: 10 });
  const choice = au.autoChoice as AutoChoiceDetail;
  expect(planPeak(au, { strategy: 'auto', registry, rules })).toBeLessThanOrEqual(limit);
  expect(choice.candidates.find((c) => c.strategy === 'megatron on tp')!.note).toMatch(/over the memory limit/);
  expect(choice.memory!.note).toMatch(/megatron on tp does not fit/);
  verify(au, load(file));
  // 3% under megatron: no plan on tp=2 fits (megatron already splits every weight); the error says by how much.
  expect(() => plan(load(file), 'tp=2', 'auto', { memoryLimit: Math.floor(peak * 0.97), searchTimeLimit: 10 })).toThrow(/no plan on mesh tp=2 fits .* the least any candidate needs is .* \(\d+(\.\d+)? (B|KiB) over\)/);
  expect(() => plan(load(file), 'tp=2', 'auto', { memoryLimit: 1024 })).toThrow(UserError);
  expect(() => plan(load(file), 'tp=2', 'auto', { memoryLimit: 1024 })).toThrow(/no plan on mesh tp=2 fits the memory limit of 1 KiB per device; the least any candidate needs is .* over/);
});

test('devices: the mesh shape is chosen among the factorisations (batch-heavy MLP: data parallel), tp on NVLink', () => {
  const b = new ModelBuilder({ opset: 17, name: 'mlp' });
  const L = new Layers(b, 5, 17);
  const x = b.input('x', 'float32', ['batch', 16]);
  b.node('Identity', [L.linear(b.op('Relu', [L.linear(x, 'fc1', 16, 32)]), 'fc2', 32, 16)], {}, { outputs: ['y'] });
  b.output('y', 'float32', ['batch', 16]);
  const bytes = b.encode();
  const g = importModel(bytes, { file: 'mlp.onnx' }).graph;
  const p = shardGraph(g, DeviceMesh.parse('tp=1'), { strategy: 'auto', registry, rules, bindings: { batch: 64 }, cost, devices: 4, hardware: hw, search: true });
  const meshes = (p.autoChoice as AutoChoiceDetail).meshes!;
  expect(meshes.map((m) => m.mesh)).toEqual(meshShapes(4));
  const best = Math.min(...meshes.filter((m) => m.total !== undefined).map((m) => m.total!));
  expect(p.strategy).toContain(String(p.mesh));
  expect(meshes.find((m) => m.mesh === String(p.mesh))!.total).toBe(best);
  verify(p, importModel(bytes, { file: 'mlp.onnx' }).graph, { batch: 64 });
});

test('devices=8 on gpt-tiny: tp=8, dp×tp and pp×tp are all costed (pipelines with their bubble); the cheapest that fits the memory limit wins', () => {
  const bytes = readFileSync(join(root, 'examples/gpt-tiny.onnx'));
  const d = { batch: 8, sequence: 32 };
  const run = (memoryLimit: number): ShardPlan =>
    shardGraph(importModel(bytes, { file: 'gpt-tiny.onnx' }).graph, DeviceMesh.parse('tp=1'), { strategy: 'auto', registry, rules, bindings: d, cost, devices: 8, hardware: hw, memoryLimit });
  const roomy = run(2 ** 40);
  const meshes = (roomy.autoChoice as AutoChoiceDetail).meshes!;
  expect(meshes.map((m) => m.mesh)).toEqual(meshShapes(8));
  for (const m of meshes) expect(m.total).toBeGreaterThan(0);
  // A pipeline's schedule idles (pp-1)/(m+pp-1) of the time.
  const pp = meshes.find((m) => m.mesh === 'pp=2,tp=4')!;
  expect(pp.pipeline!.stages).toBe(2);
  expect(pp.pipeline!.bubble).toBeCloseTo(1 / (pp.pipeline!.microBatches + 1), 12);
  const cheapest = (ms: typeof meshes): string => ms.filter((m) => m.total !== undefined).reduce((a, b) => (b.total! < a.total! ? b : a)).mesh;
  expect(String(roomy.mesh)).toBe(cheapest(meshes));
  // A limit just under the winner's peak: its plan no longer fits (that mesh keeps another candidate
  // or none, with a note), every plan kept fits, and the cheapest of them wins.
  const before = meshes.find((m) => m.mesh === String(roomy.mesh))!;
  const limit = before.peakBytes! - 1;
  const tight = run(limit);
  const after = (tight.autoChoice as AutoChoiceDetail).meshes!;
  const again = after.find((m) => m.mesh === before.mesh)!;
  expect(again.note !== undefined || again.chosen !== before.chosen).toBe(true);
  for (const m of after) if (m.total !== undefined) expect(m.peakBytes).toBeLessThanOrEqual(limit);
  expect(String(tight.mesh)).toBe(cheapest(after));
  expect((tight.autoChoice as AutoChoiceDetail).memory!.peakBytes).toBeLessThanOrEqual(limit);
  verify(tight, importModel(bytes, { file: 'gpt-tiny.onnx' }).graph, d);
});

test('pp×tp: the search lays out the tp axis of the micro-batch graph (the pipeline axis stays the stages); its pipelined plan runs correctly', () => {
  const d = { batch: 4, sequence: 16 };
  const file = 'examples/gpt-tiny.onnx';
  // On the H100 file: one micro-batch, and on tp the search finds megatron's layout: the preset keeps its name.
  const au = plan(load(file), 'pp=2,tp=2', 'auto', { bindings: d });
  const choice = au.autoChoice as AutoChoiceDetail;
  expect(au.strategy).toBe('auto (pipeline on pp, megatron on tp)');
  expect(choice.search!.status).toBe('optimal');
  expect(choice.search!.axes.map((a) => a.axis)).toEqual(['tp']);
  expect(choice.search!.microBatches).toBe(1);
  expect(choice.search!.sameAs).toBe('pipeline on pp, megatron on tp');
  // Compute-bound: the pipeline candidates take the most micro-batches (4, the batch), the search
  // plans with the anchor's count, and its layout (reduce-scatters and all-gathers) is cheaper than
  // both presets' by more than SEARCH_MARGIN: auto takes it.
  const heavy = { secondsPerFlop: 1e-9, secondsPerByte: 0, secondsPerCollective: 0 };
  const hv = plan(load(file), 'pp=2,tp=2', 'auto', { bindings: d, cost: heavy });
  const hc = hv.autoChoice as AutoChoiceDetail;
  expect(hv.strategy).toBe('auto (search (ILP))');
  const anchor = hc.candidates.find((c) => c.strategy === 'pipeline on pp, megatron on tp')!;
  expect(anchor.microBatches!.chosen).toBe(4);
  expect(hc.search!.microBatches).toBe(4);
  expect(hv.pipeline!.stages).toBe(2);
  expect(hv.pipeline!.microBatches).toBe(4);
  expect(hc.search!.cost!.total).toBe(planCost(hv, registry, heavy).total);
  for (const c of hc.candidates.filter((x) => x.cost)) expect(hc.search!.cost!.total).toBeLessThan(c.cost!.total * (1 - SEARCH_MARGIN));
  verify(hv, load(file), d);
  // A mesh with only the pipeline axis leaves the search nothing to lay out.
  const pp = plan(load(file), 'pp=2', 'auto', { bindings: d });
  expect((pp.autoChoice as AutoChoiceDetail).search).toBeUndefined();
});

test('a long sequence under a memory limit megatron exceeds: the search finds a plan that fits, cheaper than the sequence preset, and it runs correctly', () => {
  const d = { batch: 1, sequence: 512 };
  const bytes = gptModel({ ...GPT_TINY, hidden: 128, heads: 4, maxSeq: d.sequence }).encode();
  const g = (): Graph => importModel(bytes, { file: 'gpt-long.onnx' }).graph;
  const mg = plan(g(), 'tp=2', 'megatron', { bindings: d });
  const sq = plan(g(), 'tp=2', 'sequence', { bindings: d });
  const o = { strategy: 'auto', registry, rules };
  // Between the two presets' peaks: megatron does not fit, the sequence preset does.
  const limit = Math.floor((planPeak(mg, o) + planPeak(sq, o)) / 2);
  expect(planPeak(sq, o)).toBeLessThan(limit);
  const au = plan(g(), 'tp=2', 'auto', { bindings: d, memoryLimit: limit });
  const choice = au.autoChoice as AutoChoiceDetail;
  expect(au.strategy).toBe('auto (search (ILP))');
  expect(choice.memory!.note).toMatch(/megatron on tp does not fit/);
  expect(planPeak(au, o)).toBeLessThanOrEqual(limit);
  expect(planCost(au, registry, cost).total).toBeLessThan(planCost(sq, registry, cost).total * (1 - SEARCH_MARGIN));
  verify(au, g(), d);
});
