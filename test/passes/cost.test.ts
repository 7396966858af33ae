/**
 * The cost model (src/passes/sharding/cost.ts) against hand-computed numbers: the collective
 * formulas, the roofline per op, a device program's compute and communication time, and the
 * report's per-device estimates with a hardware file.
 */
import { Attrs } from '../../src/ir/attrs.js';
import { COLLECTIVE_DOMAIN, Graph, Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { parseHardware } from '../../src/hardware/hardware.js';
import { collectiveSeconds, deviceCost, opSeconds } from '../../src/passes/sharding/cost.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';

const registry = createCoreRegistry();
const hw = (peak: number, bw: number) =>
  parseHardware({
    name: 't',
    source: 'test',
    devices: 4,
    device: { name: 'd', memoryBytes: 1e9, memoryBandwidth: bw, peakFlops: { float32: peak, float16: 2 * peak } },
    links: [{ name: 'l', kind: 'pcie', bandwidth: 48, latency: 0.5 }],
  });

test('collective formulas (ring)', () => {
  const link = { bandwidth: 1e9, latency: 1e-6 };
  // 2(n-1)/n · V/bw + 2(n-1)·α with V = 8 MB, n = 4: 1.5 · 8 ms + 6 us
  expect(collectiveSeconds('AllReduce', 8e6, 4, link)).toBeCloseTo(0.012006, 12);
  // (n-1)/n · V/bw + (n-1)·α: 0.75 · 8 ms + 3 us
  expect(collectiveSeconds('AllGather', 8e6, 4, link)).toBeCloseTo(0.006003, 12);
  expect(collectiveSeconds('ReduceScatter', 8e6, 4, link)).toBeCloseTo(0.006003, 12);
  expect(collectiveSeconds('AllToAll', 8e6, 4, link)).toBeCloseTo(0.006003, 12);
  expect(collectiveSeconds('Send', 8e6, 2, link)).toBeCloseTo(0.008001, 12);
  expect(collectiveSeconds('Recv', 8e6, 2, link)).toBe(0);
  expect(collectiveSeconds('AllReduce', 8e6, 1, link)).toBe(0);
  expect(collectiveSeconds('LocalShard', 8e6, 4, link)).toBe(0);
});

test('roofline per op: the larger of compute and memory time, peak by dtype', () => {
  const h = hw(1e12, 1e12);
  expect(opSeconds(2e12, 1e9, h, 'float32')).toBe(2); // compute bound
  expect(opSeconds(1e6, 3e12, h, 'float32')).toBe(3); // memory bound
  expect(opSeconds(2e12, 1e9, h, 'float16')).toBe(1); // float16 peak is twice float32's
  expect(opSeconds(2e12, 1e9, h, 'int64')).toBe(2); // unlisted: float32's
});

test("a device program's compute and communication time", () => {
  // y = x[2,4] @ w[4,8] (128 flops, (8 + 32 + 16)·4 = 224 bytes), then AllReduce(y) over tp=4.
  const g = new Graph('dev');
  const x = new Value('x', 'float32', [2, 4]);
  const w = new Value('w', 'float32', [4, 8]);
  const y = new Value('y', 'float32', [2, 8]);
  const z = new Value('z', 'float32', [2, 8]);
  g.inputs = [x, w];
  g.nodes.push(new Node('MatMul', [x, w], [y], new Attrs(), 'mm'));
  g.nodes.push(new Node('AllReduce', [y], [z], new Attrs([['axis', { kind: 'string', value: 'tp' }], ['reduce', { kind: 'string', value: 'sum' }]]), 'ar', COLLECTIVE_DOMAIN));
  g.outputs = [z];
  const mesh = DeviceMesh.parse('tp=4');
  const h = hw(128, 448); // the MatMul: max(128/128, 224/448) = 1 s
  const link = { bandwidth: 48, latency: 0.5 };
  const m = new DeviceMesh([{ name: 'tp', size: 4, link }]);
  const c = deviceCost(g, 0, m, h, registry);
  expect(c.computeMs).toBeCloseTo(1000, 9);
  // AllReduce of V = 64 bytes over 4: 1.5 · 64/48 + 6 · 0.5 = 2 + 3 = 5 s
  expect(c.communicationMs).toBeCloseTo(5000, 9);
  expect(c.totalMs).toBeCloseTo(6000, 9);
  // Memory (liveness): x, w (32 + 128) and y (64) live at the MatMul; x and w die there, so the
  // AllReduce holds y and z (128): the peak is 224 at the MatMul.
  expect(c.memoryPeakBytes).toBe(32 + 128 + 64);
  expect(c.activationPeakBytes).toBe(224);
  // The same program on the default mesh link uses that link's numbers instead.
  const d = deviceCost(g, 0, mesh, h, registry);
  expect(d.communicationMs).toBeCloseTo((1.5 * 64 / mesh.axis('tp').link.bandwidth + 6 * mesh.axis('tp').link.latency) * 1e3, 9);
});
