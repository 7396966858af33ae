/// <reference types="@webgpu/types" />
/**
 * Collectives of the multi-device WebGPU runtime (spmd.ts), staged through the host: each member
 * reads its input back (mapAsync), the rendezvous waits until every member of the group is at the
 * same collective (same node label and op), combines the host tensors with the CPU runtime's
 * semantics (src/targets/cpu/collectives.ts runCollective) and every member uploads its result.
 *
 * How the graph runner reaches a collective: a lowering row per collective op (collectiveRows)
 * turns the node into one launch of a pseudo-kernel (never rendered to WGSL); the staging backend
 * (StagingBackend) recognises it in dispatch and awaits the rendezvous instead of dispatching.
 *
 * Lockstep and failures: a device is "running" until it waits at a collective or ends. When no
 * device runs and some wait at collectives whose groups cannot complete, every waiter fails with
 * an error naming each waiting device, its collective and the member that does not come. A device
 * that fails makes every waiter fail too, so the run never hangs.
 */
import type { Attrs } from '../../ir/attrs.js';
import type { DType } from '../../ir/dtype.js';
import { UserError } from '../../ir/errors.js';
import { COLLECTIVE_DOMAIN, type Node } from '../../ir/graph.js';
import { GROUP_ATTR } from '../../ir/ops/collective.js';
import type { Tensor } from '../../ir/tensor.js';
import { toDeviceArray } from '../../codegen/device-data.js';
import type { Kernel, Launch } from '../../codegen/kernel.js';
import type { LowerRow } from '../../codegen/lower/index.js';
import type { ScalarType } from '../../codegen/expr.js';
import { PEER_ATTR } from '../../passes/sharding/lower.js';
import type { DeviceMesh } from '../../passes/sharding/mesh.js';
import { block, runCollective } from '../cpu/collectives.js';
import { ForwardingBackend, type GpuBuf, type WebGPUBackend } from './backend.js';

export const COLLECTIVE_OPS = ['AllReduce', 'AllGather', 'ReduceScatter', 'AllToAll', 'LocalShard', 'LocalPartial', 'Broadcast', 'Send', 'Recv'] as const;

/** What the pseudo-kernel of one collective launch stands for. */
export interface CollectiveCall {
  node: Node;
  input?: { dtype: DType; shape: number[] };
  output: { dtype: DType; shape: number[] };
}

const calls = new WeakMap<Kernel, CollectiveCall>();

const scalarOf = (d: DType): ScalarType => (d === 'float32' ? 'f32' : d === 'bool' ? 'u32' : 'i32');

/** Lowering rows: each collective node becomes one pseudo-launch that StagingBackend intercepts. */
export const collectiveRows: LowerRow[] = COLLECTIVE_OPS.map((op) => ({
  op,
  domain: COLLECTIVE_DOMAIN,
  family: 'collective' as LowerRow['family'],
  lower(ctx) {
    const x = ctx.inputs[0];
    const out = ctx.outputs[0]!;
    const kernel: Kernel = {
      name: `${op} ${ctx.node.label}`,
      inputs: x ? [{ name: 'x0', type: scalarOf(x.dtype) }] : [],
      outputs: [{ name: 'y0', type: scalarOf(out.dtype) }],
      params: [],
      workgroupSize: 1,
      body: undefined as unknown as Kernel['body'],
    };
    calls.set(kernel, { node: ctx.node, input: x && { dtype: x.dtype, shape: x.shape.slice() }, output: { dtype: out.dtype, shape: out.shape.slice() } });
    return { kind: 'kernels', launches: [{ kernel, params: {} }] };
  },
}));

const q = (s: string): string => JSON.stringify(s);

export function describeCollective(n: Node): string {
  const axis = n.attrs.has('axis') ? ` over ${n.attrs.string('axis')}` : '';
  return `${n.op}${axis} ${q(n.label)}`;
}

/** The ranks of a collective's group as seen from `device`. */
export function groupOf(node: Node, device: number, mesh: DeviceMesh): number[] {
  const g = node.attrs.maybeInts(GROUP_ATTR);
  if (g) return g;
  if (node.attrs.has('axis')) return mesh.group(device, node.attrs.string('axis'));
  throw new UserError(`device ${device}: collective has neither ${GROUP_ATTR} nor axis`, { node: node.label });
}

