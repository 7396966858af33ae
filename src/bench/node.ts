/**
 * `shardc bench` without --browser: times shardc on Node's WebGPU (Dawn; SwiftShader without a
 * GPU), CPU inputs in to CPU outputs back, after warm-up — one device for tp=1, or every device of
 * a mesh on ONE adapter (see benchMesh), which measures what the collectives cost
 * (bench/webgpu-tp.ts) —
 * and, for reference, onnxruntime-node (CPU execution provider) on the same inputs.
 */
import type { Graph } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import type { Tensor } from '../ir/tensor.js';
import type { Launch } from '../codegen/kernel.js';
import { defaultPipeline } from '../passes/manager.js';
import type { DeviceProgram } from '../passes/sharding/lower.js';
import type { DeviceMesh } from '../passes/sharding/mesh.js';
import type { ShardPlan } from '../passes/sharding/plan.js';
import { type GpuBuf, WebGPUBackend } from '../targets/webgpu/backend.js';
import { acquireDevice } from '../targets/webgpu/device.js';
import { acquireDevices, runSpmdWebGPU } from '../targets/webgpu/spmd.js';
import { compileHostProgram } from '../codegen/fuse.js';
import { recordHostProgram } from '../codegen/host/record.js';
import { scatterFeeds } from '../targets/cpu/spmd.js';
import { WebGPUMeshSession } from '../targets/webgpu/mesh-session.js';
import { prepareGraph } from './prepared.js';
import type { Profile, ProfileEntry } from './profile.js';
import { median, timeRuns } from './stats.js';

export interface TimedResult {
  /** Milliseconds per timed run. */
  times: number[];
  medianMs: number;
  /** Outputs of the last run. */
  outputs: Map<string, Tensor>;
}

export interface ShardcNodeResult extends TimedResult {
  adapter: string;
  /** 'interpretive' (kernel runner) or 'compiled' (host program session). */
  engine: string;
  devices: number;
  profile?: Profile;
}

export interface NodeBenchOptions {
  registry: OpRegistry;
  warmup: number;
  runs: number;
  profile?: boolean;
  engine?: 'compiled' | 'interpretive';
  fuse?: boolean;
  /** Runs done of warm-up + timed runs (label 'shardc runs'), for progress bars. */
  onProgress?: (done: number, total: number, label: string) => void;
}

/** Relabels a progress callback (undefined stays undefined). */
const labelled = (f: ((d: number, t: number, l: string) => void) | undefined, label: string) => f && ((d: number, t: number): void => f(d, t, label));

/** One device: the whole graph (optimised here with the default pipeline; the graph is changed). */
export async function benchSingleDevice(graph: Graph, feeds: ReadonlyMap<string, Tensor>, opts: NodeBenchOptions): Promise<ShardcNodeResult> {
  defaultPipeline({ registry: opts.registry }).run(graph);
  const gpu = await acquireDevice();
  const model = await prepareGraph(graph, gpu, { registry: opts.registry, ownsDevice: true, engine: opts.engine, fuse: opts.fuse });
  try {
    const { times, last } = await timeRuns(() => model.run(feeds), opts.warmup, opts.runs, labelled(opts.onProgress, 'shardc runs'));
    const profile = opts.profile ? (await model.profile(feeds)).profile : undefined;
    return { adapter: model.adapter, engine: model.engine, devices: 1, times, medianMs: median(times)!, outputs: last, profile };
  } finally {
    model.dispose();
  }
}

/** Host timing of every launch on one mesh device (collectives staged elsewhere are not seen). */
class TimedWebGPUBackend extends WebGPUBackend {
  entries: ProfileEntry[] | undefined;
  constructor(
    device: GPUDevice,
    name: string,
    private readonly rank: number,
  ) {
    super(device, name);
  }
  override async dispatch(launch: Launch, bindings: Record<string, GpuBuf>): Promise<void> {
    if (!this.entries) return super.dispatch(launch, bindings);
    const t0 = performance.now();
    await super.dispatch(launch, bindings);
    await this.device.queue.onSubmittedWorkDone();
    const name = launch.kernel.name;
    this.entries.push({ kind: 'kernel', node: name, op: name.split(/[_\s]/)[0] ?? name, name, device: this.rank, ms: performance.now() - t0 });
  }
}

