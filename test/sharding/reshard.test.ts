/**
 * The resharding state machine (reshard.ts): single-axis transitions, the multi-axis order,
 * the ring cost formulas and the insertion of collective nodes with their reasons.
 */
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { type Layout, type Placement, Partial, Replicate, Shard, formatPlacement } from '../../src/ir/layout.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import {
  Resharder,
  collectiveBytes,
  collectiveTime,
  placementCost,
  reshardSteps,
  singleAxisSteps,
} from '../../src/passes/sharding/reshard.js';
import { namer } from '../../src/passes/util.js';

const R = Replicate;
const P = Partial('sum');
const S = Shard;
const L = (o: Record<string, Placement>): Layout => new Map(Object.entries(o));
const fmt = (steps: { kind: string; axis?: string; to: Placement }[]): string[] =>
  steps.map((s) => `${s.kind}${s.axis ? `@${s.axis}` : ''}->${formatPlacement(s.to)}`);

describe('single-axis transitions', () => {
  const table: [Placement, Placement, string[]][] = [
    [R, R, []],
    [S(1), S(1), []],
    [P, R, ['AllReduce->R']],
    [P, S(0), ['ReduceScatter->S(0)']],
    [P, Partial('max'), ['AllReduce->R', 'LocalPartial->P(max)']],
    [S(2), R, ['AllGather->R']],
    [S(0), S(1), ['AllToAll->S(1)']],
    [S(0, 8), S(1), ['AllGather->R', 'LocalShard->S(1)']],
    [S(2, 8), S(2, 16), ['AllGather->R', 'LocalShard->S(2:16)']],
    [S(1), P, ['AllGather->R', 'LocalPartial->P(sum)']],
    [R, S(1, 4), ['LocalShard->S(1:4)']],
    [R, P, ['LocalPartial->P(sum)']],
  ];
  for (const [from, to, want] of table)
    test(`${formatPlacement(from)} -> ${formatPlacement(to)}`, () => {
      expect(fmt(singleAxisSteps(from, to))).toEqual(want);
      const mesh = DeviceMesh.parse('tp=4');
      expect(fmt(reshardSteps(L({ tp: from }), L({ tp: to }), mesh)).map((s) => s.replace('@tp', ''))).toEqual(want);
    });
});

describe('multi-axis order', () => {
  const mesh = DeviceMesh.parse('dp=2,tp=4');

  test('gathers run minor axis first, local shards major axis first', () => {
    // dim 0 sharded by both axes (dp major): gather tp first, then dp.
    expect(fmt(reshardSteps(L({ dp: S(0), tp: S(0) }), L({}), mesh))).toEqual(['AllGather@tp->R', 'AllGather@dp->R']);
    expect(fmt(reshardSteps(L({}), L({ dp: S(0), tp: S(0) }), mesh))).toEqual(['LocalShard@dp->S(0)', 'LocalShard@tp->S(0)']);
  });

  test('independent axes change independently', () => {
    expect(fmt(reshardSteps(L({ dp: S(0), tp: P }), L({ dp: S(0), tp: R }), mesh))).toEqual(['AllReduce@tp->R']);
    expect(fmt(reshardSteps(L({ dp: P, tp: S(2) }), L({ dp: R, tp: R }), mesh))).toEqual(['AllGather@tp->R', 'AllReduce@dp->R']);
  });

  test('an unchanged axis sharing a dim with a changing one is gathered and re-sharded', () => {
    // tp keeps S(0) but dp newly shards dim 0 (dp is major): tp must be gathered first.
    expect(fmt(reshardSteps(L({ tp: S(0) }), L({ dp: S(0), tp: S(0) }), mesh))).toEqual([
      'AllGather@tp->R',
      'LocalShard@dp->S(0)',
      'LocalShard@tp->S(0)',
    ]);
  });

  test('a reduce-scatter onto a dim another axis shards goes through R', () => {
    expect(fmt(reshardSteps(L({ dp: S(0), tp: P }), L({ dp: S(0), tp: S(0) }), mesh))).toEqual(['AllReduce@tp->R', 'LocalShard@tp->S(0)']);
  });
});

