/**
 * The `expert` strategy (strategies/expert.ts) on the example MoE models (examples/models/moe.ts):
 * structure detection, the collectives of both plans with their reasons, each device holding only
 * its experts, and shardGraph → lowerPlan → runSpmd against the unsharded CPU run (rtol 1e-5,
 * atol 1e-5: the expert outputs are summed in another order when the combine is a partial sum).
 *
 *   plan 2 (`expert`, tokens ≥ ep): AllToAll dispatch + AllToAll combine per MoE layer;
 *   plan 1 (`expert` with fewer tokens than ep, e.g. a one-token step): one AllReduce per MoE
 *          layer, the top-k combine by the masked GatherElements;
 *   plan 1 by a spec file seeding only the experts' weights S(0): no AllToAll, the combine as the
 *          cost model picks it.
 * `SHARDC_ACCEPT=1 npx jest test/sharding/expert.test.ts` rewrites the golden plans.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MOE_DENSE_TINY, MOE_TOPK_TINY, type MoeConfig, moeModel } from '../../examples/models/moe.js';
import { GPT_TINY, gptModel } from '../../examples/models/transformers.js';
import { UserError } from '../../src/ir/errors.js';
import type { Graph } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { verifyGraph } from '../../src/ir/verify.js';
import { importModel } from '../../src/onnx/import.js';
import { defaultPipeline } from '../../src/passes/manager.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';
import { collectiveCounts, printPlan } from '../../src/passes/sharding/print-plan.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { localRanges, sliceTensor, splitDim } from '../../src/passes/sharding/shards.js';
import { findMoeBlocks, insertDispatch } from '../../src/passes/sharding/strategies/expert.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { runSpmd } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { expectGolden } from '../passes/golden.js';

const registry = createCoreRegistry();
const TOL = { rtol: 1e-5, atol: 1e-5 };

const MODELS: Record<string, MoeConfig> = {
  'moe-dense-tiny': MOE_DENSE_TINY,
  'moe-topk-tiny': MOE_TOPK_TINY,
  'moe-onehot-tiny': { ...MOE_TOPK_TINY, combine: 'onehot' },
};
const bytesOf = (model: string): Uint8Array => moeModel(MODELS[model]!).encode();
const load = (model: string): Graph => importModel(bytesOf(model), { file: `${model}.onnx` }).graph;

let tmp: string;
const specFiles: Record<string, string> = {};
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-expert-'));
  // Plan 1 by hand: only the experts' weights are split over ep (and the batch over dp on dp,ep meshes).
  const experts = { match: '*.experts.*', layout: { ep: 'S(0)' } };
  specFiles.ep = join(tmp, 'experts.json');
  writeFileSync(specFiles.ep, JSON.stringify({ rules: [experts] }));
  specFiles['dp,ep'] = join(tmp, 'experts-dp.json');
  writeFileSync(specFiles['dp,ep'], JSON.stringify({ rules: [experts, { match: 'x', layout: { dp: 'S(0)' } }] }));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function shard(model: string, mesh: string, strategy: string, bindings: Record<string, number>): { plan: ShardPlan; mesh: DeviceMesh } {
  const m = DeviceMesh.parse(mesh);
  const rules = createCoreShardingRules();
  const s = strategy === 'spec' ? specFiles[m.axisNames().join(',')]! : strategy;
  return { plan: shardGraph(load(model), m, { strategy: s, registry, rules, bindings }), mesh: m };
}

const records = (plan: ShardPlan, kind: string, axis = 'ep') => plan.collectives.filter((c) => c.kind === kind && c.meshAxes.includes(axis));

describe('MoE structure', () => {
  test.each(Object.keys(MODELS))('%s: two MoE layers of 4 experts, their weights, dispatch and combine', (model) => {
    const g = load(model);
    defaultPipeline({ registry, bindings: { batch: 1, sequence: 8 } }).run(g);
    expect(insertDispatch(g)).toBe(2);
    expect(insertDispatch(g)).toBe(0); // idempotent: the entries now read the explicit dispatch
    const blocks = findMoeBlocks(g);
    expect(blocks.map((b) => b.experts)).toEqual([4, 4]);
    blocks.forEach((b, l) => {
      expect(b.weights.map((w) => `${w.value.name}@${w.dim}`)).toEqual(['w1', 'b1', 'w2', 'b2'].map((n) => `layers.${l}.moe.experts.${n}@0`));
      expect(b.dispatch.shape).toEqual([1, 4, 8, 16]);
      expect(b.dispatch.producer?.op).toBe('Expand');
      expect(b.out.shape).toEqual([1, 4, 8, 16]);
      expect(b.expertDim).toBe(1);
      expect(b.combine).toBe(model === 'moe-topk-tiny' ? 'gather' : 'reduce');
      expect(b.output.shape).toEqual([1, 8, 16]);
      expect(b.outputTokenDim).toBe(1);
      // The combine reads the experts' outputs split by tokens along dim 2 ([b,E,s,H]) or dim 1 ([b,s,E,H] after the transpose).
      expect(b.combineTokenDim).toBe(model === 'moe-topk-tiny' ? 1 : 2);
    });
  });
});

describe('plan 2: tokens split over ep, all-to-all dispatch and combine', () => {
  test.each(Object.keys(MODELS))('%s on ep=2: 2 AllToAll per MoE layer, no all-reduce', (model) => {
    const { plan } = shard(model, 'ep=2', 'expert', { batch: 1, sequence: 8 });
    const a2a = records(plan, 'AllToAll');
    expect(a2a).toHaveLength(4);
    expect(records(plan, 'AllReduce')).toHaveLength(0);
    expect(records(plan, 'ReduceScatter')).toHaveLength(0);
    for (const c of plan.collectives) expect(c.reason.trim()).not.toBe('');
    // Per layer: dispatch (tokens → experts on the Expand's output), then combine (experts → tokens).
    const dispatch = a2a.filter((c) => c.tensor.endsWith('.dispatch'));
    expect(dispatch).toHaveLength(2);
    for (const c of dispatch) {
      expect(c.from).toBe('{ep: S(2)}');
      expect(c.to).toBe('{ep: S(1)}');
      expect(c.reason).toMatch(/^MatMul \S+ needs S\(1\) of \S+\.dispatch on ep; it is S\(2\)/);
    }
    const combine = a2a.filter((c) => !c.tensor.endsWith('.dispatch'));
    expect(combine).toHaveLength(2);
    for (const c of combine) expect(`${c.from} -> ${c.to}`).toBe(model === 'moe-topk-tiny' ? '{ep: S(2)} -> {ep: S(1)}' : '{ep: S(1)} -> {ep: S(2)}');
    expect(a2a.map((c) => c.tensor.endsWith('.dispatch'))).toEqual([true, false, true, false]);
    // The seeds say which plan and why.
    const why = [...plan.seeds.values()].join('\n');
    expect(why).toMatch(/tokens split over ep, all-to-all dispatch\/combine/);
    expect(why).toMatch(/all-to-all dispatch/);
  });

  test('uneven ep=3: dispatch AllToAll from 3,3,2 tokens to 2,1,1 experts', () => {
    const { plan, mesh } = shard('moe-dense-tiny', 'ep=3', 'expert', { batch: 1, sequence: 8 });
    expect(records(plan, 'AllToAll')).toHaveLength(4);
    const programs = lowerPlan(plan, { registry, rules: createCoreShardingRules() });
    const a2a = programs.map((p) => p.graph.nodes.find((n) => n.op === 'AllToAll')!);
    expect(a2a.map((n) => n.inputs[0]!.shape)).toEqual([
      [1, 4, 3, 16],
      [1, 4, 3, 16],
      [1, 4, 2, 16],
    ]);
    expect(a2a.map((n) => n.outputs[0]!.shape)).toEqual([
      [1, 2, 8, 16],
      [1, 1, 8, 16],
      [1, 1, 8, 16],
    ]);
    expect(mesh.deviceCount).toBe(3);
  });
});

describe('plan 1: tokens replicated (fewer tokens than ep), partial combine + AllReduce', () => {
  test.each(Object.keys(MODELS))('%s on ep=2 with one token: 1 AllReduce per MoE layer, nothing gathered', (model) => {
    const { plan } = shard(model, 'ep=2', 'expert', { batch: 1, sequence: 1 });
    expect(records(plan, 'AllReduce')).toHaveLength(2);
    expect(records(plan, 'AllToAll')).toHaveLength(0);
    expect(records(plan, 'AllGather')).toHaveLength(0);
    expect(records(plan, 'ReduceScatter')).toHaveLength(0);
    for (const c of records(plan, 'AllReduce')) expect(c.reason).toMatch(/needs R of \S+ on ep; it is P\(sum\)/);
    expect([...plan.seeds.values()].join('\n')).toMatch(/tokens replicated \(MoE#0 \(layers\.0\.moe\.experts\.w1\) has 1 tokens, fewer than ep=2\)/);
    const gathers = plan.graph.nodes.filter((n) => n.op === 'GatherElements');
    if (model === 'moe-topk-tiny') {
      expect(gathers).toHaveLength(2);
      for (const n of gathers) expect(n.meta.get('sharding.ep')).toBe('[S(2), R] -> [P(sum)] (masked-gather-elements)');
    }
  });

  test('a weights-only spec file: experts split, no all-to-all; the combine is the cost model’s', () => {
    const { plan } = shard('moe-dense-tiny', 'ep=2', 'spec', { batch: 1, sequence: 8 });
    expect(records(plan, 'AllToAll')).toHaveLength(0);
    // On these tiny tensors latency decides: one AllGather of the [b,E,s,H] expert outputs per layer
    // (1 latency hop) beats an AllReduce of the combined [b,s,H] (2 hops).
    expect(Object.fromEntries(collectiveCounts(plan))).toEqual({ 'AllGather ep': 2, 'LocalShard ep': 2 });
  });
});

describe('each device holds only its experts', () => {
  test.each([
    ['ep=2', 'expert', 8],
    ['ep=4', 'expert', 8],
    ['ep=3', 'expert', 8],
    ['ep=3', 'expert', 1],
    ['dp=2,ep=2', 'expert', 8],
  ] as const)('%s (%s, sequence %d)', (meshSpec, strategy, sequence) => {
    const batch = meshSpec.startsWith('dp') ? 2 : 1;
    const { plan, mesh } = shard('moe-topk-tiny', meshSpec, strategy, { batch, sequence });
    const programs = lowerPlan(plan, { registry, rules: createCoreShardingRules() });
    const k = mesh.axis('ep').size;
    const blocks = splitDim(4, k);
    const global = load('moe-topk-tiny').initializers;
    for (const prog of programs) {
      const e = blocks[mesh.coord(prog.device, 'ep')]!;
      for (const [name, shape] of [
        ['layers.0.moe.experts.w1', [16, 32]],
        ['layers.1.moe.experts.b1', [1, 32]],
        ['layers.0.moe.experts.w2', [32, 16]],
        ['layers.1.moe.experts.b2', [1, 16]],
      ] as const) {
        const w = prog.graph.initializers.find((v) => v.name === name)!;
        expect(w.shape).toEqual([e.size, ...shape]);
        const g = global.find((v) => v.name === name)!.constant!.load();
        const mine = sliceTensor(g, localRanges(g.shape, new Map([['ep', { kind: 'shard', dim: 0 }]]), mesh, prog.device));
        expect(Array.from(w.constant!.load().data as Float32Array)).toEqual(Array.from(mine.data as Float32Array));
      }
      // Nothing else of the experts' size is stored on the device.
      expect(prog.graph.initializers.filter((v) => v.name.includes('experts') && v.shape?.[0] === 4)).toEqual([]);
    }
  });
});

describe('shardGraph + lowerPlan + runSpmd match the unsharded run', () => {
  const cases: [string, string, string, number][] = [];
  for (const model of Object.keys(MODELS))
    for (const mesh of ['ep=2', 'ep=4', 'ep=3', 'dp=2,ep=2']) {
      cases.push([model, mesh, 'expert', 8]); // plan 2
      cases.push([model, mesh, 'expert', 1]); // plan 1 (one token)
      cases.push([model, mesh, 'spec', 8]); // plan 1 by a spec file
    }
  cases.push(['moe-topk-tiny', 'dp=2,ep=2', 'data+expert', 8], ['moe-dense-tiny', 'ep=4', 'expert', 2], ['moe-dense-tiny', 'ep=3', 'expert', 3]);
  test.each(cases)('%s on %s (%s, sequence %d)', (model, meshSpec, strategy, sequence) => {
    const bindings = { batch: meshSpec.startsWith('dp') ? 2 : 1, sequence };
    const reference = load(model);
    const feeds = randomInputs(reference, { seed: 7, dims: bindings });
    const want = runGraph(reference, feeds, { registry }).get('y')!;
    const { plan, mesh } = shard(model, meshSpec, strategy, bindings);
    const rules = createCoreShardingRules();
    const programs = lowerPlan(plan, { registry, rules });
    for (const p of programs) verifyGraph(p.graph, registry);
    const got = runSpmd(programs, mesh, feeds, { registry, plan }).outputs.get('y')!;
    expect(compareTensors(got, want, TOL).message).toBe('');
    const a2a = records(plan, 'AllToAll').length;
    expect(a2a).toBe(strategy !== 'spec' && sequence >= mesh.axis('ep').size ? 4 : 0);
    if (meshSpec.startsWith('dp')) expect(plan.graph.inputs[0]!.layout?.get('dp')).toEqual({ kind: 'shard', dim: 0 });
  });
});

describe('bad input', () => {
  test('a model without experts', () => {
    const g = importModel(gptModel(GPT_TINY).encode(), { file: 'gpt.onnx' }).graph;
    expect(() => shardGraph(g, DeviceMesh.parse('ep=2'), { strategy: 'expert', registry, rules: createCoreShardingRules(), bindings: { batch: 1, sequence: 8 } })).toThrow(
      /strategy expert: the model has no mixture-of-experts layer to shard over ep/,
    );
  });

  test('more devices than experts', () => {
    const run = () => shard('moe-dense-tiny', 'ep=8', 'expert', { batch: 1, sequence: 8 });
    expect(run).toThrow(UserError);
    expect(run).toThrow(/MoE#0 \(layers\.0\.moe\.experts\.w1\) has 4 experts, fewer than mesh axis ep=8/);
  });
});

describe('golden plans', () => {
  test.each([
    ['moe-dense-tiny.expert.ep2.txt', 'moe-dense-tiny', 8],
    ['moe-topk-tiny.expert.ep2.txt', 'moe-topk-tiny', 8],
    ['moe-topk-tiny.expert.ep2.seq1.txt', 'moe-topk-tiny', 1],
  ] as const)('%s', (file, model, sequence) => {
    const { plan } = shard(model, 'ep=2', 'expert', { batch: 1, sequence });
    expectGolden(`plans/${file}`, printPlan(plan));
  });
});
