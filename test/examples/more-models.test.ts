/**
 * The MoE, CNN and KV-cache example models: each matches onnxruntime-node on seeded random inputs,
 * the checked-in files are what the generators write, the MoE routing forms agree with each other,
 * and the KV-cache decoder run step by step equals the full-sequence run (and gpt-tiny).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLE_MODELS } from '../../examples/models/index.js';
import { MOE_DENSE_TINY, MOE_TOPK_TINY, type MoeConfig, moeModel } from '../../examples/models/moe.js';
import { GPT_TINY } from '../../examples/models/transformers.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { isStatic } from '../../src/ir/shape.js';
import { prng } from '../../src/onnx/builder.js';
import { loadModel } from '../../src/onnx/import.js';
import { defaultPipeline } from '../../src/passes/manager.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { compareTensors } from '../../src/verify/compare.js';
import { runWithOrt } from '../../src/verify/ort.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { verifyModel } from '../../src/verify/verify.js';

const ROOT = join(__dirname, '..', '..');
const example = (name: string): string => join(ROOT, 'examples', name);
const registry = createCoreRegistry();
const TOL = { rtol: 1e-4, atol: 1e-5 };

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-more-models-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Writes a model built in the test to a temporary file (onnxruntime-node loads files). */
function writeTemp(name: string, bytes: Uint8Array): string {
  const file = join(tmp, name);
  writeFileSync(file, bytes);
  return file;
}

/** CPU runtime outputs of a model file on `feeds`. */
function runCpu(file: string, feeds: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
  return runGraph(loadModel(file).graph, feeds, { registry });
}

function expectClose(got: Tensor | undefined, want: Tensor | undefined, tol = TOL): void {
  expect(got).toBeDefined();
  expect(want).toBeDefined();
  expect(compareTensors(got!, want!, tol).message).toBe('');
}

/** Elements [start, end) of axis 1 of a tensor of rank ≥ 2. */
function sliceAxis1(t: Tensor, start: number, end: number): Tensor {
  const [outer, n, ...rest] = t.shape as number[];
  const inner = rest.reduce((a, c) => a * c, 1);
  const out = new Float64Array(outer! * (end - start) * inner);
  let k = 0;
  for (let o = 0; o < outer!; o++)
    for (let i = start; i < end; i++) for (let j = 0; j < inner; j++) out[k++] = t.data[(o * n! + i) * inner + j]!;
  return Tensor.from(t.dtype, [outer!, end - start, ...rest], out);
}

function tokenIds(batch: number, sequence: number, seed: number): Tensor {
  const rand = prng(seed);
  return Tensor.from('int64', [batch, sequence], Array.from({ length: batch * sequence }, () => Math.floor(rand() * GPT_TINY.vocab)));
}

const emptyCache = (batch: number): Tensor => Tensor.zeros('float32', [batch, GPT_TINY.heads, 0, GPT_TINY.hidden / GPT_TINY.heads]);

describe('the checked-in files are what the generators write', () => {
  for (const name of ['moe-dense-tiny.onnx', 'moe-topk-tiny.onnx', 'cnn-tiny.onnx', 'gpt-kv-tiny.onnx']) {
    test(name, () => {
      const make = EXAMPLE_MODELS[name];
      expect(make).toBeDefined();
      expect(Buffer.from(make!()).equals(readFileSync(example(name)))).toBe(true);
      expect(Buffer.from(make!()).equals(Buffer.from(make!()))).toBe(true); // deterministic
    });
  }
});

