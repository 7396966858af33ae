/**
 * The CPU kernel backend: buffers are typed arrays, launches run on the kernel-IR executor
 * (cpu.ts). `runGraphKernelsCpu` runs a whole graph through the lowering tables without a GPU —
 * the same kernels the WebGPU runtime dispatches — so a lowering bug is caught by plain unit tests.
 */
import type { Graph } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { type DeviceArray, allocDeviceArray, executeLaunch } from './cpu.js';
import { fromDeviceArray, toDeviceArray } from './device-data.js';
import { type KernelBackend, type KernelRunOptions, runGraphOnBackend } from './run-graph.js';

export const cpuKernelBackend: KernelBackend<DeviceArray> = {
  upload: (t) => toDeviceArray(t),
  alloc: (type, n) => allocDeviceArray(type, n),
  dispatch: (launch, bindings) => executeLaunch(launch, bindings),
  download: async (b, dtype, shape) => fromDeviceArray(b, dtype, shape),
  release: () => undefined,
};

export function runGraphKernelsCpu(graph: Graph, feeds: ReadonlyMap<string, Tensor>, opts: KernelRunOptions): Promise<Map<string, Tensor>> {
  return runGraphOnBackend(graph, feeds, cpuKernelBackend, opts);
}
