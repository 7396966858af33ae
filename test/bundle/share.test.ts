/**
 * What the bundle writer shares between devices and documents, checked against references:
 * - src/bundle/wgsl.ts sameRecording: two tp ranks record the same program (their graphs differ
 *   only in weights the recording never reads), and any difference a recording could see — a
 *   constant it read, a value's shape, a collective's group, the device of a rank-dependent
 *   collective — makes them not the same;
 * - src/passes/sharding/lower.ts device twins: the tp ranks of a transformer are twins (the same
 *   program but for weight blocks and the vocabulary offset), devices of other groups are not, nor
 *   are devices whose differing constant some op's flops reads; a twin's schedule.json steps,
 *   report figures and timeline equal those computed for it on its own (a copy without a twin);
 * - src/bundle/schedule.ts scheduleJson: schedule.json's text (each shared steps array written once) is
 *   canonicalJson's, for twins, with estimated times, and for a pipeline;
 * - src/bundle/canonical.ts canonicalJson: documents already in canonical form are written as they
 *   are, others sorted (integer-like keys, undefined fields, other classes, nested mixes), equal to
 *   a reference sorter.
 */
import { canonicalJson } from '../../src/bundle/canonical.js';
import { recordHostProgram } from '../../src/codegen/host/record.js';
import { shardModelFile } from '../../src/bundle/partition.js';
import { resolveStrategy } from '../../src/bundle/strategy.js';
import { RecordingMemo, sameRecording } from '../../src/bundle/wgsl.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { LazyTensor, Tensor } from '../../src/ir/tensor.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { GPT_TINY, PACKAGE_ROOT } from './cli-helper.js';
import { join } from 'node:path';
import { buildReport } from '../../src/bundle/report.js';
import { buildSchedule, deviceSchedule, scheduleJson } from '../../src/bundle/schedule.js';
import { loadHardware } from '../../src/hardware/hardware.js';
import { deviceNodeFlops, estimateGraph } from '../../src/bundle/estimate.js';
import { deviceTimelines } from '../../src/bundle/report-html/timeline.js';
import { OpRegistry } from '../../src/ir/registry.js';
import { deviceTwin, isConstantBlock, lowerPlan, twinDifferences } from '../../src/passes/sharding/lower.js';

const registry = createCoreRegistry();
const mesh = DeviceMesh.parse('tp=2');
const { programs } = shardModelFile(GPT_TINY, { mesh, strategy: resolveStrategy('megatron'), bindings: { batch: 1, sequence: 8 }, registry, rules: createCoreShardingRules() });
const feeds = (g: Graph) => g.inputs.filter((v) => !v.constant).map((v) => ({ name: v.name, dtype: v.dtype ?? 'float32', shape: (v.shape ?? []).map((d) => (typeof d === 'number' ? d : 1)) }));
/** The constants whose data recording `g` reads (shape tables, axes; not the weights it only binds as buffers). */
const readBy = (g: Graph, device: number): Set<string> => {
  const use = new Map<Value, boolean>();
  recordHostProgram(g, feeds(g), { registry, device, mesh, constantUse: use });
  return new Set([...use].filter(([, read]) => read).map(([v]) => v.name));
};

/** A copy of `g` (new nodes and values; constants shared) with `edit` applied to the copy. */
function copyGraph(g: Graph, edit: (values: Map<Value, Value>, nodes: Node[]) => void = () => {}): Graph {
  const map = new Map<Value, Value>();
  const val = (v: Value): Value => {
    let c = map.get(v);
    if (!c) {
      c = new Value(v.name, v.dtype, v.shape?.slice());
      c.constant = v.constant;
      map.set(v, c);
    }
    return c;
  };
  const out = new Graph(g.name);
  out.inputs = g.inputs.map(val);
  out.initializers = g.initializers.map(val);
  out.nodes = g.nodes.map((n) => new Node(n.op, n.inputs.map((v) => (v ? val(v) : null)), n.outputs.map(val), n.attrs.clone(), n.name, n.domain));
  out.outputs = g.outputs.map(val);
  edit(map, out.nodes);
  return out;
}

