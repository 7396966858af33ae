/**
 * Strategy presets on the project's transformer examples: the collectives Megatron needs (2
 * all-reduces per layer), GQA, uneven sizes, data parallelism, combinations over two axes, the
 * user errors — and every plan run on the simulated devices against the unsharded CPU run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GPT_TINY, BERT_TINY, LLAMA_TINY, type TransformerConfig } from '../../examples/models/transformers.js';
import { formatPlacement } from '../../src/ir/layout.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { GraphBuilder } from '../passes/graph-builder.js';
import { userErrorMessage } from '../helpers/ops.js';
import { type TransformerKind, expectSpmdMatchesUnsharded, loadTransformer } from '../helpers/transformers.js';

const registry = createCoreRegistry();
const rules = createCoreShardingRules();
const DIMS = { batch: 2, sequence: 5 };
type Kind = TransformerKind;

const load = loadTransformer;

function shard(kind: Kind, mesh: string, strategy: string, cfg: Partial<TransformerConfig> = {}): ShardPlan {
  return shardGraph(load(kind, cfg), DeviceMesh.parse(mesh), { strategy, registry, rules, bindings: DIMS });
}

const count = (plan: ShardPlan, kind: string, axis?: string): number =>
  plan.collectives.filter((c) => c.kind === kind && (!axis || c.meshAxes.includes(axis))).length;
const seedOf = (plan: ShardPlan, name: string): string | undefined => plan.seeds.get(name);
const weightLayout = (plan: ShardPlan, name: string, axis = 'tp'): string =>
  formatPlacement(plan.graph.initializers.find((v) => v.name === name)!.layout!.get(axis)!);

/**
 * Runs the plan on the simulated devices and compares with the unsharded CPU run. Tolerance
 * rtol 1e-5 and atol 1e-6, except where stated: tensor parallelism splits contractions into
 * partial sums (a different summation order), so logits of magnitude ~0.05 may differ by ~2e-6.
 */
function expectMatchesUnsharded(kind: Kind, plan: ShardPlan, cfg: Partial<TransformerConfig> = {}, atol = 1e-6): void {
  expectSpmdMatchesUnsharded(load(kind, cfg), plan, lowerPlan(plan, { registry, rules }), { registry, seed: 5, dims: DIMS, atol });
}

