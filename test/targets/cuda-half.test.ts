/**
 * float16 and bfloat16 models on the cuda target (issue 6, build item 1): the GPT-like example
 * converted to each half type (test/targets/half-model.ts) and partitioned with --target cuda at
 * tp=2 (megatron), sequence 16 so that the linear layers' M = 16 fits the 16×16×16 fragments.
 *
 * Checked: half tensors are stored in 2-byte buffers (program.txt buffer types f16/bf16, F16/BF16
 * constants in the safetensors shard with 2 bytes per element, memory-plan slots about half the
 * float32 bundle's bytes); matmuls with half operands get the tensor-core (WMMA) launch variant
 * where shapes and strides allow, and those variants are referenced by the program's dispatches;
 * nvcc compiles both devices' kernels.cu for sm_80 (fragments on both f16 and bf16); every kernel
 * runs through the host shim (WMMA variants on their scalar path, see cuda-bundle-shim.ts) and
 * the assembled logits match the CPU runtime on the same half model.
 *
 * Tolerances: the CPU runtime rounds every op's output to the half type, the bundle only what
 * its (fused) kernels store, and sums in a different order; logits here are O(1-10) after two
 * layers. fp16 (11-bit significand, unit roundoff 4.9e-4) stays within rtol 1e-2 / atol 1e-2;
 * bf16 (8-bit significand, unit roundoff 3.9e-3, 8× coarser) within rtol 5e-2 / atol 5e-2.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cudaHostProgram } from '../../src/bundle/cuda.js';
import { partitionModelForTarget, shardModelFile } from '../../src/bundle/partition.js';
import { resolveStrategy } from '../../src/bundle/strategy.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { loadModel } from '../../src/onnx/import.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { assembleOutputs, scatterFeeds } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { HAS_NVCC, NVCC } from '../codegen/cuda-harness.js';
import { buildDeviceShim, runBundleOnShim } from '../codegen/cuda-bundle-shim.js';
import { type HalfDType, writeHalfModel } from './half-model.js';

const GPT = join(__dirname, '..', '..', 'examples', 'gpt-tiny.onnx');
const DIMS = { batch: 1, sequence: 16 };
const registry = createCoreRegistry();
const rules = createCoreShardingRules();
const mesh = DeviceMesh.parse('tp=2');

const CASES: { dtype: HalfDType; storage: 'f16' | 'bf16'; safetensors: string; tol: number }[] = [
  { dtype: 'float16', storage: 'f16', safetensors: 'F16', tol: 1e-2 },
  { dtype: 'bfloat16', storage: 'bf16', safetensors: 'BF16', tol: 5e-2 },
];

let dir = '';
const models = new Map<string, string>();
const bundles = new Map<string, string>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shardc-cuda-half-'));
  for (const c of CASES) {
    const model = join(dir, `gpt-${c.dtype}.onnx`);
    writeHalfModel(GPT, model, c.dtype);
    models.set(c.dtype, model);
    const out = join(dir, `bundle-${c.dtype}`);
    await partitionModelForTarget(model, { mesh: 'tp=2', strategy: 'megatron', target: 'cuda', bindings: DIMS, out, shardcVersion: '0.0.0-test' });
    bundles.set(c.dtype, out);
  }
}, 300000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const programsOf = (path: string) => {
  const { plan, programs } = shardModelFile(path, { mesh, strategy: resolveStrategy('megatron'), bindings: DIMS, registry, rules });
  return { plan, programs, hps: programs.map((p) => cudaHostProgram(p, { registry, mesh, bindings: DIMS })) };
};
const slotBytes = (text: string): number => text.split('\n').filter((l) => l.startsWith('slot ')).reduce((n, l) => n + Number(l.split(' ')[1]), 0);

describe.each(CASES)('cuda bundle of the $dtype GPT-like model at tp=2', (c) => {
  it('stores half tensors in 2-byte buffers (program, constants, memory plan)', () => {
    const bundle = bundles.get(c.dtype)!;
    const f32 = programsOf(GPT).hps;
    for (const d of [0, 1]) {
      const program = readFileSync(join(bundle, `device-${d}`, 'program.txt'), 'utf8');
      const types = program.split('\n').filter((l) => l.startsWith('buffer ')).map((l) => l.split(' ')[2]);
      expect(types.filter((t) => t === 'f32')).toEqual([]);
      expect(types.filter((t) => t === c.storage).length).toBeGreaterThan(50);
      expect(program).toMatch(new RegExp(`^output \\d+ ${c.storage} 3 1 16 96\\t"logits"$`, 'm'));
      expect(program).toMatch(new RegExp(`^collective AllReduce sum 0 2 0 1 \\d+ \\d+ ${c.storage} `, 'm'));
      // Constants: 2 bytes per element, half dtype in the header.
      const st = readFileSync(join(bundle, `device-${d}`, 'constants.safetensors'));
      const n = Number(st.readBigUInt64LE(0));
      const header = JSON.parse(st.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
      const halves = Object.entries(header).filter(([k, v]) => k !== '__metadata__' && v.dtype === c.safetensors);
      expect(halves.length).toBeGreaterThan(10);
      for (const [, v] of halves) expect(v.data_offsets[1] - v.data_offsets[0]).toBe(2 * v.shape[0]!);
      // The memory plan in 2-byte elements: well under the float32 bundle's bytes (int buffers stay 4).
      const f32Bytes = f32[d]!.slots.reduce((s, x) => s + x.bytes, 0);
      const bytes = slotBytes(program);
      expect(bytes).toBeLessThan(0.56 * f32Bytes);
      expect(bytes).toBeGreaterThan(0.45 * f32Bytes);
    }
  }, 120000);

  it('launches the tensor-core (WMMA) variant for the linear layers, referenced by the dispatches', () => {
    const bundle = bundles.get(c.dtype)!;
    for (const d of [0, 1]) {
      const cu = readFileSync(join(bundle, `device-${d}`, 'kernels.cu'), 'utf8');
      const wmma = [...cu.matchAll(/^\/\/ ---- kernel (\d+): .*WMMA\) ----$/gm)].map((m) => Number(m[1]));
      expect(wmma.length).toBeGreaterThanOrEqual(3);
      expect(cu).toContain(`wmma::fragment<wmma::matrix_a, 16, 16, 16, ${c.storage === 'f16' ? '__half' : '__nv_bfloat16'}, wmma::row_major>`);
      const dispatches = readFileSync(join(bundle, `device-${d}`, 'program.txt'), 'utf8').split('\n').filter((l) => l.startsWith('dispatch ')).map((l) => l.split(' ').map(Number));
      const wmmaLaunches = dispatches.filter((f) => wmma.includes(f[1]!));
      // Q/K/V, attention output, MLP in and out per layer, and the LM head: 9 linear layers.
      expect(wmmaLaunches.length).toBeGreaterThanOrEqual(6);
      for (const f of wmmaLaunches) expect(f.slice(5, 8)).toEqual([32, 1, 1]);
      // Every rendered variant is dispatched.
      expect(new Set(dispatches.map((f) => f[1])).size).toBe((cu.match(/__global__/g) ?? []).length);
    }
  });

  (HAS_NVCC ? it : it.skip)('nvcc compiles both devices\' kernels.cu for sm_80 (WMMA fragments included)', () => {
    const bundle = bundles.get(c.dtype)!;
    const src = join(bundle, 'all-kernels.cu');
    writeFileSync(src, '#include "device-0/kernels.cu"\n#include "device-1/kernels.cu"\n');
    const r = spawnSync(NVCC, ['-c', '-arch=sm_80', '-std=c++17', '-I', join(bundle, 'runtime'), '-o', join(dir, `k-${c.dtype}.o`), src], { encoding: 'utf8' });
    expect({ status: r.status, err: r.status ? r.stderr.slice(0, 4000) : '' }).toEqual({ status: 0, err: '' });
  }, 300000);

  it(`runs every kernel through the host shim and matches the CPU runtime on the ${c.dtype} model`, () => {
    const bundle = bundles.get(c.dtype)!;
    const path = models.get(c.dtype)!;
    const { plan, programs, hps } = programsOf(path);
    const reference = loadModel(path).graph;
    const feeds = randomInputs(reference, { seed: 3, dims: DIMS });
    const want = runGraph(reference, feeds, { registry });
    const local = scatterFeeds(programs, plan, mesh, feeds);
    const work = join(dir, `shim-${c.dtype}`);
    mkdirSync(work);
    const exes = hps.map((_, d) => buildDeviceShim(bundle, d, work, dir));
    const { outputs, dispatches } = runBundleOnShim(bundle, hps, exes, local, work);
    expect(dispatches).toBe(hps.reduce((n, h) => n + h.steps.filter((s) => s.kind === 'dispatch').length, 0));
    const got = assembleOutputs(plan, outputs, mesh);
    const logits = got.get('logits')!;
    expect(logits.dtype).toBe(c.dtype);
    const ref = want.get('logits')!;
    expect(compareTensors(logits, ref, { rtol: c.tol, atol: c.tol }).message).toBe('');
    let maxDiff = 0;
    const a = logits.data as Float32Array;
    const b = ref.data as Float32Array;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    console.log(`${c.dtype}: shim vs CPU runtime, ${a.length} logits, max |diff| ${maxDiff.toPrecision(3)}`);
  }, 600000);
});
