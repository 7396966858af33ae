/// <reference types="@webgpu/types" />
/**
 * The compiled multi-device WebGPU runtime: one host program per mesh device (recorded from the
 * device programs of lowerPlan, memory planned), run in the lockstep order decided ahead of time
 * (codegen/host/lockstep.ts — a device reaching a different collective fails at create(), naming
 * the devices and collectives, so a run cannot hang).
 *
 * Two placements:
 * - one GPUDevice per mesh device (default): each device encodes its stretch of steps into its own
 *   encoder; collectives are staged through the host (read back, runCollective semantics, written)
 *   — the devices' queues run concurrently between collectives;
 * - `shareDevice: true`: every logical device's buffers live on ONE GPUDevice, so a collective is a
 *   few box-copy kernels reading the members' buffers directly (codegen/host/collective-kernels.ts)
 *   and the whole run is one command encoder — no host round trip. Send/Recv copy through a
 *   mailbox buffer. A collective needing more storage buffers than one kernel may bind falls back
 *   to host staging.
 *
 * Inputs are GLOBAL tensors scattered per the plan's layouts (scatterFeed); outputs are assembled
 * back (assembleOutputs), like runSpmdWebGPU.
 */
import type { DType } from '../../ir/dtype.js';
import { Value } from '../../ir/graph.js';
import { UserError } from '../../ir/errors.js';
import type { OpRegistry } from '../../ir/registry.js';
import type { Tensor } from '../../ir/tensor.js';
import { collectiveLaunches } from '../../codegen/host/collective-kernels.js';
import { type LockstepEvent, groupCollectiveHost, lockstepSchedule } from '../../codegen/host/lockstep.js';
import { compileHostProgram } from '../../codegen/fuse.js';
import type { CollectiveStep, HostProgram } from '../../codegen/host/program.js';
import { DataDependentError, recordHostProgram } from '../../codegen/host/record.js';
import type { LoweringTable } from '../../codegen/lower/index.js';
import type { DeviceProgram } from '../../passes/sharding/lower.js';
import type { DeviceMesh } from '../../passes/sharding/mesh.js';
import type { ShardPlan } from '../../passes/sharding/plan.js';
import { localShape } from '../../passes/sharding/shards.js';
import { isStatic } from '../../ir/shape.js';
import { assembleOutputs, scatterFeed } from '../cpu/spmd.js';
import type { WebGPUDevice } from './device.js';
import { DispatchBuilder, Encoder, guardRun, PipelineCache, type PreparedDispatch, ProgramResources, type StepTime } from './session.js';
import { acquireDevices, runSpmdWebGPU } from './spmd.js';

const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const STORAGE = 0x0080;

export interface WebGPUMeshSessionOptions {
  registry: OpRegistry;
  table?: LoweringTable;
  /** Symbolic dims of the global inputs (as given to shardGraph), when the plan's inputs are not static. */
  bindings?: Readonly<Record<string, number>>;
  /** Global input shapes by name (override the plan's). */
  inputShapes?: ReadonlyMap<string, number[]>;
  /** Devices to run on: one per mesh device, or one with shareDevice (kept alive); by default acquired and destroyed. */
  devices?: readonly WebGPUDevice[];
  /** Every logical device on one GPUDevice; collectives as device-side kernels. */
  shareDevice?: boolean;
  profile?: boolean;
  /** Kernel fusion of the recorded programs (default true; codegen/fuse.ts). */
  fuse?: boolean;
  /** Already recorded (and planned) host programs, one per device (else recorded here). */
  hostPrograms?: readonly HostProgram[];
}

export interface WebGPUMeshStats {
  device: number;
  /** Kernel dispatches of this device's steps in the last run (collective kernels not counted). */
  dispatches: number;
  /** Collective kernels (shared device) in the last run. */
  collectiveDispatches: number;
  /** Bytes read back and written for host-staged collectives in the last run. */
  stagedBytes: number;
}

