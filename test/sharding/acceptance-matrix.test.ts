/**
 * The acceptance matrix of issue 4: models × strategies × meshes. For every ACTIVE row,
 * shardGraph → lowerPlan → runSpmd on the simulated devices equals the unsharded CPU run, and the
 * unsharded CPU run equals onnxruntime-node on the same inputs.
 *
 * Tolerances: against the unsharded run rtol 1e-5 with atol 1e-6, or atol 1e-5 where tensor
 * (or expert) parallelism splits a contraction or a reduction into partial sums, which reorders
 * the float additions (outputs of magnitude ~0.1 then differ by a few 1e-6); against
 * onnxruntime-node rtol 1e-4, atol 1e-5 (another implementation of every op).
 *
 * Rows whose strategy is not implemented yet go into PENDING (with a comment), never silently
 * skipped: the test asserts that each still fails with "not implemented yet", so when the strategy
 * lands this test fails until its rows move into ACTIVE. A coverage test checks that every
 * strategy shardc knows has active or pending rows.
 *
 * Small dims keep the file fast: batch 2 (4 on dp=4), sequence 6 (7 and 8 for the uneven and
 * tp=4 sequence-parallel rows).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CNN_TINY, cnnModel } from '../../examples/models/cnn.js';
import { gptKvModel } from '../../examples/models/kv-cache.js';
import { MOE_DENSE_TINY, MOE_TOPK_TINY, moeModel } from '../../examples/models/moe.js';
import { BERT_TINY, GPT_TINY, LLAMA_TINY, bertModel, gptModel, llamaModel } from '../../examples/models/transformers.js';
import { UserError } from '../../src/ir/errors.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { importModel } from '../../src/onnx/import.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { NOT_IMPLEMENTED, PRESETS } from '../../src/passes/sharding/strategies/index.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { runSpmd } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { runWithOrt } from '../../src/verify/ort.js';
import { randomInputs } from '../../src/verify/random-inputs.js';

const registry = createCoreRegistry();
const rules = createCoreShardingRules();

/** The models of the matrix (configs are parameters: the uneven variants are configs too). */
const MODELS: Record<string, () => Uint8Array> = {
  'gpt-tiny': () => gptModel(GPT_TINY).encode(),
  'gpt-6heads': () => gptModel({ ...GPT_TINY, hidden: 48, heads: 6 }).encode(), // 6 heads on tp=4: 2, 2, 1, 1
  'gpt-vocab97': () => gptModel({ ...GPT_TINY, vocab: 97 }).encode(), // 97 rows/columns on tp=4: 25, 24, 24, 24
  'gpt-4layers': () => gptModel({ ...GPT_TINY, layers: 4 }).encode(), // one layer per stage on pp=4
  'bert-tiny': () => bertModel(BERT_TINY).encode(),
  'llama-tiny': () => llamaModel(LLAMA_TINY).encode(), // GQA: 4 heads, 2 kv heads
  'moe-dense-tiny': () => moeModel(MOE_DENSE_TINY).encode(),
  'moe-topk-tiny': () => moeModel(MOE_TOPK_TINY).encode(),
  'cnn-tiny': () => cnnModel(CNN_TINY).encode(),
  'gpt-kv-tiny': () => gptKvModel(GPT_TINY).encode(),
};

const DEFAULT_DIMS: Record<string, Record<string, number>> = {
  'cnn-tiny': { batch: 2 },
  'gpt-kv-tiny': { batch: 2, sequence: 3, past_sequence: 4 },
};
const dimsOf = (model: string, over?: Record<string, number>): Record<string, number> => ({
  ...(DEFAULT_DIMS[model] ?? { batch: 2, sequence: 6 }),
  ...over,
});

