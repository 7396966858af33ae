/**
 * The generated host module (device-<r>/host.ts): its text for a small program is pinned by a
 * golden file; running its JavaScript on a recording HostRuntime gives back exactly the program's
 * steps (in-process and as a real ES module in Node); hostile names cannot break the module (it
 * type-checks against the HostRuntime types, and its comments and strings stay closed).
 */
import { f32, i32, load, max, param, variable, add, mul } from '../../src/codegen/expr.js';
import { generateHostModule } from '../../src/codegen/host/generate.js';
import { HOST_PROGRAM_FORMAT, type HostBuffer, type HostProgram, type HostStep } from '../../src/codegen/host/program.js';
import { makeKernel } from '../../src/codegen/kernel.js';
import { Tensor } from '../../src/ir/tensor.js';
import { Node as TsNode, Project, SyntaxKind } from 'ts-morph';
import { expectGolden } from '../passes/golden.js';
import { planMemory } from '../../src/codegen/host/memory.js';
import { recordHostProgram } from '../../src/codegen/host/record.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { importModel } from '../../src/onnx/import.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { assembleOutputs, scatterFeeds } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { gptModel, llamaModel } from '../../examples/models/transformers.js';
import { cpuHostRuntimes, hostJs, hostModuleDiagnostics, loadHostModule, recordingRuntime, runHostModuleInNode } from './host-helpers.js';

const i = variable('i');

/** y = relu(x·w) on device 1 of tp=2, with an AllReduce between the matmul and the relu. */
function smallProgram(): HostProgram {
  const mm = makeKernel('mm/MatMul', {
    kind: 'matmul',
    tile: 8,
    batch: i32(1),
    m: param('M'),
    n: param('N'),
    k: param('K'),
    a: load('a', 'f32', add(mul(variable('m'), param('K')), variable('k'))),
    b: load('b', 'f32', add(mul(variable('k'), param('N')), variable('n'))),
    out: { buf: 'y', index: add(mul(variable('m'), param('N')), variable('n')), value: variable('acc', 'f32') },
  });
  const relu = makeKernel('relu/Relu', { kind: 'map', count: param('n'), lets: [], stores: [{ buf: 'y', index: i, value: max(load('x', 'f32', i), f32(0)) }] });
  const buffers: HostBuffer[] = [
    { id: 0, type: 'f32', length: 6, role: 'input', value: 'x', slot: 0 },
    { id: 1, type: 'f32', length: 6, role: 'constant', value: 'w', constant: Tensor.from('float32', [3, 2], [1, 2, 3, 4, 5, 6]), slot: 1 },
    { id: 2, type: 'f32', length: 4, role: 'temp', value: 'h', slot: 2 },
    { id: 3, type: 'f32', length: 4, role: 'temp', value: 'h_sum', slot: 3 },
    { id: 4, type: 'f32', length: 4, role: 'temp', value: 'y', slot: 2 },
  ];
  const steps: HostStep[] = [
    { kind: 'dispatch', node: 'mm', op: 'MatMul', kernel: 0, params: { K: 3, M: 2, N: 2 }, bindings: { a: 0, b: 1, y: 2 } },
    {
      kind: 'collective',
      node: 'h/allreduce',
      op: 'AllReduce',
      axis: 'tp',
      group: [0, 1],
      attributes: { reduce: 'sum' },
      input: 2,
      output: 3,
      dtype: 'float32',
      inputShape: [2, 2],
      outputShape: [2, 2],
    },
    { kind: 'dispatch', node: 'relu', op: 'Relu', kernel: 1, params: { n: 4 }, bindings: { x: 3, y: 4 } },
  ];
  return {
    format: HOST_PROGRAM_FORMAT,
    device: 1,
    kernels: [mm, relu],
    buffers,
    slots: [{ bytes: 24 }, { bytes: 24 }, { bytes: 16 }, { bytes: 16 }],
    inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3], buffer: 0 }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [2, 2], buffer: 4 }],
    steps,
  };
}