describe('each model matches onnxruntime-node at rtol 1e-4', () => {
  const cases: [string, Record<string, number>][] = [
    ['moe-dense-tiny.onnx', { batch: 1, sequence: 1 }],
    ['moe-dense-tiny.onnx', { batch: 3, sequence: 7 }],
    ['moe-topk-tiny.onnx', { batch: 1, sequence: 1 }],
    ['moe-topk-tiny.onnx', { batch: 3, sequence: 7 }],
    ['cnn-tiny.onnx', { batch: 1 }],
    ['cnn-tiny.onnx', { batch: 4 }],
    ['gpt-kv-tiny.onnx', { batch: 1, sequence: 1, past_sequence: 0 }],
    ['gpt-kv-tiny.onnx', { batch: 2, sequence: 5, past_sequence: 0 }],
    ['gpt-kv-tiny.onnx', { batch: 2, sequence: 1, past_sequence: 9 }],
    ['gpt-kv-tiny.onnx', { batch: 3, sequence: 4, past_sequence: 6 }],
  ];
  for (const [name, dims] of cases) {
    test(`${name} ${JSON.stringify(dims)}`, async () => {
      const r = await verifyModel(example(name), { registry, tolerance: TOL, dims, seed: 11 });
      expect(r.reference).toBe('onnxruntime');
      for (const o of r.outputs) expect(o.message).toBe('');
      expect(r.ok).toBe(true);
      const shapes = Object.fromEntries(r.outputs.map((o) => [o.name, o.shape]));
      if (name.startsWith('moe')) expect(shapes).toEqual({ y: [dims.batch, dims.sequence, 16] });
      if (name.startsWith('cnn')) expect(shapes).toEqual({ logits: [dims.batch, 10] });
      if (name.startsWith('gpt-kv')) {
        const present = [dims.batch, 4, dims.past_sequence! + dims.sequence!, 8];
        expect(shapes).toEqual({
          logits: [dims.batch, dims.sequence, 96],
          present_key_0: present,
          present_value_0: present,
          present_key_1: present,
          present_value_1: present,
        });
      }
    });
  }

  for (const name of ['moe-dense-tiny.onnx', 'moe-topk-tiny.onnx', 'cnn-tiny.onnx', 'gpt-kv-tiny.onnx']) {
    test(`${name} with bound dims: every shape static after the default pipeline, outputs unchanged`, async () => {
      const bindings = { batch: 2, sequence: 3, past_sequence: 4 };
      const model = loadModel(example(name));
      const feeds = randomInputs(model.graph, { seed: 5, dims: bindings });
      defaultPipeline({ registry, bindings, verifyEach: true }).run(model.graph);
      for (const n of model.graph.nodes) for (const o of n.outputs) expect(o.shape && isStatic(o.shape)).toBe(true);
      const got = runGraph(model.graph, feeds, { registry });
      const want = await runWithOrt(example(name), feeds);
      expect(want.size).toBe(model.graph.outputs.length);
      for (const [k, t] of want) expectClose(got.get(k), t);
    });
  }
});

describe('MoE routing', () => {
  const feedsFor = (file: string): Map<string, Tensor> => randomInputs(loadModel(file).graph, { seed: 3, dims: { batch: 2, sequence: 6 } });

  test('top-k with k = E (all experts) equals dense gating with the same weights', async () => {
    const dense = writeTemp('dense.onnx', moeModel({ ...MOE_DENSE_TINY, seed: 6 }).encode());
    const allK: MoeConfig = { ...MOE_TOPK_TINY, topK: MOE_TOPK_TINY.experts };
    const topAll = writeTemp('top-all.onnx', moeModel(allK).encode());
    const feeds = feedsFor(dense);
    const want = runCpu(dense, feeds).get('y');
    expectClose(runCpu(topAll, feeds).get('y'), want, { rtol: 1e-5, atol: 1e-6 });
    expectClose((await runWithOrt(topAll, feeds)).get('y'), want);
  });

  test('top-2 routing differs from dense gating (the routing matters)', () => {
    const dense = writeTemp('dense2.onnx', moeModel({ ...MOE_DENSE_TINY, seed: 6 }).encode());
    const feeds = feedsFor(dense);
    const a = runCpu(dense, feeds).get('y')!;
    const b = runCpu(example('moe-topk-tiny.onnx'), feeds).get('y')!;
    let maxDiff = 0;
    for (let i = 0; i < a.size; i++) maxDiff = Math.max(maxDiff, Math.abs(a.data[i]! - b.data[i]!));
    expect(maxDiff).toBeGreaterThan(1e-2);
  });

  test('the OneHot-mask form of top-2 equals the GatherElements form and onnxruntime-node', async () => {
    const onehot = writeTemp('onehot.onnx', moeModel({ ...MOE_TOPK_TINY, combine: 'onehot' }).encode());
    expect(loadModel(onehot).graph.nodes.some((n) => n.op === 'OneHot')).toBe(true);
    const feeds = feedsFor(onehot);
    const want = runCpu(example('moe-topk-tiny.onnx'), feeds).get('y');
    expectClose(runCpu(onehot, feeds).get('y'), want, { rtol: 1e-5, atol: 1e-6 });
    expectClose((await runWithOrt(onehot, feeds)).get('y'), want);
  });

  test('expert weights are stacked along a leading expert dim', () => {
    const g = loadModel(example('moe-dense-tiny.onnx')).graph;
    const shapes = Object.fromEntries(g.initializers.filter((v) => v.name.includes('experts')).map((v) => [v.name, v.shape]));
    expect(shapes['layers.0.moe.experts.w1']).toEqual([4, 16, 32]);
    expect(shapes['layers.0.moe.experts.w2']).toEqual([4, 32, 16]);
    expect(shapes['layers.1.moe.experts.b1']).toEqual([4, 1, 32]);
    expect(shapes['layers.1.moe.experts.b2']).toEqual([4, 1, 16]);
  });
});

