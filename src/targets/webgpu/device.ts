/// <reference types="@webgpu/types" />
/**
 * Acquiring a WebGPU device. In a browser (navigator.gpu) that is the page's GPU; in Node it is
 * Dawn through npm `webgpu`. Without a GPU, Node uses the SwiftShader Vulkan driver that Debian's
 * chromium package ships (VK_ICD_FILENAMES is set before Dawn starts when it is unset and the
 * file exists). No adapter at all is a UserError naming the one command that fixes it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { UserError } from '../../ir/errors.js';
import { type WebGPUDevice, deviceFromGpu } from './gpu-device.js';

export { acquireBrowserDevice, deviceFromGpu, type WebGPUDevice } from './gpu-device.js';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
export const INSTALL_HINT = 'apt-get install chromium libvulkan1';

interface WebGPUModule {
  create(options: string[]): GPU;
}

async function loadDawn(): Promise<WebGPUModule> {
  try {
    // CommonJS (jest runs the sources as CommonJS): Node's own require (not the test runner's,
    // hence getBuiltinModule) loads the ESM package.
    if (typeof __filename !== 'undefined') {
      const nodeModule = (process as unknown as { getBuiltinModule?: (id: string) => typeof import('node:module') }).getBuiltinModule?.('node:module');
      return (nodeModule?.createRequire ?? createRequire)(__filename)('webgpu') as WebGPUModule;
    }
    // A computed specifier: bundlers of the browser entry (esbuild, src/bench/browser.ts) leave it
    // alone instead of failing to resolve a Node-only package that a page never loads.
    const dawnPackage = 'webgpu';
    return (await import(dawnPackage)) as unknown as WebGPUModule;
  } catch (e) {
    throw new UserError(`cannot load the npm package "webgpu" (Dawn for Node): ${(e as Error).message}; run npm install`);
  }
}

export interface AcquireOptions {
  /** Dawn options (default: `backend=vulkan` in Node). */
  dawnOptions?: string[];
  powerPreference?: GPUPowerPreference;
}

/** A device on the first adapter: navigator.gpu when present, else Dawn in Node. */
export async function acquireDevice(opts: AcquireOptions = {}): Promise<WebGPUDevice> {
  let gpu: GPU | undefined = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) {
    // The real process environment (a test runner may hand modules a copy): Dawn reads it natively.
    const env = ((process as unknown as { getBuiltinModule?: (id: string) => NodeJS.Process }).getBuiltinModule?.('node:process') ?? process).env;
    if (env.VK_ICD_FILENAMES === undefined && existsSync(SWIFTSHADER_ICD)) env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    env.XDG_RUNTIME_DIR ??= '/tmp';
    const dawn = await loadDawn();
    gpu = dawn.create(opts.dawnOptions ?? ['backend=vulkan']);
  }
  return deviceFromGpu(gpu, {
    powerPreference: opts.powerPreference,
    noAdapterMessage: `no WebGPU adapter found (no GPU and no SwiftShader driver at ${SWIFTSHADER_ICD}); install one with: ${INSTALL_HINT}`,
  });
}