describe('megatron', () => {
  test('GPT: exactly 2 all-reduces per transformer layer, plus one for the embedding; the LM head output is gathered', () => {
    for (const layers of [1, 2, 3]) {
      const plan = shard('gpt', 'tp=2', 'megatron', { layers });
      // Per layer: the attention block's and the MLP's partial sums (reduced where the next layer
      // norm needs them). Plus 1: the vocabulary-parallel embedding's masked lookup (its partial
      // sum is reduced together with the first residual). The vocabulary-parallel LM head makes
      // logits S(2): one all-gather at the graph output.
      expect(count(plan, 'AllReduce')).toBe(2 * layers + 1);
      expect(count(plan, 'AllGather')).toBe(1);
      expect(plan.collectives.length).toBe(2 * layers + 2);
      for (const c of plan.collectives) {
        expect(c.reason.length).toBeGreaterThan(20);
        expect(c.reason).toMatch(/needs .* of .* on tp; it is /);
      }
      for (const n of plan.graph.nodes.filter((x) => x.domain === 'shardc.collective')) expect(n.meta.get('reason')).toBeTruthy();
    }
  });

  test('GPT: fused QKV is unfused; q/k/v column-parallel by heads, projections row-parallel, vocab-parallel embedding and LM head', () => {
    const plan = shard('gpt', 'tp=2', 'megatron');
    for (const part of [0, 1, 2]) expect(weightLayout(plan, `h0.attn.c_attn.weight.part${part}`)).toBe('S(1:8)');
    expect(weightLayout(plan, 'h0.attn.c_proj.weight')).toBe('S(0:8)');
    expect(weightLayout(plan, 'h0.mlp.c_fc.weight')).toBe('S(1)');
    expect(weightLayout(plan, 'h0.mlp.c_proj.weight')).toBe('S(0)');
    expect(weightLayout(plan, 'wte')).toBe('S(0)');
    expect(plan.graph.nodes.some((n) => n.op === 'Split')).toBe(false);
    expect(seedOf(plan, 'wte')).toContain('vocabulary-parallel embedding');
    expect(seedOf(plan, 'h1.mlp.c_proj.weight')).toContain('row-parallel');
    const gather = plan.graph.nodes.find((n) => n.op === 'Gather')!;
    expect(gather.meta.get('sharding.tp')).toBe('[S(0), R] -> [P(sum)] (masked-gather)');
    expectMatchesUnsharded('gpt', plan);
  });

  test('BERT at tp=4: 2 all-reduces per layer + embedding, nothing gathered', () => {
    const plan = shard('bert', 'tp=4', 'megatron');
    expect(count(plan, 'AllReduce')).toBe(2 * BERT_TINY.layers + 1);
    expect(count(plan, 'AllGather')).toBe(0);
    expectMatchesUnsharded('bert', plan);
  });

  test('Llama GQA, kv heads ≥ tp: k/v sharded by kv heads, query heads in blocks of heads/kv', () => {
    const plan = shard('llama', 'tp=2', 'megatron');
    expect(weightLayout(plan, 'layers.0.k_proj.weight')).toBe('S(1:8)');
    expect(weightLayout(plan, 'layers.0.v_proj.weight')).toBe('S(1:8)');
    expect(weightLayout(plan, 'layers.0.q_proj.weight')).toBe('S(1:16)'); // 2 query heads per kv head
    expect(weightLayout(plan, 'layers.0.o_proj.weight')).toBe('S(0:16)');
    expect(count(plan, 'AllReduce')).toBe(2 * LLAMA_TINY.layers + 1);
    expectMatchesUnsharded('llama', plan);
  });

  test('Llama GQA, kv heads < tp: k/v replicated, queries sharded by heads', () => {
    const plan = shard('llama', 'tp=4', 'megatron');
    expect(weightLayout(plan, 'layers.0.k_proj.weight')).toBe('R');
    expect(seedOf(plan, 'layers.0.k_proj.weight')).toContain('2 kv heads, fewer than tp=4');
    expect(weightLayout(plan, 'layers.0.q_proj.weight')).toBe('S(1:8)');
    expect(count(plan, 'AllReduce')).toBe(2 * LLAMA_TINY.layers + 1);
    expectMatchesUnsharded('llama', plan);
  });

  test('uneven: GPT with 6 heads (hidden 48) on tp=4 splits 2,2,1,1 heads', () => {
    const cfg = { hidden: 48, heads: 6 };
    const plan = shard('gpt', 'tp=4', 'megatron', cfg);
    expect(weightLayout(plan, 'h0.attn.c_attn.weight.part0')).toBe('S(1:8)');
    expect(count(plan, 'AllReduce')).toBe(2 * GPT_TINY.layers + 1);
    expectMatchesUnsharded('gpt', plan, cfg, 1e-5);
  });

  test('uneven: vocabulary 97 on tp=4 (embedding rows 25,24,24,24)', () => {
    const cfg = { vocab: 97 };
    const plan = shard('gpt', 'tp=4', 'megatron', cfg);
    expect(weightLayout(plan, 'wte')).toBe('S(0)');
    const head = [...plan.seeds].find(([, why]) => why.includes('LM head'))!;
    expect(head[1]).toContain('97 columns over tp=4');
    expect(weightLayout(plan, head[0])).toBe('S(1)');
    expectMatchesUnsharded('gpt', plan, cfg, 1e-5);
  });

  test('a model without transformer structure is a user error', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const g = b.output(b.op('Relu', [x], {}, 'y'));
    expect(() => shardGraph(g, DeviceMesh.parse('tp=2'), { strategy: 'megatron', registry, rules })).toThrow(/no transformer structure/);
  });
});

describe('data and combinations', () => {
  test('data on dp=2: batch split end to end, one all-gather of the output', () => {
    const plan = shard('gpt', 'dp=2', 'data');
    expect(plan.collectives.map((c) => `${c.kind} ${c.tensor}`)).toEqual(['AllGather logits']);
    expect(formatPlacement(plan.graph.inputs[0]!.layout!.get('dp')!)).toBe('S(0)');
    expect(weightLayout(plan, 'h0.mlp.c_fc.weight', 'dp')).toBe('R');
    expectMatchesUnsharded('gpt', plan);
  });

  test('data on the only axis whatever its name', () => {
    const plan = shard('bert', 'x=2', 'data');
    expect(plan.collectives.map((c) => `${c.kind} ${c.meshAxes}`)).toEqual(['AllGather x']);
  });

  test('--mesh dp=2,tp=2 --strategy megatron: data on dp, megatron on tp', () => {
    const plan = shard('llama', 'dp=2,tp=2', 'megatron');
    expect(count(plan, 'AllReduce', 'tp')).toBe(2 * LLAMA_TINY.layers + 1);
    expect(count(plan, 'AllReduce', 'dp')).toBe(0);
    expect(count(plan, 'AllGather', 'dp')).toBe(1);
    expect(weightLayout(plan, 'layers.0.q_proj.weight', 'dp')).toBe('R');
    expectMatchesUnsharded('llama', plan);
    const bert = shard('bert', 'dp=2,tp=2', 'data+megatron');
    expect(count(bert, 'AllReduce', 'tp')).toBe(2 * BERT_TINY.layers + 1);
    expectMatchesUnsharded('bert', bert);
  });

  test('auto picks a preset by estimated cost and names it', () => {
    const plan = shard('gpt', 'tp=2', 'auto');
    expect(plan.strategy).toMatch(/^auto \((megatron|data) on tp\)$/);
    expectMatchesUnsharded('gpt', plan);
  });
});