const HOSTILE = ['*/ alert(1) /*', '"quoted" \'single\' `tick` ${x}', 'line\nbreak\r\n', '#include <stdio.h>', 'sep\u2028\u2029\u0085', 'class', '__proto__', 'constructor', 'a-b', 'a_b', 'a b', '0start', '', '\\', '??=', 'ünï'];

/** Every name a host module prints (values, nodes, ops, kernels, bindings, attributes) is hostile. */
function hostileProgram(): HostProgram {
  const kernels = HOSTILE.slice(0, 4).map((name) => makeKernel(name, { kind: 'map', count: param('n'), lets: [], stores: [{ buf: 'y', index: i, value: load('x', 'f32', i) }] }));
  const buffers: HostBuffer[] = HOSTILE.map((value, id) => ({ id, type: 'f32', length: 4, role: id === 0 ? 'input' : id === 12 ? 'constant' : 'temp', value, slot: id }));
  const steps: HostStep[] = [];
  HOSTILE.forEach((name, k) => {
    const bindings: Record<string, number> = {};
    Object.defineProperty(bindings, HOSTILE[(k + 6) % HOSTILE.length]!, { value: k, enumerable: true, writable: true, configurable: true });
    bindings['y'] = (k + 1) % HOSTILE.length;
    steps.push({ kind: 'dispatch', node: name, op: name || 'Identity', kernel: k % kernels.length, params: { n: 4, [name === '__proto__' ? 'm' : name]: -k }, bindings });
    if (k % 3 === 0)
      steps.push({
        kind: 'collective',
        node: name,
        op: k === 3 ? 'Recv' : 'AllGather',
        ...(k === 3 ? {} : { axis: name, input: k }),
        group: [1, 0],
        attributes: { [name === '__proto__' ? 'p' : name]: name, dims: [-0, 3], names: [name, '*/'] },
        output: (k + 2) % HOSTILE.length,
        dtype: 'float32',
        ...(k === 3 ? {} : { inputShape: [4] }),
        outputShape: [2, 2],
      });
  });
  return { format: HOST_PROGRAM_FORMAT, device: 0, kernels, buffers, slots: buffers.map(() => ({ bytes: 16 })), inputs: [], outputs: [], steps };
}

/** Top-level statement kinds, the number of statements in `run`, and every comment's text. */
function moduleShape(source: string): { statements: string[]; runStatements: number; comments: string[] } {
  const sf = new Project({ useInMemoryFileSystem: true }).createSourceFile('host.ts', source);
  const comments = new Set<string>();
  sf.forEachDescendant((n) => {
    for (const r of [...n.getLeadingCommentRanges(), ...n.getTrailingCommentRanges()]) comments.add(r.getText());
  });
  for (const r of sf.getStatementsWithComments().filter(TsNode.isCommentStatement)) comments.add(r.getText());
  return {
    statements: sf.getStatements().map((s) => s.getKindName()),
    runStatements: sf.getFunctionOrThrow('run').getStatements().filter((s) => s.getKind() === SyntaxKind.ExpressionStatement).length,
    comments: [...comments],
  };
}

const INFO = { mesh: 'tp=2', device: 1, coords: [1], kernelsFile: 'kernels.wgsl' };

