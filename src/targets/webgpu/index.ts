/** The WebGPU target: device acquisition, the kernel backend, and the graph runner. */
export { acquireDevice, INSTALL_HINT, SWIFTSHADER_ICD, type WebGPUDevice } from './device.js';
export { WebGPUBackend, type GpuBuf } from './backend.js';
export { runGraphWebGPU, type WebGPURunOptions } from './run.js';
