/// <reference types="@webgpu/types" />
/**
 * The compiled WebGPU runtime of one device: a HostProgram (codegen/host) made resident once —
 * one GPUBuffer per memory-plan slot, each distinct kernel compiled once, every dispatch's bind
 * group and parameters prepared (the parameters of all dispatches live in one uniform buffer at
 * aligned offsets), constants uploaded once — so a run only writes the inputs, encodes the
 * prepared dispatches into one command encoder (one compute pass between collectives), submits,
 * and reads the outputs back through one staging buffer mapped once.
 *
 * Collectives a device does alone (LocalShard, LocalPartial, groups of one) are box-copy kernels
 * in the same pass (codegen/host/collective-kernels.ts); the others go to the caller's
 * `collective` callback (the mesh session stages them through the host, or runs them on a shared
 * device). `ProgramResources` is the resident part, shared with the mesh session.
 *
 * `profile: true` times every step: with the device feature 'timestamp-query', GPU timestamps
 * around each step's own pass; otherwise host time from submit to queue.onSubmittedWorkDone.
 *
 * Faults are UserErrors naming the device: a kernel over the device's limits (storage buffers per
 * stage, workgroup storage, invocations per workgroup) is refused before its pipeline is created;
 * a lost device (`device.lost`: destroyed, driver reset) fails the run in progress and every later
 * one with the reason, instead of hanging on a buffer that will never map (guardRun).
 */
import type { DType } from '../../ir/dtype.js';
import { UserError } from '../../ir/errors.js';
import type { Tensor } from '../../ir/tensor.js';
import { fromDeviceArray, toDeviceArray } from '../../codegen/device-data.js';
import { type CollectiveLaunch, collectiveLaunches } from '../../codegen/host/collective-kernels.js';
import { describeStep, isLocalCollective } from '../../codegen/host/lockstep.js';
import type { CollectiveStep, HostBuffer, HostProgram } from '../../codegen/host/program.js';
import { type Kernel, type Launch, dispatchSize } from '../../codegen/kernel.js';
import { renderKernel } from '../../codegen/wgsl/kernel.js';

// GPUBufferUsage / GPUMapMode / GPUShaderStage bits (fixed by the WebGPU spec).
const MAP_READ = 0x0001;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const UNIFORM = 0x0040;
const STORAGE = 0x0080;
const QUERY_RESOLVE = 0x0200;
const MAP_MODE_READ = 0x0001;

export interface StepTime {
  node: string;
  op: string;
  kind: 'dispatch' | 'collective';
  ms: number;
}

/** Compiled pipelines per device, keyed by WGSL (so sessions on one device share them). */
export class PipelineCache {
  private readonly byDevice = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();
  compiled = 0;

  get(device: GPUDevice, k: Kernel, where: string): Promise<GPUComputePipeline> {
    let m = this.byDevice.get(device);
    if (!m) this.byDevice.set(device, (m = new Map()));
    const code = renderKernel(k);
    let p = m.get(code);
    if (!p) {
      checkKernelLimits(device, k, code, where);
      p = compile(device, k, code, where);
      m.set(code, p);
      this.compiled++;
    }
    return p;
  }
}

/** Bytes of a WGSL type of the renderer: scalars, vectors, fixed-size arrays of them. */
function wgslTypeBytes(type: string): number {
  const t = type.replace(/\s+/g, '');
  const scalar: Record<string, number> = { f32: 4, i32: 4, u32: 4, f16: 2, bool: 4, 'atomic<i32>': 4, 'atomic<u32>': 4 };
  if (t in scalar) return scalar[t]!;
  const vec = /^vec([234])<(\w+)>$/.exec(t);
  if (vec) return Number(vec[1]) * wgslTypeBytes(vec[2]!);
  const arr = /^array<(.+),(\d+)u?>$/.exec(t);
  if (arr) return Number(arr[2]) * wgslTypeBytes(arr[1]!);
  throw new Error(`workgroup variable of type ${type}: unknown size`);
}