export interface WebGPUMeshResult {
  outputs: Map<string, Tensor>;
  perDevice: Map<string, Tensor>[];
  stats: WebGPUMeshStats[];
  /** profile: per device, per step. */
  profile?: (StepTime & { device: number })[];
}

/** Per device, the local input shapes of its program (from the plan's global shapes and layouts). */
function localInputShapes(
  programs: readonly DeviceProgram[],
  mesh: DeviceMesh,
  plan: ShardPlan,
  opts: WebGPUMeshSessionOptions,
): { name: string; dtype: DType; shape: number[] }[][] {
  const globals = new Map(plan.graph.inputs.map((v) => [v.name, v]));
  return programs.map((p, d) =>
    p.graph.inputs
      .filter((v) => !v.constant || opts.inputShapes?.has(v.name))
      .map((v) => {
        const g = globals.get(v.name);
        const dtype = v.dtype ?? g?.dtype;
        if (!dtype) throw new UserError(`input has no dtype to compile with`, { tensor: v.name });
        let shape: number[] | undefined = opts.inputShapes?.get(v.name)?.slice();
        if (!shape && g?.shape) {
          const dims = g.shape.map((x) => (typeof x === 'number' ? x : opts.bindings?.[x as unknown as string]));
          if (dims.every((x) => typeof x === 'number')) shape = dims as number[];
        }
        if (shape) return { name: v.name, dtype, shape: localShape(shape, g?.layout, mesh, d) };
        if (v.shape && isStatic(v.shape)) return { name: v.name, dtype, shape: (v.shape as number[]).slice() };
        throw new UserError(`input shape is not static: give bindings or inputShapes to compile the mesh session`, { tensor: v.name });
      }),
  );
}

export class WebGPUMeshSession {
  private readonly mailboxes = new Map<string, GPUBuffer>();
  /** Shared device: prepared collective kernels per collective event (schedule index). */
  private readonly collectiveKernels = new Map<number, PreparedDispatch[]>();
  private readonly uniforms: GPUBuffer[] = [];
  /** Separate devices: messages of Send steps, by "device:step". */
  private readonly hostMail = new Map<string, Tensor>();
  /** The distinct GPUDevices with their names for messages (a lost one fails the run, naming it). */
  private gpuNames: { device: GPUDevice; name: string }[] = [];

  private constructor(
    readonly mesh: DeviceMesh,
    readonly plan: ShardPlan,
    /** Per device, its graph inputs (the device graphs' Values, or stand-ins from the host programs). */
    private readonly localInputs: readonly (readonly Value[])[],
    readonly hostPrograms: readonly HostProgram[],
    readonly resources: readonly ProgramResources[],
    readonly schedule: readonly LockstepEvent[],
    readonly shared: boolean,
    readonly profile: boolean,
    private readonly owned: readonly WebGPUDevice[],
  ) {}

  static async create(programs: DeviceProgram[], mesh: DeviceMesh, plan: ShardPlan, opts: WebGPUMeshSessionOptions): Promise<WebGPUMeshSession> {
    if (programs.length !== mesh.deviceCount) throw new UserError(`${programs.length} device programs for a mesh of ${mesh.deviceCount} devices (${mesh})`);
    programs.forEach((p, d) => {
      if (p.device !== d) throw new UserError(`device program ${d} is for device ${p.device}`);
    });
    const hosts =
      opts.hostPrograms?.slice() ??
      localInputShapes(programs, mesh, plan, opts).map((inputs, d) =>
        compileHostProgram(recordHostProgram(programs[d]!.graph, inputs, { registry: opts.registry, table: opts.table, device: d, mesh }), opts.fuse),
      );
    return WebGPUMeshSession.start(hosts, programs.map((p) => p.graph.inputs), mesh, plan, opts);
  }