describe('sameRecording', () => {
  const [p0, p1] = programs;
  const a = { graph: p0!.graph, feeds: feeds(p0!.graph), device: 0, read: readBy(p0!.graph, 0) };

  test('tp ranks of a transformer record the same program; a graph equals its copy', () => {
    expect(a.read.size).toBeGreaterThan(0);
    expect(sameRecording(a, { graph: p1!.graph, feeds: feeds(p1!.graph), device: 1 }, mesh)).toBe(true);
    expect(sameRecording(a, { graph: copyGraph(p0!.graph), feeds: a.feeds, device: 0 }, mesh, new RecordingMemo())).toBe(true);
  });

  test('a read constant with other content, a value of another shape, other feeds: not the same', () => {
    const readName = [...a.read][0]!;
    const other = copyGraph(p0!.graph, (values) => {
      for (const [orig, v] of values)
        if (orig.name === readName) {
          const t = orig.constant!.load();
          const data = Array.from(t.data as ArrayLike<number>, (x) => Number(x) + 1);
          v.constant = LazyTensor.of(Tensor.from(t.dtype, t.shape.slice(), data));
        }
    });
    expect(sameRecording(a, { graph: other, feeds: a.feeds, device: 0 }, mesh)).toBe(false);
    // The same change to a constant the recording did not read is invisible to it.
    expect(sameRecording({ ...a, read: new Set([...a.read].filter((n) => n !== readName)) }, { graph: other, feeds: a.feeds, device: 0 }, mesh)).toBe(true);

    const reshaped = copyGraph(p0!.graph, (_values, nodes) => {
      const o = nodes.find((n) => n.op === 'MatMul')!.outputs[0]!;
      o.shape = [...o.shape!.slice(0, -1), (o.shape!.at(-1) as number) + 1];
    });
    expect(sameRecording(a, { graph: reshaped, feeds: a.feeds, device: 0 }, mesh)).toBe(false);
    expect(sameRecording(a, { graph: p0!.graph, feeds: a.feeds.map((f) => ({ ...f, shape: [2, ...f.shape.slice(1)] })), device: 0 }, mesh)).toBe(false);
  });

  test('a collective over another group, or a rank-dependent one on another device: not the same', () => {
    const regrouped = copyGraph(p0!.graph, (_values, nodes) => {
      const c = nodes.find((n) => n.domain === 'shardc.collective' && n.attrs.has('_group'))!;
      c.attrs.set('_group', { kind: 'ints', value: [1, 0] });
    });
    expect(sameRecording(a, { graph: regrouped, feeds: a.feeds, device: 0 }, mesh)).toBe(false);
    const g = new Graph('local');
    const x = new Value('x', 'float32', [4]);
    g.inputs = [x];
    const y = new Value('y', 'float32', [2]);
    g.nodes = [new Node('LocalShard', [x], [y], undefined, 'shard', 'shardc.collective')];
    g.nodes[0]!.attrs.set('_group', { kind: 'ints', value: [0, 1] });
    g.outputs = [y];
    const f = [{ name: 'x', dtype: 'float32' as const, shape: [4] }];
    expect(sameRecording({ graph: g, feeds: f, device: 0, read: new Set() }, { graph: copyGraph(g), feeds: f, device: 0 }, mesh)).toBe(true);
    expect(sameRecording({ graph: g, feeds: f, device: 0, read: new Set() }, { graph: copyGraph(g), feeds: f, device: 1 }, mesh)).toBe(false);
  });
});

