/**
 * cuda bundles beyond tensor parallelism, and whole bundles run without a GPU:
 *
 *   gpt-tiny tp=2 (megatron)     AllReduce, AllGather
 *   moe-topk-tiny ep=2 (expert)  AllToAll, AllGather, LocalShard (as box-copy kernels)
 *   gpt-tiny pp=2 (pipeline)     Send/Recv between stages, two micro-batches
 *
 * For each: `partition --target cuda`, the program lines of the new collectives, the host
 * runtime's selftest (built here with g++ from runtime/cuda: no CUDA needed) reading every
 * program, and nvcc compiling both devices' kernels.cu (compile only; the one full CMake build is
 * test/targets/cuda-bundle.test.ts). Then every kernel of the bundle runs through the CUDA host
 * shim in program order (test/codegen/cuda-bundle-shim.ts: the bundle's own kernels.cu, program.txt
 * and constants; collectives between kernels in TypeScript with the CPU runtime's semantics) and
 * the assembled outputs must equal the CPU runtime on the unsharded model at 1e-5.
 */
import { execFileSync, spawnSync } from 'node:child_process';
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

const EXAMPLES = join(__dirname, '..', '..', 'examples');
const RUNTIME = join(__dirname, '..', '..', 'runtime', 'cuda');
const registry = createCoreRegistry();
const rules = createCoreShardingRules();

interface Case {
  name: string;
  model: string;
  mesh: string;
  strategy: string;
  dims: Record<string, number>;
  /** Collective lines device 0 and 1 must have (regexes over program.txt). */
  lines: [RegExp, number][][];
  selftest: string[];
}

const CASES: Case[] = [
  {
    name: 'gpt-tiny tp=2',
    model: 'gpt-tiny.onnx',
    mesh: 'tp=2',
    strategy: 'megatron',
    dims: { batch: 1, sequence: 8 },
    lines: [[[/^collective AllReduce sum 0 2 0 1 /, 5]], [[/^collective AllReduce sum 0 2 0 1 /, 5]]],
    selftest: ['device 0: ', '(AllGather 1, AllReduce 5)'],
  },
  {
    name: 'moe-topk-tiny ep=2',
    model: 'moe-topk-tiny.onnx',
    mesh: 'ep=2',
    strategy: 'expert',
    dims: { batch: 1, sequence: 8 },
    // AllToAll: from_dim 2, to_dim 1, unit 1 as the trailing args.
    lines: [[[/^collective AllToAll sum 0 2 0 1 \d+ \d+ f32 4 1 4 4 16 4 1 2 8 16 3 2 1 1\t/, 2], [/^collective LocalShard /, 0]], [[/^collective AllToAll sum 0 2 0 1 /, 4]]],
    selftest: ['(AllGather 2, AllToAll 4)'],
  },
  {
    name: 'gpt-tiny pp=2',
    model: 'gpt-tiny.onnx',
    mesh: 'pp=2',
    strategy: 'pipeline',
    dims: { batch: 2, sequence: 8 },
    // Send to peer 1 / Recv from peer 0 with tags 0 and 1 (one per micro-batch).
    lines: [[[/^collective Send sum 0 2 0 1 (\d+) \1 f32 3 1 8 32 3 1 8 32 2 1 [01]\t/, 2]], [[/^collective Recv sum 0 2 0 1 -1 \d+ f32 3 1 8 32 3 1 8 32 2 0 [01]\t/, 2]]],
    selftest: ['(Send 2)', '(Recv 2)'],
  },
];

let dir = '';
let selftest = '';
const bundles = new Map<string, string>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shardc-cuda-coll-'));
  for (const c of CASES) {
    const out = join(dir, c.name.replace(/[^a-z0-9]+/gi, '-'));
    await partitionModelForTarget(join(EXAMPLES, c.model), { mesh: c.mesh, strategy: c.strategy, target: 'cuda', bindings: c.dims, out, shardcVersion: '0.0.0-test' });
    bundles.set(c.name, out);
  }
  selftest = join(dir, 'selftest');
  execFileSync('g++', ['-std=c++17', '-O1', '-pthread', '-o', selftest, join(RUNTIME, 'runtime_selftest.cpp'), join(RUNTIME, 'host.cpp'), join(RUNTIME, 'nccl_dl.cpp'), '-ldl'], { stdio: 'pipe' });
}, 300000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(CASES)('cuda bundle of $name', (c) => {
  it('writes the collectives as program lines the host runtime reads (selftest)', () => {
    const bundle = bundles.get(c.name)!;
    c.lines.forEach((want, d) => {
      const program = readFileSync(join(bundle, `device-${d}`, 'program.txt'), 'utf8').split('\n');
      for (const [re, n] of want) expect({ re: re.source, n: program.filter((l) => re.test(l)).length }).toEqual({ re: re.source, n });
    });
    const r = spawnSync(selftest, [bundle, '2'], { encoding: 'utf8', timeout: 60000 });
    expect({ status: r.status, err: r.stderr }).toEqual({ status: 0, err: '' });
    for (const s of [...c.selftest, 'watchdog timeout: rank 3: collective #1 AllToAll', 'runtime selftest ok']) expect(r.stdout).toContain(s);
  });

  // tp=2's kernels are compiled by the CMake build of test/targets/cuda-bundle.test.ts.
  (HAS_NVCC && c.mesh !== 'tp=2' ? it : it.skip)('nvcc compiles both devices\' kernels.cu (with their launch tables)', () => {
    const bundle = bundles.get(c.name)!;
    const src = join(bundle, 'all-kernels.cu');
    writeFileSync(src, '#include "device-0/kernels.cu"\n#include "device-1/kernels.cu"\n');
    const r = spawnSync(NVCC, ['-c', '-arch=sm_80', '-std=c++17', '-I', join(bundle, 'runtime'), '-o', join(dir, 'k.o'), src], { encoding: 'utf8' });
    expect({ status: r.status, err: r.status ? r.stderr.slice(0, 4000) : '' }).toEqual({ status: 0, err: '' });
  }, 300000);

  it('runs every kernel through the host shim in program order and matches the CPU runtime at 1e-5', () => {
    const bundle = bundles.get(c.name)!;
    const mesh = DeviceMesh.parse(c.mesh);
    const path = join(EXAMPLES, c.model);
    const { plan, programs } = shardModelFile(path, { mesh, strategy: resolveStrategy(c.strategy), bindings: c.dims, registry, rules });
    const hps = programs.map((p) => cudaHostProgram(p, { registry, mesh, bindings: c.dims }));
    const reference = loadModel(path).graph;
    const feeds = randomInputs(reference, { seed: 3, dims: c.dims });
    const want = runGraph(reference, feeds, { registry });
    const local = scatterFeeds(programs, plan, mesh, feeds);
    const work = join(dir, `shim-${c.name.replace(/[^a-z0-9]+/gi, '-')}`);
    mkdirSync(work);
    const exes = hps.map((_, d) => buildDeviceShim(bundle, d, work, dir));
    const { outputs, dispatches } = runBundleOnShim(bundle, hps, exes, local, work);
    expect(dispatches).toBe(hps.reduce((n, h) => n + h.steps.filter((s) => s.kind === 'dispatch').length, 0));
    const got = assembleOutputs(plan, outputs, mesh);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, t] of want) expect({ name, diff: compareTensors(got.get(name)!, t, { rtol: 1e-5, atol: 1e-5 }).message }).toEqual({ name, diff: '' });
  }, 600000);
});
