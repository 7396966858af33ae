/**
 * Running a bundle on the simulated multi-device CPU runtime: import every device's program (with
 * its safetensors weights), scatter the GLOBAL inputs by the plan's input layouts, run, assemble
 * the global outputs by the output layouts.
 */
import type { OpRegistry } from '../ir/registry.js';
import type { Tensor } from '../ir/tensor.js';
import { runSpmd } from '../targets/cpu/spmd.js';
import { bundleShardPlan, loadBundlePrograms, readBundle } from './read.js';
import { UserError } from '../ir/errors.js';
import { unsupportedOps } from '../onnx/import.js';
import type { Graph } from '../ir/graph.js';

export interface BundleRun {
  /** The plan's global graph stand-in (inputs/outputs with layouts), e.g. to match input files. */
  globalGraph: Graph;
  run(feeds: ReadonlyMap<string, Tensor>): { name: string; tensor: Tensor }[];
}

/** Loads a bundle for running (checks every file's SHA-256 first). */
export function loadBundleForRun(dir: string, registry: OpRegistry): BundleRun {
  const b = readBundle(dir);
  if (b.manifest.target !== 'cpu') throw new UserError(`bundle is for target ${b.manifest.target}; only cpu bundles run here`, { file: dir });
  const programs = loadBundlePrograms(b);
  for (const p of programs) {
    const missing = unsupportedOps(p.graph, registry);
    if (missing.length) throw new UserError(`device ${p.device}: unsupported ops: ${missing.map((m) => m.op).join(', ')}`, { file: dir });
  }
  const plan = bundleShardPlan(b);
  return {
    globalGraph: plan.graph,
    run(feeds) {
      const r = runSpmd(programs, b.mesh, feeds, { registry, plan });
      return plan.graph.outputs.map((o) => ({ name: o.name, tensor: r.outputs.get(o.name)! }));
    },
  };
}