/** Workgroup memory a WGSL module declares (every `var<workgroup>`), in bytes. */
export function workgroupStorageBytes(code: string): number {
  let bytes = 0;
  for (const m of code.matchAll(/var<workgroup>\s+\w+\s*:\s*([^;]+);/g)) bytes += wgslTypeBytes(m[1]!);
  return bytes;
}

/**
 * Refuses a kernel the device cannot run, before its pipeline is created (pipeline creation would
 * fail with a validation message naming neither the model's node nor the limit).
 */
function checkKernelLimits(device: GPUDevice, k: Kernel, code: string, where: string): void {
  const lim = device.limits;
  const [on, node] = splitWhere(where);
  const wg = workgroupStorageBytes(code);
  if (wg > lim.maxComputeWorkgroupStorageSize)
    throw new UserError(`kernel ${k.name} needs ${wg} bytes of workgroup memory, more than the device limit maxComputeWorkgroupStorageSize (${lim.maxComputeWorkgroupStorageSize}) on ${on}`, { node });
  if (k.workgroupSize > lim.maxComputeInvocationsPerWorkgroup)
    throw new UserError(`kernel ${k.name} runs ${k.workgroupSize} invocations per workgroup, more than the device limit maxComputeInvocationsPerWorkgroup (${lim.maxComputeInvocationsPerWorkgroup}) on ${on}`, { node });
  const buffers = k.inputs.length + k.outputs.length;
  if (buffers > lim.maxStorageBuffersPerShaderStage)
    throw new UserError(`kernel ${k.name} binds ${buffers} storage buffers, more than the device limit maxStorageBuffersPerShaderStage (${lim.maxStorageBuffersPerShaderStage}) on ${on}`, { node });
}

/** `where` of the pipeline cache: "<device name>: node \"<label>\"" → [device name, node label]. */
function splitWhere(where: string): [string, string | undefined] {
  const m = /^(.*): node (".*")$/.exec(where);
  if (!m) return [where, undefined];
  try {
    return [m[1]!, JSON.parse(m[2]!) as string];
  } catch {
    return [m[1]!, undefined];
  }
}

/** Device loss, watched once per GPUDevice (device.lost resolves at most once). */
class DeviceWatch {
  info: { reason: string; message: string } | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(device: GPUDevice) {
    void device.lost.then((i) => {
      this.info = { reason: String(i.reason), message: i.message };
      for (const w of [...this.waiters]) w();
    });
  }

  error(name: string): UserError {
    const i = this.info!;
    const why = i.reason === 'destroyed' ? 'it was destroyed' : `reason "${i.reason}"`;
    return new UserError(`the WebGPU device of ${name} was lost (${why}${i.message ? `: ${i.message}` : ''}); create a new session on a new device`);
  }

  /** Runs `f`; rejects with the loss (a UserError naming `name`) if the device is or gets lost. */
  async guard<T>(name: string, f: () => Promise<T>): Promise<T> {
    if (this.info) throw this.error(name);
    let onLost!: () => void;
    const lost = new Promise<never>((_, reject) => (onLost = () => reject(this.error(name))));
    this.waiters.add(onLost);
    try {
      // A call failing because the device went away reports the loss, not the call's own error.
      return await Promise.race([
        f().catch((e: unknown) => {
          throw this.info ? this.error(name) : e;
        }),
        lost,
      ]);
    } finally {
      this.waiters.delete(onLost);
    }
  }
}

const watches = new WeakMap<GPUDevice, DeviceWatch>();

function watchOf(device: GPUDevice): DeviceWatch {
  let w = watches.get(device);
  if (!w) watches.set(device, (w = new DeviceWatch(device)));
  return w;
}

/** Starts watching `device` for loss (sessions call it at creation; idempotent). */
export function watchDevice(device: GPUDevice): void {
  watchOf(device);
}

/** The loss of `device` seen so far (undefined while it lives). */
export function deviceLoss(device: GPUDevice): { reason: string; message: string } | undefined {
  return watches.get(device)?.info;
}

