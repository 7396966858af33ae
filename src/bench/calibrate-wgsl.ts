/// <reference types="@webgpu/types" />
/**
 * The WebGPU probe of `shardc bench --calibrate` (calibrate.ts): one Dawn device (npm `webgpu`;
 * SwiftShader without a GPU, as targets/webgpu/device.ts sets up), shardc's own compiled runtime:
 * - matmul, elementwise: a profiled WebGPUSession (targets/webgpu/session.ts) of the one-kernel
 *   graph; a sample is its dispatch steps' time (GPU timestamps when the device has them, else
 *   host time from submit to onSubmittedWorkDone);
 * - launches: the wall time of a whole unprofiled run of an unfused chain of kernels (one command
 *   encoder, so the slope over chain lengths is what one more launch costs in a run);
 * - allReduce: the compiled mesh session (targets/webgpu/mesh-session.ts) with every logical device
 *   on this one GPUDevice (`shareDevice`), profiled: a sample is the collective step's host time —
 *   device-side copy kernels in the same encoder (or host staging, when the collective would bind
 *   more storage buffers than a kernel may; collectivePath says which ran);
 * - roundTrip: an empty submit and onSubmittedWorkDone, what the step timing adds around its work.
 */
import { compileHostProgram } from '../codegen/fuse.js';
import { recordHostProgram } from '../codegen/host/record.js';
import type { Graph } from '../ir/graph.js';
import { createCoreRegistry } from '../ir/ops/index.js';
import type { Tensor } from '../ir/tensor.js';
import { lowerPlan } from '../passes/sharding/lower.js';
import { createCoreShardingRules } from '../passes/sharding/rules/index.js';
import { acquireDevice } from '../targets/webgpu/device.js';
import { WebGPUMeshSession } from '../targets/webgpu/mesh-session.js';
import { PipelineCache, WebGPUSession } from '../targets/webgpu/session.js';
import { allReducePlan, elementwiseChainGraph, matmulGraph } from './calibrate-graphs.js';
import type { Probe, Sampler } from './calibrate.js';

export async function createWebGPUProbe(): Promise<Probe> {
  const gpu = await acquireDevice();
  const registry = createCoreRegistry();
  const cache = new PipelineCache();
  const device = gpu.device;

  const session = async (graph: Graph, feeds: ReadonlyMap<string, Tensor>, opts: { fuse: boolean; profile: boolean }): Promise<WebGPUSession> => {
    const inputs = [...feeds].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] }));
    const program = compileHostProgram(recordHostProgram(graph, inputs, { registry }), opts.fuse);
    return WebGPUSession.create(device, program, { name: gpu.description, cache, profile: opts.profile });
  };
  /** Seconds of the profiled run's dispatch steps. */
  const kernelSampler = async ({ graph, feeds }: { graph: Graph; feeds: Map<string, Tensor> }): Promise<Sampler> => {
    const s = await session(graph, feeds, { fuse: true, profile: true });
    return {
      async sample() {
        await s.run(feeds);
        return (s.lastProfile ?? []).filter((p) => p.kind === 'dispatch').reduce((a, p) => a + p.ms, 0) / 1e3;
      },
      dispose: () => s.destroy(),
    };
  };

  const probe: Probe = {
    target: 'wgsl',
    adapter: gpu.description,
    collectivePath: 'not measured',
    matmul: (n) => kernelSampler(matmulGraph(n)),
    elementwise: (elements) => kernelSampler(elementwiseChainGraph(elements, 1)),
    async launches(k) {
      const { graph, feeds } = elementwiseChainGraph(64, k);
      const s = await session(graph, feeds, { fuse: false, profile: false });
      return {
        async sample() {
          const t0 = performance.now();
          await s.run(feeds);
          return (performance.now() - t0) / 1e3;
        },
        dispose: () => s.destroy(),
      };
    },
    async allReduce(elements, devices) {
      const { plan, feeds } = allReducePlan(elements, devices);
      const programs = lowerPlan(plan, { registry, rules: createCoreShardingRules() });
      const s = await WebGPUMeshSession.create(programs, plan.mesh, plan, { registry, devices: [gpu], shareDevice: true, profile: true });
      return {
        async sample() {
          const r = await s.run(feeds);
          const staged = r.stats.some((x) => x.stagedBytes > 0);
          probe.collectivePath = staged
            ? `AllReduce between ${devices} logical devices on one GPUDevice, staged through the host (read back, summed, written)`
            : `AllReduce between ${devices} logical devices on one GPUDevice: device-side copy kernels in the run's command encoder (mesh session, shareDevice)`;
          return (r.profile ?? []).filter((p) => p.kind === 'collective').reduce((a, p) => a + p.ms, 0) / 1e3;
        },
        dispose: () => s.destroy(),
      };
    },
    async roundTrip() {
      return {
        async sample() {
          const t0 = performance.now();
          device.queue.submit([device.createCommandEncoder().finish()]);
          await device.queue.onSubmittedWorkDone();
          return (performance.now() - t0) / 1e3;
        },
        dispose() {},
      };
    },
    dispose: () => gpu.destroy(),
  };
  return probe;
}
