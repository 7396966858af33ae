/**
 * Head-sharded KV caches under megatron (strategies/kv-cache.ts): the past/present cache tensors
 * of gpt-kv-tiny stay S(1) (heads) on tp at the input and the output, no collective touches them,
 * and the sharded decoder step equals the unsharded one — also over two steps where step 2 is fed
 * step 1's per-device present tensors as they are (no assembly).
 */
import { GPT_TINY, type TransformerConfig } from '../../examples/models/transformers.js';
import { gptKvModel } from '../../examples/models/kv-cache.js';
import { Layers } from '../../examples/models/layers.js';
import { ModelBuilder } from '../../src/onnx/builder.js';
import type { Graph } from '../../src/ir/graph.js';
import { formatPlacement } from '../../src/ir/layout.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { importModel } from '../../src/onnx/import.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { runSpmd } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';

const registry = createCoreRegistry();
const rules = createCoreShardingRules();
const TOL = { rtol: 1e-5, atol: 1e-5 }; // tensor parallelism reorders the sums of the row-parallel matmuls

const load = (c: TransformerConfig): Graph => importModel(gptKvModel(c).encode(), { file: 'gpt-kv.onnx' }).graph;
const caches = (c: TransformerConfig): string[] => Array.from({ length: c.layers }, (_, l) => [`key_${l}`, `value_${l}`]).flat();
const layoutOf = (p: ShardPlan, name: string, where: 'inputs' | 'outputs'): string =>
  formatPlacement(p.graph[where].find((v) => v.name === name)!.layout?.get('tp') ?? { kind: 'replicate' });

function plan(c: TransformerConfig, mesh: DeviceMesh, dims: Record<string, number>, strategy = 'megatron'): ShardPlan {
  return shardGraph(load(c), mesh, { strategy, registry, rules, bindings: dims });
}

function expectAllClose(got: ReadonlyMap<string, Tensor>, want: ReadonlyMap<string, Tensor>, names: readonly string[]): void {
  for (const name of names) expect(`${name}: ${compareTensors(got.get(name)!, want.get(name)!, TOL).message}`).toBe(`${name}: `);
}

describe.each([
  ['tp=2', 0],
  ['tp=2', 5],
  ['tp=4', 0],
  ['tp=4', 5],
] as const)('gpt-kv-tiny, megatron on %s, past_sequence %d', (meshSpec, past) => {
  const mesh = DeviceMesh.parse(meshSpec);
  const k = mesh.axes[0]!.size;
  const dims = { batch: 2, sequence: 3, past_sequence: past };
  const p = plan(GPT_TINY, mesh, dims);

  test('the cache is head-sharded at the input and the output, and no collective touches it', () => {
    for (const c of caches(GPT_TINY)) {
      expect(layoutOf(p, `past_${c}`, 'inputs')).toBe('S(1)');
      expect(layoutOf(p, `present_${c}`, 'outputs')).toBe('S(1)');
      expect(p.seeds.get(`present_${c}`)).toMatch(/stays head-sharded .* not gathered/);
    }
    for (const r of p.collectives) expect(r.tensor).not.toMatch(/past|present/);
    // The cache Concats read and write nothing through a collective.
    for (const n of p.graph.nodes.filter((x) => x.op === 'Concat' && /^present_/.test(x.outputs[0]!.name))) {
      for (const i of n.inputs) expect(i!.producer?.domain ?? '').not.toBe('shardc.collective');
      for (const u of p.graph.nodes) if (u.inputs.includes(n.outputs[0]!)) expect(u.domain).not.toBe('shardc.collective');
    }
    // Exactly megatron's collectives of the model without cache: 2 all-reduces per layer, the
    // embedding's all-reduce and the logits' all-gather.
    const kinds = p.collectives.map((r) => r.kind).sort();
    expect(kinds).toEqual([...Array(2 * GPT_TINY.layers + 1).fill('AllReduce'), 'AllGather'].sort());
  });

  test('shardGraph → lowerPlan → runSpmd equals the unsharded run; each device holds its heads', () => {
    const g = load(GPT_TINY);
    const feeds = randomInputs(g, { dims, seed: 7 });
    const want = runGraph(g, feeds, { registry });
    const got = runSpmd(lowerPlan(p, { registry, rules }), mesh, feeds, { registry, plan: p });
    expectAllClose(got.outputs, want, g.outputs.map((o) => o.name));
    const hd = GPT_TINY.hidden / GPT_TINY.heads;
    for (const local of got.perDevice) expect(local.get('present_key_0')!.shape).toEqual([2, GPT_TINY.heads / k, past + 3, hd]);
  });
});