/**
 * Runs `f` on the devices `on` (each with its name for messages): a device lost before or during
 * the run rejects it with a UserError naming that device and the reason, instead of a raw
 * DOMException or a wait that never ends.
 */
export function guardRun<T>(on: readonly { device: GPUDevice; name: string }[], f: () => Promise<T>): Promise<T> {
  return on.reduce<() => Promise<T>>((inner, d) => () => watchOf(d.device).guard(d.name, inner), f)();
}

async function compile(device: GPUDevice, k: Kernel, code: string, where: string): Promise<GPUComputePipeline> {
  const module = device.createShaderModule({ code, label: k.name });
  try {
    return await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: k.name });
  } catch (e) {
    const info = await module.getCompilationInfo();
    const msgs = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
    throw new Error(`WGSL kernel ${k.name} (${where}) does not compile on ${where.split(':')[0]}: ${msgs.join('; ') || (e as Error).message}\n${code}`);
  }
}

/** A dispatch ready to encode. */
export interface PreparedDispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
  label: string;
}

/** Launches waiting for the uniform buffer (bind groups need it): phase one of preparation. */
export class DispatchBuilder {
  private readonly pending: {
    launch: Launch;
    buffers: GPUBuffer[];
    pipeline: Promise<GPUComputePipeline>;
    words?: Int32Array;
    label: string;
    out: PreparedDispatch[];
    index: number;
  }[] = [];

  constructor(
    readonly device: GPUDevice,
    readonly cache: PipelineCache,
    readonly name: string,
  ) {}

  /** Adds a launch binding `buffers` (kernel inputs then outputs); the result fills `out` at finish(). */
  add(launch: Launch, buffers: GPUBuffer[], label: string, out: PreparedDispatch[]): void {
    const k = launch.kernel;
    const limit = this.device.limits.maxStorageBuffersPerShaderStage;
    if (buffers.length > limit)
      throw new UserError(`kernel ${k.name} binds ${buffers.length} storage buffers, more than the device limit maxStorageBuffersPerShaderStage (${limit}) on ${this.name}`, { node: label });
    const [x, y, z] = dispatchSize(launch, this.device.limits.maxComputeWorkgroupsPerDimension);
    if (x === 0 || y === 0 || z === 0) return;
    if (y > this.device.limits.maxComputeWorkgroupsPerDimension)
      throw new UserError(`kernel ${k.name} needs ${x}×${y} workgroups, more than the device limit maxComputeWorkgroupsPerDimension (${this.device.limits.maxComputeWorkgroupsPerDimension}) on ${this.name}`, { node: label });
    let words: Int32Array | undefined;
    if (k.params.length) {
      words = new Int32Array(Math.ceil(k.params.length / 4) * 4);
      k.params.forEach((p, i) => {
        const v = launch.params[p];
        if (v === undefined) throw new Error(`kernel ${k.name}: param ${p} has no value`);
        words![i] = v;
      });
    }
    const pipeline = this.cache.get(this.device, k, `${this.name}: node ${JSON.stringify(label)}`);
    pipeline.catch(() => undefined); // reported by finish()
    // A placeholder in `out`, filled by finish() (so `out` keeps the launch order).
    this.pending.push({ launch, buffers, pipeline, words, label, out, index: out.length });
    out.push(undefined as unknown as PreparedDispatch);
  }

