/**
 * `partition --target cuda` on the GPT-like example at tp=2: the bundle's files, then (where
 * /usr/local/cuda/bin/nvcc, cmake and ninja exist) the CMake build with nvcc, the host-only runtime
 * selftest (program and safetensors reading, launcher environments, TCP rendezvous, the missing-
 * NCCL message) and the built program failing cleanly with "no CUDA device" on a machine without
 * a GPU (or running all ranks in single-process mode where one exists).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { partitionModelForTarget } from '../../src/bundle/partition.js';

const NVCC = '/usr/local/cuda/bin/nvcc';
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const CAN_BUILD = existsSync(NVCC) && has('cmake') && has('ninja');
if (!CAN_BUILD) console.warn('skipping the CUDA bundle build: needs /usr/local/cuda/bin/nvcc, cmake and ninja');

const MODEL = join(__dirname, '..', '..', 'examples', 'gpt-tiny.onnx');
let dir = '';
let bundle = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shardc-cuda-bundle-'));
  bundle = join(dir, 'bundle');
  await partitionModelForTarget(MODEL, { mesh: 'tp=2', strategy: 'megatron', target: 'cuda', bindings: { batch: 1, sequence: 8 }, out: bundle, shardcVersion: '0.0.0-test' });
}, 120000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cuda bundle of the GPT-like model at tp=2', () => {
  it('has the CMake project, the runtime, and per device kernels, host program and constants', () => {
    const manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')) as { target: string; devices: { kernels?: string }[]; files: { path: string }[] };
    expect(manifest.target).toBe('cuda');
    expect(manifest.devices.map((d) => d.kernels)).toEqual(['device-0/kernels.cu', 'device-1/kernels.cu']);
    const paths = manifest.files.map((f) => f.path);
    for (const p of ['CMakeLists.txt', 'README.md', 'devices.cpp', 'wmma_selfcheck.cu', 'runtime/main.cu', 'runtime/host.cpp', 'runtime/nccl_dl.cpp', 'runtime/shardc_runtime.h', 'device-1/program.txt', 'device-1/constants.safetensors'])
      expect(paths).toContain(p);
    const cmake = readFileSync(join(bundle, 'CMakeLists.txt'), 'utf8');
    expect(cmake).toContain('project(shardc_bundle LANGUAGES CXX CUDA)');
    expect(cmake).toContain('"70;80;86;89;90"');
    const cu = readFileSync(join(bundle, 'device-0', 'kernels.cu'), 'utf8');
    const program = readFileSync(join(bundle, 'device-0', 'program.txt'), 'utf8').split('\n');
    expect(program[0]).toBe('shardc-host-program 1');
    const kernels = (cu.match(/__global__/g) ?? []).length;
    const used = new Set(program.filter((l) => l.startsWith('dispatch ')).map((l) => Number(l.split(' ')[1])));
    expect(used.size).toBe(kernels);
    expect(program.filter((l) => l.startsWith('collective AllReduce sum 0 2 0 1 ')).length).toBe(5);
    // The logits are gathered along the vocabulary (dim 2, unit 1): NCCL gathers flat, the runtime permutes.
    expect(program.filter((l) => /^collective AllGather \w+ 2 2 0 1 \d+ \d+ f32 3 1 8 48 3 1 8 96 1 1\t/.test(l)).length).toBe(1);
    expect(readFileSync(join(bundle, 'README.md'), 'utf8')).toContain('mpirun -np 2 ./build/shardc_run');
  });

  (CAN_BUILD ? it : it.skip)('builds with CMake + nvcc; the host parts pass their selftest; no GPU gives a clear message', () => {
    const build = join(dir, 'build');
    const cfg = spawnSync('cmake', ['-S', bundle, '-B', build, '-G', 'Ninja', `-DCMAKE_CUDA_COMPILER=${NVCC}`, '-DCMAKE_CUDA_ARCHITECTURES=80'], { encoding: 'utf8' });
    expect({ status: cfg.status, err: cfg.status ? cfg.stdout + cfg.stderr : '' }).toEqual({ status: 0, err: '' });
    const b = spawnSync('cmake', ['--build', build], { encoding: 'utf8' });
    expect({ status: b.status, err: b.status ? (b.stdout + b.stderr).slice(-4000) : '' }).toEqual({ status: 0, err: '' });

    const self = spawnSync(join(build, 'shardc_runtime_selftest'), [bundle, '2'], { encoding: 'utf8', timeout: 60000 });
    expect({ status: self.status, err: self.stderr }).toEqual({ status: 0, err: '' });
    expect(self.stdout).toContain('device 1: ');
    expect(self.stdout).toContain('6 collectives');
    expect(self.stdout).toContain('runtime selftest ok');
    expect(self.stdout).toContain('watchdog timeout: rank 3: collective #1 AllToAll');

    // --selfcheck (the tensor-core matmul against the f32 kernel) needs a GPU.
    const selfcheck = spawnSync(join(build, 'shardc_run'), ['--selfcheck'], { encoding: 'utf8', timeout: 120000 });
    if (selfcheck.status === 0) expect(selfcheck.stdout).toMatch(/selfcheck bf16: .* ok/);
    else expect(selfcheck.stderr).toMatch(/^shardc: no CUDA device available for --selfcheck/);

    const clean = { ...process.env, RANK: undefined, WORLD_SIZE: undefined, OMPI_COMM_WORLD_RANK: undefined };
    const wrongWorld = spawnSync(join(build, 'shardc_run'), [], { encoding: 'utf8', env: { ...clean, RANK: '0', WORLD_SIZE: '3' } });
    expect(wrongWorld.status).toBe(1);
    expect(wrongWorld.stderr).toContain('the bundle has 2 devices but the launcher started 3 processes (torchrun)');

    const run = spawnSync(join(build, 'shardc_run'), ['--single-process'], { encoding: 'utf8', env: clean, timeout: 120000 });
    if (run.status === 0) expect(run.stdout).toContain('rank 1 output');  // a machine with a GPU
    else {
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(/^shardc: no CUDA device available/);
    }
  }, 300000);
});
