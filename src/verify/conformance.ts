/**
 * The ONNX backend node tests on the CPU runtime: `<root>/<test>/model.onnx` with
 * `test_data_set_N/{input,output}_K.pb`. Each test is `pass`, `fail` (wrong numbers, or an error
 * while importing or running), or `unsupported` (an op the registry lacks, or an unsupported
 * dtype). Nothing unsupported is ever a pass. Results are sorted by test name.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UserError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import type { Tensor } from '../ir/tensor.js';
import { loadModel, unsupportedOps } from '../onnx/import.js';
import { readTensorFile } from '../onnx/tensor-file.js';
import { runGraph } from '../targets/cpu/interpreter.js';
import { ONNX_TEST_TOLERANCE, type Tolerance, compareTensors } from './compare.js';
import { bfloat16FromBits, feedsFromFiles, numberedTensorFiles, testDataSets } from './feeds.js';
import { modelOps, nonTensorValues } from './model-ops.js';
import { type LoweringTable, createLoweringTable, unloweredOps } from '../codegen/lower/index.js';
import { runGraphOnBackend } from '../codegen/run-graph.js';
import { WebGPUBackend } from '../targets/webgpu/backend.js';
import { acquireDevice } from '../targets/webgpu/device.js';

export type TestStatus = 'pass' | 'fail' | 'unsupported';

export interface TestResult {
  name: string;
  status: TestStatus;
  message: string;
}

export interface ConformanceReport {
  tests: TestResult[];
  passed: number;
  failed: number;
  unsupported: number;
}

export interface ConformanceOptions {
  registry: OpRegistry;
  /** Only tests whose name matches. */
  filter?: RegExp;
  tolerance?: Tolerance;
  /** Called after each test (progress). */
  onResult?: (r: TestResult) => void;
  /** Called before the first test and after each one: tests done of the tests selected (label 'tests'). */
  onProgress?: (done: number, total: number, label: string) => void;
  /** Where the tests run: the reference CPU runtime (default) or WGSL kernels on a WebGPU device. */
  target?: ConformanceTarget;
}

export type ConformanceTarget = 'cpu' | 'wgsl';