/**
 * Every device of `mesh` on one adapter (the programs from lowerPlan), global feeds in, global
 * outputs out. Compiled engine: the mesh session (targets/webgpu/mesh-session.ts) with every
 * logical device on ONE GPUDevice (`shareDevice`: collectives are device-side copy kernels in the
 * same command encoder), host programs recorded for the feeds' local shapes, memory planned and
 * fused. Interpretive engine: runSpmdWebGPU, one GPUDevice per mesh device on the same adapter,
 * collectives staged through the host, backends (pipeline caches) kept across runs.
 */
export async function benchMesh(
  programs: DeviceProgram[],
  plan: ShardPlan,
  mesh: DeviceMesh,
  feeds: ReadonlyMap<string, Tensor>,
  opts: NodeBenchOptions,
): Promise<ShardcNodeResult> {
  if ((opts.engine ?? 'compiled') === 'interpretive') return benchMeshInterpretive(programs, plan, mesh, feeds, opts);
  const local = scatterFeeds(programs, plan, mesh, feeds);
  const hostPrograms = programs.map((p, d) => {
    const inputs = [...local[d]!].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] }));
    return compileHostProgram(recordHostProgram(p.graph, inputs, { registry: opts.registry, device: d, mesh }), opts.fuse);
  });
  const gpu = await acquireDevice();
  const sessions: WebGPUMeshSession[] = [];
  try {
    const create = async (profile: boolean): Promise<WebGPUMeshSession> => {
      const s = await WebGPUMeshSession.create(programs, mesh, plan, { registry: opts.registry, devices: [gpu], shareDevice: true, hostPrograms, profile });
      sessions.push(s);
      return s;
    };
    const session = await create(false);
    const { times, last } = await timeRuns(async () => (await session.run(feeds)).outputs, opts.warmup, opts.runs, labelled(opts.onProgress, 'shardc runs'));
    let profile: Profile | undefined;
    if (opts.profile) {
      const r = await (await create(true)).run(feeds);
      const entries: ProfileEntry[] = (r.profile ?? []).map((e) => ({
        kind: e.kind === 'collective' ? 'collective' : 'kernel',
        node: e.node,
        op: e.op,
        name: e.node,
        device: e.device,
        ms: e.ms,
      }));
      profile = { timing: 'host', entries };
    }
    return { adapter: gpu.description, engine: 'compiled', devices: mesh.deviceCount, times, medianMs: median(times)!, outputs: last, profile };
  } finally {
    for (const s of sessions) s.destroy();
    gpu.destroy();
  }
}

async function benchMeshInterpretive(
  programs: readonly DeviceProgram[],
  plan: ShardPlan,
  mesh: DeviceMesh,
  feeds: ReadonlyMap<string, Tensor>,
  opts: NodeBenchOptions,
): Promise<ShardcNodeResult> {
  const devices = await acquireDevices(mesh.deviceCount);
  try {
    const backends = devices.map((g, d) => new TimedWebGPUBackend(g.device, `device ${d} (${g.description})`, d));
    const run = async (): Promise<Map<string, Tensor>> => (await runSpmdWebGPU(programs, mesh, feeds, { registry: opts.registry, plan, backends })).outputs;
    const { times, last } = await timeRuns(run, opts.warmup, opts.runs, labelled(opts.onProgress, 'shardc runs'));
    let profile: Profile | undefined;
    if (opts.profile) {
      const entries: ProfileEntry[] = [];
      for (const b of backends) b.entries = entries;
      await run();
      for (const b of backends) b.entries = undefined;
      profile = { timing: 'host', entries };
    }
    return { adapter: devices[0]!.description, engine: 'interpretive', devices: mesh.deviceCount, times, medianMs: median(times)!, outputs: last, profile };
  } finally {
    for (const d of devices) d.destroy();
  }
}

/** onnxruntime-node (CPU execution provider) on the model bytes: warm-up, timed runs. */
export async function benchOrtNode(modelBytes: Uint8Array, feeds: ReadonlyMap<string, Tensor>, opts: { warmup: number; runs: number; onProgress?: (done: number, total: number, label: string) => void }): Promise<TimedResult> {
  const { toOrt, fromOrt } = await import('../verify/ort.js');
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(modelBytes);
  try {
    const ortFeeds = Object.fromEntries([...feeds].map(([k, t]) => [k, toOrt(t)]));
    const { times, last } = await timeRuns(() => session.run(ortFeeds), opts.warmup, opts.runs, labelled(opts.onProgress, 'onnxruntime-node runs'));
    const outputs = new Map(session.outputNames.map((n) => [n, fromOrt(last[n]!)]));
    return { times, medianMs: median(times)!, outputs };
  } finally {
    await session.release();
  }
}
