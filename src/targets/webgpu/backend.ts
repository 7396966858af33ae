/// <reference types="@webgpu/types" />
/**
 * The WebGPU kernel backend: storage buffers per value, kernels rendered to WGSL and compiled
 * once per distinct source (the rendered code is the cache key: it depends on exactly what the
 * kernel depends on — dtypes, ranks, template parameters — and never on sizes, which travel in a
 * uniform), one compute pass per launch, downloads through a MAP_READ staging buffer.
 *
 * Shader compile errors and validation errors become errors naming the kernel.
 */
import type { DType } from '../../ir/dtype.js';
import { UserError } from '../../ir/errors.js';
import type { Tensor } from '../../ir/tensor.js';
import type { ScalarType } from '../../codegen/expr.js';
import { fromDeviceArray, toDeviceArray } from '../../codegen/device-data.js';
import { type Kernel, type Launch, dispatchSize } from '../../codegen/kernel.js';
import type { KernelBackend } from '../../codegen/run-graph.js';
import { renderKernel } from '../../codegen/wgsl/kernel.js';

// GPUBufferUsage / GPUMapMode bits (fixed by the WebGPU spec; not read from globals so that Node
// needs no global installation).
const MAP_READ = 0x0001;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const UNIFORM = 0x0040;
const STORAGE = 0x0080;
const MAP_MODE_READ = 0x0001;

export interface GpuBuf {
  buffer: GPUBuffer;
  type: ScalarType;
  /** Elements. */
  length: number;
}

export interface WebGPUBackendStats {
  dispatches: number;
  pipelinesCompiled: number;
  bytesUploaded: number;
}

export class WebGPUBackend implements KernelBackend<GpuBuf> {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly pending: GPUBuffer[] = [];
  readonly stats: WebGPUBackendStats = { dispatches: 0, pipelinesCompiled: 0, bytesUploaded: 0 };

  constructor(readonly device: GPUDevice, readonly name = 'webgpu') {}

  upload(t: Tensor): GpuBuf {
    const data = toDeviceArray(t);
    const buffer = this.device.createBuffer({ size: Math.max(4, data.byteLength), usage: STORAGE | COPY_SRC | COPY_DST, mappedAtCreation: true });
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
    this.stats.bytesUploaded += data.byteLength;
    return { buffer, type: t.dtype === 'float32' ? 'f32' : t.dtype === 'bool' ? 'u32' : 'i32', length: data.length };
  }

  alloc(type: ScalarType, n: number): GpuBuf {
    const size = Math.max(4, n * 4);
    if (size > this.device.limits.maxStorageBufferBindingSize)
      throw new UserError(`buffer of ${size} bytes exceeds the device limit maxStorageBufferBindingSize (${this.device.limits.maxStorageBufferBindingSize}) on ${this.name}`);
    return { buffer: this.device.createBuffer({ size, usage: STORAGE | COPY_SRC | COPY_DST }), type, length: n };
  }

  /** The compiled pipeline of a kernel (compile errors name the kernel and show the source). */
  async pipeline(k: Kernel): Promise<GPUComputePipeline> {
    const code = renderKernel(k);
    const hit = this.pipelines.get(code);
    if (hit) return hit;
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: k.name });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    const pipeline = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: k.name });
    const err = await this.device.popErrorScope();
    if (errors.length || err)
      throw new Error(
        `WGSL kernel ${k.name} does not compile on ${this.name}: ${errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ') || err?.message}\n${code}`,
      );
    this.pipelines.set(code, pipeline);
    this.stats.pipelinesCompiled++;
    return pipeline;
  }

  async dispatch(launch: Launch, bindings: Record<string, GpuBuf>): Promise<void> {
    const k = launch.kernel;
    const [x, y, z] = dispatchSize(launch, this.device.limits.maxComputeWorkgroupsPerDimension);
    if (x === 0 || y === 0 || z === 0) return;
    const pipeline = await this.pipeline(k);
    const entries: GPUBindGroupEntry[] = [...k.inputs, ...k.outputs].map((b, binding) => {
      const buf = bindings[b.name];
      if (!buf) throw new Error(`kernel ${k.name}: buffer ${b.name} is not bound`);
      return { binding, resource: { buffer: buf.buffer } };
    });
    if (k.params.length) {
      const words = new Int32Array(Math.ceil(k.params.length / 4) * 4);
      k.params.forEach((p, i) => {
        const v = launch.params[p];
        if (v === undefined) throw new Error(`kernel ${k.name}: param ${p} has no value`);
        words[i] = v;
      });
      const ub = this.device.createBuffer({ size: words.byteLength, usage: UNIFORM | COPY_DST });
      this.device.queue.writeBuffer(ub, 0, words);
      entries.push({ binding: entries.length, resource: { buffer: ub } });
      this.pending.push(ub);
    }
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass({ label: k.name });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    pass.end();
    this.device.queue.submit([enc.finish()]);
    this.stats.dispatches++;
  }

  async download(b: GpuBuf, dtype: DType, shape: number[]): Promise<Tensor> {
    const bytes = Math.max(4, b.length * 4);
    const staging = this.device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(b.buffer, 0, staging, 0, bytes);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    const raw = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    for (const u of this.pending.splice(0)) u.destroy();
    const words = b.type === 'f32' ? new Float32Array(raw) : b.type === 'i32' ? new Int32Array(raw) : new Uint32Array(raw);
    return fromDeviceArray(words.subarray(0, b.length), dtype, shape);
  }

  release(b: GpuBuf): void {
    b.buffer.destroy();
  }
}

/** A backend forwarding every call to a WebGPU backend; subclasses override `dispatch` (collectives, timing). */
export class ForwardingBackend implements KernelBackend<GpuBuf> {
  constructor(readonly inner: WebGPUBackend) {}

  upload(t: Tensor): GpuBuf {
    return this.inner.upload(t);
  }
  alloc(type: ScalarType, n: number): GpuBuf {
    return this.inner.alloc(type, n);
  }
  download(b: GpuBuf, dtype: DType, shape: number[]): Promise<Tensor> {
    return this.inner.download(b, dtype, shape);
  }
  release(b: GpuBuf): void {
    this.inner.release(b);
  }
  dispatch(launch: Launch, bindings: Record<string, GpuBuf>): Promise<void> {
    return this.inner.dispatch(launch, bindings);
  }
}