describe('costs (ring formulas)', () => {
  const axis = { name: 'tp', size: 4, link: { bandwidth: 1e9, latency: 1e-6 } };

  test('bytes each device sends', () => {
    expect(collectiveBytes('AllReduce', 1000, 4)).toBe(1500); // 2(k-1)/k · b
    expect(collectiveBytes('AllGather', 250, 4)).toBe(750); // (k-1) · shard
    expect(collectiveBytes('ReduceScatter', 1000, 4)).toBe(750);
    expect(collectiveBytes('AllToAll', 1000, 4)).toBe(750);
    expect(collectiveBytes('LocalShard', 1000, 4)).toBe(0);
    expect(collectiveBytes('AllReduce', 1000, 1)).toBe(0);
  });

  test('time = bytes / bandwidth + hops · latency', () => {
    expect(collectiveTime('AllReduce', 1000, axis)).toBeCloseTo(1500 / 1e9 + 6e-6, 15);
    expect(collectiveTime('AllGather', 250, axis)).toBeCloseTo(750 / 1e9 + 3e-6, 15);
  });

  test('placement cost sums the steps with the bytes each step holds', () => {
    // S(0) of a [8, 4] float tensor (128 bytes, 32 per device) → R: one all-gather of 32-byte shards.
    expect(placementCost(S(0), R, 128, [8, 4], axis)).toBeCloseTo(96 / 1e9 + 3e-6, 15);
    // P → S(0): reduce-scatter of the full 128 bytes.
    expect(placementCost(P, S(0), 128, [8, 4], axis)).toBeCloseTo(96 / 1e9 + 3e-6, 15);
    expect(placementCost(R, S(1), 128, [8, 4], axis)).toBe(0);
    // uneven: 10 rows over 4 → the largest shard has 3 rows (48 of 160 bytes).
    expect(placementCost(S(0), R, 160, [10, 4], axis)).toBeCloseTo((3 * 48) / 1e9 + 3e-6, 15);
  });
});

describe('Resharder', () => {
  function setup(): { graph: Graph; mesh: DeviceMesh; x: Value; consumer: Node; r: Resharder; emitted: Node[] } {
    const graph = new Graph();
    const x = new Value('x', 'float32', [4, 8]);
    const y = new Value('y', 'float32', [4, 8]);
    const producer = new Node('Relu', [new Value('in', 'float32', [4, 8])], [x], undefined, 'relu0');
    const consumer = new Node('Neg', [x], [y], undefined, 'neg0');
    graph.nodes.push(producer, consumer);
    const mesh = DeviceMesh.parse('dp=2,tp=2');
    x.layout = L({ dp: S(0), tp: P });
    const emitted: Node[] = [];
    return { graph, mesh, x, consumer, r: new Resharder(graph, mesh, namer(graph)), emitted };
  }

  test('emits one collective per step with reason, from, to, attributes and bytes', () => {
    const { mesh, x, r, emitted } = setup();
    const out = r.get(x, L({ dp: R, tp: R }), { consumer: 'Neg neg0' }, (n) => emitted.push(n));
    expect(emitted.map((n) => `${n.domain}::${n.op}`)).toEqual(['shardc.collective::AllReduce', 'shardc.collective::AllGather']);
    const [ar, ag] = emitted as [Node, Node];
    expect(ar.attrs.string('axis')).toBe('tp');
    expect(ar.attrs.string('reduce')).toBe('sum');
    expect(ag.attrs.string('axis')).toBe('dp');
    expect(ag.attrs.int('dim')).toBe(0);
    expect(ag.attrs.int('unit')).toBe(1);
    expect(ar.meta.get('reason')).toBe('Neg neg0 needs R of x on tp; it is P(sum) (produced by relu0) [step 1 of 2: P(sum) -> R]');
    expect(ag.meta.get('reason')).toBe('Neg neg0 needs R of x on dp; it is S(0) (produced by relu0) [step 2 of 2: S(0) -> R]');
    expect(ar.meta.get('from')).toBe('{dp: S(0), tp: P(sum)}');
    expect(ar.meta.get('to')).toBe('{dp: S(0), tp: R}');
    expect(ag.meta.get('to')).toBe('{dp: R, tp: R}');
    expect(out.producer).toBe(ag);
    expect(out.shape).toEqual([4, 8]);
    expect(ag.inputs[0]).toBe(ar.outputs[0]);
    // 4x8 float32 = 128 bytes; dp S(0) → 64 bytes per device: AllReduce over 2 sends 2·1/2·64.
    expect(r.records.map((c) => [c.kind, c.meshAxes, c.tensor, c.bytes])).toEqual([
      ['AllReduce', ['tp'], 'x', 64],
      ['AllGather', ['dp'], 'x', 64],
    ]);
    void mesh;
  });

  test('results are cached per (value, layout), intermediate layouts included', () => {
    const { x, r, emitted } = setup();
    const emit = (n: Node): void => void emitted.push(n);
    const full = r.get(x, L({ dp: R, tp: R }), { consumer: 'a' }, emit);
    expect(r.get(x, L({ dp: R, tp: R }), { consumer: 'b' }, emit)).toBe(full);
    const half = r.get(x, L({ dp: S(0), tp: R }), { consumer: 'c' }, emit);
    expect(half).toBe(emitted[0]!.outputs[0]);
    expect(emitted).toHaveLength(2);
    expect(r.get(x, L({ dp: S(0), tp: P }), { consumer: 'd' }, emit)).toBe(x);
  });
});
