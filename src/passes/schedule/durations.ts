/**
 * What the scheduler needs to know about one node of a device program: which stream runs it and
 * how long it takes.
 *
 * Streams: a device has one compute stream (kernels, and the local copies LocalShard/LocalPartial)
 * and one communication stream (every other collective, Send and Recv included). Each stream runs
 * its steps in program order; the CUDA host (runtime/cuda/main.cu) runs collectives on their own
 * stream with events, which is this model.
 *
 * Durations (seconds) come from the cost model (passes/sharding/cost.ts) on a hardware file, the
 * same formulas as report.json's per-device estimates: roofline per op, ring formulas per
 * collective over its mesh axis's link. Without a hardware file the scheduler still needs relative
 * durations to decide an order: DEFAULT_HARDWARE is a middle-of-the-road accelerator (the mesh
 * keeps its default links, mesh.ts DEFAULT_LINK); its numbers decide the order only and are never
 * written as times.
 */
import { COLLECTIVE_DOMAIN, type Node } from '../../ir/graph.js';
import type { OpRegistry } from '../../ir/registry.js';
import { nodeFlops } from '../../bundle/estimate.js';
import type { Hardware } from '../../hardware/hardware.js';
import { collectiveSeconds, collectiveVolume, opBytes, opDtype, opSeconds } from '../sharding/cost.js';
import type { DeviceMesh } from '../sharding/mesh.js';

export type Stream = 'compute' | 'comm';

/** Collective-domain ops that move no data between devices: local copies on the compute stream. */
const LOCAL_COLLECTIVES = new Set(['LocalShard', 'LocalPartial']);

export function streamOf(n: Node): Stream {
  return n.domain === COLLECTIVE_DOMAIN && !LOCAL_COLLECTIVES.has(n.op) ? 'comm' : 'compute';
}

/** The device the scheduler assumes without a hardware file (orders only; never reported as times). */
export const DEFAULT_HARDWARE: Hardware = {
  name: 'default device',
  source: 'shardc default (order decisions only)',
  devices: 1,
  device: { name: 'default accelerator', memoryBytes: 16 * 2 ** 30, memoryBandwidth: 1e12, peakFlops: { float32: 2e13 } },
  links: [],
  axes: {},
};

/**
 * Seconds one node takes on `hw`; collectives over a mesh axis use that axis's link (as cost.ts
 * deviceCost). `flops`: nodeFlops, or for device programs its memoised form (estimate.ts deviceNodeFlops).
 */
export function nodeSeconds(n: Node, mesh: DeviceMesh, hw: Hardware, registry: OpRegistry, flops: (n: Node, registry: OpRegistry) => number = nodeFlops): number {
  if (n.domain !== COLLECTIVE_DOMAIN) return opSeconds(flops(n, registry), opBytes(n), hw, opDtype(n));
  if (LOCAL_COLLECTIVES.has(n.op)) return opSeconds(0, opBytes(n), hw, opDtype(n));
  const axis = n.attrs.get('axis');
  const name = axis?.kind === 'string' ? axis.value : undefined;
  if (name !== undefined && mesh.hasAxis(name)) {
    const a = mesh.axis(name);
    return collectiveSeconds(n.op, collectiveVolume(n), a.size, a.link);
  }
  if (n.op === 'Send') return collectiveSeconds('Send', collectiveVolume(n), 2, (mesh.hasAxis('pp') ? mesh.axis('pp') : mesh.axes[0]!).link);
  return 0; // Recv: counted on its Send
}
