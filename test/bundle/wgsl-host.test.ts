/**
 * The host program files of a wgsl bundle: `partition --target wgsl` writes per device
 * host-program.json, constants.safetensors, host.ts and host.js (listed in manifest.json with their
 * SHA-256, byte-identical when partitioned twice); kernels.wgsl lists exactly the program's
 * kernels; readHostProgram loads the program back equal to a fresh recording (constants included);
 * and the shipped host.js makes exactly the program's calls.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHostInputs, readHostProgram } from '../../src/bundle/host-program.js';
import { bundleShardPlan, loadBundlePrograms, readBundle } from '../../src/bundle/read.js';
import { deviceHostProgram, hostKernelsWgsl } from '../../src/bundle/wgsl.js';
import { renderKernel } from '../../src/codegen/wgsl/kernel.js';
import { Attrs } from '../../src/ir/attrs.js';
import { UserError } from '../../src/ir/errors.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { LazyTensor, Tensor } from '../../src/ir/tensor.js';
import { exportModel } from '../../src/onnx/export.js';
import { loadModel } from '../../src/onnx/import.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { assembleOutputs, scatterFeed } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { GPT_TINY, cli, listFiles } from './cli-helper.js';
import { cpuHostRuntimes, loadHostModule, recordingRuntime } from '../codegen/host-helpers.js';

jest.setTimeout(180_000);

let tmp: string;
let a: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-wgsl-host-'));
  a = join(tmp, 'a');
  const r = await cli('partition', GPT_TINY, '--mesh', 'tp=2', '--strategy', 'megatron', '--target', 'wgsl', '--dim', 'batch=1,sequence=8', '--out', a);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const IDS = Tensor.from('int64', [1, 8], [5, 17, 0, 95, 42, 42, 7, 63]);
const HOST_FILES = ['constants.safetensors', 'host-program.json', 'host.js', 'host.ts', 'kernels.wgsl'];

describe('partition --target wgsl: host program files', () => {
  it('writes them per device, lists them with SHA-256, and writes the same bytes a second time', async () => {
    const files = listFiles(a);
    for (const d of [0, 1]) for (const f of HOST_FILES) expect(files).toContain(`device-${d}/${f}`);
    const manifest = JSON.parse(readFileSync(join(a, 'manifest.json'), 'utf8'));
    const listed = manifest.files.map((f: { path: string }) => f.path);
    for (const d of [0, 1]) for (const f of HOST_FILES) expect(listed).toContain(`device-${d}/${f}`);
    expect(manifest.devices.map((d: { host: string }) => d.host)).toEqual(['device-0/host-program.json', 'device-1/host-program.json']);
    expect(manifest.bindings).toEqual({ batch: 1, sequence: 8 });

    const b = join(tmp, 'b');
    const r = await cli('partition', GPT_TINY, '--mesh', 'tp=2', '--strategy', 'megatron', '--target', 'wgsl', '--dim', 'batch=1,sequence=8', '--out', b);
    expect(r.code).toBe(0);
    expect(listFiles(b)).toEqual(files);
    for (const f of files) expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f)))).toBe(true);

    const ts = readFileSync(join(a, 'device-1', 'host.ts'), 'utf8');
    expect(ts).toMatch(/^\/\*\*\n \* shardc host program for device 1 \(coordinates 1\) of mesh "tp=2"\./);
    expect(ts).toContain('export async function run(rt: HostRuntime): Promise<void> {');
    expect(ts).toMatch(/await rt\.collective\(\{ kind: "collective", node: "[^"]+", op: "AllReduce", axis: "tp", group: \[0, 1\]/);
  });

  it('readHostProgram gives back the recorded program; kernels.wgsl lists exactly its kernels; host.js makes its calls', async () => {
    const registry = createCoreRegistry();
    const bundle = readBundle(a);
    const mesh = DeviceMesh.parse('tp=2');
    for (const dp of loadBundlePrograms(bundle)) {
      const fresh = deviceHostProgram(dp, { registry, mesh, bindings: bundle.manifest.bindings });
      const back = readHostProgram(a, dp.device);
      // Constants come back from weights.safetensors / constants.safetensors.
      expect(back.buffers.filter((x) => x.role === 'constant').every((x) => x.constant !== undefined)).toBe(true);
      expect(back).toEqual(fresh);
      expect(back.steps.filter((s) => s.kind === 'collective').length).toBeGreaterThan(0);

      const wgsl = readFileSync(join(a, `device-${dp.device}`, 'kernels.wgsl'), 'utf8');
      expect(wgsl).toBe(hostKernelsWgsl(back, dp.coords));
      const sections = wgsl.split(/^\/\/ ---- kernel \d+: [A-Za-z_][A-Za-z0-9_]* ----$/m).slice(1);
      expect(sections.length).toBe(back.kernels.length);
      sections.forEach((s, i) => expect(s).toContain(renderKernel(back.kernels[i]!).trimEnd()));

      const m = loadHostModule(readFileSync(join(a, `device-${dp.device}`, 'host.js'), 'utf8'));
      expect(m.target).toEqual({ device: dp.device, coords: dp.coords, mesh: 'tp=2', kernels: 'kernels.wgsl' });
      const { rt, calls } = recordingRuntime();
      await m.run(rt);
      expect(calls).toEqual(back.steps);
    }
  });

  it('the shipped host.js files, run on the CPU executor with the loaded programs, compute what runGraph computes', async () => {
    const bundle = readBundle(a);
    const plan = bundleShardPlan(bundle);
    const registry = createCoreRegistry();
    const feeds = new Map([['input_ids', IDS]]);
    const want = runGraph(loadModel(GPT_TINY).graph, feeds, { registry });
    const hosts = [0, 1].map((d) => readHostProgram(a, d));
    const cpu = cpuHostRuntimes(hosts);
    const globalInputs = new Map(plan.graph.inputs.map((v) => [v.name, v]));
    for (const [d, h] of hosts.entries()) for (const i of h.inputs) cpu.write(d, i.buffer!, scatterFeed(globalInputs.get(i.name)!, feeds, globalInputs, bundle.mesh, d)!);
    const modules = hosts.map((_, d) => loadHostModule(readFileSync(join(a, `device-${d}`, 'host.js'), 'utf8')));
    await Promise.all(modules.map((m, d) => m.run(cpu.runtimes[d]!)));
    const got = assembleOutputs(plan, cpu.outputs(), bundle.mesh).get('logits')!;
    const c = compareTensors(got, want.get('logits')!, { rtol: 1e-5, atol: 1e-5 });
    expect(c.message).toBe(c.ok ? c.message : 'ok');
    expect(c.ok).toBe(true);
  });

  it('some constants are weights (stored once) and host-program.json holds no tensor data', () => {
    const doc = JSON.parse(readFileSync(join(a, 'device-0', 'host-program.json'), 'utf8'));
    const refs = doc.buffers.filter((b: { role: string }) => b.role === 'constant').map((b: { constant: object }) => b.constant);
    expect(refs.some((r: { weight?: string }) => typeof r.weight === 'string')).toBe(true);
    for (const r of refs) expect(Object.keys(r).sort()).toEqual(expect.arrayContaining([expect.stringMatching(/^(weight|tensor)$/)]));
    expect(JSON.stringify(doc)).not.toMatch(/"data"/);
  });

  it('refuses a changed host-program.json, a bundle without host programs, and inputs of other shapes', async () => {
    const c = join(tmp, 'c');
    const r = await cli('partition', GPT_TINY, '--mesh', 'tp=2', '--strategy', 'megatron', '--target', 'wgsl', '--dim', 'batch=1,sequence=8', '--out', c);
    expect(r.code).toBe(0);
    const file = join(c, 'device-0', 'host-program.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"device": 0', '"device": 0 '));
    expect(() => readHostProgram(c, 0)).toThrow(/device-0\/host-program\.json does not match its SHA-256/);

    const cpu = join(tmp, 'cpu');
    expect((await cli('partition', GPT_TINY, '--mesh', 'tp=2', '--strategy', 'megatron', '--dim', 'batch=1,sequence=8', '--out', cpu)).code).toBe(0);
    expect(() => readHostProgram(cpu, 1)).toThrow(/no host program for device 1/);
    expect(() => readHostProgram(a, 2)).toThrow(/has no device 2/);

    const p = readHostProgram(a, 0);
    expect(p.inputs).toEqual([{ name: 'input_ids', dtype: 'int64', shape: [1, 8], buffer: expect.any(Number) }]);
    expect(() => checkHostInputs(p, [{ name: 'input_ids', dtype: 'int64', shape: [1, 8] }], { batch: 1, sequence: 8 })).not.toThrow();
    const bad = (): void => checkHostInputs(p, [{ name: 'input_ids', dtype: 'int64', shape: [1, 9] }], { batch: 1, sequence: 8 });
    expect(bad).toThrow(UserError);
    expect(bad).toThrow('tensor "input_ids": input has shape [1,9] but the host program of device 0 was compiled for [1,8] (compiled with batch=1,sequence=8; partition again with other --dim values to run other shapes)');
  });

  it('host-computed constants go to constants.safetensors, kernel infinities survive JSON, and the round trip is exact', async () => {
    // y = MaxPool(Resize(x, scales 2×)): Resize's tap tables are computed on the host (constants
    // that are not weights), and MaxPool's kernel starts its max from -Infinity.
    const g = new Graph('folded');
    const x = new Value('x', 'float32', [1, 1, 2, 2]);
    const roi = new Value('roi', 'float32', [0]);
    roi.constant = LazyTensor.of(Tensor.from('float32', [0], []));
    const scales = new Value('scales', 'float32', [4]);
    scales.constant = LazyTensor.of(Tensor.from('float32', [4], [1, 1, 2, 2]));
    const up = new Value('up', 'float32', [1, 1, 4, 4]);
    const y = new Value('y', 'float32', [1, 1, 2, 2]);
    g.inputs = [x];
    g.initializers = [roi, scales];
    g.addNode(new Node('Resize', [x, roi, scales], [up], new Attrs(), 'resize'));
    g.addNode(new Node('MaxPool', [up], [y], new Attrs([['kernel_shape', { kind: 'ints', value: [2, 2] }], ['strides', { kind: 'ints', value: [2, 2] }]]), 'pool'));
    g.outputs = [y];
    const model = join(tmp, 'folded.onnx');
    writeFileSync(model, exportModel(g));
    const out = join(tmp, 'folded');
    const r = await cli('partition', model, '--mesh', 'tp=1', '--strategy', 'auto', '--target', 'wgsl', '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);

    const doc = JSON.parse(readFileSync(join(out, 'device-0', 'host-program.json'), 'utf8'));
    const tables = doc.buffers.filter((b: { role: string; value: string }) => b.role === 'constant' && b.value === '');
    expect(tables.length).toBeGreaterThan(0);
    for (const t of tables) expect(t.constant).toEqual({ tensor: `buffer/${t.id}` });
    expect(JSON.stringify(doc.kernels)).toContain('"v":"-Infinity"');

    const p = readHostProgram(out, 0);
    for (const t of tables) expect(p.buffers[t.id]!.constant!.size).toBe(t.length);
    const fresh = deviceHostProgram(loadBundlePrograms(readBundle(out))[0]!, { registry: createCoreRegistry(), mesh: DeviceMesh.parse('tp=1') });
    expect(p).toEqual(fresh);
    expect(hostKernelsWgsl(p, [0])).toBe(readFileSync(join(out, 'device-0', 'kernels.wgsl'), 'utf8'));
    // MaxPool's -Infinity is a number again, not the string the JSON holds.
    const consts: unknown[] = [];
    JSON.stringify(p.kernels, (k, v) => (k === 'v' ? void consts.push(v) : v));
    expect(consts).toContain(-Infinity);
  });
});
