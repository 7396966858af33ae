/**
 * The host program of one device: everything about a run decided once, ahead of time — every
 * node lowered with its concrete shapes to kernel launches (parameters fixed), shape math folded on
 * the host, views resolved to the buffer they alias, collectives with their groups, and a memory
 * plan (temporaries with disjoint lifetimes share one physical slot). A run then only writes the
 * inputs, encodes the dispatches in order (one command encoder between collectives), runs the
 * collectives and reads the outputs back.
 *
 * It is plain data (JSON-able apart from constant tensors, which a bundle stores in its
 * safetensors shard): `record.ts` builds it from a device graph, `runtime` executors run it
 * (src/targets/webgpu/session.ts on WebGPU, the kernel-IR CPU executor for checks), and
 * `generate.ts` renders it as a readable TypeScript module (device-<r>/host.ts and host.js)
 * that makes the same calls on a `HostRuntime`.
 */
import type { DType } from '../../ir/dtype.js';
import type { Tensor } from '../../ir/tensor.js';
import type { ScalarType } from '../expr.js';
import type { Kernel } from '../kernel.js';

export const HOST_PROGRAM_FORMAT = 'shardc-host-program/1';

/** A logical device buffer: one IR value living on the device (or a kernel's constant table). */
export interface HostBuffer {
  id: number;
  /** Element type on the device (int64 → i32, bool → u32). */
  type: ScalarType;
  /** Elements (≥ 1). */
  length: number;
  /**
   * input: written from a graph input each run; constant: uploaded once at load (weights, host-
   * folded values a kernel reads, lookup tables); temp: written by a kernel or collective.
   */
  role: 'input' | 'constant' | 'temp';
  /** The IR value it holds (for names in generated code and messages); '' for a lookup table. */
  value: string;
  /** role 'constant': its contents. */
  constant?: Tensor;
  /** Memory plan: the physical slot (see HostProgram.slots). */
  slot: number;
  /**
   * 2-byte storage of an f32 buffer holding a float16/bfloat16 value (set by targets that store
   * half types, e.g. the cuda bundle; kernels still compute in f32). Absent: `type` as is.
   */
  storage?: 'f16' | 'bf16';
}

/** A physical buffer of the memory plan; buffers whose lifetimes do not overlap share one. */
export interface HostSlot {
  /** Bytes (a multiple of 4, ≥ 4). */
  bytes: number;
}

export interface DispatchStep {
  kind: 'dispatch';
  /** The IR node it comes from (label), for comments, profiles and errors. */
  node: string;
  op: string;
  /** Index into HostProgram.kernels. */
  kernel: number;
  params: Record<string, number>;
  /** Kernel buffer name → HostBuffer id. */
  bindings: Record<string, number>;
}

export interface CollectiveStep {
  kind: 'collective';
  node: string;
  /** AllReduce, AllGather, ReduceScatter, AllToAll, Broadcast, LocalShard, LocalPartial, Send, Recv. */
  op: string;
  /** Mesh axis (absent for Send/Recv). */
  axis?: string;
  /** Devices taking part, ordered along the axis, this device included. */
  group: number[];
  /** The node's other attributes (dim, unit, reduce, peer, tag ...). */
  attributes: Record<string, number | string | number[] | string[]>;
  /** HostBuffer ids (input absent for Recv). */
  input?: number;
  output: number;
  dtype: DType;
  inputShape?: number[];
  outputShape: number[];
}

export type HostStep = DispatchStep | CollectiveStep;

export interface HostTensorRef {
  name: string;
  dtype: DType;
  shape: number[];
  /** The buffer holding it; absent when the value was computed on the host (then `host`). */
  buffer?: number;
  host?: Tensor;
}

export interface HostProgram {
  format: typeof HOST_PROGRAM_FORMAT;
  device: number;
  /** Distinct kernels (deduplicated by their rendered code). */
  kernels: Kernel[];
  buffers: HostBuffer[];
  slots: HostSlot[];
  /** Graph inputs fed each run (the device-local shapes). */
  inputs: HostTensorRef[];
  outputs: HostTensorRef[];
  steps: HostStep[];
}

/**
 * What a host program calls to run; the generated host.ts makes exactly these calls. Buffers are
 * HostBuffer ids; the runtime owns the physical buffers (the memory plan's slots).
 */
export interface HostRuntime {
  dispatch(step: DispatchStep): void;
  collective(step: CollectiveStep): Promise<void>;
}