/** Test directories under `root` (those holding a model.onnx), sorted by name. */
export function listNodeTests(root: string): string[] {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new UserError(`not a directory of ONNX backend tests`, { file: root });
  return readdirSync(root)
    .filter((d) => existsSync(join(root, d, 'model.onnx')))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

const UNSUPPORTED_ERROR = /\bunsupported\b.*\b(op|ops|operator|dtype|dtypes|data ?type|element type)\b/i;

/** Runs one backend test directory on the CPU runtime. */
export function runNodeTest(dir: string, registry: OpRegistry, tolerance: Tolerance = ONNX_TEST_TOLERANCE): TestResult {
  const name = basename(dir);
  const modelPath = join(dir, 'model.onnx');
  try {
    const missing = modelOps(modelPath)
      .filter((o) => !registry.has(o.op, o.domain))
      .map((o) => (o.domain ? `${o.domain}.${o.op}` : o.op));
    if (missing.length) return { name, status: 'unsupported', message: `unsupported ops: ${missing.join(', ')}` };

    const nonTensor = nonTensorValues(modelPath);
    if (nonTensor.length) return { name, status: 'unsupported', message: `unsupported value types (dense tensors only): ${nonTensor.join(', ')}` };

    const model = loadModel(modelPath);
    const left = unsupportedOps(model.graph, registry);
    if (left.length) return { name, status: 'unsupported', message: `unsupported ops: ${left.map((u) => u.op).join(', ')}` };

    const sets = testDataSets(dir);
    if (sets.length === 0) return { name, status: 'fail', message: 'no test_data_set_N directory' };
    for (const set of sets) {
      const { inputs, expected } = readDataSet(set);
      const feeds = feedsFromFiles(model.graph, inputs, set);
      const outputs = runGraph(model.graph, feeds, { registry });
      const mismatch = compareOutputs(model.graph, outputs, expected, tolerance);
      if (mismatch) return { name, status: 'fail', message: `${basename(set)}: ${mismatch}` };
    }
    return { name, status: 'pass', message: '' };
  } catch (e) {
    return errorResult(name, e);
  }
}

/**
 * Compares graph outputs (in graph order) with expected tensors (output_K ↔ graph output K).
 * Returns undefined when all match, else a message naming the output and its worst element.
 */
export function compareOutputs(
  graph: Graph,
  outputs: ReadonlyMap<string, Tensor>,
  expected: { name?: string; tensor: Tensor }[],
  tolerance: Tolerance,
): string | undefined {
  if (expected.length > graph.outputs.length) return `${expected.length} expected outputs but the model has ${graph.outputs.length}`;
  for (const [k, exp] of expected.entries()) {
    const outName = graph.outputs[k]!.name;
    const got = outputs.get(outName);
    if (!got) return `output ${k} (${outName}) was not computed`;
    const want = got.dtype === 'bfloat16' ? bfloat16FromBits(exp.tensor) : exp.tensor;
    const r = compareTensors(got, want, tolerance);
    if (!r.ok) return `output ${k} (${outName}): ${r.message}`;
  }
  return undefined;
}

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();

/** The input and expected output tensor files of one test_data_set_N directory. */
function readDataSet(set: string) {
  return {
    inputs: numberedTensorFiles(set, 'input').map((f) => readTensorFile(f)),
    expected: numberedTensorFiles(set, 'output').map((f) => readTensorFile(f)),
  };
}

/**
 * The result of a test that threw: `unsupported` for a UserError saying so, else `fail` with the
 * message on one line (prefixed with the error's name when it is a bug, cut to `maxMessage` chars).
 */
function errorResult(name: string, e: unknown, maxMessage?: number): TestResult {
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof UserError && UNSUPPORTED_ERROR.test(msg)) return { name, status: 'unsupported', message: oneLine(msg) };
  const kind = e instanceof UserError ? '' : `${e instanceof Error ? e.name : 'error'}: `;
  return { name, status: 'fail', message: oneLine(kind + msg).slice(0, maxMessage) };
}

/** Runs every backend test under `root`, sorted by name (`target: 'wgsl'` runs asynchronously). */
export function runConformance(root: string, opts: ConformanceOptions & { target: 'wgsl' }): Promise<ConformanceReport>;
export function runConformance(root: string, opts: ConformanceOptions & { target?: 'cpu' }): ConformanceReport;
export function runConformance(root: string, opts: ConformanceOptions): ConformanceReport | Promise<ConformanceReport>;
export function runConformance(root: string, opts: ConformanceOptions): ConformanceReport | Promise<ConformanceReport> {
  if (opts.target === 'wgsl') return runConformanceKernels(root, opts);
  const tests: TestResult[] = [];
  const names = listNodeTests(root).filter((t) => !opts.filter || opts.filter.test(t));
  opts.onProgress?.(0, names.length, 'tests');
  for (const t of names) {
    const r = runNodeTest(join(root, t), opts.registry, opts.tolerance);
    tests.push(r);
    opts.onResult?.(r);
    opts.onProgress?.(tests.length, names.length, 'tests');
  }
  return summarize(tests);
}

// ---- kernel targets (WGSL on WebGPU) -----------------------------------------------------

/** Dtypes the kernel targets run (int64 narrowed to i32 on the device). */
export const KERNEL_DTYPES: readonly string[] = ['float32', 'int32', 'int64', 'bool'];

/** Runs a graph on a kernel target: (graph, feeds) → outputs. */
export type KernelGraphRunner = (graph: Graph, feeds: ReadonlyMap<string, Tensor>) => Promise<Map<string, Tensor>>;

