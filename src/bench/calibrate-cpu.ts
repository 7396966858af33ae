/**
 * The CPU probe of `shardc bench --calibrate` (calibrate.ts): shardc's reference CPU runtime, one
 * JavaScript thread. matmul, elementwise and launches time whole runGraph calls of the graphs of
 * calibrate-graphs.ts (a node is its "kernel launch"); allReduce times runCollective — what the
 * simulated multi-device runtime (targets/cpu/spmd.ts) does at a collective — over the devices'
 * host tensors in this process. Calls are synchronous, so the timing adds no round trip (0).
 */
import { cpus } from 'node:os';
import { createCoreRegistry } from '../ir/ops/index.js';
import { runCollective } from '../targets/cpu/collectives.js';
import { runGraph } from '../targets/cpu/interpreter.js';
import { allReducePlan, elementwiseChainGraph, matmulGraph, type ProbeGraph } from './calibrate-graphs.js';
import type { Probe, Sampler } from './calibrate.js';

/** Seconds of one synchronous call. */
function timed(f: () => unknown): Sampler {
  return {
    sample() {
      const t0 = performance.now();
      f();
      return Promise.resolve((performance.now() - t0) / 1e3);
    },
    dispose() {},
  };
}

export function createCpuProbe(): Probe {
  const registry = createCoreRegistry();
  const run = ({ graph, feeds }: ProbeGraph): Sampler => timed(() => runGraph(graph, feeds, { registry }));
  return {
    target: 'cpu',
    adapter: `${cpus()[0]?.model.trim() || 'CPU'} (shardc CPU runtime, one JavaScript thread)`,
    collectivePath: 'not measured',
    matmul: async (n) => run(matmulGraph(n)),
    elementwise: async (elements) => run(elementwiseChainGraph(elements, 1)),
    launches: async (k) => run(elementwiseChainGraph(64, k)),
    async allReduce(elements, devices) {
      const { plan, feeds } = allReducePlan(elements, devices);
      const node = plan.graph.nodes[0]!;
      const inputs = Array.from({ length: devices }, () => feeds.get('x')!);
      this.collectivePath = `AllReduce between ${devices} simulated devices in one process: runCollective on host tensors (targets/cpu/collectives.ts)`;
      return timed(() => runCollective(node.op, node.attrs, inputs));
    },
    roundTrip: async () => ({ sample: () => Promise.resolve(0), dispose() {} }),
    dispose() {},
  };
}