  /** Creates the uniform buffer and the bind groups; returns the uniform buffer (to destroy). */
  async finish(): Promise<GPUBuffer | undefined> {
    const align = this.device.limits.minUniformBufferOffsetAlignment;
    let bytes = 0;
    const offsets = this.pending.map((p) => {
      if (!p.words) return -1;
      const at = bytes;
      bytes += Math.ceil(p.words.byteLength / align) * align;
      return at;
    });
    const uniform = bytes ? this.device.createBuffer({ size: bytes, usage: UNIFORM | COPY_DST, label: `${this.name} params` }) : undefined;
    if (uniform) {
      const all = new Int32Array(bytes / 4);
      this.pending.forEach((p, i) => p.words && all.set(p.words, offsets[i]! / 4));
      this.device.queue.writeBuffer(uniform, 0, all);
    }
    const pipelines = await Promise.all(this.pending.map((p) => p.pipeline));
    this.pending.forEach((p, i) => {
      const pipeline = pipelines[i]!;
      const entries: GPUBindGroupEntry[] = p.buffers.map((buffer, binding) => ({ binding, resource: { buffer } }));
      if (p.words) entries.push({ binding: entries.length, resource: { buffer: uniform!, offset: offsets[i]!, size: p.words.byteLength } });
      const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: p.launch.kernel.name });
      p.out[p.index] = { pipeline, bindGroup, workgroups: dispatchSize(p.launch, this.device.limits.maxComputeWorkgroupsPerDimension), label: p.label };
    });
    this.pending.length = 0;
    return uniform;
  }
}

/** Encodes dispatches into one compute pass per stretch; copies end the pass. */
export class Encoder {
  private enc: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  dispatches = 0;
  submits = 0;

  constructor(readonly device: GPUDevice) {}

  private encoder(): GPUCommandEncoder {
    return (this.enc ??= this.device.createCommandEncoder());
  }

  /** Ends the current pass and opens one with `desc` (e.g. timestamp writes) for what follows. */
  openPass(desc?: GPUComputePassDescriptor): void {
    this.endPass();
    this.pass = this.encoder().beginComputePass(desc);
  }

  closePass(): void {
    this.endPass();
  }

  dispatch(d: PreparedDispatch): void {
    this.pass ??= this.encoder().beginComputePass();
    this.pass.setPipeline(d.pipeline);
    this.pass.setBindGroup(0, d.bindGroup);
    this.pass.dispatchWorkgroups(...d.workgroups);
    this.dispatches++;
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.endPass();
    this.encoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }

  /** Submits what was encoded (nothing when empty). */
  submit(): void {
    this.endPass();
    if (!this.enc) return;
    this.device.queue.submit([this.enc.finish()]);
    this.enc = undefined;
    this.submits++;
  }
}

const bytesOf = (b: HostBuffer): number => Math.max(1, b.length) * 4;

/**
 * A host program resident on a device: slot buffers, constants, prepared dispatches per step
 * (DispatchSteps and local collectives), the readback buffer of the outputs.
 */
export class ProgramResources {
  readonly slots: GPUBuffer[] = [];
  /** Per step: its prepared dispatches (undefined for a collective over other devices). */
  readonly prepared: (PreparedDispatch[] | undefined)[] = [];
  private readback: GPUBuffer | undefined;
  private readonly readOffsets: number[] = [];
  private readonly owned: GPUBuffer[] = [];

  private constructor(
    readonly device: GPUDevice,
    readonly program: HostProgram,
    readonly name: string,
  ) {}

  /**
   * Phase one: buffers, constants and launches queued on `builder` (the caller finishes the
   * builder, possibly after adding collective launches of its own).
   */
  static create(device: GPUDevice, program: HostProgram, name: string, builder: DispatchBuilder): ProgramResources {
    const r = new ProgramResources(device, program, name);
    const lim = device.limits;
    const users = program.slots.map(() => [] as string[]);
    for (const b of program.buffers) users[b.slot]?.push(b.value || '(lookup table)');
    // Limits first, so nothing is allocated for a program that cannot run here.
    const max = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
    program.slots.forEach((s, i) => {
      if (s.bytes > max) {
        const which = lim.maxStorageBufferBindingSize <= lim.maxBufferSize ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
        throw new UserError(
          `buffer of ${s.bytes} bytes (slot ${i}: ${[...new Set(users[i])].slice(0, 4).join(', ')}) exceeds the device limit ${which} (${max}) on ${name}`,
          { tensor: users[i]![0] },
        );
      }
    });
    for (const [i, s] of program.slots.entries()) {
      const buf = device.createBuffer({ size: Math.max(4, s.bytes), usage: STORAGE | COPY_SRC | COPY_DST, label: `${name} slot ${i}` });
      r.slots.push(buf);
      r.owned.push(buf);
    }
    try {
      r.prepare(builder);
    } catch (e) {
      r.destroy();
      throw e;
    }
    return r;
  }