describe('device twins', () => {
  const rules = createCoreShardingRules();
  const sharded = shardModelFile(GPT_TINY, { mesh, strategy: resolveStrategy('megatron'), bindings: { batch: 1, sequence: 8 }, registry, rules });
  const [p0, p1] = sharded.programs;

  test('tp ranks are twins after lowering and scheduling; weight blocks and the vocabulary offset may differ', () => {
    expect(deviceTwin(p0!.graph)).toBeUndefined();
    expect(deviceTwin(p1!.graph)).toBe(p0!.graph);
    const differs = twinDifferences(p1!.graph);
    const constants = new Map(p1!.graph.initializers.map((v) => [v.name, v]));
    const blocks = [...differs].filter((n) => isConstantBlock(constants.get(n)!.constant!));
    expect(blocks.length).toBeGreaterThan(0);
    // Besides the weight blocks, the embedding's vocabulary range: device 1 holds rows 48 to 96 (device 0: 0 to 48).
    const others = [...differs].filter((n) => !isConstantBlock(constants.get(n)!.constant!));
    expect(others.map((n) => Number(constants.get(n)!.constant!.load().data[0])).sort((a, b) => a - b)).toEqual([48, 96]);
    // A copy is no one's twin.
    expect(deviceTwin(copyGraph(p1!.graph))).toBeUndefined();
  });

  test("a twin's steps, figures and timeline are the ones computed for it on its own", () => {
    const alone = copyGraph(p1!.graph);
    const first = deviceSchedule(p0!.graph, 0, [0], mesh, 'p');
    const twin = deviceSchedule(p1!.graph, 1, [1], mesh, 'p');
    expect(twin.steps).toBe(first.steps);
    expect(canonicalJson(twin)).toBe(canonicalJson(deviceSchedule(alone, 1, [1], mesh, 'p')));
    const report = buildReport(sharded.plan, sharded.programs, registry, 'megatron');
    const e = estimateGraph(alone, registry, { flops: deviceNodeFlops });
    expect(report.devices[1]).toMatchObject({ device: 1, flops: e.flops, peakMemoryBytes: e.peakMemoryBytes, paramBytes: e.paramBytes });
    const schedules = [first, twin];
    const [t0, t1] = deviceTimelines(schedules);
    const [s1] = deviceTimelines([deviceSchedule(alone, 1, [1], mesh, 'p')]);
    expect(t1!.device).toBe(1);
    expect(t1!.steps).toBe(t0!.steps);
    expect({ ...t1!, steps: t1!.steps.map((s) => ({ ...s, step: s.step.id })) }).toEqual({ ...s1!, steps: s1!.steps.map((s) => ({ ...s, step: s.step.id })) });
  });

  test('devices of other groups are not twins; nor are devices whose differing constant a flops row reads', () => {
    const twinsOn = (spec: string): number[] => {
      const { programs: ps } = shardModelFile(GPT_TINY, { mesh: DeviceMesh.parse(spec), strategy: resolveStrategy('megatron'), bindings: { batch: 2, sequence: 8 }, registry, rules });
      return ps.map((p) => ps.findIndex((q) => q.graph === deviceTwin(p.graph)));
    };
    expect(twinsOn('tp=4')).toEqual([-1, 0, 0, 0]);
    // dp x tp: every device's dp group differs ([0,2] and [1,3]), and with it its steps.
    expect(twinsOn('dp=2,tp=2')).toEqual([-1, -1, -1, -1]);

    // The op reading the vocabulary offset, with a flops row that reads its constant inputs.
    const offset = [...twinDifferences(p1!.graph)].find((n) => !isConstantBlock(p1!.graph.initializers.find((v) => v.name === n)!.constant!))!;
    const reader = p0!.graph.nodes.find((n) => n.inputs.some((v) => v?.name === offset))!;
    const reading = new OpRegistry().register(
      ...registry.list().map((d) =>
        d.op === reader.op && (d.domain ?? '') === reader.domain
          ? { ...d, flops: (ctx: Parameters<NonNullable<typeof d.flops>>[0]) => (ctx.inputs.forEach((_t, i) => ctx.constant(i)), d.flops ? d.flops(ctx) : 0) }
          : d,
      ),
    );
    const [q0, q1] = lowerPlan(sharded.plan, { registry: reading, rules });
    expect(deviceTwin(q1!.graph)).toBeUndefined();
    const [r0, r1] = lowerPlan(sharded.plan, { registry, rules });
    expect(deviceTwin(r1!.graph)).toBe(r0!.graph);
    expect(q0).toBeDefined();
  });
});

