/**
 * Hostile names end to end (issue 8, "Names into code"): a small model — MatMul, Add, Relu,
 * MatMul, Softmax with three initializers — whose tensor and node names are `*\/ evil(); /*`,
 * `"\n#include <x>`, `int`, `a-b` and `a_b` (both), `x:0`, `1x`, `é名`, `__proto__` and
 * `constructor`, partitioned for every target (cpu, wgsl, cuda) at tp=1 and tp=2 (megatron: the
 * second MatMul's AllReduce and the Relu output's AllGather carry hostile names too). Then:
 *
 *   - in every generated source (kernels.wgsl, host.ts, host.js, kernels.cu, devices.cpp), with
 *     comments and string literals taken out by a small lexer, no original name or fragment of one
 *     (`*\/`, `evil()`, `#include <x>`, `x:0`, `a-b`, `1x`, `__proto__`, non-ASCII) is left: names
 *     live only in escaped comments and strings; CUDA string literals are ASCII; program.txt keeps
 *     one step per line with the name as a JSON string after the tab;
 *   - cpu and wgsl bundles run with `shardc run` (in-process; wgsl on Dawn) and equal the CPU
 *     runtime on the unsharded model; every section of the shipped kernels.wgsl compiles on Dawn;
 *     the shipped host.ts type-checks (strict) and host.js, run on the CPU executor, computes the
 *     same outputs;
 *   - every device's kernels.cu compiles with nvcc (-c; skipped without /usr/local/cuda/bin/nvcc)
 *     and the whole cuda bundle runs through the host shim (test/codegen/cuda-bundle-shim.ts)
 *     equal to the CPU runtime.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cudaHostProgram } from '../../src/bundle/cuda.js';
import { readHostProgram } from '../../src/bundle/host-program.js';
import { shardModelFile } from '../../src/bundle/partition.js';
import { bundleShardPlan, readBundle } from '../../src/bundle/read.js';
import { resolveStrategy } from '../../src/bundle/strategy.js';
import { Attrs } from '../../src/ir/attrs.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { LazyTensor, Tensor } from '../../src/ir/tensor.js';
import { exportModel } from '../../src/onnx/export.js';
import { loadModel } from '../../src/onnx/import.js';
import { readTensorFile, writeTensorFile } from '../../src/onnx/tensor-file.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { assembleOutputs, scatterFeed, scatterFeeds } from '../../src/targets/cpu/spmd.js';
import { acquireDevice, type WebGPUDevice } from '../../src/targets/webgpu/device.js';
import { compareTensors } from '../../src/verify/compare.js';
import { cli } from '../bundle/cli-helper.js';
import { buildDeviceShim, runBundleOnShim } from '../codegen/cuda-bundle-shim.js';
import { HAS_NVCC, NVCC } from '../codegen/cuda-harness.js';
import { cpuHostRuntimes, hostModuleDiagnostics, loadHostModule } from '../codegen/host-helpers.js';

jest.setTimeout(300_000);

/** The names, by the role each plays in the model. */
const N = {
  x: '*/ evil(); /*', // graph input, and the first MatMul's node name
  w1: '"\n#include <x>', // initializer, and the second MatMul's node name
  h: 'a-b',
  bias: 'x:0',
  h2: 'a_b',
  r: '__proto__', // Relu output, a graph output (AllGather at tp=2)
  w2: 'constructor', // initializer, and the Softmax's node name
  m: '1x', // AllReduce at tp=2
  y: 'é名', // graph output, and the Relu's node name
  add: 'int',
};

/** Substrings of the names that must never be code (anything outside comments and strings). */
const FORBIDDEN: (string | RegExp)[] = ['*/ evil', 'evil()', '/*', '#include <x>', '__proto__', /(^|[^\w])x:0([^\w]|$)/, /(^|[^\w])a-b([^\w]|$)/, /(^|[^\w])1x([^\w]|$)/, /\bconstructor\b/, /[^\x00-\x7f]/];

const TARGETS = ['cpu', 'wgsl', 'cuda'] as const;
const OUTPUTS = [N.y, N.r, N.h, N.h2];
const MESHES = ['tp=1', 'tp=2'] as const;
const X = Tensor.from('float32', [2, 4], [1, -2, 0.5, 3, -1, 0.25, 2, -0.75]);
const registry = createCoreRegistry();
const rules = createCoreShardingRules();

