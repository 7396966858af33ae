/// <reference types="@webgpu/types" />
/**
 * A device on the first adapter of a given GPU instance (navigator.gpu in a page, Dawn's instance
 * in Node). Free of Node built-ins, so the browser entry (src/browser) bundles it; device.ts adds
 * the Node-specific acquisition of Dawn.
 */
import { UserError } from '../../ir/errors.js';

export interface WebGPUDevice {
  device: GPUDevice;
  /** Adapter description for messages and reports. */
  description: string;
  /** Destroys the device (a Node process holding a device may not exit otherwise). */
  destroy(): void;
  /**
   * The GPU instance and adapter, held for as long as the device lives: in Node, if the garbage
   * collector finalizes Dawn's instance while its device is in use, the process crashes.
   */
  readonly instance: GPU;
  readonly adapter: GPUAdapter;
}

/** Requests the first adapter of `gpu` and a device with the adapter's storage limits. */
export async function deviceFromGpu(
  gpu: GPU,
  opts: { powerPreference?: GPUPowerPreference; noAdapterMessage?: string } = {},
): Promise<WebGPUDevice> {
  const adapter = await gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined);
  if (!adapter) throw new UserError(opts.noAdapterMessage ?? 'no WebGPU adapter found');
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
    },
  });
  const info = adapter.info;
  const description = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s).join(' ') || 'WebGPU adapter';
  let destroyed = false;
  return {
    device,
    description,
    instance: gpu,
    adapter,
    destroy: () => {
      if (!destroyed) device.destroy();
      destroyed = true;
    },
  };
}

/** The page's GPU (navigator.gpu); a UserError when the browser exposes none. */
export async function acquireBrowserDevice(opts: { powerPreference?: GPUPowerPreference } = {}): Promise<WebGPUDevice> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu)
    throw new UserError(
      'navigator.gpu is missing: this browser has no WebGPU here (it needs a secure context — https or http://127.0.0.1 — and, in Chromium without a GPU, --enable-unsafe-webgpu --use-webgpu-adapter=swiftshader)',
    );
  return deviceFromGpu(gpu, { ...opts, noAdapterMessage: 'navigator.gpu.requestAdapter() returned no adapter' });
}