  /** Constants, prepared steps, the readback buffer. */
  private prepare(builder: DispatchBuilder): void {
    const { device, program, name } = this;
    const r = this;
    for (const b of program.buffers)
      if (b.role === 'constant') {
        const data = toDeviceArray(b.constant!, b.value);
        device.queue.writeBuffer(r.slots[b.slot]!, 0, data.buffer, data.byteOffset, data.byteLength);
      }
    program.steps.forEach((s, i) => {
      const out: PreparedDispatch[] = [];
      if (s.kind === 'dispatch') {
        const k = program.kernels[s.kernel]!;
        const bufs = [...k.inputs, ...k.outputs].map((b) => {
          const id = s.bindings[b.name];
          if (id === undefined) throw new Error(`step ${i} (${s.node}): kernel buffer ${b.name} is not bound`);
          return r.buffer(id);
        });
        builder.add({ kernel: k, params: s.params }, bufs, s.node, out);
        r.prepared.push(out);
      } else if (isLocalCollective(s)) {
        const launches = collectiveLaunches([s], device.limits.maxStorageBuffersPerShaderStage, s.group.indexOf(program.device));
        if (!launches) throw new Error(`local collective ${describeStep(s)} has no kernels`);
        r.addCollective(builder, launches, [s], [r], out);
        r.prepared.push(out);
      } else r.prepared.push(undefined);
    });
    // Outputs: one readback buffer, each output at its offset.
    let bytes = 0;
    for (const o of program.outputs) {
      r.readOffsets.push(bytes);
      if (o.buffer !== undefined) bytes += bytesOf(program.buffers[o.buffer]!);
    }
    if (bytes) {
      r.readback = device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST, label: `${name} outputs` });
      r.owned.push(r.readback);
    }
  }

  /** The GPUBuffer of a HostBuffer (its slot's). */
  buffer(id: number): GPUBuffer {
    return this.slots[this.program.buffers[id]!.slot]!;
  }

  /** Queues collective launches whose member buffers belong to `members` (resources, same device). */
  addCollective(builder: DispatchBuilder, launches: CollectiveLaunch[], steps: readonly CollectiveStep[], members: readonly ProgramResources[], out: PreparedDispatch[]): void {
    for (const l of launches) {
      const k = l.launch.kernel;
      const bufs = [...k.inputs, ...k.outputs].map((b) => {
        const m = l.bind[b.name]!;
        const s = steps[m.member]!;
        return members[m.member]!.buffer(m.which === 'input' ? s.input! : s.output);
      });
      builder.add(l.launch, bufs, steps[0]!.node, out);
    }
  }

  writeInputs(feeds: ReadonlyMap<string, Tensor>): void {
    for (const i of this.program.inputs) {
      const t = feeds.get(i.name);
      if (!t) throw new UserError(`missing graph input`, { tensor: i.name });
      if (t.dtype !== i.dtype || t.rank !== i.shape.length || t.shape.some((n, k) => n !== i.shape[k]))
        throw new UserError(`input is ${t.dtype}[${t.shape.join(',')}] but the program was compiled for ${i.dtype}[${i.shape.join(',')}] on ${this.name}`, { tensor: i.name });
      this.write(i.buffer!, t);
    }
  }

  write(id: number, t: Tensor): void {
    const data = toDeviceArray(t, this.program.buffers[id]!.value);
    if (data.byteLength) this.device.queue.writeBuffer(this.buffer(id), 0, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Encodes the prepared dispatches of steps [from, to) (every one must be local). */
  encodeSteps(enc: Encoder, from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const p = this.prepared[i];
      if (!p) throw new Error(`step ${i} of ${this.name} is a collective over other devices`);
      for (const d of p) enc.dispatch(d);
    }
  }

  /** Encodes the copies of the outputs into the readback buffer. */
  encodeReadback(enc: Encoder): void {
    this.program.outputs.forEach((o, k) => {
      if (o.buffer !== undefined) enc.copy(this.buffer(o.buffer), 0, this.readback!, this.readOffsets[k]!, bytesOf(this.program.buffers[o.buffer]!));
    });
  }

  /** Maps the readback buffer (after the submit with encodeReadback) and returns the outputs. */
  async readOutputs(): Promise<Map<string, Tensor>> {
    let raw: ArrayBuffer | undefined;
    if (this.readback) {
      await this.readback.mapAsync(MAP_MODE_READ);
      raw = this.readback.getMappedRange().slice(0);
      this.readback.unmap();
    }
    const out = new Map<string, Tensor>();
    this.program.outputs.forEach((o, k) => {
      if (o.buffer === undefined) return out.set(o.name, o.host!);
      const b = this.program.buffers[o.buffer]!;
      out.set(o.name, fromWords(raw!, this.readOffsets[k]!, b, o.dtype, o.shape));
    });
    return out;
  }

  /** Reads one buffer back (host-staged collectives); submits `enc` first. */
  async read(enc: Encoder, id: number, dtype: DType, shape: readonly number[]): Promise<Tensor> {
    const b = this.program.buffers[id]!;
    const staging = this.device.createBuffer({ size: bytesOf(b), usage: MAP_READ | COPY_DST });
    enc.copy(this.buffer(id), 0, staging, 0, bytesOf(b));
    enc.submit();
    await staging.mapAsync(MAP_MODE_READ);
    const raw = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    return fromWords(raw, 0, b, dtype, shape);
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned.length = 0;
  }
}

