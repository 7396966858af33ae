/**
 * Running a bundle on the simulated multi-device CPU runtime: import every device's program (with
 * its safetensors weights), scatter the GLOBAL inputs by the plan's input layouts, run, assemble
 * the global outputs by the output layouts.
 */
import type { OpRegistry } from '../ir/registry.js';
import type { Tensor } from '../ir/tensor.js';
import { runSpmd } from '../targets/cpu/spmd.js';
import { runMeshOnWebGPU } from '../targets/webgpu/mesh-session.js';
import { scatterFeeds } from '../targets/cpu/spmd.js';
import { checkHostInputs, readHostProgram } from './host-program.js';
import { bundleShardPlan, loadBundlePrograms, readBundle } from './read.js';
import { UserError } from '../ir/errors.js';
import { unsupportedOps } from '../onnx/import.js';
import type { Graph } from '../ir/graph.js';

export interface BundleRun {
  /** The plan's global graph stand-in (inputs/outputs with layouts), e.g. to match input files. */
  globalGraph: Graph;
  /** Target of the bundle (manifest). */
  target: 'cpu' | 'wgsl';
  /** Runs on the simulated multi-device CPU runtime (any target's bundle). */
  run(feeds: ReadonlyMap<string, Tensor>): { name: string; tensor: Tensor }[];
  /** Runs on the bundle's target: WebGPU devices for a wgsl bundle, else the CPU simulator. */
  runOnTarget(feeds: ReadonlyMap<string, Tensor>): Promise<{ name: string; tensor: Tensor }[]>;
}

/** Loads a bundle for running (checks every file's SHA-256 first). */
export function loadBundleForRun(dir: string, registry: OpRegistry): BundleRun {
  const b = readBundle(dir);
  const target = b.manifest.target;
  if (target !== 'cpu' && target !== 'wgsl') throw new UserError(`bundle is for target ${String(target)}; only cpu and wgsl bundles run here`, { file: dir });
  const programs = loadBundlePrograms(b);
  for (const p of programs) {
    const missing = unsupportedOps(p.graph, registry);
    if (missing.length) throw new UserError(`device ${p.device}: unsupported ops: ${missing.map((m) => m.op).join(', ')}`, { file: dir });
  }
  const plan = bundleShardPlan(b);
  return {
    globalGraph: plan.graph,
    target,
    run(feeds) {
      const r = runSpmd(programs, b.mesh, feeds, { registry, plan });
      return plan.graph.outputs.map((o) => ({ name: o.name, tensor: r.outputs.get(o.name)! }));
    },
    async runOnTarget(feeds) {
      if (target === 'cpu') return this.run(feeds);
      // The bundle's ahead-of-time host programs (fused, memory-planned at partition time), checked
      // against the device-local inputs; all logical devices share one GPUDevice.
      const hostPrograms = b.manifest.devices.every((d) => d.host) ? programs.map((p) => readHostProgram(dir, p.device)) : undefined;
      if (hostPrograms) {
        scatterFeeds(programs, plan, b.mesh, feeds).forEach((local, d) =>
          checkHostInputs(hostPrograms[d]!, [...local].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })), b.manifest.bindings ?? {}),
        );
      }
      const r = await runMeshOnWebGPU(programs, b.mesh, plan, feeds, { registry, hostPrograms });
      return plan.graph.outputs.map((o) => ({ name: o.name, tensor: r.outputs.get(o.name)! }));
    },
  };
}
