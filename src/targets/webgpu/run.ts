/**
 * `runGraphWebGPU`: runs an IR graph on a WebGPU device node by node — each node lowered to
 * kernel-IR launches (src/codegen/lower), rendered to WGSL, dispatched in order; constants
 * uploaded once on first use; graph outputs read back. Without a `device` option it acquires one
 * and destroys it at the end (so the process can exit).
 */
import type { Graph } from '../../ir/graph.js';
import type { OpRegistry } from '../../ir/registry.js';
import type { Tensor } from '../../ir/tensor.js';
import type { LoweringTable } from '../../codegen/lower/index.js';
import { runGraphOnBackend } from '../../codegen/run-graph.js';
import { WebGPUBackend } from './backend.js';
import { type WebGPUDevice, acquireDevice } from './device.js';

export interface WebGPURunOptions {
  registry: OpRegistry;
  table?: LoweringTable;
  /** A device to run on (kept alive); by default one is acquired and destroyed afterwards. */
  device?: WebGPUDevice;
  /** A backend to reuse (its pipeline cache survives between runs); implies its device. */
  backend?: WebGPUBackend;
}

export async function runGraphWebGPU(graph: Graph, feeds: ReadonlyMap<string, Tensor>, opts: WebGPURunOptions): Promise<Map<string, Tensor>> {
  const owned = opts.backend || opts.device ? undefined : await acquireDevice();
  try {
    const backend = opts.backend ?? new WebGPUBackend((opts.device ?? owned)!.device, (opts.device ?? owned)!.description);
    return await runGraphOnBackend(graph, feeds, backend, { registry: opts.registry, table: opts.table });
  } finally {
    owned?.destroy();
  }
}
