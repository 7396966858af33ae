/**
 * Strategy `pipeline` (src/passes/sharding/pipeline): stage balance, weights per stage, Send/Recv
 * with reasons, micro-batches, the forward schedule, combinations with tp and dp, and the simulated
 * run against the unsharded CPU run — on the project's transformers at 4 layers, batch 4.
 *
 * Tolerance: rtol 1e-5, atol 1e-5 (pipelining alone reproduces the unsharded run bit for bit; tp
 * splits contractions into partial sums, so logits may differ by ~2e-6).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TransformerConfig } from '../../examples/models/transformers.js';
import { partitionModel } from '../../src/bundle/partition.js';
import { loadBundleForRun } from '../../src/bundle/run.js';
import type { Schedule } from '../../src/bundle/schedule.js';
import { UserError } from '../../src/ir/errors.js';
import type { Graph } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { loadModel } from '../../src/onnx/import.js';
import { defaultPipeline } from '../../src/passes/manager.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { type DeviceProgram, lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { chooseMicroBatches } from '../../src/passes/sharding/pipeline/micro-batches.js';
import { assignStages, forwardClocks, nodeCosts } from '../../src/passes/sharding/pipeline/index.js';
import { type ShardPlan, nodeStage } from '../../src/passes/sharding/plan.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { GraphBuilder } from '../passes/graph-builder.js';
import { cli } from '../bundle/cli-helper.js';
import { type TransformerKind, expectSpmdMatchesUnsharded, loadTransformer } from '../helpers/transformers.js';

const registry = createCoreRegistry();
const rules = createCoreShardingRules();
const DIMS = { batch: 4, sequence: 8 };
type Kind = TransformerKind;
const LAYERS: Partial<TransformerConfig> = { layers: 4 };

function load(kind: Kind): Graph {
  return loadTransformer(kind, LAYERS);
}

function plan(kind: Kind, mesh: string, microBatches?: number, strategy = 'pipeline'): ShardPlan {
  return shardGraph(load(kind), DeviceMesh.parse(mesh), { strategy, registry, rules, bindings: DIMS, microBatches });
}

function expectMatchesUnsharded(kind: Kind, p: ShardPlan, programs: DeviceProgram[]): void {
  expectSpmdMatchesUnsharded(load(kind), p, programs, { registry, seed: 11, dims: DIMS, atol: 1e-5 });
}

/** Names of the global plan's weights (constants of more than 64 elements) each stage's nodes read. */
function weightsByStage(p: ShardPlan): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const n of p.graph.nodes)
    for (const v of n.inputs)
      if (v?.constant && !v.producer && v.constant.size > 64) {
        const s = out.get(v.name) ?? new Set<number>();
        s.add(nodeStage(n)!);
        out.set(v.name, s);
      }
  return out;
}

const balances: string[] = [];
afterAll(() => {
  // The figures for the report: max/min estimated stage cost per case.
  if (process.env['SHARDC_PIPELINE_BALANCE']) console.log(balances.join('\n'));
});

const CASES: [Kind, string, number][] = [];
for (const kind of ['gpt', 'bert', 'llama'] as Kind[]) for (const mesh of ['pp=2', 'pp=4', 'pp=2,tp=2']) for (const m of [2, 4]) CASES.push([kind, mesh, m]);