function hostileGraph(): Graph {
  const g = new Graph('hostile');
  const v = (name: string, shape: number[]): Value => new Value(name, 'float32', shape);
  const init = (name: string, shape: number[], seed: number): Value => {
    const val = v(name, shape);
    const n = shape.reduce((a, b) => a * b, 1);
    val.constant = LazyTensor.of(Tensor.from('float32', shape, Array.from({ length: n }, (_, i) => Math.round(Math.sin(i * 0.7 + seed) * 64) / 128)));
    return val;
  };
  const x = v(N.x, [2, 4]);
  const w1 = init(N.w1, [4, 8], 1);
  const bias = init(N.bias, [8], 2);
  const w2 = init(N.w2, [8, 6], 3);
  const [h, h2, r, m, y] = [v(N.h, [2, 8]), v(N.h2, [2, 8]), v(N.r, [2, 8]), v(N.m, [2, 6]), v(N.y, [2, 6])];
  g.inputs = [x];
  g.initializers = [w1, bias, w2];
  g.addNode(new Node('MatMul', [x, w1], [h], new Attrs(), N.x));
  g.addNode(new Node('Add', [h, bias], [h2], new Attrs(), N.add));
  g.addNode(new Node('Relu', [h2], [r], new Attrs(), N.y));
  g.addNode(new Node('MatMul', [r, w2], [m], new Attrs(), N.w1));
  g.addNode(new Node('Softmax', [m], [y], new Attrs([['axis', { kind: 'int', value: -1 }]]), N.w2));
  g.outputs = [y, r, h, h2]; // `a-b` and `a_b` as outputs: both get buffers (not fused away)
  return g;
}

/**
 * Source text with comments (`//`, `/* *\/`, and `#` lines for CMake) and string literals (`"`,
 * `'`, and template literals for TypeScript) replaced by a space: what a compiler reads as code.
 * A string that reaches the end of its line (a raw newline) is an error, as in C++ and TS.
 */
function codeOnly(src: string, file: string): { code: string; strings: string[]; comments: string[] } {
  const strings: string[] = [];
  const comments: string[] = [];
  let code = '';
  let i = 0;
  const ts = /\.(ts|js)$/.test(file);
  while (i < src.length) {
    const c = src[i]!;
    const two = src.slice(i, i + 2);
    if (two === '//') {
      const end = src.indexOf('\n', i);
      const stop = end < 0 ? src.length : end;
      comments.push(src.slice(i, stop));
      code += ' ';
      i = stop;
    } else if (two === '/*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new Error(`${file}: unterminated block comment at ${i}`);
      comments.push(src.slice(i, end + 2));
      code += ' ';
      i = end + 2;
    } else if (c === '"' || c === "'" || (ts && c === '`')) {
      let j = i + 1;
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\') j++;
        else if (src[j] === '\n' && c !== '`') throw new Error(`${file}: string literal with a raw newline at ${i}: ${src.slice(i, j)}`);
        j++;
      }
      if (j >= src.length) throw new Error(`${file}: unterminated string at ${i}`);
      strings.push(src.slice(i, j + 1));
      code += ' ';
      i = j + 1;
    } else {
      code += c;
      i++;
    }
  }
  return { code, strings, comments };
}

