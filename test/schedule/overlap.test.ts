/**
 * The overlap scheduler (src/passes/schedule) on hand-made device graphs with hand-computed
 * durations: an independent MatMul moves behind an AllReduce (hidden communication, critical path
 * and start/end times checked to the second), collectives keep their order, single-stream graphs
 * keep theirs, and the lockstep check refuses devices whose collective orders differ.
 */
import { Attrs } from '../../src/ir/attrs.js';
import { COLLECTIVE_DOMAIN, Graph, Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { parseHardware } from '../../src/hardware/hardware.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import {
  checkCollectiveOrder,
  deviceTiming,
  nodeSeconds,
  overlapOrder,
  scheduleDevicePrograms,
  streamOf,
  timeOrder,
  wasReordered,
} from '../../src/passes/schedule/index.js';

const registry = createCoreRegistry();
// 128 flop/s, 448 B/s: a [2,4]x[4,8] MatMul (128 flops, 224 bytes) takes max(1, 0.5) = 1 s.
const hw = parseHardware({
  name: 't',
  source: 'test',
  devices: 2,
  device: { name: 'd', memoryBytes: 1e9, memoryBandwidth: 448, peakFlops: { float32: 128 } },
  links: [{ name: 'l', kind: 'pcie', bandwidth: 32, latency: 0.5 }],
});
// AllReduce of 64 bytes over 2 devices on this link: 2·(1/2)·64/32 + 2·0.5 = 3 s.
const mesh = new DeviceMesh([{ name: 'tp', size: 2, link: { bandwidth: 32, latency: 0.5 } }]);
const s = (v: string) => ({ kind: 'string' as const, value: v });

/** mm2 = x@w2 (independent), mm1 = x@w1, ar = AllReduce(mm1), out = ar + mm2 — in that program order. */
function handGraph(): { g: Graph; names: () => string[] } {
  const g = new Graph('dev');
  const x = new Value('x', 'float32', [2, 4]);
  const w1 = new Value('w1', 'float32', [4, 8]);
  const w2 = new Value('w2', 'float32', [4, 8]);
  const y1 = new Value('y1', 'float32', [2, 8]);
  const y2 = new Value('y2', 'float32', [2, 8]);
  const r = new Value('r', 'float32', [2, 8]);
  const out = new Value('out', 'float32', [2, 8]);
  g.inputs = [x, w1, w2];
  g.nodes.push(new Node('MatMul', [x, w2], [y2], new Attrs(), 'mm2'));
  g.nodes.push(new Node('MatMul', [x, w1], [y1], new Attrs(), 'mm1'));
  g.nodes.push(new Node('AllReduce', [y1], [r], new Attrs([['axis', s('tp')], ['reduce', s('sum')]]), 'ar', COLLECTIVE_DOMAIN));
  g.nodes.push(new Node('Add', [r, y2], [out], new Attrs(), 'add'));
  g.outputs = [out];
  return { g, names: () => g.nodes.map((n) => n.label) };
}

test('durations from the cost model: MatMul 1 s, AllReduce 3 s', () => {
  const { g } = handGraph();
  expect(nodeSeconds(g.nodes[0]!, mesh, hw, registry)).toBe(1);
  expect(nodeSeconds(g.nodes[2]!, mesh, hw, registry)).toBeCloseTo(3, 12);
  expect(g.nodes.map(streamOf)).toEqual(['compute', 'compute', 'comm', 'compute']);
});

test('an independent MatMul moves behind the AllReduce: 1 s of communication hidden', () => {
  const { g, names } = handGraph();
  const add = nodeSeconds(g.nodes[3]!, mesh, hw, registry); // 192 bytes / 448 B/s
  expect(add).toBeCloseTo(192 / 448, 12);

  // Program order: mm2 [0,1], mm1 [1,2], ar [2,5] (nothing left to overlap it), add [5, 5+add].
  const before = deviceTiming(g, mesh, hw, registry);
  expect(before.steps.map((t) => [t.start, t.end])).toEqual([[0, 1], [1, 2], [2, 5], [5, 5 + add]]);
  expect(before.hiddenComm).toBe(0);
  expect(before.makespan).toBeCloseTo(5 + add, 12);

  const summary = scheduleDevicePrograms([{ device: 0, graph: g }], mesh, { registry, hardware: hw });
  expect(summary).toEqual({ reordered: true, reorderedDevices: [0], keptCommOrder: false });
  expect(wasReordered(g)).toBe(true);
  expect(names()).toEqual(['mm1', 'ar', 'mm2', 'add']);

  // Overlap order: mm1 [0,1], ar [1,4] on comm while mm2 [1,2] computes, add [4, 4+add].
  const after = deviceTiming(g, mesh, hw, registry);
  expect(after.steps.map((t) => t.stream)).toEqual(['compute', 'comm', 'compute', 'compute']);
  expect(after.steps.map((t) => [t.start, t.end])).toEqual([[0, 1], [1, 4], [1, 2], [4, 4 + add]]);
  expect(after.commTime).toBe(3);
  expect(after.hiddenComm).toBe(1);
  expect(after.makespan).toBeCloseTo(4 + add, 12);
  expect(after.serial).toBeCloseTo(5 + add, 12);
  // The chain that sets the time: mm1 → ar → add (mm2 is off it).
  expect(after.criticalPath.map((i) => g.nodes[i]!.label)).toEqual(['mm1', 'ar', 'add']);

  // Scheduling again changes nothing.
  expect(overlapOrder(g, (n) => nodeSeconds(n, mesh, hw, registry), streamOf).nodes.map((n) => n.label)).toEqual(['mm1', 'ar', 'mm2', 'add']);
});