describe.each(CASES)('%s on %s with %i micro-batches', (kind, mesh, M) => {
  const p = plan(kind, mesh, M);
  const info = p.pipeline!;
  const P = info.stages;
  const programs = lowerPlan(p, { registry, rules });
  const stageOfDevice = (d: DeviceProgram): number => d.coords[p.mesh.axisIndex('pp')]!;

  test('stages are balanced and cut where only the residual stream (and the mask) crosses', () => {
    balances.push(`${kind} ${mesh} M=${M}: stage costs ${info.stageCosts.map((c) => c.toExponential(3)).join(', ')}; max/min ${info.balance.toFixed(3)}`);
    expect(info.microBatches).toBe(M);
    expect(info.stageCosts).toHaveLength(P);
    expect(info.balance).toBeLessThan(1.25);
    expect(info.cuts).toHaveLength(P - 1);
    for (const cut of info.cuts) {
      // One activation crosses: the residual stream, made by a residual Add; BERT's mask (Mul) too.
      const ops = cut.values.map((v) => p.graph.nodes.find((n) => n.outputs.some((o) => o.name === `${v}.mb0`))?.op).sort();
      expect(ops).toEqual(kind === 'bert' ? ['Add', 'Mul'] : ['Add']);
    }
    expect(info.clocks).toHaveLength(M + P - 1);
  });

  test('each device holds only the weights of its stage', () => {
    const byStage = weightsByStage(p);
    for (const [, stages] of byStage) expect(stages.size).toBe(1); // no weight shared across stages here
    for (const d of programs) {
      const s = stageOfDevice(d);
      const held = d.graph.initializers.filter((v) => byStage.has(v.name)).map((v) => v.name);
      expect(held.length).toBeGreaterThan(0);
      for (const w of held) expect([w, [...byStage.get(w)!]]).toEqual([w, [s]]);
      const expected = [...byStage].filter(([, st]) => st.has(s)).map(([w]) => w).sort();
      expect(held.sort()).toEqual(expected);
    }
  });

  test('Send/Recv carry every crossing value, once per micro-batch, with reasons', () => {
    const sends = p.collectives.filter((c) => c.kind === 'Send');
    const recvs = p.collectives.filter((c) => c.kind === 'Recv');
    const crossing = info.cuts.reduce((n, c) => n + c.values.length, 0);
    expect(sends.length).toBeGreaterThanOrEqual(crossing * M);
    expect(recvs).toHaveLength(sends.length);
    for (const c of [...sends, ...recvs]) {
      expect(c.meshAxes).toEqual(['pp']);
      expect(c.reason).toMatch(/^pipeline: .*\(micro-batch \d\)/);
    }
    for (const c of sends) expect(c.reason).toMatch(/is computed on stage \d by .* and read on stage \d by /);
    // The first stage only sends, the last only receives; Send/Recv peers share the other coordinates.
    for (const d of programs) {
      const ops = d.graph.nodes.map((n) => n.op);
      const s = stageOfDevice(d);
      if (s === 0) expect(ops.filter((o) => o === 'Recv')).toHaveLength(0);
      if (s === P - 1) expect(ops.filter((o) => o === 'Send')).toHaveLength(0);
      for (const n of d.graph.nodes.filter((x) => x.op === 'Send' || x.op === 'Recv')) {
        const peer = n.attrs.int('_peer');
        const pc = p.mesh.coords(peer);
        expect(pc[p.mesh.axisIndex('pp')]).toBe(n.attrs.int('peer_stage'));
        p.mesh.axes.forEach((a, i) => a.name !== 'pp' && expect(pc[i]).toBe(d.coords[i]));
      }
    }
  });

  test('each stage runs its micro-batches in order (clock = stage + micro-batch)', () => {
    for (const d of programs) {
      const mbs = d.graph.nodes.map((n) => n.meta.get('pipeline.micro_batch')).filter((x) => x !== undefined).map(Number);
      expect(mbs.length).toBeGreaterThan(0);
      expect(mbs).toEqual(mbs.slice().sort((a, b) => a - b));
      expect(new Set(mbs).size).toBe(M);
    }
  });

  test('the simulated run equals the unsharded run', () => {
    expectMatchesUnsharded(kind, p, programs);
  });
});