function fromWords(raw: ArrayBuffer, offset: number, b: HostBuffer, dtype: DType, shape: readonly number[]): Tensor {
  const n = Math.max(1, b.length);
  const words = b.type === 'f32' ? new Float32Array(raw, offset, n) : b.type === 'i32' ? new Int32Array(raw, offset, n) : new Uint32Array(raw, offset, n);
  return fromDeviceArray(words, dtype, shape);
}

export interface WebGPUSessionOptions {
  /** For messages and profiles (default "webgpu"). */
  name?: string;
  profile?: boolean;
  /** A collective over other devices: the host tensor of this device's output. */
  collective?: (step: CollectiveStep, input: Tensor | undefined) => Promise<Tensor>;
  /** Shares compiled pipelines with other sessions on the device. */
  cache?: PipelineCache;
}

export interface WebGPUSessionStats {
  runs: number;
  /** Of the last run. */
  dispatches: number;
  submits: number;
  pipelines: number;
}

/** One device running one host program. */
export class WebGPUSession {
  readonly stats: WebGPUSessionStats = { runs: 0, dispatches: 0, submits: 0, pipelines: 0 };
  /** Per-step times of the last run (profile: true). */
  lastProfile: StepTime[] | undefined;
  private uniform: GPUBuffer | undefined;

  private constructor(
    readonly device: GPUDevice,
    readonly program: HostProgram,
    readonly resources: ProgramResources,
    readonly opts: WebGPUSessionOptions,
  ) {}

  static async create(device: GPUDevice, program: HostProgram, opts: WebGPUSessionOptions = {}): Promise<WebGPUSession> {
    const name = opts.name ?? 'webgpu';
    return guardRun([{ device, name }], async () => {
      const cache = opts.cache ?? new PipelineCache();
      const builder = new DispatchBuilder(device, cache, name);
      const res = ProgramResources.create(device, program, name, builder);
      const s = new WebGPUSession(device, program, res, opts);
      try {
        s.uniform = await builder.finish();
      } catch (e) {
        res.destroy();
        throw e;
      }
      s.stats.pipelines = cache.compiled;
      return s;
    });
  }