test('without collectives the program order stays (order "program")', () => {
  const g = new Graph('one');
  const x = new Value('x', 'float32', [2, 4]);
  const w = new Value('w', 'float32', [4, 8]);
  const a = new Value('a', 'float32', [2, 8]);
  const b = new Value('b', 'float32', [2, 8]);
  const c = new Value('c', 'float32', [2, 8]);
  g.inputs = [x, w];
  g.nodes.push(new Node('MatMul', [x, w], [a], new Attrs(), 'mm'));
  g.nodes.push(new Node('Relu', [a], [b], new Attrs(), 'relu'));
  g.nodes.push(new Node('Neg', [a], [c], new Attrs(), 'neg'));
  g.outputs = [b, c];
  const summary = scheduleDevicePrograms([{ device: 0, graph: g }], DeviceMesh.parse('tp=1'), { registry });
  expect(summary.reordered).toBe(false);
  expect(wasReordered(g)).toBe(false);
  expect(g.nodes.map((n) => n.label)).toEqual(['mm', 'relu', 'neg']);
});

test('compute that feeds the earlier collective goes first', () => {
  // Program order: a2 = x@w (feeds ar2... issued second), a1 = x@w (feeds ar1); ar1 precedes ar2 in the comm order.
  const g = new Graph('dev');
  const x = new Value('x', 'float32', [2, 4]);
  const w = new Value('w', 'float32', [4, 8]);
  const v = (n: string) => new Value(n, 'float32', [2, 8]);
  const [a1, a2, r1, r2] = [v('a1'), v('a2'), v('r1'), v('r2')];
  g.inputs = [x, w];
  const ar = (i: Value, o: Value, l: string) => new Node('AllReduce', [i], [o], new Attrs([['axis', s('tp')], ['reduce', s('sum')]]), l, COLLECTIVE_DOMAIN);
  g.nodes.push(new Node('MatMul', [x, w], [a2], new Attrs(), 'mm_for_ar2'));
  g.nodes.push(new Node('MatMul', [x, w], [a1], new Attrs(), 'mm_for_ar1'));
  g.nodes.push(ar(a1, r1, 'ar1'));
  g.nodes.push(ar(a2, r2, 'ar2'));
  g.outputs = [r1, r2];
  const { nodes, timing } = overlapOrder(g, (n) => nodeSeconds(n, mesh, hw, registry), streamOf);
  expect(nodes.map((n) => n.label)).toEqual(['mm_for_ar1', 'ar1', 'mm_for_ar2', 'ar2']);
  // ar1 [1,4], ar2 waits for the comm stream: [4,7]; mm_for_ar2 [1,2] hides 1 s of ar1.
  expect(timing.steps.map((t) => [t.start, t.end])).toEqual([[0, 1], [1, 4], [1, 2], [4, 7]]);
  expect(timing.hiddenComm).toBe(1);
  expect(timing.criticalPath.map((i) => nodes[i]!.label)).toEqual(['mm_for_ar1', 'ar1', 'ar2']);
});

test('timeOrder: producers, streams and the binding chain on plain arrays', () => {
  // 0: compute 2; 1: comm 5 after 0; 2: compute 1 (independent); 3: compute 1 after 1 and 2.
  const t = timeOrder([[], [0], [], [1, 2]], [2, 5, 1, 1], ['compute', 'comm', 'compute', 'compute']);
  expect(t.steps.map((x) => [x.start, x.end])).toEqual([[0, 2], [2, 7], [2, 3], [7, 8]]);
  expect(t.hiddenComm).toBe(1);
  expect(t.makespan).toBe(8);
  expect(t.criticalPath).toEqual([0, 1, 3]);
});