describe('pipeline with data parallelism (pp=2,dp=2)', () => {
  test.each(['gpt', 'bert', 'llama'] as Kind[])('%s: micro-batches split locally, the run equals the unsharded run', (kind) => {
    const p = plan(kind, 'pp=2,dp=2');
    expect(p.pipeline!.microBatches).toBe(2); // default: ≤ stages, micro-batch of 2 splits over dp=2
    // The batch input stays split on dp: micro-batch i takes the i-th slice of each device's block.
    const ids = p.graph.inputs.find((v) => v.name === 'input_ids')!;
    expect(ids.layout!.get('dp')).toEqual({ kind: 'shard', dim: 0 });
    expect(p.graph.nodes.filter((n) => n.op === 'Split' && n.name.startsWith('split_micro_batches')).length).toBeGreaterThan(0);
    expectMatchesUnsharded(kind, p, lowerPlan(p, { registry, rules }));
  });

  test('micro-batches too small for dp are a user error', () => {
    expect(() => plan('gpt', 'pp=2,dp=2', 4)).toThrow(/micro-batches of 1 .* do not split over the 2 data-parallel devices/);
  });
});

describe('micro-batch choice', () => {
  test('default: the largest count ≤ stages dividing the batch (and splitting over dp)', () => {
    const batch = (size: number) => ({ symbol: 'batch', size });
    expect(chooseMicroBatches({ batch: batch(4), stages: 2, dataDevices: 1 })).toBe(2);
    expect(chooseMicroBatches({ batch: batch(8), stages: 4, dataDevices: 1 })).toBe(4);
    expect(chooseMicroBatches({ batch: batch(6), stages: 4, dataDevices: 1 })).toBe(3);
    expect(chooseMicroBatches({ batch: batch(2), stages: 4, dataDevices: 1 })).toBe(2);
    expect(chooseMicroBatches({ batch: batch(3), stages: 2, dataDevices: 1 })).toBe(1);
    expect(chooseMicroBatches({ batch: batch(8), stages: 4, dataDevices: 2 })).toBe(4);
    expect(chooseMicroBatches({ batch: batch(4), stages: 4, dataDevices: 2 })).toBe(2);
    expect(chooseMicroBatches({ stages: 4, dataDevices: 1 })).toBe(1);
  });

  test('a count that does not divide the batch, or without a batch dim, is a user error', () => {
    expect(() => plan('gpt', 'pp=2', 3)).toThrow(/3 micro-batches do not divide the batch batch=4/);
    expect(() => chooseMicroBatches({ requested: 2, stages: 2, dataDevices: 1 })).toThrow(UserError);
    expect(() => chooseMicroBatches({ requested: 0, batch: { symbol: 'b', size: 4 }, stages: 2, dataDevices: 1 })).toThrow(/positive integer/);
  });

  test('one micro-batch keeps the graph names; the default with batch 4 on pp=4 is 4', () => {
    const one = plan('gpt', 'pp=2', 1);
    expect(one.pipeline!.microBatches).toBe(1);
    expect(one.graph.nodes.some((n) => n.name.includes('.mb'))).toBe(false);
    expectMatchesUnsharded('gpt', one, lowerPlan(one, { registry, rules }));
    expect(plan('gpt', 'pp=4').pipeline!.microBatches).toBe(4);
  });
});

describe('stage assignment', () => {
  // x[2,8] → 4 × (MatMul by w_k[8,8] → Relu): costs per node from nodeCosts; the best cut is the
  // one minimising the larger stage, found here by trying every cut.
  function chain(): Graph {
    const b = new GraphBuilder();
    let h = b.input('x', 'float32', [2, 8]);
    for (let k = 0; k < 4; k++) {
      const w = b.const(`w${k}`, 'float32', [8, 8], new Array<number>(64).fill(0.1));
      h = b.op('Relu', [b.op('MatMul', [h, w])]);
    }
    const g = b.output(h);
    defaultPipeline({ registry }).run(g);
    return g;
  }

  test('the cut minimises the largest stage cost, and stage costs add up to the total', () => {
    const g = chain();
    const costs = nodeCosts(g, registry);
    const total = costs.reduce((a, b) => a + b, 0);
    // MatMul: 2·2·8·8 flops, its weight (256 bytes) and output (64 bytes); Relu: its output.
    expect(costs[0]).toBeCloseTo(256 * 1e-14 + 320 * 5e-13, 20);
    let best = Infinity;
    for (let k = 1; k < costs.length; k++) {
      const left = costs.slice(0, k).reduce((a, b) => a + b, 0);
      best = Math.min(best, Math.max(left, total - left));
    }
    const a = assignStages(g, 2, registry);
    expect(Math.max(...a.costs)).toBeCloseTo(best, 20);
    expect(a.costs[0]! + a.costs[1]!).toBeCloseTo(total, 20);
    expect(a.cuts).toEqual([4]);
    expect(a.crossing[0]!.map((v) => v.producer!.op)).toEqual(['Relu']);
  });

  test('more stages than nodes is a user error', () => {
    expect(() => assignStages(chain(), 9, registry)).toThrow(/fewer than the 9 stages/);
  });
});