describe('scheduleJson', () => {
  test("is canonicalJson's text: twins, estimated times, a pipeline", () => {
    const rules = createCoreShardingRules();
    const hardware = loadHardware(join(PACKAGE_ROOT, 'examples', 'hardware', 'h100-8x-nvlink.json'));
    const path = (d: number): string => `device-${d}/model.onnx`;
    const tp = shardModelFile(GPT_TINY, { mesh: DeviceMesh.parse('tp=4'), strategy: resolveStrategy('megatron'), bindings: { batch: 1, sequence: 8 }, registry, rules });
    const pp = shardModelFile(join(PACKAGE_ROOT, 'examples', 'llama-tiny.onnx'), {
      mesh: DeviceMesh.parse('tp=2,pp=2'),
      strategy: resolveStrategy('pipeline'),
      bindings: { batch: 2, sequence: 8 },
      registry,
      rules,
    });
    const schedules = [
      buildSchedule(tp.plan, tp.programs, path),
      buildSchedule(tp.plan, tp.programs, path, { hardware, registry }),
      buildSchedule(pp.plan, pp.programs, path, { hardware, registry }),
    ];
    expect(schedules[0]!.devices[3]!.steps).toBe(schedules[0]!.devices[0]!.steps);
    expect(schedules[2]!.pipeline).toBeDefined();
    for (const s of schedules) expect(scheduleJson(s)).toBe(canonicalJson(s));
    // Not in the shape it splices (no devices): canonicalJson itself.
    expect(scheduleJson({ order: 'program', devices: [] })).toBe(canonicalJson({ order: 'program', devices: [] }));
  });
});

describe('canonicalJson', () => {
  /** Reference: every plain object's keys sorted (code units), undefined fields dropped, as JSON.stringify then writes them. */
  const reference = (v: unknown): string => {
    const sort = (x: unknown): unknown => {
      if (Array.isArray(x)) return x.map(sort);
      if (x !== null && typeof x === 'object') {
        const out: Record<string, unknown> = {};
        for (const k of Object.keys(x).sort()) if ((x as Record<string, unknown>)[k] !== undefined) out[k] = sort((x as Record<string, unknown>)[k]);
        return out;
      }
      return x;
    };
    return `${JSON.stringify(sort(v), null, 2)}\n`;
  };

  test('sorted documents as they are, others sorted at any depth', () => {
    const docs: unknown[] = [
      { a: 1, b: [1, { c: 'x', d: null }], e: true },
      { b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } },
      [{ beta: 1, alpha: 2 }, [], {}, 'x', -0, 1.5e300],
      { 10: 'ten', 9: 'nine', a: { 2: 'b', 1: 'a' } },
      { steps: [{ id: 0, kind: 'kernel' }, { dependencies: [0], id: 1 }], order: 'program' },
    ];
    for (const d of docs) expect(canonicalJson(d)).toBe(reference(d));
    expect(canonicalJson({ a: 1, b: { c: 2 } })).toBe('{\n  "a": 1,\n  "b": {\n    "c": 2\n  }\n}\n');
    expect(canonicalJson({ d: new Date(0) })).toBe('{\n  "d": {}\n}\n'); // other classes: their own enumerable fields, as before
    expect(() => canonicalJson({ a: [1, Number.NaN] })).toThrow(/non-finite/);
    expect(() => canonicalJson({ a: new Uint8Array(2) })).toThrow(/typed arrays/);
  });
});