describe('lockstep: collectives in the same order on every member of a group', () => {
  /** A device graph with AllReduces labelled `labels`, in that order. */
  const device = (labels: string[]): Graph => {
    const g = new Graph('dev');
    const x = new Value('x', 'float32', [2, 8]);
    g.inputs = [x];
    for (const l of labels) {
      const o = new Value(`o_${l}`, 'float32', [2, 8]);
      g.nodes.push(new Node('AllReduce', [x], [o], new Attrs([['axis', s('tp')], ['reduce', s('sum')]]), l, COLLECTIVE_DOMAIN));
      g.outputs.push(o);
    }
    return g;
  };

  test('the same order passes', () => {
    expect(() => checkCollectiveOrder([{ device: 0, graph: device(['a', 'b']) }, { device: 1, graph: device(['a', 'b']) }], mesh)).not.toThrow();
  });

  test('a different order is refused, naming where each device waits', () => {
    expect(() => checkCollectiveOrder([{ device: 0, graph: device(['a', 'b']) }, { device: 1, graph: device(['b', 'a']) }], mesh)).toThrow(
      'collective order differs between devices (they would wait forever): device 0 waits at AllReduce "a"; device 1 waits at AllReduce "b"',
    );
  });

  /** `slow` = x@w then Relu feeds ar_a; ar_b reduces x directly (ready at once). Program order: ar_a, ar_b. */
  const twoReduces = (rows: number): Graph => {
    const g = new Graph('dev');
    const x = new Value('x', 'float32', [rows, 4]);
    const w = new Value('w', 'float32', [4, 8]);
    const big = new Value('big', 'float32', [rows, 8]);
    const big2 = new Value('big2', 'float32', [rows, 8]);
    const ra = new Value('ra', 'float32', [rows, 8]);
    const rb = new Value('rb', 'float32', [rows, 4]);
    g.inputs = [x, w];
    g.nodes.push(new Node('MatMul', [x, w], [big], new Attrs(), 'slow'));
    g.nodes.push(new Node('Relu', [big], [big2], new Attrs(), 'slow2'));
    g.nodes.push(new Node('AllReduce', [big2], [ra], new Attrs([['axis', s('tp')], ['reduce', s('sum')]]), 'ar_a', COLLECTIVE_DOMAIN));
    g.nodes.push(new Node('AllReduce', [x], [rb], new Attrs([['axis', s('tp')], ['reduce', s('sum')]]), 'ar_b', COLLECTIVE_DOMAIN));
    g.outputs = [ra, rb];
    return g;
  };
  const commLabels = (g: Graph) => g.nodes.filter((n) => n.domain === COLLECTIVE_DOMAIN).map((n) => n.label);

  test('members with the same program: a collective whose input is ready first is issued first, on every member', () => {
    const g0 = twoReduces(2);
    const g1 = twoReduces(2);
    const summary = scheduleDevicePrograms([{ device: 0, graph: g0 }, { device: 1, graph: g1 }], mesh, { registry, hardware: hw });
    expect(summary.keptCommOrder).toBe(false);
    expect(g0.nodes.map((n) => n.label)).toEqual(['ar_b', 'slow', 'slow2', 'ar_a']);
    expect(commLabels(g1)).toEqual(['ar_b', 'ar_a']);
  });

  test('members whose free orders would differ keep the lowered collective order (checked, not deadlocked)', () => {
    // Same collectives, but on device 1 ar_b's input is computed after ar_a's (as uneven shards or
    // different stages can make it): free, device 0 would issue ar_b first and device 1 ar_a.
    const g0 = twoReduces(2);
    const g1 = new Graph('dev1');
    const x = new Value('x', 'float32', [2, 4]);
    const w = new Value('w', 'float32', [4, 8]);
    const big = new Value('big', 'float32', [2, 8]);
    const big2 = new Value('big2', 'float32', [2, 8]);
    const xl = new Value('xl', 'float32', [2, 8]);
    const ra = new Value('ra', 'float32', [2, 8]);
    const rb = new Value('rb', 'float32', [2, 8]);
    g1.inputs = [x, w];
    g1.nodes.push(new Node('MatMul', [x, w], [big], new Attrs(), 'slow'));
    g1.nodes.push(new Node('Relu', [big], [big2], new Attrs(), 'slow2'));
    g1.nodes.push(new Node('AllReduce', [big2], [ra], new Attrs([['axis', s('tp')], ['reduce', s('sum')]]), 'ar_a', COLLECTIVE_DOMAIN));
    g1.nodes.push(new Node('Neg', [big2], [xl], new Attrs(), 'late'));
    g1.nodes.push(new Node('AllReduce', [xl], [rb], new Attrs([['axis', s('tp')], ['reduce', s('sum')]]), 'ar_b', COLLECTIVE_DOMAIN));
    g1.outputs = [ra, rb];
    // Free orders: device 0 issues ar_b first, device 1 ar_a first — they would wait forever.
    expect(overlapOrder(g0, (n) => nodeSeconds(n, mesh, hw, registry), streamOf).nodes.filter((n) => n.domain === COLLECTIVE_DOMAIN).map((n) => n.label)).toEqual(['ar_b', 'ar_a']);
    const summary = scheduleDevicePrograms([{ device: 0, graph: g0 }, { device: 1, graph: g1 }], mesh, { registry, hardware: hw });
    expect(summary.keptCommOrder).toBe(true);
    expect(commLabels(g0)).toEqual(['ar_a', 'ar_b']);
    expect(commLabels(g1)).toEqual(['ar_a', 'ar_b']);
    expect(() => checkCollectiveOrder([{ device: 0, graph: g0 }, { device: 1, graph: g1 }], mesh)).not.toThrow();
  });
});