test('the forward schedule: stage s runs micro-batch i at clock i + s', () => {
  expect(forwardClocks(2, 3)).toEqual([
    { clock: 0, work: [{ stage: 0, microBatch: 0 }] },
    { clock: 1, work: [{ stage: 0, microBatch: 1 }, { stage: 1, microBatch: 0 }] },
    { clock: 2, work: [{ stage: 0, microBatch: 2 }, { stage: 1, microBatch: 1 }] },
    { clock: 3, work: [{ stage: 1, microBatch: 2 }] },
  ]);
});

describe('bundle and command line', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'shardc-pipeline-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const GPT = join(__dirname, '..', '..', 'examples', 'gpt-tiny.onnx');

  test('partition --mesh pp=2 --strategy pipeline: the bundle run alone equals the unsharded run; schedule.json has the stages', () => {
    const out = join(tmp, 'gpt-pp2');
    const dims = { batch: 2, sequence: 8 };
    const r = partitionModel(GPT, { mesh: 'pp=2', strategy: 'pipeline', target: 'cpu', bindings: dims, out, shardcVersion: '0.1.0' });
    expect(r.devices).toBe(2);
    const graph = loadModel(GPT).graph;
    const feeds = randomInputs(graph, { dims, seed: 1 });
    const want = runGraph(graph, feeds, { registry });
    const got = loadBundleForRun(out, registry).run(feeds);
    expect(got.map((o) => o.name)).toEqual(['logits']);
    for (const o of got) expect(compareTensors(o.tensor, want.get(o.name)!, { rtol: 1e-5, atol: 1e-6 }).message).toBe('');
    const schedule = JSON.parse(readFileSync(join(out, 'schedule.json'), 'utf8')) as Schedule;
    expect(schedule.pipeline!.stages).toBe(2);
    expect(schedule.pipeline!.microBatches).toBe(2);
    expect(schedule.pipeline!.bubble).toBeCloseTo(1 / 3, 12);
    expect(schedule.devices[0]!.outputs).toEqual([]);
    expect(schedule.devices[1]!.outputs).toEqual(['logits']);
    for (const d of schedule.devices) {
      const clocks = d.steps.filter((s) => s.clock !== undefined).map((s) => s.clock!);
      expect(clocks).toEqual(clocks.slice().sort((a, b) => a - b));
      expect(new Set(d.steps.map((s) => s.stage))).toEqual(new Set([d.coords[0]]));
    }
    expect(schedule.devices[1]!.steps.filter((s) => s.op === 'Recv').map((s) => [s.microBatch, s.clock])).toEqual([
      [0, 1],
      [1, 2],
    ]);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    for (const c of report.collectives) expect(c.reason.trim()).not.toBe('');
  });

  test('shardc verify --mesh pp=2 --strategy pipeline exits 0', async () => {
    const r = await cli('verify', GPT, '--mesh', 'pp=2', '--strategy', 'pipeline', '--target', 'cpu', '--dim', 'batch=2,sequence=8');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/pipeline on pp=2 \(2 devices, 4 collectives\)/);
  });
});