  /**
   * A session from ahead-of-time host programs alone (a wgsl bundle's device-<r>/host-program.json,
   * e.g. fetched by the browser entry): no device graphs, no registry — the plan (global inputs and
   * outputs with their layouts) scatters the feeds and assembles the outputs.
   */
  static async fromHostPrograms(
    hostPrograms: readonly HostProgram[],
    mesh: DeviceMesh,
    plan: ShardPlan,
    opts: Pick<WebGPUMeshSessionOptions, 'devices' | 'shareDevice' | 'profile'> = {},
  ): Promise<WebGPUMeshSession> {
    if (hostPrograms.length !== mesh.deviceCount) throw new UserError(`${hostPrograms.length} host programs for a mesh of ${mesh.deviceCount} devices (${mesh})`);
    hostPrograms.forEach((h, d) => {
      if (h.device !== d) throw new UserError(`host program ${d} is for device ${h.device}`);
    });
    const inputs = hostPrograms.map((h) => h.inputs.map((i) => new Value(i.name, i.dtype, i.shape.slice())));
    return WebGPUMeshSession.start(hostPrograms.slice(), inputs, mesh, plan, opts);
  }

  private static async start(
    hosts: HostProgram[],
    localInputs: readonly (readonly Value[])[],
    mesh: DeviceMesh,
    plan: ShardPlan,
    opts: Pick<WebGPUMeshSessionOptions, 'devices' | 'shareDevice' | 'profile'>,
  ): Promise<WebGPUMeshSession> {
    const schedule = lockstepSchedule(hosts); // mismatched collectives fail here, before any device work
    const shared = !!opts.shareDevice;
    const want = shared ? 1 : mesh.deviceCount;
    if (opts.devices && opts.devices.length < want)
      throw new UserError(`${opts.devices.length} WebGPU devices for a mesh of ${mesh.deviceCount} devices${shared ? ' (shared: one is enough)' : ''}`);
    const owned = opts.devices ? [] : await acquireDevices(want);
    const gpus = opts.devices ?? owned;
    const gpuNames = shared
      ? [{ device: gpus[0]!.device, name: `${mesh.deviceCount > 1 ? `devices 0-${mesh.deviceCount - 1}` : "device 0"} of mesh ${mesh} (sharing ${gpus[0]!.description})` }]
      : gpus.slice(0, want).map((g, d) => ({ device: g.device, name: `device ${d} (${g.description})` }));
    const cache = new PipelineCache();
    const resources: ProgramResources[] = [];
    try {
      return await guardRun(gpuNames, async () => {
        const builders = new Map<GPUDevice, DispatchBuilder>();
        hosts.forEach((h, d) => {
          const g = gpus[shared ? 0 : d]!;
          const name = shared ? `device ${d} (shared ${g.description})` : `device ${d} (${g.description})`;
          let b = builders.get(g.device);
          if (!b) builders.set(g.device, (b = new DispatchBuilder(g.device, cache, name)));
          resources.push(ProgramResources.create(g.device, h, name, b));
        });
        const s = new WebGPUMeshSession(mesh, plan, localInputs, hosts, resources, schedule, shared, !!opts.profile, owned);
        s.gpuNames = gpuNames;
        if (shared) s.prepareShared(builders.get(gpus[0]!.device)!);
        for (const b of builders.values()) {
          const u = await b.finish();
          if (u) s.uniforms.push(u);
        }
        return s;
      });
    } catch (e) {
      for (const r of resources) r.destroy();
      for (const g of owned) g.destroy();
      throw e;
    }
  }

