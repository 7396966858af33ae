/**
 * `--strategy auto` as a layout search (strategies/auto.ts planAuto, search/*: one MILP per mesh
 * axis solved by HiGHS). Every auto plan is run on the CPU runtime and compared with the unsharded
 * run. Figures (solver time, sizes) live in bench/auto-vs-megatron.ts.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Layers } from '../../examples/models/layers.js';
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
import { type AutoChoiceDetail, meshShapes, paramBytes, planCost, planPeak } from '../../src/passes/sharding/strategies/auto.js';
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

describe.each([
  ['GPT-like', 'examples/gpt-tiny.onnx', 2],
  ['Llama-like', 'examples/llama-tiny.onnx', 2],
  ['GPT-like', 'examples/gpt-tiny.onnx', 8],
])('%s (%s) at tp=%i on the H100 file', (_label, file, tp) => {
  test('the search solves to optimality, its plan is no costlier than megatron, keeps megatron\'s weight split, and runs correctly', () => {
    const mg = plan(load(file), `tp=${tp}`, 'megatron');
    const g = load(file);
    const au = plan(g, `tp=${tp}`, 'auto');
    const choice = au.autoChoice as AutoChoiceDetail;
    expect(['optimal', 'time-limit']).toContain(choice.search!.status);
    expect(choice.search!.variables).toBeGreaterThan(1000);
    const search = choice.search!.cost!.total;
    const megatron = choice.candidates.find((c) => c.strategy === 'megatron on tp')!.cost!.total;
    expect(search).toBeLessThanOrEqual(megatron * (1 + 1e-9));
    expect(planCost(au, registry, cost).total).toBeLessThanOrEqual(planCost(mg, registry, cost).total * (1 + 1e-9));
    // The tp role: weights split at least as much as megatron splits them.
    expect(paramBytes(au, 'tp')).toBeLessThanOrEqual(paramBytes(mg, 'tp') * (1 + 1e-6));
    // As many communicating collectives as megatron (the search may move one: see the report).
    const comm = (p: ShardPlan): number => p.collectives.filter((c) => !c.kind.startsWith('Local')).length;
    expect(comm(au)).toBeLessThanOrEqual(comm(mg));
    verify(au, load(file));
  });
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