/** LocalShard / LocalPartial need no communication: a member's output from its own input. */
export function localCollective(node: Node, attrs: Attrs, x: Tensor, index: number, size: number): Tensor | undefined {
  if (node.op === 'LocalShard') return block(x, attrs.int('dim'), size, index, attrs.int('unit', 1));
  if (node.op === 'LocalPartial') return runCollective('LocalPartial', attrs, new Array<Tensor>(size).fill(x))[index];
  return undefined;
}

type DeviceState = { kind: 'running' } | { kind: 'waiting'; node: Node } | { kind: 'done' } | { kind: 'failed' };

interface Waiter {
  device: number;
  node: Node;
  input?: Tensor;
  resolve(t: Tensor): void;
  reject(e: Error): void;
}

/** Meeting point of the devices: collectives, Send/Recv mailboxes, lockstep failure detection. */
export class Rendezvous {
  private readonly states: DeviceState[];
  private readonly waiters = new Map<number, Waiter>();
  private readonly mailbox = new Map<string, Tensor>();
  private failure: Error | undefined;

  constructor(readonly mesh: DeviceMesh) {
    this.states = Array.from({ length: mesh.deviceCount }, () => ({ kind: 'running' }));
  }

  /** Device `d` arrives at collective `node` with its (host) input; resolves to its output. */
  arrive(d: number, node: Node, input: Tensor | undefined): Promise<Tensor> {
    if (this.failure) return Promise.reject(this.failure);
    if (node.op === 'Send') {
      const peer = node.attrs.maybeInt(PEER_ATTR);
      if (peer === undefined) return Promise.reject(new UserError(`device ${d}: Send has no peer (lower it with a mesh that has its stage axis)`, { node: node.label }));
      this.mailbox.set(this.mailKey(d, peer, node), input!);
      this.check();
      return Promise.resolve(input!);
    }
    return new Promise<Tensor>((resolve, reject) => {
      this.waiters.set(d, { device: d, node, input, resolve, reject });
      this.states[d] = { kind: 'waiting', node };
      this.check();
    });
  }

  /** Device `d` ended its program (or failed with `error`). */
  finish(d: number, error?: Error): void {
    this.states[d] = error ? { kind: 'failed' } : { kind: 'done' };
    if (error && !this.failure) {
      this.failure = new UserError(`device ${d} failed, so the devices waiting for it stop: ${error.message}`);
      for (const w of this.waiters.values()) w.reject(this.failure);
      this.waiters.clear();
      return;
    }
    this.check();
  }

  private mailKey(from: number, to: number, node: Node): string {
    return `${from}>${to}#${node.attrs.int('tag', 0)}`;
  }

  /** Completes every collective whose group is all there; detects a stuck run. */
  private check(): void {
    let progress = true;
    while (progress) {
      progress = false;
      for (const w of [...this.waiters.values()]) {
        if (!this.waiters.has(w.device)) continue;
        if (this.tryComplete(w)) progress = true;
        if (this.failure) return;
      }
    }
    if (this.waiters.size === 0 || this.states.some((s) => s.kind === 'running')) return;
    const err = new UserError(`the devices are stuck: ${this.stuckReport()}`);
    this.failure = err;
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
  }

  private settle(w: Waiter, t: Tensor): void {
    this.waiters.delete(w.device);
    this.states[w.device] = { kind: 'running' };
    w.resolve(t);
  }