/** Spec files (written to a temporary folder; rows name them `spec:<key>`). */
const SPECS: Record<string, object> = {
  // Megatron's MLP by hand: column-parallel c_fc, row-parallel c_proj.
  'gpt-mlp-tp': {
    rules: [
      { match: '*.mlp.c_fc.weight', layout: { tp: 'S(1)' } },
      { match: '*.mlp.c_proj.weight', layout: { tp: 'S(0)' } },
    ],
  },
  // The same plus the batch split on dp.
  'gpt-mlp-dp-tp': {
    rules: [
      { match: 'input_ids', layout: { dp: 'S(0)' } },
      { match: '*.mlp.c_fc.weight', layout: { tp: 'S(1)' } },
      { match: '*.mlp.c_proj.weight', layout: { tp: 'S(0)' } },
    ],
  },
  // Data parallelism by hand, and the first conv's output channels split.
  'cnn-dp': { rules: [{ match: 'input', layout: { dp: 'S(0)' } }] },
  'cnn-channels': { rules: [{ match: '/^conv1\\.weight$/', layout: { x: 'S(0)' } }] },
};

interface Row {
  model: string;
  mesh: string;
  /** A --strategy value; `spec:<key>` for a spec file of SPECS. */
  strategy: string;
  dims?: Record<string, number>;
  /** atol against the unsharded run (see the file comment). */
  atol: number;
}

const TP = 1e-5; // partial sums reorder additions
const EXACT = 1e-6; // no reordering (data, pipeline)

const row = (model: string, mesh: string, strategy: string, atol: number, dims?: Record<string, number>): Row => ({ model, mesh, strategy, atol, dims });

/** Rows whose strategies exist: each must match. */
const ACTIVE: Row[] = [
  // megatron, axis sizes 2 and 4
  ...['gpt-tiny', 'bert-tiny', 'llama-tiny', 'gpt-kv-tiny', 'moe-dense-tiny', 'moe-topk-tiny'].flatMap((m) => [
    row(m, 'tp=2', 'megatron', TP),
    row(m, 'tp=4', 'megatron', TP),
  ]),
  row('gpt-6heads', 'tp=4', 'megatron', TP), // heads not divisible by tp
  row('gpt-vocab97', 'tp=4', 'megatron', TP), // vocabulary not divisible by tp
  // data
  ...['gpt-tiny', 'bert-tiny', 'llama-tiny', 'gpt-kv-tiny', 'moe-dense-tiny', 'moe-topk-tiny', 'cnn-tiny'].map((m) => row(m, 'dp=2', 'data', EXACT)),
  row('gpt-tiny', 'dp=4', 'data', EXACT, { batch: 4 }),
  row('cnn-tiny', 'dp=4', 'data', EXACT, { batch: 4 }),
  row('cnn-tiny', 'dp=2', 'data', EXACT, { batch: 3 }), // uneven batch: 2 + 1
  // sequence (megatron + sequence-parallel norms and residuals)
  ...['gpt-tiny', 'bert-tiny', 'llama-tiny', 'gpt-kv-tiny'].map((m) => row(m, 'tp=2', 'sequence', TP)),
  ...['gpt-tiny', 'llama-tiny'].map((m) => row(m, 'tp=4', 'sequence', TP, { sequence: 8 })),
  row('gpt-tiny', 'tp=4', 'sequence', TP, { sequence: 7 }), // uneven sequence: 2, 2, 2, 1
  // summa2d on a 2×2 grid
  ...['gpt-tiny', 'bert-tiny', 'llama-tiny'].map((m) => row(m, 'tpr=2,tpc=2', 'summa2d', TP)),
  // expert
  ...['moe-dense-tiny', 'moe-topk-tiny'].flatMap((m) => [row(m, 'ep=2', 'expert', TP), row(m, 'ep=4', 'expert', TP)]),
  // pipeline
  ...['gpt-tiny', 'bert-tiny', 'llama-tiny', 'cnn-tiny'].map((m) => row(m, 'pp=2', 'pipeline', EXACT)),
  row('gpt-4layers', 'pp=4', 'pipeline', EXACT, { batch: 4 }),
  // two axes
  ...['gpt-tiny', 'bert-tiny', 'llama-tiny', 'gpt-kv-tiny'].map((m) => row(m, 'dp=2,tp=2', 'data+megatron', TP)),
  ...['gpt-tiny', 'llama-tiny', 'gpt-kv-tiny'].map((m) => row(m, 'pp=2,tp=2', 'pipeline+megatron', TP)),
  ...['moe-dense-tiny', 'moe-topk-tiny'].map((m) => row(m, 'dp=2,ep=2', 'data+expert', TP)),
  // auto
  row('gpt-tiny', 'tp=2', 'auto', TP),
  row('gpt-tiny', 'dp=2,tp=2', 'auto', TP),
  row('cnn-tiny', 'dp=2', 'auto', TP),
  row('moe-topk-tiny', 'ep=2', 'auto', TP),
  row('gpt-tiny', 'pp=2', 'auto', EXACT),
  // spec files
  row('gpt-tiny', 'tp=2', 'spec:gpt-mlp-tp', TP),
  row('gpt-tiny', 'dp=2,tp=2', 'spec:gpt-mlp-dp-tp', TP),
  row('cnn-tiny', 'dp=2', 'spec:cnn-dp', EXACT),
  row('cnn-tiny', 'x=4', 'spec:cnn-channels', TP),
];

