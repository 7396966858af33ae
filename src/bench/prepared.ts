/// <reference types="@webgpu/types" />
/**
 * A model prepared on one WebGPU device for repeated runs, CPU tensors in and CPU tensors out —
 * what `shardc bench` times (in Node on Dawn, and in the page through the browser entry's
 * `prepareModel`). Preparation (optimising the graph, compiling pipelines on the first run) is
 * outside the timed runs; a run writes the inputs, runs every kernel and reads the outputs back.
 *
 * Engines: 'compiled' (the default) records the graph once per input shapes into a host program
 * (codegen/host/record.ts, memory plan, then kernel fusion unless `fuse: false`) and runs it with
 * the resident WebGPU session (targets/webgpu/session.ts: one command encoder per run, weights
 * uploaded once); 'interpretive' runs the kernel runner (codegen/run-graph.ts: node by node, one
 * submit per launch, weights uploaded on first use in each run), kept for comparison. Free of
 * Node built-ins.
 */
import type { Graph, Node } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import type { Tensor } from '../ir/tensor.js';
import type { Launch } from '../codegen/kernel.js';
import { runGraphOnBackend } from '../codegen/run-graph.js';
import { ForwardingBackend, type GpuBuf, WebGPUBackend } from '../targets/webgpu/backend.js';
import type { WebGPUDevice } from '../targets/webgpu/gpu-device.js';
import { compileHostProgram } from '../codegen/fuse.js';
import { recordHostProgram } from '../codegen/host/record.js';
import { PipelineCache, WebGPUSession } from '../targets/webgpu/session.js';
import type { Profile, ProfileEntry } from './profile.js';

export interface PreparedModel {
  /** Which runtime runs it: 'interpretive' (kernel runner) or 'compiled' (host program session). */
  readonly engine: 'interpretive' | 'compiled';
  /** The adapter, in words. */
  readonly adapter: string;
  /** One run: inputs by name → outputs by name (graph output order), on the host. */
  run(feeds: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>>;
  /** One profiled run (slower than `run`: see profile.ts). */
  profile(feeds: ReadonlyMap<string, Tensor>): Promise<{ outputs: Map<string, Tensor>; profile: Profile }>;
  /** Releases the device when this object acquired it. */
  dispose(): void;
}

export interface PrepareOptions {
  registry: OpRegistry;
  /** Destroy `gpu` on dispose (default false). */
  ownsDevice?: boolean;
  /** Mesh device number recorded in profiles (default 0). */
  device?: number;
  /** 'compiled' (default) or 'interpretive'. */
  engine?: 'compiled' | 'interpretive';
  /** Fuse the host program's kernels (compiled engine; default true). */
  fuse?: boolean;
}

/**
 * A backend that times every launch on the host: submit it alone and wait for the queue. Launches
 * are attributed to the node that the runner reports next (`onNode` comes after a node's launches).
 */
export class HostTimedBackend extends ForwardingBackend {
  readonly entries: ProfileEntry[] = [];
  private pending: { name: string; ms: number }[] = [];

  constructor(
    inner: WebGPUBackend,
    private readonly deviceNumber = 0,
  ) {
    super(inner);
  }

  override async dispatch(launch: Launch, bindings: Record<string, GpuBuf>): Promise<void> {
    const t0 = performance.now();
    await this.inner.dispatch(launch, bindings);
    await this.inner.device.queue.onSubmittedWorkDone();
    this.pending.push({ name: launch.kernel.name, ms: performance.now() - t0 });
  }

  /** The runner finished `node`: its launches get its name. */
  onNode(node: Node): void {
    for (const p of this.pending) this.entries.push({ kind: 'kernel', node: node.label, op: node.op, name: p.name, device: this.deviceNumber, ms: p.ms });
    this.pending = [];
  }
}

/** Prepares an optimised graph (the caller ran the pass pipeline) on `gpu`. */
export async function prepareGraph(graph: Graph, gpu: WebGPUDevice, opts: PrepareOptions): Promise<PreparedModel> {
  return (opts.engine ?? 'compiled') === 'compiled' ? prepareCompiled(graph, gpu, opts) : prepareInterpretive(graph, gpu, opts);
}

/**
 * The compiled engine: a host program per distinct input signature (recorded on the first run
 * with those shapes, outside the timed runs after warm-up), run by a resident session; the
 * profiled run uses a second session with `profile: true` sharing the compiled pipelines.
 */
function prepareCompiled(graph: Graph, gpu: WebGPUDevice, opts: PrepareOptions): PreparedModel {
  const cache = new PipelineCache();
  const sessions = new Map<string, { plain?: WebGPUSession; profiled?: WebGPUSession; program: ReturnType<typeof recordHostProgram> }>();
  const entry = (feeds: ReadonlyMap<string, Tensor>) => {
    const inputs = [...feeds].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] }));
    const key = JSON.stringify(inputs.map((i) => [i.name, i.dtype, i.shape]));
    let e = sessions.get(key);
    if (!e) {
      const program = compileHostProgram(recordHostProgram(graph, inputs, { registry: opts.registry, device: opts.device }), opts.fuse);
      sessions.set(key, (e = { program }));
    }
    return e;
  };
  const name = gpu.description;
  return {
    engine: 'compiled',
    adapter: gpu.description,
    async run(feeds) {
      const e = entry(feeds);
      e.plain ??= await WebGPUSession.create(gpu.device, e.program, { name, cache });
      return e.plain.run(feeds);
    },
    async profile(feeds) {
      const e = entry(feeds);
      e.profiled ??= await WebGPUSession.create(gpu.device, e.program, { name, cache, profile: true });
      const outputs = await e.profiled.run(feeds);
      const timestamps = gpu.device.features.has('timestamp-query');
      const entries: ProfileEntry[] = (e.profiled.lastProfile ?? []).map((s) => ({
        kind: s.kind === 'collective' ? 'collective' : 'kernel',
        node: s.node,
        op: s.op,
        name: s.node,
        device: opts.device ?? 0,
        ms: s.ms,
      }));
      return { outputs, profile: { timing: timestamps ? 'timestamp-query' : 'host', entries } };
    },
    dispose() {
      for (const e of sessions.values()) {
        e.plain?.destroy();
        e.profiled?.destroy();
      }
      sessions.clear();
      if (opts.ownsDevice) gpu.destroy();
    },
  };
}

function prepareInterpretive(graph: Graph, gpu: WebGPUDevice, opts: PrepareOptions): PreparedModel {
  const backend = new WebGPUBackend(gpu.device, gpu.description);
  const registry = opts.registry;
  return {
    engine: 'interpretive',
    adapter: gpu.description,
    run: (feeds) => runGraphOnBackend(graph, feeds, backend, { registry }),
    async profile(feeds) {
      const timed = new HostTimedBackend(backend, opts.device ?? 0);
      const outputs = await runGraphOnBackend(graph, feeds, timed, { registry, onNode: (n) => timed.onNode(n) });
      return { outputs, profile: { timing: 'host', entries: timed.entries } };
    },
    dispose() {
      if (opts.ownsDevice) gpu.destroy();
    },
  };
}
