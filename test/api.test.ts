/** The public API (src/index.ts): every pipeline stage is reachable from the package entry. */
import { join } from 'node:path';
import * as shardc from '../src/index.js';

const GPT = join(__dirname, '..', 'examples', 'gpt-tiny.onnx');

test('import → passes → shard → lower → simulated run, through the package entry only', () => {
  const registry = shardc.createCoreRegistry();
  const rules = shardc.createCoreShardingRules();
  const dims = { batch: 1, sequence: 6 };
  const reference = shardc.loadModel(GPT);
  shardc.defaultPipeline({ registry, bindings: dims }).run(reference.graph);
  const feeds = shardc.randomInputs(reference.graph, { seed: 5, dims });
  const want = shardc.runGraph(reference.graph, feeds, { registry });

  const model = shardc.loadModel(GPT);
  const mesh = shardc.DeviceMesh.parse('tp=2');
  const plan = shardc.shardGraph(model.graph, mesh, { strategy: 'megatron', registry, rules, bindings: dims });
  expect(plan.collectives.filter((c) => c.kind === 'AllReduce')).toHaveLength(5);
  expect(shardc.printPlan(plan)).toContain('AllReduce');
  const programs = shardc.lowerPlan(plan, { registry, rules });
  const got = shardc.runSpmd(programs, mesh, feeds, { registry, plan }).outputs;
  for (const [name, t] of want) expect(shardc.compareTensors(got.get(name)!, t, { rtol: 1e-5, atol: 1e-5 }).message).toBe('');
});

test('layouts print and parse back, uneven splits are explicit', () => {
  const l = shardc.parseLayout('{tp: S(2:8), dp: P(sum)}');
  expect(shardc.formatLayout(l)).toBe('{tp: S(2:8), dp: P(sum)}');
  expect(shardc.splitDim(48, 4, 8).map((r) => r.size)).toEqual([16, 16, 8, 8]);
  expect(shardc.splitDim(97, 4).map((r) => r.size)).toEqual([25, 24, 24, 24]);
});

test('a sharded graph with shard units prints and parses back unchanged', () => {
  const registry = shardc.createCoreRegistry();
  const rules = shardc.createCoreShardingRules();
  const model = shardc.loadModel(join(__dirname, '..', 'examples', 'llama-tiny.onnx'));
  const plan = shardc.shardGraph(model.graph, shardc.DeviceMesh.parse('tp=4'), { strategy: 'megatron', registry, rules, bindings: { batch: 1, sequence: 4 } });
  const text = shardc.printGraph(plan.graph);
  expect(text).toMatch(/S\(\d+:\d+\)/);
  expect(shardc.printGraph(shardc.parseGraph(text))).toBe(text);
});