/**
 * Rows of strategies that are not implemented yet (strategies/index.ts NOT_IMPLEMENTED): each
 * must fail with "not implemented yet". When a strategy lands, move its rows into ACTIVE.
 */
const PENDING: Row[] = [];

/** Strategy names a row exercises (`data+megatron` → data, megatron; `spec:x` → spec). */
const strategiesOf = (r: Row): string[] => (r.strategy.startsWith('spec:') ? ['spec'] : r.strategy.split('+'));

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-acceptance-'));
  for (const [k, spec] of Object.entries(SPECS)) writeFileSync(join(tmp, `${k}.json`), JSON.stringify(spec));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Feeds for a model: seeded random; BERT's attention mask is 0/1 with the last positions padded. */
function feedsFor(model: string, dims: Record<string, number>): Map<string, Tensor> {
  const graph = importModel(MODELS[model]!(), { file: `${model}.onnx` }).graph;
  const feeds = randomInputs(graph, { dims, seed: 17 });
  if (feeds.has('attention_mask')) {
    const [b, s] = [dims.batch!, dims.sequence!];
    feeds.set('attention_mask', Tensor.from('int64', [b, s], Array.from({ length: b * s }, (_, i) => (i % s < s - (Math.floor(i / s) % 3) ? 1 : 0))));
  }
  return feeds;
}

/** Unsharded CPU run of a model on feeds, checked once against onnxruntime-node. */
const references = new Map<string, Promise<{ feeds: Map<string, Tensor>; want: Map<string, Tensor> }>>();
function reference(model: string, dims: Record<string, number>): Promise<{ feeds: Map<string, Tensor>; want: Map<string, Tensor> }> {
  const key = `${model} ${JSON.stringify(dims)}`;
  let p = references.get(key);
  if (!p) {
    p = (async () => {
      const bytes = MODELS[model]!();
      const feeds = feedsFor(model, dims);
      const want = runGraph(importModel(bytes, { file: `${model}.onnx` }).graph, feeds, { registry });
      const file = join(tmp, `${model}-${Object.values(dims).join('x')}.onnx`);
      writeFileSync(file, bytes);
      const ort = await runWithOrt(file, feeds);
      for (const [name, t] of want)
        expect(`${name} vs onnxruntime: ${compareTensors(t, ort.get(name)!, { rtol: 1e-4, atol: 1e-5 }).message}`).toBe(`${name} vs onnxruntime: `);
      return { feeds, want };
    })();
    references.set(key, p);
  }
  return p;
}

function plan(r: Row) {
  const graph = importModel(MODELS[r.model]!(), { file: `${r.model}.onnx` }).graph;
  const strategy = r.strategy.startsWith('spec:') ? join(tmp, `${r.strategy.slice(5)}.json`) : r.strategy;
  return shardGraph(graph, DeviceMesh.parse(r.mesh), { strategy, registry, rules, bindings: dimsOf(r.model, r.dims) });
}