describe('user errors', () => {
  const err = userErrorMessage;

  test('strategies and meshes that do not fit', () => {
    expect(err(() => shard('gpt', 'x=2,tp=2', 'megatron'))).toMatch(/mesh axis x has no strategy/);
    expect(err(() => shard('gpt', 'dp=2,x=2', 'megatron'))).toMatch(/strategy megatron needs a mesh axis named tp/);
    expect(err(() => shard('gpt', 'tp=2', 'megatron+sequence'))).toBe('strategies megatron and sequence both want mesh axis tp');
    expect(err(() => shard('gpt', 'pp=128', 'pipeline'))).toMatch(/^strategy pipeline: the model has \d+ nodes, fewer than the 128 stages asked for/);
    expect(err(() => shard('gpt', 'tp=2', 'fancy'))).toMatch(/unknown strategy "fancy"/);
    expect(err(() => shard('gpt', 'dp=4', 'data'))).toMatch(/batch dim of input input_ids is 2, smaller than mesh axis dp=4/);
  });

  test('an unbound symbolic dim names the value and the symbol and suggests --dim', () => {
    const msg = err(() => shardGraph(load('gpt'), DeviceMesh.parse('tp=2'), { strategy: 'megatron', registry, rules, bindings: { batch: 1 } }));
    expect(msg).toContain('input_ids');
    expect(msg).toContain('"sequence"');
    expect(msg).toContain('--dim sequence=N');
  });

  describe('spec files', () => {
    const write = (doc: unknown): string => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shardc-spec-'));
      const f = path.join(dir, 'spec.json');
      fs.writeFileSync(f, typeof doc === 'string' ? doc : JSON.stringify(doc));
      return f;
    };

    test('globs and regexes seed values by name; first matching rule wins per axis', () => {
      const f = write({
        rules: [
          { match: '/^h\\d+\\.mlp\\.c_fc\\.weight$/', layout: { tp: 'S(1)' } },
          { match: 'h?.mlp.c_proj.weight', layout: { tp: 'S(0)' } },
          { match: '*.weight', layout: { tp: 'R' } },
        ],
      });
      const plan = shard('gpt', 'tp=2', f);
      expect(weightLayout(plan, 'h0.mlp.c_fc.weight')).toBe('S(1)');
      expect(weightLayout(plan, 'h1.mlp.c_proj.weight')).toBe('S(0)');
      expect(weightLayout(plan, 'h0.attn.c_attn.weight')).toBe('R');
      expect(count(plan, 'AllReduce')).toBe(2); // one per MLP
      expectMatchesUnsharded('gpt', plan);
    });

    test('bad spec files name the problem', () => {
      expect(err(() => shard('gpt', 'tp=2', write({ rules: [{ match: 'nothing*', layout: { tp: 'R' } }] })))).toMatch(/matches no tensor/);
      expect(err(() => shard('gpt', 'tp=2', write({ rules: [{ match: 'wte', layout: { tp: 'S(2)' } }] })))).toMatch(
        /S\(2\) shards dim 2 of wte, which has rank 2/,
      );
      expect(err(() => shard('gpt', 'tp=2', write({ rules: [{ match: 'wte', layout: { dp: 'S(0)' } }] })))).toMatch(/mesh axis dp/);
      expect(err(() => shard('gpt', 'tp=2', write({ rules: [{ match: 'wte', layout: { tp: 'Q(0)' } }] })))).toMatch(/is not a placement/);
      expect(err(() => shard('gpt', 'tp=2', write({ rules: [{ match: 'wte', layout: { tp: 'S(1:5)' } }] })))).toMatch(/do not divide/);
      expect(err(() => shard('gpt', 'tp=2', write('{ nope')))).toMatch(/not valid JSON/);
      expect(err(() => shard('gpt', 'tp=2', write({ rulez: [] })))).toMatch(/unknown key "rulez"/);
      expect(err(() => shard('gpt', 'tp=2', '/nonexistent/spec.json'))).toMatch(/spec file not found/);
    });
  });
});