/** The name a `commentSafe` text stands for (JSON with `*\/` and `/\*` broken up). */
const fromComment = (c: string): string => JSON.parse(c.replace(/\*\\\//g, '*/').replace(/\/\\\*/g, '/*')) as string;

/** The names' fragments found in the code of `src` (empty when every name is escaped). */
function leaks(src: string, file: string): string[] {
  const { code } = codeOnly(src, file);
  return FORBIDDEN.flatMap((f) => {
    const hit = typeof f === 'string' ? code.includes(f) : f.test(code);
    return hit ? [`${file}: ${String(f)}`] : [];
  });
}

let tmp = '';
let model = '';
let inputs = '';
let want = new Map<string, Tensor>();
const bundles = new Map<string, string>();
const key = (target: string, mesh: string): string => `${target} ${mesh}`;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-hostile-names-'));
  model = join(tmp, 'hostile.onnx');
  writeFileSync(model, exportModel(hostileGraph()));
  inputs = join(tmp, 'inputs');
  mkdirSync(inputs);
  writeTensorFile(join(inputs, 'input_0.pb'), X, N.x);
  want = runGraph(loadModel(model).graph, new Map([[N.x, X]]), { registry });
  for (const target of TARGETS)
    for (const mesh of MESHES) {
      const out = join(tmp, `${target}-${mesh.replace('=', '')}`);
      const r = await cli('partition', model, '--mesh', mesh, '--strategy', 'megatron', '--target', target, '--out', out);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      bundles.set(key(target, mesh), out);
    }
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const expectClose = (got: Tensor | undefined, name: string, tol = 1e-5): void => {
  expect(got).toBeDefined();
  const c = compareTensors(got!, want.get(name)!, { rtol: tol, atol: tol });
  expect({ name, diff: c.ok ? '' : c.message }).toEqual({ name, diff: '' });
};

it('the reference: the CPU runtime gives both outputs, and the model keeps every name', () => {
  expect([...want.keys()].sort()).toEqual(OUTPUTS.slice().sort());
  const g = loadModel(model).graph;
  expect(g.inputs.map((v) => v.name)).toEqual([N.x]);
  expect(g.nodes.map((n) => n.name)).toEqual([N.x, N.add, N.y, N.w1, N.w2]);
  // Softmax rows sum to 1, Relu is non-negative: the reference is not trivially zero.
  const y = want.get(N.y)!.toArray() as number[];
  expect(y[0]! + y[1]! + y[2]! + y[3]! + y[4]! + y[5]!).toBeCloseTo(1, 5);
  expect((want.get(N.r)!.toArray() as number[]).some((v) => v > 0)).toBe(true);
});

it('the lexer sees through comments and strings, and catches a name that escapes', () => {
  expect(leaks('// "*/ evil(); /*"\nint a = 1; /* é名 */ const char* s = "x:0 \\" __proto__";', 'k.cu')).toEqual([]);
  expect(leaks('// node "a"\n#include <x>\n', 'k.cu')).toEqual(['k.cu: #include <x>']);
  expect(leaks('/* a */ evil(); /* b */', 'k.cu')).toEqual(['k.cu: evil()']);
  expect(() => codeOnly('const s = "a\nb";', 'h.ts')).toThrow(/raw newline/);
});

describe.each(MESHES)('at %s', (mesh) => {
  it.each(TARGETS)('%s: no name outside escaped comments and strings in any generated source', (target) => {
    const dir = bundles.get(key(target, mesh))!;
    const b = readBundle(dir);
    const devices = b.manifest.devices.length;
    expect(devices).toBe(mesh === 'tp=1' ? 1 : 2);
    const files = b.manifest.files.map((f) => f.path).filter((p) => /\.(wgsl|ts|js|cu|cpp)$/.test(p) && !p.startsWith('runtime/'));
    if (target === 'wgsl') expect(files.filter((f) => /^device-\d+\/(kernels\.wgsl|host\.ts|host\.js)$/.test(f))).toHaveLength(3 * devices);
    if (target === 'cuda') expect(files.filter((f) => /^device-\d+\/kernels\.cu$/.test(f))).toHaveLength(devices);
    if (target === 'cpu') expect(files).toEqual([]);
    const found = files.flatMap((f) => leaks(readFileSync(join(dir, f), 'utf8'), f));
    expect(found).toEqual([]);
    // The names are there, escaped: in comments of the kernels and strings of the host modules.
    for (const f of files.filter((p) => /kernels\.(wgsl|cu)$/.test(p))) {
      const { comments } = codeOnly(readFileSync(join(dir, f), 'utf8'), f);
      expect(comments.some((c) => c.includes('"*\\/ evil(); /\\*'))).toBe(true);
    }
    if (target === 'cuda') {
      for (let d = 0; d < devices; d++) {
        const f = `device-${d}/kernels.cu`;
        for (const s of codeOnly(readFileSync(join(dir, f), 'utf8'), f).strings) expect(s).toMatch(/^[\x20-\x7e]*$/);
        const program = readFileSync(join(dir, `device-${d}`, 'program.txt'), 'utf8').trimEnd().split('\n');
        for (const line of program.filter((l) => /^(dispatch|collective|input|output) /.test(l))) {
          const [head, name, ...rest] = line.split('\t');
          expect(rest).toEqual([]);
          expect(head).toMatch(/^[a-z]+( [A-Za-z0-9_.-]+)+$/);
          expect(typeof JSON.parse(name!)).toBe('string');
        }
        // One dispatch line per step: the hostile node names did not split a line.
        expect(program.filter((l) => l.startsWith('dispatch ')).length).toBe(cudaSteps(mesh)[d]!);
      }
    }
  });

  it.each(['cpu', 'wgsl'] as const)('%s: shardc run equals the CPU runtime', async (target) => {
    const outDir = join(tmp, `outputs-${target}-${mesh}`);
    const r = await cli('run', bundles.get(key(target, mesh))!, '--inputs', inputs, '--outputs', outDir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const got = new Map(readdirSync(outDir).map((f) => readTensorFile(join(outDir, f))).map((t) => [t.name!, t.tensor]));
    expect([...got.keys()].sort()).toEqual(OUTPUTS.slice().sort());
    for (const name of OUTPUTS) expectClose(got.get(name), name, 1e-5);
  });

  describe('wgsl', () => {
    let gpu: WebGPUDevice | undefined;
    afterAll(() => gpu?.destroy());

    it('every section of the shipped kernels.wgsl compiles on Dawn', async () => {
      const dir = bundles.get(key('wgsl', mesh))!;
      gpu = await acquireDevice();
      const device = gpu.device;
      for (const d of readBundle(dir).manifest.devices) {
        const text = readFileSync(join(dir, d.kernels!), 'utf8');
        const sections = text.split(/^(?=\/\/ ---- kernel \d+: )/m).slice(1);
        expect(sections.length).toBe(readHostProgram(dir, d.device).kernels.length);
        for (const code of sections) {
          device.pushErrorScope('validation');
          const module = device.createShaderModule({ code });
          const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error').map((m) => m.message);
          device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
          const err = await device.popErrorScope();
          expect({ errors, validation: err?.message }).toEqual({ errors: [], validation: undefined });
        }
      }
    });

    it('host.ts type-checks and host.js, run on the CPU executor, computes the same outputs', async () => {
      const dir = bundles.get(key('wgsl', mesh))!;
      const bundle = readBundle(dir);
      const devices = bundle.manifest.devices.map((d) => d.device);
      for (const d of devices) {
        const ts = readFileSync(join(dir, `device-${d}`, 'host.ts'), 'utf8');
        expect(hostModuleDiagnostics(ts)).toEqual([]);
        // `a-b` and `a_b` are both buffers, under different identifiers (a duplicate key would not type-check).
        const ids = (name: string): string[] => [...ts.matchAll(/^ {2}(\w+): \d+, \/\/ \w+ \S+ (".*")$/gm)].filter((m) => fromComment(m[2]!) === name).map((m) => m[1]!);
        expect(ids(N.h)).toHaveLength(1);
        expect(ids(N.h2)).toHaveLength(1);
        expect(ids(N.h)[0]).not.toBe(ids(N.h2)[0]);
      }
      const plan = bundleShardPlan(bundle);
      const hosts = devices.map((d) => readHostProgram(dir, d));
      const cpu = cpuHostRuntimes(hosts);
      const feeds = new Map([[N.x, X]]);
      const globals = new Map(plan.graph.inputs.map((v) => [v.name, v]));
      for (const [d, h] of hosts.entries()) for (const i of h.inputs) cpu.write(d, i.buffer!, scatterFeed(globals.get(i.name)!, feeds, globals, bundle.mesh, d)!);
      const modules = devices.map((d) => loadHostModule(readFileSync(join(dir, `device-${d}`, 'host.js'), 'utf8')));
      await Promise.all(modules.map((m, d) => m.run(cpu.runtimes[d]!)));
      const got = assembleOutputs(plan, cpu.outputs(), bundle.mesh);
      for (const name of OUTPUTS) expectClose(got.get(name), name);
    });
  });

  describe('cuda', () => {
    (HAS_NVCC ? it : it.skip)('nvcc compiles every device\'s kernels.cu', () => {
      const dir = bundles.get(key('cuda', mesh))!;
      for (const d of readBundle(dir).manifest.devices) {
        const r = spawnSync(NVCC, ['-c', '-arch=sm_80', '-std=c++17', '-I', join(dir, 'runtime'), '-o', join(tmp, `k-${mesh}-${d.device}.o`), join(dir, d.kernels!)], { encoding: 'utf8' });
        expect({ status: r.status, err: r.status ? r.stderr.slice(0, 4000) : '' }).toEqual({ status: 0, err: '' });
      }
    });

    it('the whole bundle runs through the host shim equal to the CPU runtime', () => {
      const dir = bundles.get(key('cuda', mesh))!;
      const m = DeviceMesh.parse(mesh);
      const { plan, programs } = shardModelFile(model, { mesh: m, strategy: resolveStrategy('megatron'), bindings: {}, registry, rules });
      const hps = programs.map((p) => cudaHostProgram(p, { registry, mesh: m, bindings: {} }));
      const feeds = new Map([[N.x, X]]);
      const local = scatterFeeds(programs, plan, m, feeds);
      const work = join(tmp, `shim-${mesh.replace('=', '')}`);
      mkdirSync(work);
      const exes = hps.map((_, d) => buildDeviceShim(dir, d, work));
      const { outputs, dispatches } = runBundleOnShim(dir, hps, exes, local, work);
      expect(dispatches).toBe(hps.reduce((n, h) => n + h.steps.filter((s) => s.kind === 'dispatch').length, 0));
      const got = assembleOutputs(plan, outputs, m);
      for (const name of OUTPUTS) expectClose(got.get(name), name);
    });
  });
});

/** Dispatch steps per device of the cuda bundle (from its host programs, recomputed). */
function cudaSteps(mesh: string): number[] {
  const m = DeviceMesh.parse(mesh);
  const { programs } = shardModelFile(model, { mesh: m, strategy: resolveStrategy('megatron'), bindings: {}, registry, rules });
  return programs.map((p) => cudaHostProgram(p, { registry, mesh: m, bindings: {} }).steps.filter((s) => s.kind === 'dispatch').length);
}