describe('generateHostModule', () => {
  it('renders a small program as a readable module (golden), byte-identical when generated twice', () => {
    const ts = generateHostModule(smallProgram(), INFO);
    expectGolden('host/small.host.ts.txt', ts);
    expect(generateHostModule(smallProgram(), INFO)).toBe(ts);
    expect(hostModuleDiagnostics(ts)).toEqual([]);
    // The check sees the real HostRuntime types: a wrong step does not type-check.
    expect(hostModuleDiagnostics(ts.replace('kind: "dispatch"', 'kind: "dispatched"')).join('\n')).toMatch(/"dispatched"/);
  });

  it('its JavaScript imports nothing and makes exactly the program steps, in order', async () => {
    const p = smallProgram();
    const js = hostJs(p, INFO);
    expect(js).not.toMatch(/^\s*import\b/m);
    expect(js).toMatch(/^\/\*\*\n \* shardc host program for device 1 \(coordinates 1\) of mesh "tp=2"\./);
    const m = loadHostModule(js);
    expect(m.target).toEqual({ device: 1, coords: [1], mesh: 'tp=2', kernels: 'kernels.wgsl' });
    expect(m.buffers).toEqual({ x: 0, w: 1, h: 2, h_sum: 3, y: 4 });
    expect(m.kernels).toEqual({ mm_MatMul: 0, relu_Relu: 1 });
    const { rt, calls } = recordingRuntime();
    await m.run(rt);
    expect(calls).toEqual(p.steps);
    // A runtime that drops the await on collectives would see the relu before the AllReduce.
    expect(calls.map((s) => s.op)).toEqual(['MatMul', 'AllReduce', 'Relu']);
    // The same module as a real ES module in Node.
    expect(runHostModuleInNode(js)).toEqual(p.steps);
  });

  it('a recorded call sequence differs when the program does (the check can fail)', async () => {
    const p = smallProgram();
    const m = loadHostModule(hostJs(p, INFO));
    const { rt, calls } = recordingRuntime();
    await m.run(rt);
    const other = smallProgram();
    (other.steps[2] as { params: Record<string, number> }).params['n'] = 5;
    expect(calls).not.toEqual(other.steps);
  });

  it('hostile names stay inside comments and strings; the module type-checks and runs', async () => {
    const p = hostileProgram();
    const hostile = { mesh: 'tp=2 */ evil', device: 0, coords: [0], kernelsFile: 'k*/.wgsl' };
    const ts = generateHostModule(p, hostile);
    if (process.env.SHARDC_SHOW_HOST) console.log(ts);
    expect(generateHostModule(hostileProgram(), { mesh: 'tp=2 */ evil', device: 0, coords: [0], kernelsFile: 'k*/.wgsl' })).toBe(ts);
    expect(ts).not.toMatch(/[\u2028\u2029\u0085\r]/);
    expect(ts).not.toMatch(/^#/m);
    expect(hostModuleDiagnostics(ts)).toEqual([]);
    // No name escaped its comment or string: the module is still the import, three tables and
    // `run`, whose body is one call per step, and every comment is one of the generated ones.
    const shape = moduleShape(ts);
    expect(shape.statements).toEqual(['ImportDeclaration', 'VariableStatement', 'VariableStatement', 'VariableStatement', 'FunctionDeclaration']);
    expect(shape.runStatements).toBe(p.steps.length);
    for (const c of shape.comments) expect(c).toMatch(/^(\/\/ [^\n]*|\/\*\*[^]*\*\/)$/);
    for (const c of shape.comments.filter((c) => c.startsWith('/**'))) expect(c.indexOf('*/')).toBe(c.length - 2);
    const js = hostJs(p, hostile);
    const m = loadHostModule(js);
    // Names differing only by punctuation get different identifiers; keywords and __proto__ are renamed.
    const ids = Object.keys(m.buffers);
    expect(new Set(ids).size).toBe(HOSTILE.length);
    expect(Object.values(m.buffers)).toEqual(HOSTILE.map((_, k) => k));
    for (const id of ids) expect(id).toMatch(/^[A-Za-z][A-Za-z0-9_]*$/);
    expect(ids).toEqual(expect.arrayContaining(['a_b', 'a_b_2', 'a_b_3', 'class_', 'constructor_']));
    const { rt, calls } = recordingRuntime();
    await m.run(rt);
    expect(calls).toEqual(p.steps);
    // `__proto__` as a binding name is an own property, not the object's prototype.
    const withProto = calls.find((s) => s.kind === 'dispatch' && Object.keys(s.bindings).includes('__proto__'));
    expect(withProto && Object.getPrototypeOf((withProto as { bindings: object }).bindings)).toBe(Object.prototype);
    // JSON loses -0; everything else survives the trip through a child Node process.
    const json = JSON.parse(JSON.stringify(p.steps)) as unknown[];
    expect(runHostModuleInNode(js)).toEqual(json);
  });

  it('an empty program (no buffers, kernels or steps) prints as TypeScript emits it, and runs', async () => {
    const p: HostProgram = { ...smallProgram(), buffers: [], kernels: [], steps: [], slots: [] };
    expect(hostModuleDiagnostics(generateHostModule(p, INFO))).toEqual([]);
    const m = loadHostModule(hostJs(p, INFO));
    expect(m.buffers).toEqual({});
    const { rt, calls } = recordingRuntime();
    await m.run(rt);
    expect(calls).toEqual([]);
  });

  it('rejects a step that names a buffer or kernel the program does not have (a bug, not a user error)', () => {
    const p = smallProgram();
    (p.steps[0] as { bindings: Record<string, number> }).bindings['a'] = 99;
    expect(() => generateHostModule(p, INFO)).toThrow(/step 0 \("mm"\) uses buffer 99/);
    const q = smallProgram();
    (q.steps[2] as { kernel: number }).kernel = 2;
    expect(() => generateHostModule(q, INFO)).toThrow(/dispatches kernel 2 of 2/);
  });
});

describe('generated modules of tp=2 megatron device programs', () => {
  const registry = createCoreRegistry();
  const models: Record<string, () => Uint8Array> = { 'gpt-tiny': () => gptModel().encode(), 'llama-tiny': () => llamaModel().encode() };

  test.each(Object.keys(models))('%s: each module makes exactly its program\'s calls, and running them on the CPU executor equals runGraph', async (model) => {
    const bindings = { batch: 1, sequence: 4 };
    const reference = importModel(models[model]!(), { file: `${model}.onnx` }).graph;
    const feeds = randomInputs(reference, { seed: 3, dims: bindings });
    const want = runGraph(reference, feeds, { registry });
    const mesh = DeviceMesh.parse('tp=2');
    const rules = createCoreShardingRules();
    const plan = shardGraph(importModel(models[model]!(), { file: `${model}.onnx` }).graph, mesh, { strategy: 'megatron', registry, rules, bindings });
    const programs = lowerPlan(plan, { registry, rules });
    const local = scatterFeeds(programs, plan, mesh, feeds);
    const hosts = programs.map((dp, d) =>
      planMemory(recordHostProgram(dp.graph, [...local[d]!].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] })), { registry, device: d, mesh })),
    );
    const modules = hosts.map((h, d) => loadHostModule(hostJs(h, { mesh: 'tp=2', device: d, coords: programs[d]!.coords, kernelsFile: 'kernels.wgsl' })));

    for (const [d, m] of modules.entries()) {
      const { rt, calls } = recordingRuntime();
      await m.run(rt);
      expect(calls).toEqual(hosts[d]!.steps);
      expect(calls.some((s) => s.kind === 'collective' && s.op === 'AllReduce')).toBe(true);
    }

    const cpu = cpuHostRuntimes(hosts);
    for (const [d, h] of hosts.entries()) for (const i of h.inputs) cpu.write(d, i.buffer!, local[d]!.get(i.name)!);
    await Promise.all(modules.map((m, d) => m.run(cpu.runtimes[d]!)));
    const got = assembleOutputs(plan, cpu.outputs(), mesh);
    expect([...got.keys()]).toEqual([...want.keys()]);
    for (const [k, t] of want) expect({ k, message: compareTensors(got.get(k)!, t, { rtol: 1e-5, atol: 1e-5 }).message }).toEqual({ k, message: '' });
  });
});