  /** Shared device: collective kernels for every collective event; mailboxes for Send/Recv. */
  private prepareShared(builder: DispatchBuilder): void {
    const device = builder.device;
    this.schedule.forEach((e, i) => {
      if (e.kind === 'send') {
        const s = this.stepAt(e.device, e.step);
        const bytes = Math.max(1, this.hostPrograms[e.device]!.buffers[s.input!]!.length) * 4;
        this.mailboxes.set(`${e.device}:${e.step}`, device.createBuffer({ size: bytes, usage: STORAGE | COPY_SRC | COPY_DST, label: `mailbox ${s.node}` }));
      }
      if (e.kind !== 'collective') return;
      const steps = e.members.map((m) => this.stepAt(m.device, m.step));
      const launches = collectiveLaunches(steps, device.limits.maxStorageBuffersPerShaderStage);
      if (!launches) return; // staged through the host
      const out: PreparedDispatch[] = [];
      this.resources[0]!.addCollective(builder, launches, steps, e.members.map((m) => this.resources[m.device]!), out);
      this.collectiveKernels.set(i, out);
    });
  }

  private stepAt(d: number, i: number): CollectiveStep {
    return this.hostPrograms[d]!.steps[i] as CollectiveStep;
  }

  /** Runs on GLOBAL feeds; outputs assembled per the plan's layouts. A lost device fails it, naming the device. */
  run(feeds: ReadonlyMap<string, Tensor>): Promise<WebGPUMeshResult> {
    return guardRun(this.gpuNames, () => this.runOnce(feeds));
  }

  private async runOnce(feeds: ReadonlyMap<string, Tensor>): Promise<WebGPUMeshResult> {
    const globalInputs = new Map(this.plan.graph.inputs.map((v) => [v.name, v]));
    const local = this.hostPrograms.map((h, d) => {
      const m = new Map<string, Tensor>();
      for (const i of h.inputs) {
        const v = this.localInputs[d]!.find((x) => x.name === i.name) ?? new Value(i.name, i.dtype, i.shape.slice());
        const t = scatterFeed(v, feeds, globalInputs, this.mesh, d);
        if (t) m.set(i.name, t);
      }
      return m;
    });
    this.resources.forEach((r, d) => r.writeInputs(local[d]!));
    // One encoder per GPUDevice.
    const encoders = new Map<GPUDevice, Encoder>();
    const encOf = (d: number): Encoder => {
      const dev = this.resources[d]!.device;
      let e = encoders.get(dev);
      if (!e) encoders.set(dev, (e = new Encoder(dev)));
      return e;
    };
    const stats: WebGPUMeshStats[] = this.resources.map((_, d) => ({ device: d, dispatches: 0, collectiveDispatches: 0, stagedBytes: 0 }));
    const profile: (StepTime & { device: number })[] | undefined = this.profile ? [] : undefined;
    // Profile: host time per step (the steps of several devices interleave on the queues).
    const time = async (d: number, step: number, f: () => void | Promise<void>): Promise<void> => {
      if (!profile) return void (await f());
      const s = this.hostPrograms[d]!.steps[step]!;
      const enc = encOf(d);
      enc.submit();
      await this.resources[d]!.device.queue.onSubmittedWorkDone();
      const t0 = performance.now();
      await f();
      enc.submit();
      await this.resources[d]!.device.queue.onSubmittedWorkDone();
      profile.push({ device: d, node: s.node, op: s.op, kind: s.kind, ms: performance.now() - t0 });
    };

    for (const [i, e] of this.schedule.entries()) {
      if (e.kind === 'local') {
        const r = this.resources[e.device]!;
        const enc = encOf(e.device);
        for (let k = e.from; k < e.to; k++) {
          await time(e.device, k, () => r.encodeSteps(enc, k, k + 1));
          if (this.hostPrograms[e.device]!.steps[k]!.kind === 'dispatch') stats[e.device]!.dispatches += r.prepared[k]!.length;
        }
      } else if (e.kind === 'collective') {
        const kernels = this.collectiveKernels.get(i);
        const lead = e.members[0]!;
        await time(lead.device, lead.step, async () => {
          if (kernels) {
            const enc = encOf(lead.device);
            for (const k of kernels) enc.dispatch(k);
            stats[lead.device]!.collectiveDispatches += kernels.length;
            return;
          }
          // Host staging: read every member's input, combine, write every output.
          const steps = e.members.map((m) => this.stepAt(m.device, m.step));
          const inputs = await Promise.all(e.members.map((m, k) => this.resources[m.device]!.read(encOf(m.device), steps[k]!.input!, steps[k]!.dtype, steps[k]!.inputShape!)));
          const outs = groupCollectiveHost(steps, e.members.map((m) => m.device), inputs);
          e.members.forEach((m, k) => {
            this.resources[m.device]!.write(steps[k]!.output, outs[k]!);
            stats[m.device]!.stagedBytes += inputs[k]!.size * 4 + outs[k]!.size * 4;
          });
        });
      } else if (e.kind === 'send') {
        const s = this.stepAt(e.device, e.step);
        const r = this.resources[e.device]!;
        const bytes = Math.max(1, this.hostPrograms[e.device]!.buffers[s.input!]!.length) * 4;
        const box = this.mailboxes.get(`${e.device}:${e.step}`);
        if (box) encOf(e.device).copy(r.buffer(s.input!), 0, box, 0, bytes);
        else {
          const t = await r.read(encOf(e.device), s.input!, s.dtype, s.inputShape!);
          this.hostMail.set(`${e.device}:${e.step}`, t);
          stats[e.device]!.stagedBytes += bytes;
        }
      } else {
        const s = this.stepAt(e.device, e.step);
        const r = this.resources[e.device]!;
        const key = `${e.from.device}:${e.from.step}`;
        const box = this.mailboxes.get(key);
        if (box) encOf(e.device).copy(box, 0, r.buffer(s.output), 0, Math.max(1, this.hostPrograms[e.device]!.buffers[s.output]!.length) * 4);
        else {
          const t = this.hostMail.get(key)!;
          this.hostMail.delete(key);
          r.write(s.output, t);
          stats[e.device]!.stagedBytes += t.size * 4;
        }
      }
    }
    this.resources.forEach((r, d) => r.encodeReadback(encOf(d)));
    for (const enc of encoders.values()) enc.submit();
    const perDevice = await Promise.all(this.resources.map((r) => r.readOutputs()));
    return { outputs: assembleOutputs(this.plan, perDevice, this.mesh), perDevice, stats, profile };
  }