/** Unsharded decoder steps: each step's present tensors are the next step's past. */
function decodeUnsharded(c: TransformerConfig, ids: Tensor[], past0: Map<string, Tensor>): Map<string, Tensor>[] {
  const outs: Map<string, Tensor>[] = [];
  let past = past0;
  for (const t of ids) {
    const g = load(c);
    const feeds = new Map<string, Tensor>([['input_ids', t], ...past]);
    const out = runGraph(g, feeds, { registry });
    outs.push(out);
    past = new Map(caches(c).map((x) => [`past_${x}`, out.get(`present_${x}`)!]));
  }
  return outs;
}

describe.each([
  ['tp=2', GPT_TINY],
  ['tp=4', GPT_TINY],
  ['tp=4', { ...GPT_TINY, hidden: 48, heads: 6 }], // uneven: 6 heads on 4 devices (2, 2, 1, 1)
] as const)('two decoder steps on %s keep the cache on the devices', (meshSpec, c) => {
  test('step 2 fed step 1 per-device present tensors equals the unsharded 2-step decode', () => {
    const mesh = DeviceMesh.parse(meshSpec);
    const hd = c.hidden / c.heads;
    const past1 = 2;
    const g1 = load(c);
    const feeds1 = randomInputs(g1, { dims: { batch: 2, sequence: 3, past_sequence: past1 }, seed: 11 });
    const ids2 = randomInputs(load(c), { dims: { batch: 2, sequence: 1, past_sequence: past1 + 3 }, seed: 12 }).get('input_ids')!;
    const pastIn = new Map([...feeds1].filter(([n]) => n.startsWith('past_')));
    const want = decodeUnsharded(c, [feeds1.get('input_ids')!, ids2], pastIn);

    const p1 = plan(c, mesh, { batch: 2, sequence: 3, past_sequence: past1 });
    const r1 = runSpmd(lowerPlan(p1, { registry, rules }), mesh, feeds1, { registry, plan: p1 });
    expectAllClose(r1.outputs, want[0]!, ['logits', ...caches(c).map((x) => `present_${x}`)]);

    const p2 = plan(c, mesh, { batch: 2, sequence: 1, past_sequence: past1 + 3 });
    for (const x of caches(c)) expect(layoutOf(p2, `past_${x}`, 'inputs')).toBe(layoutOf(p1, `present_${x}`, 'outputs'));
    // Step 2's past inputs are step 1's per-device present outputs, as they are.
    const local = r1.perDevice.map((m) => new Map(caches(c).map((x) => [`past_${x}`, m.get(`present_${x}`)!])));
    const r2 = runSpmd(lowerPlan(p2, { registry, rules }), mesh, new Map([['input_ids', ids2]]), { registry, plan: p2, localFeeds: local });
    expectAllClose(r2.outputs, want[1]!, ['logits', ...caches(c).map((x) => `present_${x}`)]);
    const k = mesh.axes[0]!.size;
    const heads = r2.perDevice.map((m) => m.get('present_value_1')!.shape[1]);
    expect(heads.reduce((a, b) => a + b!, 0)).toBe(c.heads);
    expect(Math.max(...(heads as number[]))).toBe(Math.ceil(c.heads / k));
    for (const m of r2.perDevice) expect(m.get('present_key_0')!.shape.slice(2)).toEqual([past1 + 4, hd]);
    // A local feed that is not the device's block (here the assembled global cache) is a UserError.
    const wrong = local.map((m, d) => (d === 0 ? new Map(caches(c).map((x) => [`past_${x}`, r1.outputs.get(`present_${x}`)!])) : m));
    expect(() => runSpmd(lowerPlan(p2, { registry, rules }), mesh, new Map([['input_ids', ids2]]), { registry, plan: p2, localFeeds: wrong })).toThrow(
      /device 0: local input has shape \[2,\d+,5,\d+\] but the device's block is/,
    );
  });
});

test('fewer heads than devices: the attention and its cache stay replicated (documented), results still equal', () => {
  const c = { ...GPT_TINY, heads: 2 }; // 2 heads on tp=4
  const mesh = DeviceMesh.parse('tp=4');
  const dims = { batch: 2, sequence: 3, past_sequence: 4 };
  const p = plan(c, mesh, dims);
  for (const x of caches(c)) {
    expect(layoutOf(p, `past_${x}`, 'inputs')).toBe('R');
    expect(layoutOf(p, `present_${x}`, 'outputs')).toBe('R');
  }
  const g = load(c);
  const feeds = randomInputs(g, { dims, seed: 3 });
  const got = runSpmd(lowerPlan(p, { registry, rules }), mesh, feeds, { registry, plan: p });
  expectAllClose(got.outputs, runGraph(g, feeds, { registry }), g.outputs.map((o) => o.name));
});

