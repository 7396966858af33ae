/**
 * Golden printed plans (print-plan.ts): layouts of every value, each node's chosen candidate, the
 * collectives with their reasons. `SHARDC_ACCEPT=1 npx jest test/sharding/plan-golden.test.ts`
 * rewrites the files under test/golden/plans/ (review the diff, then commit).
 */
import { BERT_TINY, GPT_TINY, LLAMA_TINY, bertModel, gptModel, llamaModel } from '../../examples/models/transformers.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { importModel } from '../../src/onnx/import.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { printPlan } from '../../src/passes/sharding/print-plan.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { expectGolden } from '../passes/golden.js';

const registry = createCoreRegistry();
const rules = createCoreShardingRules();
const DIMS = { batch: 2, sequence: 5 };

const CASES: [file: string, make: () => Uint8Array, mesh: string, strategy: string][] = [
  ['gpt-tiny.megatron.tp2.txt', () => gptModel(GPT_TINY).encode(), 'tp=2', 'megatron'],
  ['bert-tiny.megatron.tp4.txt', () => bertModel(BERT_TINY).encode(), 'tp=4', 'megatron'],
  ['llama-tiny.megatron.tp2.txt', () => llamaModel(LLAMA_TINY).encode(), 'tp=2', 'megatron'],
  ['gpt-tiny.data.dp2.txt', () => gptModel(GPT_TINY).encode(), 'dp=2', 'data'],
];

describe('golden plans', () => {
  for (const [file, make, mesh, strategy] of CASES)
    test(`${file}: ${strategy} on ${mesh}`, () => {
      const graph = importModel(make(), { file }).graph;
      const plan = shardGraph(graph, DeviceMesh.parse(mesh), { strategy, registry, rules, bindings: DIMS });
      expectGolden(`plans/${file}`, printPlan(plan));
    });
});