  destroy(): void {
    for (const r of this.resources) r.destroy();
    for (const b of this.mailboxes.values()) b.destroy();
    for (const u of this.uniforms) u.destroy();
    this.mailboxes.clear();
    for (const g of this.owned) g.destroy();
  }
}


/**
 * Runs sharded device programs once on WebGPU, compiled (recorded, fused, memory-planned, all
 * logical devices on one GPUDevice unless `shareDevice` is false). A graph with data-dependent
 * shapes cannot be compiled ahead of time; it runs on the interpretive multi-device runner
 * (spmd.ts) instead.
 */
export async function runMeshOnWebGPU(
  programs: DeviceProgram[],
  mesh: DeviceMesh,
  plan: ShardPlan,
  feeds: ReadonlyMap<string, Tensor>,
  opts: Omit<WebGPUMeshSessionOptions, 'inputShapes'> & { hostPrograms?: readonly HostProgram[] },
): Promise<WebGPUMeshResult> {
  let session: WebGPUMeshSession;
  try {
    const inputShapes = new Map([...feeds].map(([k, t]) => [k, t.shape.slice()]));
    session = await WebGPUMeshSession.create(programs, mesh, plan, { shareDevice: true, ...opts, inputShapes });
  } catch (e) {
    if (!(e instanceof DataDependentError)) throw e;
    const r = await runSpmdWebGPU(programs, mesh, feeds, { registry: opts.registry, plan, table: opts.table });
    return { outputs: r.outputs, perDevice: r.perDevice, stats: r.stats.map((s) => ({ device: s.device, dispatches: s.dispatches, collectiveDispatches: 0, stagedBytes: s.stagedBytes })) };
  }
  try {
    return await session.run(feeds);
  } finally {
    session.destroy();
  }
}
