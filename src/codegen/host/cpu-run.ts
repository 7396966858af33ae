/**
 * Runs host programs on the CPU executor of the kernel IR (cpu.ts): the check of record.ts and
 * memory.ts without a GPU. Storage honours the memory plan: each slot is one ArrayBuffer and every
 * buffer is a typed view of its slot, so two buffers wrongly sharing a slot overwrite each other
 * and the numbers come out wrong.
 *
 * One program: `runHostProgramCpu` (collectives over other devices go to a callback). Several
 * devices: `runHostProgramsCpu` runs them in lockstep (lockstep.ts) with the CPU runtime's
 * collective semantics.
 */
import type { DType } from '../../ir/dtype.js';
import { UserError } from '../../ir/errors.js';
import type { Tensor } from '../../ir/tensor.js';
import { type DeviceArray, executeLaunch } from '../cpu.js';
import { fromDeviceArray, toDeviceArray } from '../device-data.js';
import { describeStep, groupCollectiveHost, isLocalCollective, localCollectiveHost, lockstepSchedule } from './lockstep.js';
import type { CollectiveStep, HostBuffer, HostProgram } from './program.js';

function view(slot: ArrayBuffer, b: HostBuffer): DeviceArray {
  const n = Math.max(1, b.length);
  return b.type === 'f32' ? new Float32Array(slot, 0, n) : b.type === 'i32' ? new Int32Array(slot, 0, n) : new Uint32Array(slot, 0, n);
}

/** One program's CPU state: slot memory, buffer views, constants written once. */
export class CpuHostMachine {
  private readonly views: DeviceArray[];
  /** Dispatches run so far. */
  dispatches = 0;

  constructor(readonly program: HostProgram) {
    const slots = program.slots.map((s) => new ArrayBuffer(s.bytes));
    this.views = program.buffers.map((b) => {
      const s = slots[b.slot];
      if (!s) throw new Error(`buffer ${b.id} has no slot ${b.slot}`);
      if (s.byteLength < Math.max(1, b.length) * 4) throw new Error(`slot ${b.slot} (${s.byteLength} bytes) is too small for buffer ${b.id} (${b.length} elements)`);
      return view(s, b);
    });
    for (const b of program.buffers) if (b.role === 'constant') this.write(b.id, b.constant!);
  }

  write(id: number, t: Tensor): void {
    const data = toDeviceArray(t, this.program.buffers[id]!.value);
    this.views[id]!.set(data.subarray(0, Math.min(data.length, this.views[id]!.length)));
  }

  read(id: number, dtype: DType, shape: readonly number[]): Tensor {
    return fromDeviceArray(this.views[id]!, dtype, shape);
  }

  /** Writes the graph inputs (device-local tensors, by name). */
  setInputs(feeds: ReadonlyMap<string, Tensor>): void {
    for (const i of this.program.inputs) {
      const t = feeds.get(i.name);
      if (!t) throw new UserError(`missing graph input`, { tensor: i.name });
      if (t.dtype !== i.dtype || t.rank !== i.shape.length || t.shape.some((n, k) => n !== i.shape[k]))
        throw new UserError(`input is ${t.dtype}[${t.shape.join(',')}] but the program was compiled for ${i.dtype}[${i.shape.join(',')}]`, { tensor: i.name });
      this.write(i.buffer!, t);
    }
  }

  /** Runs steps [from, to); only kernels and local collectives. */
  runSteps(from: number, to: number): void {
    const p = this.program;
    for (let i = from; i < to; i++) {
      const s = p.steps[i]!;
      if (s.kind === 'dispatch') {
        const bufs: Record<string, DeviceArray> = {};
        for (const [name, id] of Object.entries(s.bindings)) bufs[name] = this.views[id]!;
        executeLaunch({ kernel: p.kernels[s.kernel]!, params: s.params }, bufs);
        this.dispatches++;
      } else if (isLocalCollective(s)) {
        this.write(s.output, localCollectiveHost(s, this.collectiveInput(s), p.device));
      } else throw new Error(`step ${i} (${describeStep(s)}) needs other devices`);
    }
  }

  collectiveInput(s: CollectiveStep): Tensor {
    if (s.input === undefined) throw new Error(`collective ${describeStep(s)} has no input`);
    return this.read(s.input, s.dtype, s.inputShape!);
  }

  outputs(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const o of this.program.outputs) out.set(o.name, o.host ?? this.read(o.buffer!, o.dtype, o.shape));
    return out;
  }
}

/** Runs one program; a collective over other devices calls `collective` (device-local tensors). */
export function runHostProgramCpu(
  p: HostProgram,
  feeds: ReadonlyMap<string, Tensor>,
  opts: { collective?: (step: CollectiveStep, input: Tensor | undefined) => Tensor } = {},
): Map<string, Tensor> {
  const m = new CpuHostMachine(p);
  m.setInputs(feeds);
  p.steps.forEach((s, i) => {
    if (s.kind === 'dispatch' || isLocalCollective(s)) return m.runSteps(i, i + 1);
    if (!opts.collective) throw new UserError(`collective ${describeStep(s)} needs the other devices of group ${s.group.join(',')}`, { node: s.node });
    const out = opts.collective(s, s.input !== undefined ? m.collectiveInput(s) : undefined);
    if (s.output !== s.input) m.write(s.output, out);
  });
  return m.outputs();
}

/** Runs every device's program in lockstep; returns each device's local outputs. */
export function runHostProgramsCpu(programs: readonly HostProgram[], feeds: readonly ReadonlyMap<string, Tensor>[]): Map<string, Tensor>[] {
  const schedule = lockstepSchedule(programs);
  const ms = programs.map((p, d) => {
    const m = new CpuHostMachine(p);
    m.setInputs(feeds[d]!);
    return m;
  });
  const sent = new Map<string, Tensor>();
  for (const e of schedule) {
    if (e.kind === 'local') ms[e.device]!.runSteps(e.from, e.to);
    else if (e.kind === 'send') {
      const s = programs[e.device]!.steps[e.step] as CollectiveStep;
      sent.set(`${e.device}:${e.step}`, ms[e.device]!.collectiveInput(s));
    } else if (e.kind === 'recv') {
      const s = programs[e.device]!.steps[e.step] as CollectiveStep;
      ms[e.device]!.write(s.output, sent.get(`${e.from.device}:${e.from.step}`)!);
    } else {
      const steps = e.members.map((m) => programs[m.device]!.steps[m.step] as CollectiveStep);
      const outs = groupCollectiveHost(steps, e.members.map((m) => m.device), steps.map((s, k) => ms[e.members[k]!.device]!.collectiveInput(s)));
      e.members.forEach((m, k) => ms[m.device]!.write(steps[k]!.output, outs[k]!));
    }
  }
  return ms.map((m) => m.outputs());
}