const label = (r: Row): string => `${r.model} on ${r.mesh}, ${r.strategy}${r.dims ? ` ${JSON.stringify(r.dims)}` : ''}`;

describe('active rows: sharded = unsharded = onnxruntime-node', () => {
  test.each(ACTIVE.map((r) => [label(r), r] as const))('%s', async (_, r) => {
    const dims = dimsOf(r.model, r.dims);
    const { feeds, want } = await reference(r.model, dims);
    const p = plan(r);
    for (const c of p.collectives) expect(c.reason.trim()).not.toBe('');
    // The plan does distribute: a pipeline with stages, or some value split or partial on some axis.
    const values = [...p.graph.inputs, ...p.graph.initializers, ...p.graph.nodes.flatMap((n) => n.outputs)];
    const split = values.some((v) => [...(v.layout?.values() ?? [])].some((pl) => pl.kind !== 'replicate'));
    expect(split || (p.pipeline?.stages ?? 0) > 1).toBe(true);
    if (r.strategy.startsWith('pipeline')) expect(p.pipeline?.stages).toBe(DeviceMesh.parse(r.mesh).axis('pp').size);
    if (r.strategy === 'auto') expect(p.strategy).toBe(`auto (${p.autoChoice!.chosen})`);
    const got = runSpmd(lowerPlan(p, { registry, rules }), p.mesh, feeds, { registry, plan: p });
    expect([...got.outputs.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, t] of want)
      expect(`${name}: ${compareTensors(got.outputs.get(name)!, t, { rtol: 1e-5, atol: r.atol }).message}`).toBe(`${name}: `);
  });
});

describe('pending rows: their strategies are still not implemented', () => {
  const pendingStrategies = [...new Set(PENDING.flatMap(strategiesOf))];
  test('every pending row fails with "not implemented yet" (move it to ACTIVE when its strategy lands)', () => {
    for (const r of PENDING) {
      let err: unknown;
      try {
        plan(r);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect(`${label(r)}: ${(err as Error).message}`).toMatch(/not implemented yet/);
    }
    for (const s of pendingStrategies) expect(NOT_IMPLEMENTED).toContain(s);
  });
});

test('coverage: every strategy has active or pending rows, at axis sizes 2 and 4 where it takes one axis', () => {
  const known = [...new Set([...PRESETS.map((p) => p.name), ...NOT_IMPLEMENTED, 'auto', 'spec'])].sort();
  const covered = new Set([...ACTIVE, ...PENDING].flatMap(strategiesOf));
  expect(known.filter((s) => !covered.has(s))).toEqual([]);
  for (const s of NOT_IMPLEMENTED) expect(ACTIVE.flatMap(strategiesOf)).not.toContain(s);
  const sizes = (s: string): Set<number> =>
    new Set([...ACTIVE, ...PENDING].filter((r) => r.strategy === s).flatMap((r) => DeviceMesh.parse(r.mesh).axes.map((a) => a.size)));
  for (const s of ['megatron', 'data', 'sequence', 'expert', 'pipeline']) expect([...sizes(s)].sort()).toEqual([2, 4]);
  // Two-axis meshes and the uneven cases of the issue.
  for (const m of ['dp=2,tp=2', 'pp=2,tp=2', 'dp=2,ep=2']) expect(ACTIVE.some((r) => r.mesh === m)).toBe(true);
  expect(ACTIVE.some((r) => r.model === 'gpt-6heads' && r.mesh === 'tp=4')).toBe(true);
  expect(ACTIVE.some((r) => r.model === 'gpt-vocab97' && r.mesh === 'tp=4')).toBe(true);
  expect(ACTIVE.some((r) => r.strategy === 'sequence' && r.mesh === 'tp=4' && r.dims?.sequence === 7)).toBe(true);
});