  /** Runs the program on device-local feeds; returns its outputs by name (program order). */
  run(feeds: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>> {
    return guardRun([{ device: this.device, name: this.resources.name }], () => this.runOnce(feeds));
  }

  private async runOnce(feeds: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>> {
    const res = this.resources;
    res.writeInputs(feeds);
    const enc = new Encoder(this.device);
    const profile: StepTime[] | undefined = this.opts.profile ? [] : undefined;
    const timer = profile ? new StepTimer(this.device, enc, this.program.steps.length) : undefined;
    const steps = this.program.steps;
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i]!;
      const local = res.prepared[i];
      if (local) {
        if (timer) await timer.step(i, () => res.encodeSteps(enc, i, i + 1));
        else res.encodeSteps(enc, i, i + 1);
        continue;
      }
      const c = s as CollectiveStep;
      const t0 = performance.now();
      if (!this.opts.collective)
        throw new UserError(`collective ${describeStep(c)} needs the other devices of group ${c.group.join(',')} (run it in a mesh session) on ${res.name}`, { node: c.node });
      const x = c.input !== undefined ? await res.read(enc, c.input, c.dtype, c.inputShape!) : (enc.submit(), undefined);
      const y = await this.opts.collective(c, x);
      if (c.output !== c.input) res.write(c.output, y);
      timer?.host(i, performance.now() - t0);
    }
    res.encodeReadback(enc);
    enc.submit();
    const out = await res.readOutputs();
    if (timer && profile) {
      const ms = await timer.finish();
      steps.forEach((s, i) => profile.push({ node: s.node, op: s.op, kind: s.kind, ms: ms[i]! }));
    }
    this.lastProfile = profile;
    this.stats.runs++;
    this.stats.dispatches = enc.dispatches;
    this.stats.submits = enc.submits;
    return out;
  }

  destroy(): void {
    this.resources.destroy();
    this.uniform?.destroy();
    this.uniform = undefined;
  }
}

/**
 * Per-step times: GPU timestamps around each step's own pass when the device has
 * 'timestamp-query', else host time from submit to onSubmittedWorkDone (each step submitted alone).
 */
export class StepTimer {
  private readonly ms: number[];
  private readonly query: { set: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer } | undefined;
  private readonly used: number[] = [];

  constructor(
    readonly device: GPUDevice,
    readonly enc: Encoder,
    steps: number,
  ) {
    this.ms = new Array<number>(steps).fill(0);
    if (device.features.has('timestamp-query') && steps > 0) {
      const count = 2 * steps;
      this.query = {
        set: device.createQuerySet({ type: 'timestamp', count }),
        resolve: device.createBuffer({ size: count * 8, usage: QUERY_RESOLVE | COPY_SRC }),
        read: device.createBuffer({ size: count * 8, usage: MAP_READ | COPY_DST }),
      };
    }
  }

  /** Times step i, whose dispatches `encode` puts on the encoder. */
  async step(i: number, encode: () => void): Promise<void> {
    if (this.query) {
      // The step's own pass, with timestamps at its start and end.
      this.enc.openPass({ timestampWrites: { querySet: this.query.set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
      encode();
      this.enc.closePass();
      this.used.push(i);
      return;
    }
    this.enc.submit();
    await this.device.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    encode();
    this.enc.submit();
    await this.device.queue.onSubmittedWorkDone();
    this.ms[i] = performance.now() - t0;
  }

  host(i: number, ms: number): void {
    this.ms[i] = ms;
  }

  async finish(): Promise<number[]> {
    if (this.query && this.used.length) {
      const q = this.query;
      const enc = this.device.createCommandEncoder();
      enc.resolveQuerySet(q.set, 0, this.ms.length * 2, q.resolve, 0);
      enc.copyBufferToBuffer(q.resolve, 0, q.read, 0, this.ms.length * 16);
      this.device.queue.submit([enc.finish()]);
      await q.read.mapAsync(MAP_MODE_READ);
      const t = new BigInt64Array(q.read.getMappedRange().slice(0));
      q.read.unmap();
      for (const i of this.used) this.ms[i] = Number(t[2 * i + 1]! - t[2 * i]!) / 1e6;
    }
    if (this.query) {
      this.query.set.destroy();
      this.query.resolve.destroy();
      this.query.read.destroy();
    }
    return this.ms;
  }
}
