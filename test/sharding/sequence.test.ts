/**
 * The `sequence` strategy (Megatron + sequence parallelism): every all-reduce that megatron places
 * becomes a reduce-scatter into the sequence-split residual stream plus an all-gather before the
 * next column-parallel matmul; golden printed plans; every plan run on the simulated devices
 * against the unsharded CPU run, including uneven sequence splits.
 *
 * `SHARDC_ACCEPT=1 npx jest test/sharding/sequence.test.ts` rewrites the golden plans
 * test/golden/plans/*-sequence.*.txt (review the diff, then commit).
 */
import type { TransformerConfig } from '../../examples/models/transformers.js';
import type { Value } from '../../src/ir/graph.js';
import { formatPlacement } from '../../src/ir/layout.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { findPatterns } from '../../src/passes/patterns.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';
import { printPlan } from '../../src/passes/sharding/print-plan.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { GPT_TINY as GPT_TINY_FILE, cli } from '../bundle/cli-helper.js';
import { GraphBuilder } from '../passes/graph-builder.js';
import { userErrorMessage } from '../helpers/ops.js';
import { type TransformerKind, TRANSFORMER_BASE, expectSpmdMatchesUnsharded, loadTransformer } from '../helpers/transformers.js';
import { expectGolden } from '../passes/golden.js';

const registry = createCoreRegistry();
const rules = createCoreShardingRules();
type Kind = TransformerKind;
const BASE = TRANSFORMER_BASE;
const DIMS = { batch: 2, sequence: 5 };
const KINDS: Kind[] = ['gpt', 'bert', 'llama'];

const load = loadTransformer;

function shard(kind: Kind, mesh: string, strategy: string, dims: Record<string, number> = DIMS, cfg: Partial<TransformerConfig> = {}): ShardPlan {
  return shardGraph(load(kind, cfg), DeviceMesh.parse(mesh), { strategy, registry, rules, bindings: dims });
}

const count = (plan: ShardPlan, kind: string): number => plan.collectives.filter((c) => c.kind === kind).length;
/** The communicating collectives in plan order, abbreviated (RS, AG, AR, ...). */
const ABBR: Record<string, string> = { ReduceScatter: 'RS', AllGather: 'AG', AllReduce: 'AR', AllToAll: 'A2A' };
const communicating = (plan: ShardPlan): string[] => plan.collectives.filter((c) => ABBR[c.kind]).map((c) => ABBR[c.kind]!);

/**
 * Runs the plan on the simulated devices and compares with the unsharded CPU run: rtol 1e-5,
 * atol 1e-5 (tensor parallelism splits the row-parallel contractions into partial sums, a
 * different summation order; the sequence split itself changes no arithmetic).
 */
function expectMatchesUnsharded(kind: Kind, plan: ShardPlan, dims: Record<string, number>, cfg: Partial<TransformerConfig> = {}): void {
  expectSpmdMatchesUnsharded(load(kind, cfg), plan, lowerPlan(plan, { registry, rules }), { registry, seed: 7, dims, atol: 1e-5 });
}

/** The activation input and output of every norm (pattern match) of a sharded plan's graph. */
function normValues(plan: ShardPlan): { input: Value; output: Value }[] {
  const g = plan.graph;
  const users = g.users();
  const outs = new Set(g.outputs);
  return findPatterns(g, registry)
    .filter((m) => m.kind === 'LayerNorm' || m.kind === 'RMSNorm')
    .map((m) => {
      const inside = new Set(m.nodes);
      const input = m.nodes.flatMap((n) => n.inputs).find((v) => v && !v.constant && !(v.producer && inside.has(v.producer)))!;
      const output = m.nodes.flatMap((n) => n.outputs).find((o) => outs.has(o) || (users.get(o) ?? []).some((u) => !inside.has(u)))!;
      return { input, output };
    });
}

