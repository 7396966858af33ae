/**
 * The cost model of a partitioned plan on described hardware (src/hardware): how long each device's
 * program takes and how much memory it needs, estimated from the IR alone (static local shapes).
 *
 * Compute, per op (roofline): max(flops / peak flop/s for the op's dtype, bytes / memory bandwidth),
 *   flops from the op's registry row (`OpDef.flops`, 0 where an op has none), bytes = what the op
 *   reads (every input, weights included) plus what it writes (its outputs), on local shapes.
 * Communication, per collective over a mesh axis of n devices whose link has bandwidth bw (bytes/s
 *   one device sends) and latency α (seconds per step), V the bytes of the full tensor the
 *   collective is about on one device (AllReduce: its input; AllGather: its gathered output;
 *   ReduceScatter: its input before scattering; AllToAll: its input):
 *     AllReduce (ring)          2(n-1)/n · V/bw + 2(n-1)·α
 *     AllGather, ReduceScatter   (n-1)/n · V/bw +  (n-1)·α
 *     AllToAll                   (n-1)/n · V/bw +  (n-1)·α
 *     Broadcast, Send/Recv                V/bw +        α   (Recv waits for its Send: counted once, on the sender)
 *     LocalShard, LocalPartial   0 (no traffic; their copy is an op like any other: roofline on bytes)
 * Plan time per device: the sum along its single-stream schedule (program order; no overlap yet).
 * Memory per device: parameters + the activation peak of the liveness estimate (bundle/estimate.ts).
 */
import { COLLECTIVE_DOMAIN, type Graph, type Node, type Value } from '../../ir/graph.js';
import type { OpRegistry } from '../../ir/registry.js';
import { estimateGraph, type GraphEstimate, nodeFlops, valueBytes } from '../../bundle/estimate.js';
import { type Hardware, peakFlops } from '../../hardware/hardware.js';
import type { CostModel } from './propagate.js';
import type { AxisLink, DeviceMesh } from './mesh.js';
import type { CollectiveKind } from './plan.js';

/** Seconds of one collective of V bytes over n devices on `link` (formulas in the file comment). */
export function collectiveSeconds(kind: CollectiveKind | string, V: number, n: number, link: AxisLink): number {
  if (n <= 1) return 0;
  const bw = link.bandwidth;
  const a = link.latency;
  switch (kind) {
    case 'AllReduce':
      return ((2 * (n - 1)) / n) * (V / bw) + 2 * (n - 1) * a;
    case 'AllGather':
    case 'ReduceScatter':
    case 'AllToAll':
      return ((n - 1) / n) * (V / bw) + (n - 1) * a;
    case 'Broadcast':
    case 'Send':
      return V / bw + a;
    default:
      return 0; // Recv (counted on the Send), LocalShard, LocalPartial
  }
}

/** Roofline seconds of one op: the larger of its compute time and its memory time. */
export function opSeconds(flops: number, bytes: number, hw: Hardware, dtype: string | undefined): number {
  return Math.max(flops / peakFlops(hw, dtype), bytes / hw.device.memoryBandwidth);
}

/** The propagation cost model (seconds per flop, per byte) of the hardware's device. */
export function costModelOf(hw: Hardware, base: CostModel): CostModel {
  return { ...base, secondsPerFlop: 1 / peakFlops(hw, 'float32'), secondsPerByte: 1 / hw.device.memoryBandwidth };
}

export interface DeviceCost {
  device: number;
  computeMs: number;
  communicationMs: number;
  /** computeMs + communicationMs (single stream). */
  totalMs: number;
  memoryPeakBytes: number;
  paramBytes: number;
  activationPeakBytes: number;
}

/** The V of a collective node (see the file comment). */
export function collectiveVolume(n: Node): number {
  const v = n.op === 'AllGather' ? n.outputs[0] : n.inputs[0];
  return v ? valueBytes(v) : 0;
}

export function opBytes(n: Node): number {
  let b = 0;
  for (const v of n.inputs) if (v) b += valueBytes(v);
  for (const v of n.outputs) if (v.name !== '') b += valueBytes(v);
  return b;
}

export function opDtype(n: Node): string | undefined {
  const v: Value | undefined = n.outputs.find((o) => o.dtype && o.dtype !== 'bool' && !o.dtype.startsWith('int')) ?? n.outputs[0];
  return v?.dtype;
}

/** The cost of one device's local program (a DeviceProgram's graph) on `hw`; mesh links from `mesh`. */
export function deviceCost(graph: Graph, device: number, mesh: DeviceMesh, hw: Hardware, registry: OpRegistry, estimate?: GraphEstimate): DeviceCost {
  let compute = 0;
  let comm = 0;
  for (const n of graph.nodes) {
    if (n.domain === COLLECTIVE_DOMAIN) {
      const axis = n.attrs.get('axis');
      const name = axis?.kind === 'string' ? axis.value : undefined;
      if (name && mesh.hasAxis(name)) {
        const a = mesh.axis(name);
        comm += collectiveSeconds(n.op, collectiveVolume(n), a.size, a.link);
      } else if (n.op === 'Send') comm += collectiveSeconds('Send', collectiveVolume(n), 2, (mesh.hasAxis('pp') ? mesh.axis('pp') : mesh.axes[0]!).link);
      else if (n.op === 'LocalShard' || n.op === 'LocalPartial') compute += opSeconds(0, opBytes(n), hw, opDtype(n));
      continue;
    }
    compute += opSeconds(nodeFlops(n, registry), opBytes(n), hw, opDtype(n));
  }
  const e = estimate ?? estimateGraph(graph, registry);
  return {
    device,
    computeMs: compute * 1e3,
    communicationMs: comm * 1e3,
    totalMs: (compute + comm) * 1e3,
    memoryPeakBytes: e.peakMemoryBytes,
    paramBytes: e.paramBytes,
    activationPeakBytes: e.activationPeakBytes,
  };
}

/** Every device's cost, and the plan's time (the slowest device's). */
export function planDeviceCosts(
  programs: readonly { device: number; graph: Graph }[],
  mesh: DeviceMesh,
  hw: Hardware,
  registry: OpRegistry,
): { devices: DeviceCost[]; totalMs: number } {
  const devices = programs.map((p) => deviceCost(p.graph, p.device, mesh, hw, registry));
  return { devices, totalMs: Math.max(0, ...devices.map((d) => d.totalMs)) };
}
