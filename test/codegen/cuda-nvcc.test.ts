/**
 * Every distinct kernel of the ONNX backend node tests (the core-op conformance models) rendered
 * as CUDA compiles with nvcc: each test is run once on the CPU executor of the kernel IR (the
 * lowering the WGSL conformance uses), its launches are collected and deduplicated by their CUDA
 * text, and all of them go into one .cu compiled by a single `nvcc -c` (fast: one front-end run).
 * Skipped with a message when /usr/local/cuda/bin/nvcc is missing.
 */
import { join } from 'node:path';
import { cpuKernelBackend } from '../../src/codegen/cpu-backend.js';
import type { DeviceArray } from '../../src/codegen/cpu.js';
import { renderCudaKernel } from '../../src/codegen/cuda/kernel.js';
import type { Kernel } from '../../src/codegen/kernel.js';
import { createLoweringTable } from '../../src/codegen/lower/index.js';
import { type KernelBackend, runGraphOnBackend } from '../../src/codegen/run-graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { listNodeTests, runNodeTestKernels } from '../../src/verify/conformance.js';
import { HAS_NVCC, compileWithNvcc } from './cuda-harness.js';

const ROOT = join(__dirname, '..', '..', '..', 'shared', 'onnx-node-tests');

const maybe = HAS_NVCC ? describe : describe.skip;
if (!HAS_NVCC) console.warn('skipping the CUDA compile tests: /usr/local/cuda/bin/nvcc is missing (install the CUDA toolkit)');

maybe('nvcc compiles every kernel of the conformance models', () => {
  it('one .cu, one nvcc call', async () => {
    const registry = createCoreRegistry();
    const table = createLoweringTable();
    const kernels = new Map<string, Kernel>();
    const backend: KernelBackend<DeviceArray> = {
      ...cpuKernelBackend,
      dispatch: (launch, bindings) => {
        const key = renderCudaKernel(launch.kernel, 'k').code.replace(/^\/\/ kernel .*\n/, '');
        if (!kernels.has(key)) kernels.set(key, launch.kernel);
        return cpuKernelBackend.dispatch(launch, bindings);
      },
    };
    let passed = 0;
    for (const t of listNodeTests(ROOT)) {
      const r = await runNodeTestKernels(join(ROOT, t), registry, (g, feeds) => runGraphOnBackend(g, feeds, backend, { registry, table }), table);
      if (r.status === 'pass') passed++;
    }
    const sources = [...kernels.values()].map((k, i) => renderCudaKernel(k, `k${i}`).code);
    const { seconds } = compileWithNvcc(sources);
    console.log(`nvcc compiled ${sources.length} distinct kernels of ${passed} passing conformance models in ${seconds.toFixed(1)} s`);
    expect(passed).toBeGreaterThan(500);
    expect(sources.length).toBeGreaterThan(250);
  }, 600000);
});