test('data + megatron on dp=2,tp=2: the cache is split by batch on dp and by heads on tp', () => {
  const mesh = DeviceMesh.parse('dp=2,tp=2');
  const dims = { batch: 2, sequence: 3, past_sequence: 5 };
  const p = plan(GPT_TINY, mesh, dims, 'data+megatron');
  const past = p.graph.inputs.find((v) => v.name === 'past_key_1')!;
  expect(mesh.axisNames().map((a) => formatPlacement(past.layout!.get(a)!))).toEqual(['S(0)', 'S(1)']);
  const present = p.graph.outputs.find((v) => v.name === 'present_key_1')!;
  expect(formatPlacement(present.layout!.get('tp')!)).toBe('S(1)');
  for (const r of p.collectives) if (/past|present/.test(r.tensor)) expect(r.meshAxes).toEqual(['dp']);
  const g = load(GPT_TINY);
  const feeds = randomInputs(g, { dims, seed: 5 });
  const got = runSpmd(lowerPlan(p, { registry, rules }), mesh, feeds, { registry, plan: p });
  expectAllClose(got.outputs, runGraph(g, feeds, { registry }), g.outputs.map((o) => o.name));
});

/**
 * A GQA attention block with a KV cache (4 query heads, 2 kv heads, head_dim 8): the cache holds kv
 * heads and is repeated to the query heads after the cache Concat, as Llama exports do.
 */
function gqaKvModel(): Uint8Array {
  const [hidden, heads, kv, hd] = [32, 4, 2, 8];
  const b = new ModelBuilder({ opset: 18, name: 'gqa_kv' });
  const L = new Layers(b, 9, 18);
  const x = b.input('x', 'float32', ['batch', 'sequence', hidden]);
  const pastK = b.input('past_key', 'float32', ['batch', kv, 'past_sequence', hd]);
  const pastV = b.input('past_value', 'float32', ['batch', kv, 'past_sequence', hd]);
  const q = L.splitHeads(L.linear(x, 'q', hidden, hidden), heads, hd);
  const k = b.node('Concat', [pastK, L.splitHeads(L.linear(x, 'k', hidden, kv * hd), kv, hd)], { axis: 2 }, { outputs: ['present_key'] })[0]!;
  const v = b.node('Concat', [pastV, L.splitHeads(L.linear(x, 'v', hidden, kv * hd), kv, hd)], { axis: 2 }, { outputs: ['present_value'] })[0]!;
  const repeat = (t: string): string => {
    const shape = b.op('Shape', [t]);
    const dim = (i: number): string => b.op('Gather', [shape, L.constI([i])], { axis: 0 });
    const target = b.op('Concat', [dim(0), L.constI([kv, heads / kv]), dim(2), L.constI([hd])], { axis: 0 });
    return b.op('Reshape', [b.op('Expand', [L.unsqueeze(t, [2]), target]), L.constI([0, heads, -1, hd])]);
  };
  const a = L.attention(q, repeat(k), repeat(v), hd);
  b.node('Identity', [L.linear(L.mergeHeads(a, hidden), 'o', hidden, hidden)], {}, { outputs: ['y'] });
  b.output('y', 'float32', ['batch', 'sequence', hidden]);
  b.output('present_key', 'float32', ['batch', kv, 'total_sequence', hd]);
  b.output('present_value', 'float32', ['batch', kv, 'total_sequence', hd]);
  return b.encode();
}

describe.each([
  ['tp=2', 'S(1)'], // 2 kv heads over 2 devices: one kv head (and its cache) per device
  ['tp=4', 'R'], // 2 kv heads, 4 devices: the kv projections and the cache are replicated
] as const)('GQA with a KV cache on %s', (meshSpec, cacheLayout) => {
  test(`the cache is ${cacheLayout} at input and output; the sharded run equals the unsharded one`, () => {
    const mesh = DeviceMesh.parse(meshSpec);
    const dims = { batch: 2, sequence: 3, past_sequence: 4 };
    const load = (): Graph => importModel(gqaKvModel(), { file: 'gqa-kv.onnx' }).graph;
    const p = shardGraph(load(), mesh, { strategy: 'megatron', registry, rules, bindings: dims });
    for (const x of ['key', 'value']) {
      expect(layoutOf(p, `past_${x}`, 'inputs')).toBe(cacheLayout);
      expect(layoutOf(p, `present_${x}`, 'outputs')).toBe(cacheLayout);
    }
    for (const r of p.collectives) expect(r.tensor).not.toMatch(/past|present/);
    const g = load();
    const feeds = randomInputs(g, { dims, seed: 21 });
    const got = runSpmd(lowerPlan(p, { registry, rules }), mesh, feeds, { registry, plan: p });
    expectAllClose(got.outputs, runGraph(g, feeds, { registry }), ['y', 'present_key', 'present_value']);
  });
});