describe('gpt-kv-tiny cache semantics', () => {
  const file = example('gpt-kv-tiny.onnx');
  const B = 2;
  const T = 8;
  const ids = tokenIds(B, T, 21);
  const layers = GPT_TINY.layers;

  function cacheFeeds(step: Tensor, cache: Map<string, Tensor> | undefined): Map<string, Tensor> {
    const feeds = new Map<string, Tensor>([['input_ids', step]]);
    for (let l = 0; l < layers; l++)
      for (const kind of ['key', 'value']) feeds.set(`past_${kind}_${l}`, cache?.get(`present_${kind}_${l}`) ?? emptyCache(B));
    return feeds;
  }

  type Runner = (feeds: ReadonlyMap<string, Tensor>) => Promise<Map<string, Tensor>>;
  const runners: [string, Runner][] = [
    ['CPU runtime', async (feeds) => runCpu(file, feeds)],
    ['onnxruntime-node', (feeds) => runWithOrt(file, feeds)],
  ];

  for (const [label, run] of runners) {
    test(`${label}: a 3-token prompt then 5 single-token steps equal the full 8-token run`, async () => {
      const full = await run(cacheFeeds(ids, undefined));
      expect(full.get('logits')!.shape).toEqual([B, T, GPT_TINY.vocab]);
      let cache = await run(cacheFeeds(sliceAxis1(ids, 0, 3), undefined));
      expectClose(cache.get('logits'), sliceAxis1(full.get('logits')!, 0, 3));
      for (let t = 3; t < T; t++) {
        cache = await run(cacheFeeds(sliceAxis1(ids, t, t + 1), cache));
        expect(cache.get('present_key_0')!.shape).toEqual([B, GPT_TINY.heads, t + 1, GPT_TINY.hidden / GPT_TINY.heads]);
        expectClose(cache.get('logits'), sliceAxis1(full.get('logits')!, t, t + 1));
      }
      for (let l = 0; l < layers; l++)
        for (const kind of ['key', 'value']) expectClose(cache.get(`present_${kind}_${l}`), full.get(`present_${kind}_${l}`));
    });
  }

  test('a later token changes no earlier logits, and with an empty cache the logits equal gpt-tiny', async () => {
    const changed = Tensor.from('int64', ids.shape, ids.toArray().map((v, i) => (i % T === T - 1 ? (v + 1) % GPT_TINY.vocab : v)));
    const a = runCpu(file, cacheFeeds(ids, undefined)).get('logits')!;
    const b = runCpu(file, cacheFeeds(changed, undefined)).get('logits')!;
    expectClose(sliceAxis1(b, 0, T - 1), sliceAxis1(a, 0, T - 1), { rtol: 1e-6, atol: 1e-7 });
    expect(compareTensors(sliceAxis1(b, T - 1, T), sliceAxis1(a, T - 1, T), TOL).ok).toBe(false);
    const gpt = runCpu(example('gpt-tiny.onnx'), new Map([['input_ids', ids]])).get('logits');
    expectClose(a, gpt, { rtol: 1e-6, atol: 1e-6 });
  });

  test('the cached keys are the keys of the earlier tokens: a wrong cache changes the logits', async () => {
    const prompt = runCpu(file, cacheFeeds(sliceAxis1(ids, 0, 4), undefined));
    const good = runCpu(file, cacheFeeds(sliceAxis1(ids, 4, 5), prompt)).get('logits')!;
    const other = runCpu(file, cacheFeeds(sliceAxis1(tokenIds(B, 4, 99), 0, 4), undefined));
    const bad = runCpu(file, cacheFeeds(sliceAxis1(ids, 4, 5), other)).get('logits')!;
    expect(compareTensors(bad, good, TOL).ok).toBe(false);
  });
});