/**
 * One backend test on a kernel target. `unsupported` when an op lacks a lowering row, a value's
 * dtype is not float32/int32/int64/bool, or a lowering declines the node (`unsupported op ...`).
 */
export async function runNodeTestKernels(
  dir: string,
  registry: OpRegistry,
  run: KernelGraphRunner,
  table: LoweringTable,
  tolerance: Tolerance = ONNX_TEST_TOLERANCE,
): Promise<TestResult> {
  const name = basename(dir);
  const modelPath = join(dir, 'model.onnx');
  try {
    const missing = modelOps(modelPath)
      .filter((o) => !registry.has(o.op, o.domain) || !table.get(o.op, o.domain))
      .map((o) => (o.domain ? `${o.domain}.${o.op}` : o.op));
    if (missing.length) return { name, status: 'unsupported', message: `unsupported ops on wgsl: ${missing.join(', ')}` };
    const nonTensor = nonTensorValues(modelPath);
    if (nonTensor.length) return { name, status: 'unsupported', message: `unsupported value types (dense tensors only): ${nonTensor.join(', ')}` };
    const model = loadModel(modelPath);
    const g = model.graph;
    const values = [...g.inputs, ...g.outputs, ...g.initializers, ...g.nodes.flatMap((n) => n.outputs)];
    const badTypes = [...new Set(values.map((v) => v.dtype).filter((d): d is NonNullable<typeof d> => d !== undefined && !KERNEL_DTYPES.includes(d)))];
    if (badTypes.length) return { name, status: 'unsupported', message: `unsupported dtypes on wgsl: ${badTypes.join(', ')}` };
    const unlowered = unloweredOps(g, table);
    if (unlowered.length) return { name, status: 'unsupported', message: `unsupported ops on wgsl: ${unlowered.join(', ')}` };
    const sets = testDataSets(dir);
    if (sets.length === 0) return { name, status: 'fail', message: 'no test_data_set_N directory' };
    for (const set of sets) {
      const { inputs, expected } = readDataSet(set);
      const types = [...inputs, ...expected].map((t) => t.tensor.dtype).filter((d) => !KERNEL_DTYPES.includes(d));
      if (types.length) return { name, status: 'unsupported', message: `unsupported dtypes on wgsl: ${[...new Set(types)].join(', ')}` };
      const outputs = await run(g, feedsFromFiles(g, inputs, set));
      const mismatch = compareOutputs(g, outputs, expected, tolerance);
      if (mismatch) return { name, status: 'fail', message: `${basename(set)}: ${mismatch}` };
    }
    return { name, status: 'pass', message: '' };
  } catch (e) {
    return errorResult(name, e, 2000);
  }
}

/** Every backend test on one WebGPU device (acquired here, destroyed at the end). */
async function runConformanceKernels(root: string, opts: ConformanceOptions): Promise<ConformanceReport> {
  const names = listNodeTests(root).filter((t) => !opts.filter || opts.filter.test(t));
  const table = createLoweringTable();
  const gpu = await acquireDevice();
  try {
    const backend = new WebGPUBackend(gpu.device, gpu.description);
    const run: KernelGraphRunner = (graph, feeds) => runGraphOnBackend(graph, feeds, backend, { registry: opts.registry, table });
    const tests: TestResult[] = [];
    opts.onProgress?.(0, names.length, 'tests');
    for (const t of names) {
      const r = await runNodeTestKernels(join(root, t), opts.registry, run, table, opts.tolerance);
      tests.push(r);
      opts.onResult?.(r);
      opts.onProgress?.(tests.length, names.length, 'tests');
    }
    return summarize(tests);
  } finally {
    gpu.destroy();
  }
}

export function summarize(tests: TestResult[]): ConformanceReport {
  const count = (s: TestStatus): number => tests.filter((t) => t.status === s).length;
  return { tests, passed: count('pass'), failed: count('fail'), unsupported: count('unsupported') };
}