describe('sequence: collectives replace megatron all-reduces', () => {
  test.each(KINDS)('%s: 2 reduce-scatters + 2 all-gathers per layer where megatron has 2 all-reduces', (kind) => {
    for (const layers of [1, 2, 3]) {
      const mega = shard(kind, 'tp=2', 'megatron', DIMS, { layers });
      const seq = shard(kind, 'tp=2', 'sequence', DIMS, { layers });
      const ar = count(mega, 'AllReduce');
      // Megatron: 2 per layer + 1 for the vocabulary-parallel embedding.
      expect(ar).toBe(2 * layers + 1);
      expect(count(seq, 'AllReduce')).toBe(0);
      expect(count(seq, 'ReduceScatter')).toBe(ar);
      // Each all-reduce → one reduce-scatter into the seq-split stream and one all-gather of the
      // next norm's output (decoders: the final norm's, before the LM head; BERT: the last layer's
      // output at the graph output); the decoders' logits all-gather stays as in megatron.
      expect(count(seq, 'AllGather')).toBe(ar + count(mega, 'AllGather'));
      const lmHead = kind === 'bert' ? [] : ['AG'];
      expect(communicating(seq)).toEqual([...Array.from({ length: ar }, () => ['RS', 'AG']).flat(), ...lmHead]);
      expect(communicating(mega)).toEqual([...Array.from({ length: ar }, () => 'AR'), ...lmHead]);
      for (const c of seq.collectives) expect(c.reason).toMatch(/needs .* of .* on tp; it is /);
    }
  });

  test('gpt-tiny: the reduce-scatters meet the residual stream and the all-gathers feed the column-parallel matmuls', () => {
    const plan = shard('gpt', 'tp=2', 'sequence');
    const rs = plan.collectives.filter((c) => c.kind === 'ReduceScatter');
    const ag = plan.collectives.filter((c) => c.kind === 'AllGather');
    // The embedding's masked lookup, then per layer the attention output projection and the second MLP matmul.
    expect(rs.map((c) => c.reason.match(/\(produced by (\w+)_node/)![1])).toEqual(['Gather', 'MatMul', 'MatMul', 'MatMul', 'MatMul']);
    for (const c of rs) expect(c.reason).toMatch(/needs S\(1\) of .*; it is P\(sum\)/);
    // Norm outputs gathered for QKV (layer 0 and 1), the first MLP matmul and the LM head; then the logits.
    expect(ag.map((c) => c.reason.match(/^(\w+) /)![1])).toEqual(['MatMul', 'MatMul', 'MatMul', 'MatMul', 'MatMul', 'graph']);
    for (const c of ag.slice(0, 5)) expect(c.reason).toMatch(/needs R of layernormalization_\d+ on tp; it is S\(1\) \(produced by LayerNormalization_node/);
    expect(ag[5]!.reason).toMatch(/graph output logits needs R .* it is S\(2\)/);
  });

  test.each(KINDS)('%s: every norm runs on the sequence-split stream; weights as megatron', (kind) => {
    const mega = shard(kind, 'tp=2', 'megatron');
    const plan = shard(kind, 'tp=2', 'sequence');
    const norms = normValues(plan);
    expect(norms.length).toBe(2 * BASE[kind].layers + 1);
    for (const { input, output } of norms) {
      // The norm reads the stream (after the reduce-scatter) seq-split and writes it seq-split.
      expect(formatPlacement(input.layout!.get('tp')!)).toBe('S(1)');
      expect(formatPlacement(output.layout!.get('tp')!)).toBe('S(1)');
    }
    const layouts = (p: ShardPlan): string[] =>
      p.graph.initializers.filter((v) => p.seeds.has(v.name)).map((v) => `${v.name} ${formatPlacement(v.layout!.get('tp')!)}`).sort();
    expect(layouts(plan)).toEqual(layouts(mega));
    for (const why of plan.seeds.values()) expect(why).toMatch(/^tp: \S+ \(sequence/);
    // Seeded by the preset (the value before a collective is renamed only at graph outputs).
    for (const { input, output } of norms)
      for (const v of [input, output]) {
        const name = v.name.replace(/\.(reducescatter|allgather)_tp$/, '');
        if (plan.graph.outputs.includes(v)) continue;
        expect(`${name}: ${plan.seeds.get(name)}`).toMatch(/: tp: S\(1\) \(sequence: (input|output) of \w+#\d+ on the residual stream, split along the sequence \(S\(1\), 5 positions over tp=2\)\)$/);
      }
  });
});

describe('sequence: golden plans', () => {
  const CASES: [file: string, kind: Kind, mesh: string][] = [
    ['gpt-tiny-sequence.tp2.txt', 'gpt', 'tp=2'],
    ['bert-tiny-sequence.tp4.txt', 'bert', 'tp=4'],
    ['llama-tiny-sequence.tp2.txt', 'llama', 'tp=2'],
  ];
  test.each(CASES)('%s', (file, kind, mesh) => {
    expectGolden(`plans/${file}`, printPlan(shard(kind, mesh, 'sequence')));
  });
});

describe('sequence: the simulated devices match the unsharded run', () => {
  const CASES: [kind: Kind, mesh: string, dims: Record<string, number>][] = [
    ['gpt', 'tp=2', { batch: 2, sequence: 8 }],
    ['gpt', 'tp=4', { batch: 1, sequence: 8 }],
    ['bert', 'tp=2', { batch: 2, sequence: 8 }],
    ['bert', 'tp=4', { batch: 2, sequence: 8 }],
    ['llama', 'tp=2', { batch: 2, sequence: 8 }],
    ['llama', 'tp=4', { batch: 1, sequence: 8 }],
    // Uneven sequence splits: 7 positions over 4 (2,2,2,1) and over 3 (3,2,2).
    ['gpt', 'tp=4', { batch: 1, sequence: 7 }],
    ['gpt', 'tp=3', { batch: 2, sequence: 7 }],
    ['bert', 'tp=4', { batch: 2, sequence: 7 }],
    ['llama', 'tp=4', { batch: 1, sequence: 7 }],
    ['llama', 'tp=3', { batch: 1, sequence: 7 }],
  ];
  test.each(CASES)('%s on %s, %j', (kind, mesh, dims) => {
    const plan = shard(kind, mesh, 'sequence', dims);
    expect(count(plan, 'ReduceScatter')).toBe(2 * BASE[kind].layers + 1);
    expectMatchesUnsharded(kind, plan, dims);
  });

  test('uneven heads too: gpt with 6 heads and a 7-token sequence on tp=4', () => {
    const cfg = { hidden: 48, heads: 6 };
    const dims = { batch: 1, sequence: 7 };
    const plan = shard('gpt', 'tp=4', 'sequence', dims, cfg);
    expect(count(plan, 'ReduceScatter')).toBe(5);
    expectMatchesUnsharded('gpt', plan, dims, cfg);
  });

  test('two axes: data on dp, sequence on tp', () => {
    const dims = { batch: 2, sequence: 6 };
    const plan = shard('gpt', 'dp=2,tp=2', 'data+sequence', dims);
    expect(plan.collectives.filter((c) => c.kind === 'ReduceScatter' && c.meshAxes.includes('tp')).length).toBe(5);
    expect(plan.collectives.filter((c) => c.kind === 'AllReduce').length).toBe(0);
    expectMatchesUnsharded('gpt', plan, dims);
  });
});

describe('sequence: shardc verify', () => {
  test('verify examples/gpt-tiny.onnx --mesh tp=2 --strategy sequence --target cpu exits 0', async () => {
    const r = await cli('verify', GPT_TINY_FILE, '--mesh', 'tp=2', '--strategy', 'sequence', '--target', 'cpu', '--dim', 'batch=1,sequence=8', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ mesh: 'tp=2', strategy: 'sequence', devices: 2, ok: true });
    // 5 reduce-scatters + 5 all-gathers (2 per layer + the ends) + the logits all-gather.
    expect(doc.collectives).toBe(11);
    expect(doc.unsharded.outputs[0]).toMatchObject({ name: 'logits', ok: true });
  });
});

describe('sequence: bad input', () => {
  const err = userErrorMessage;

  test('it owns tp: combined with megatron on the same axis', () => {
    expect(err(() => shard('gpt', 'tp=2', 'sequence+megatron'))).toBe('strategies sequence and megatron both want mesh axis tp');
  });

  test('a sequence shorter than the axis', () => {
    expect(err(() => shard('gpt', 'tp=4', 'sequence', { batch: 1, sequence: 3 }))).toMatch(
      /strategy sequence: the sequence dim 1 of \S+ has 3 positions, fewer than mesh axis tp=4/,
    );
  });

  test('a model without norms, or without transformer structure', () => {
    // An MLP of two matmuls and no norm: megatron applies, sequence has nothing to split.
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 4, 8]);
    const w1 = b.const('w1', 'float32', [8, 16], Array.from({ length: 128 }, (_, i) => (i % 7) / 7));
    const w2 = b.const('w2', 'float32', [16, 8], Array.from({ length: 128 }, (_, i) => (i % 5) / 5));
    const mlp = b.output(b.op('MatMul', [b.op('Relu', [b.op('MatMul', [x, w1])]), w2], {}, 'y'));
    expect(err(() => shardGraph(mlp, DeviceMesh.parse('tp=2'), { strategy: 'sequence', registry, rules }))).toMatch(
      /strategy sequence: the model has no LayerNorm\/RMSNorm/,
    );
    const c = new GraphBuilder();
    const plain = c.output(c.op('Relu', [c.input('x', 'float32', [2, 3])], {}, 'y'));
    expect(err(() => shardGraph(plain, DeviceMesh.parse('tp=2'), { strategy: 'sequence', registry, rules }))).toMatch(
      /^strategy sequence: the model has no transformer structure/,
    );
  });
});
