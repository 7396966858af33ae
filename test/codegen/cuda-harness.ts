/**
 * Shared by the CUDA tests: record the launches a graph makes on the CPU kernel backend (with each
 * launch's buffers before and after, from the CPU executor of the kernel IR), render the same
 * kernels as CUDA, and run them as host C++ through test/codegen/cuda-shim.h; or compile many
 * kernels at once with nvcc.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuKernelBackend } from '../../src/codegen/cpu-backend.js';
import type { DeviceArray } from '../../src/codegen/cpu.js';
import { CUDA_PRELUDE, cudaBlockDim, cudaGridDim, paramsStructName, renderCudaKernel } from '../../src/codegen/cuda/kernel.js';
import { identifier } from '../../src/codegen/names.js';
import type { Launch } from '../../src/codegen/kernel.js';
import { type KernelBackend, runGraphOnBackend } from '../../src/codegen/run-graph.js';
import type { Graph } from '../../src/ir/graph.js';
import type { OpRegistry } from '../../src/ir/registry.js';
import type { Tensor } from '../../src/ir/tensor.js';
import type { LoweringTable } from '../../src/codegen/lower/index.js';

export const NVCC = '/usr/local/cuda/bin/nvcc';
export const HAS_NVCC = existsSync(NVCC);
export const SHIM = join(__dirname, 'cuda-shim.h');

/** One recorded launch: buffers in binding order, their contents before and after (CPU executor). */
export interface LaunchCase {
  launch: Launch;
  before: DeviceArray[];
  after: DeviceArray[];
}

const copy = (a: DeviceArray): DeviceArray => a.slice() as DeviceArray;

/** Runs `graph` on the CPU kernel backend and records every launch. */
export async function recordLaunches(graph: Graph, feeds: ReadonlyMap<string, Tensor>, registry: OpRegistry, table?: LoweringTable): Promise<{ cases: LaunchCase[]; outputs: Map<string, Tensor> }> {
  const cases: LaunchCase[] = [];
  const backend: KernelBackend<DeviceArray> = {
    ...cpuKernelBackend,
    dispatch: (launch, bindings) => {
      const names = [...launch.kernel.inputs, ...launch.kernel.outputs].map((b) => b.name);
      const before = names.map((n) => copy(bindings[n]!));
      cpuKernelBackend.dispatch(launch, bindings);
      cases.push({ launch, before, after: names.map((n) => copy(bindings[n]!)) });
    },
  };
  const outputs = await runGraphOnBackend(graph, feeds, backend, { registry, table });
  return { cases, outputs };
}

const words = (a: DeviceArray): string => {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  return [...u].map((w) => `0x${w.toString(16)}u`).join(',');
};

/** C++ source running every case through the shim and printing the output words (hex) per case. */
export function shimHarness(cases: readonly LaunchCase[]): string {
  const out: string[] = [CUDA_PRELUDE, '#include <cstdio>', ''];
  cases.forEach((c, ci) => {
    const fn = `k${ci}`;
    out.push(renderCudaKernel(c.launch.kernel, fn).code);
  });
  out.push('int main() {');
  cases.forEach((c, ci) => {
    const k = c.launch.kernel;
    const fn = `k${ci}`;
    const decls = [...k.inputs, ...k.outputs];
    out.push('  {');
    decls.forEach((b, j) => {
      const ty = b.type === 'f32' ? 'float' : b.type === 'i32' ? 'int' : 'unsigned int';
      out.push(`    static const uint32_t w${j}[] = {${words(c.before[j]!)}};`);
      out.push(`    std::vector<${ty}> b${j}(${c.before[j]!.length}); std::memcpy(b${j}.data(), w${j}, sizeof(w${j}));`);
    });
    const ps = k.params.map((p) => `${identifier(p, 'p')} = ${c.launch.params[p]}`);
    out.push(`    ${paramsStructName(fn)} p{};`);
    for (const a of ps) out.push(`    p.${a};`);
    const [gx, gy, gz] = cudaGridDim(c.launch);
    const [bx, by, bz] = cudaBlockDim(k);
    const args = [...decls.map((_, j) => `b${j}.data()`), 'p'].join(', ');
    out.push(`    shim_launch(dim3{${gx}, ${gy}, ${gz}}, dim3{${bx}, ${by}, ${bz}}, [&] { ${fn}(${args}); });`);
    k.outputs.forEach((_, o) => {
      const j = k.inputs.length + o;
      out.push(`    std::printf("%d %d", ${ci}, ${o}); for (auto x : b${j}) { uint32_t u; std::memcpy(&u, &x, 4); std::printf(" %x", u); } std::printf("\\n");`);
    });
    out.push('  }');
  });
  out.push('  return 0;', '}');
  return out.join('\n') + '\n';
}

/** Compiles the harness with g++ (the shim is plain C++17) and runs it; returns per case the output arrays. */
export function runShim(cases: readonly LaunchCase[]): DeviceArray[][] {
  const dir = mkdtempSync(join(tmpdir(), 'shardc-cuda-shim-'));
  try {
    const src = join(dir, 'harness.cpp');
    writeFileSync(src, shimHarness(cases));
    const exe = join(dir, 'harness');
    execFileSync('g++', ['-std=c++17', '-O1', '-fwrapv', '-pthread', '-include', SHIM, '-o', exe, src], { stdio: 'pipe' });
    const text = execFileSync(exe, { encoding: 'utf8', maxBuffer: 1 << 28 });
    const result: DeviceArray[][] = cases.map(() => []);
    for (const line of text.trim().split('\n')) {
      const [ci, o, ...ws] = line.trim().split(' ');
      const c = cases[Number(ci)]!;
      const ref = c.after[c.launch.kernel.inputs.length + Number(o)]!;
      const u = new Uint32Array(ws.map((w) => parseInt(w, 16)));
      const arr = ref instanceof Float32Array ? new Float32Array(u.buffer) : ref instanceof Int32Array ? new Int32Array(u.buffer) : u;
      result[Number(ci)]![Number(o)] = arr;
    }
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One .cu with every kernel (distinct function names), compiled by nvcc -c; returns seconds taken. */
export function compileWithNvcc(kernels: readonly string[], arch = 'sm_80'): { seconds: number; source: string } {
  const dir = mkdtempSync(join(tmpdir(), 'shardc-nvcc-'));
  try {
    const source = `${CUDA_PRELUDE}\n\n${kernels.join('\n')}`;
    const src = join(dir, 'kernels.cu');
    writeFileSync(src, source);
    const t0 = process.hrtime.bigint();
    try {
      execFileSync(NVCC, ['-c', `-arch=${arch}`, '-std=c++17', '-o', join(dir, 'kernels.o'), src], { stdio: 'pipe' });
    } catch (e) {
      const err = e as { stderr?: Buffer };
      throw new Error(`nvcc failed:\n${err.stderr?.toString().slice(0, 4000)}`);
    }
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, source };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