  private tryComplete(w: Waiter): boolean {
    const node = w.node;
    if (node.op === 'Recv') {
      const peer = node.attrs.maybeInt(PEER_ATTR);
      if (peer === undefined) {
        this.fail(w, new UserError(`device ${w.device}: Recv has no peer (lower it with a mesh that has its stage axis)`, { node: node.label }));
        return true;
      }
      const key = this.mailKey(peer, w.device, node);
      const t = this.mailbox.get(key);
      if (!t) return false;
      this.mailbox.delete(key);
      this.settle(w, t);
      return true;
    }
    let group: number[];
    try {
      group = groupOf(node, w.device, this.mesh);
    } catch (e) {
      this.fail(w, e as Error);
      return true;
    }
    const members = group.map((r) => this.waiters.get(r));
    if (members.some((m) => !m || m.node.label !== node.label || m.node.op !== node.op)) return false;
    const ms = members as Waiter[];
    let outputs: Tensor[];
    try {
      outputs = runCollective(node.op, node.attrs, ms.map((m) => m.input!));
    } catch (e) {
      const err = e instanceof UserError ? new UserError(`collective ${describeCollective(node)} over devices ${group.join(',')} failed: ${e.reason}`, { node: node.label }) : (e as Error);
      this.failAll(err);
      return true;
    }
    ms.forEach((m, k) => this.settle(m, outputs[k]!));
    return true;
  }

  private fail(w: Waiter, e: Error): void {
    this.failAll(e);
  }

  private failAll(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiters.values()) w.reject(this.failure);
    this.waiters.clear();
  }

  private stuckReport(): string {
    const parts: string[] = [];
    for (const w of [...this.waiters.values()].sort((a, b) => a.device - b.device)) {
      const n = w.node;
      if (n.op === 'Recv') {
        parts.push(`device ${w.device} waits at Recv ${q(n.label)} for a message that is never sent`);
        continue;
      }
      const missing: string[] = [];
      for (const r of groupOf(n, w.device, this.mesh)) {
        const s = this.states[r];
        if (!s) missing.push(`device ${r} does not exist`);
        else if (s.kind === 'done') missing.push(`device ${r} never reaches it (its program ended)`);
        else if (s.kind === 'failed') missing.push(`device ${r} failed`);
        else if (s.kind === 'waiting' && (s.node.label !== n.label || s.node.op !== n.op)) missing.push(`device ${r} waits at collective ${describeCollective(s.node)} instead`);
      }
      parts.push(`device ${w.device} waits at collective ${describeCollective(n)}: ${missing.join(', ') || 'its group is incomplete'}`);
    }
    return parts.join('; ');
  }
}

/**
 * One device's backend: the WebGPU backend, except that collective pseudo-launches are staged
 * through the host and the rendezvous.
 */
export class StagingBackend extends ForwardingBackend {
  /** Bytes read back and written for collectives (a report figure). */
  stagedBytes = 0;

  constructor(
    inner: WebGPUBackend,
    readonly device: number,
    readonly mesh: DeviceMesh,
    readonly rendezvous: Rendezvous,
  ) {
    super(inner);
  }

  override async dispatch(launch: Launch, bindings: Record<string, GpuBuf>): Promise<void> {
    const call = calls.get(launch.kernel);
    if (!call) return this.inner.dispatch(launch, bindings);
    const { node } = call;
    const x = call.input && bindings['x0'] ? await this.inner.download(bindings['x0'], call.input.dtype, call.input.shape) : undefined;
    let out: Tensor | undefined;
    if ((node.op === 'LocalShard' || node.op === 'LocalPartial') && x) {
      const group = groupOf(node, this.device, this.mesh);
      const index = group.indexOf(this.device);
      if (index < 0) throw new UserError(`device ${this.device} is not in the group ${group.join(',')} of its collective ${describeCollective(node)}`, { node: node.label });
      out = localCollective(node, node.attrs, x, index, group.length);
    } else {
      out = await this.rendezvous.arrive(this.device, node, node.op === 'Recv' ? undefined : x);
    }
    const want = call.output.shape;
    if (!out || want.length !== out.rank || want.some((n, i) => n !== out!.shape[i]))
      throw new UserError(
        `collective ${describeCollective(node)} gives device ${this.device} shape [${out?.shape.join(',')}] but its program expects [${want.join(',')}]`,
        { node: node.label },
      );
    const data = toDeviceArray(out);
    const y = bindings['y0']!;
    this.inner.device.queue.writeBuffer(y.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    this.stagedBytes += data.byteLength + (x ? x.size * 4 : 0);
  }
}

/** The collective a pseudo-kernel stands for (undefined for a real kernel). */
export function collectiveCall(k: Kernel): CollectiveCall | undefined {
  return calls.get(k);
}
