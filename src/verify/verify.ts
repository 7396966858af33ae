/**
 * Whole-model verification on the CPU runtime: run a model and compare every output with a
 * reference, either the `output_<i>.pb` files of a test data set or onnxruntime-node on the same
 * inputs (from the data set, or seeded random inputs when none is given).
 *
 * `verifyModel` returns a report; `assertVerified` turns a mismatch into a VerificationError
 * (exit code 3 on the command line).
 */
import { existsSync, statSync } from 'node:fs';
import { VerificationError, UserError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import type { Tensor } from '../ir/tensor.js';
import { loadModel, unsupportedOps } from '../onnx/import.js';
import { readTensorFile } from '../onnx/tensor-file.js';
import { runGraph } from '../targets/cpu/interpreter.js';
import { type Tolerance, type WorstElement, compareTensors, formatNumber } from './compare.js';
import { feedsFromFiles, numberedTensorFiles } from './feeds.js';
import { runWithOrt } from './ort.js';
import { randomInputs } from './random-inputs.js';

/** Default tolerance for whole models (fp32 accumulation order differs from onnxruntime's). */
export const VERIFY_TOLERANCE: Tolerance = { rtol: 1e-3, atol: 1e-5 };

export interface VerifyOptions {
  registry: OpRegistry;
  /** A test data set directory: input_<i>.pb/.npy, and output_<i>.pb when present. */
  inputsDir?: string;
  tolerance?: Tolerance;
  /** Bindings of symbolic dims for random inputs (unbound: 1). */
  dims?: Readonly<Record<string, number>>;
  /** PRNG seed for random inputs (default 0). */
  seed?: number;
}

export interface OutputCheck {
  name: string;
  ok: boolean;
  /** Empty when ok. */
  message: string;
  dtype: string;
  shape: number[];
  mismatches: number;
  maxAbsDiff: number;
  worst?: WorstElement;
}

export interface VerifyReport {
  model: string;
  target: 'cpu';
  /** What the outputs were compared with. */
  reference: 'test-data' | 'onnxruntime';
  inputs: { name: string; dtype: string; shape: number[]; source: 'file' | 'random' }[];
  tolerance: Tolerance;
  ok: boolean;
  outputs: OutputCheck[];
}

/** The feeds of a verification run, with the expected outputs stored beside file inputs. */
export interface LoadedInputs {
  feeds: Map<string, Tensor>;
  /** output_<i> files of the inputs directory (empty for random inputs). */
  expectedFiles: { name?: string; tensor: Tensor }[];
  source: 'file' | 'random';
}

/** Feeds from `inputsDir` (input_<i>.pb/.npy, plus output_<i> when present), else random inputs. */
export function loadInputs(
  graph: Graph,
  opts: { inputsDir?: string; seed?: number; dims?: Readonly<Record<string, number>> },
): LoadedInputs {
  const dir = opts.inputsDir;
  if (dir === undefined) return { feeds: randomInputs(graph, { seed: opts.seed, dims: opts.dims }), expectedFiles: [], source: 'random' };
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`inputs directory does not exist`, { file: dir });
  const inputFiles = numberedTensorFiles(dir, 'input');
  if (inputFiles.length === 0) throw new UserError(`no input_<i>.pb or input_<i>.npy files`, { file: dir });
  const feeds = feedsFromFiles(graph, inputFiles.map((f) => readTensorFile(f)), dir);
  const expectedFiles = numberedTensorFiles(dir, 'output').map((f) => readTensorFile(f));
  return { feeds, expectedFiles, source: 'file' };
}

/** The reference outputs by output name: the expected output files when there are any, else onnxruntime on `feeds`. */
export async function referenceOutputs(
  modelPath: string,
  outputNames: readonly string[],
  feeds: ReadonlyMap<string, Tensor>,
  expectedFiles: readonly { name?: string; tensor: Tensor }[],
  inputsDir: string | undefined,
): Promise<{ expected: Map<string, Tensor>; kind: VerifyReport['reference'] }> {
  if (expectedFiles.length === 0) return { expected: await runWithOrt(modelPath, feeds), kind: 'onnxruntime' };
  if (expectedFiles.length !== outputNames.length)
    throw new UserError(`${expectedFiles.length} output files but the model has ${outputNames.length} outputs`, { file: inputsDir });
  return { expected: new Map(outputNames.map((n, i) => [n, expectedFiles[i]!.tensor])), kind: 'test-data' };
}

export async function verifyModel(modelPath: string, opts: VerifyOptions): Promise<VerifyReport> {
  const tolerance = opts.tolerance ?? VERIFY_TOLERANCE;
  const model = loadModel(modelPath);
  const graph = model.graph;
  const missing = unsupportedOps(graph, opts.registry);
  if (missing.length)
    throw new UserError(`unsupported ops: ${missing.map((m) => `${m.op} (${m.nodes.length} node${m.nodes.length === 1 ? '' : 's'})`).join(', ')}`, {
      file: modelPath,
    });

  const { feeds, expectedFiles, source } = loadInputs(graph, opts);
  const got = runGraph(graph, feeds, { registry: opts.registry });
  const { expected, kind: reference } = await referenceOutputs(modelPath, graph.outputs.map((o) => o.name), feeds, expectedFiles, opts.inputsDir);

  const outputs: OutputCheck[] = graph.outputs.map((o) => {
    const g = got.get(o.name)!;
    const e = expected.get(o.name);
    if (!e)
      return { name: o.name, ok: false, message: 'missing in the reference', dtype: g.dtype, shape: g.shape.slice(), mismatches: g.size, maxAbsDiff: 0 };
    const r = compareTensors(g, e, tolerance);
    return {
      name: o.name,
      ok: r.ok,
      message: r.message,
      dtype: g.dtype,
      shape: g.shape.slice(),
      mismatches: r.mismatches,
      maxAbsDiff: r.maxAbsDiff,
      worst: r.worst,
    };
  });
  return {
    model: modelPath,
    target: 'cpu',
    reference,
    inputs: [...feeds.entries()].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape.slice(), source })),
    tolerance,
    ok: outputs.every((o) => o.ok),
    outputs,
  };
}

/** One line per output: `ok logits float32[1,8,96] max |diff| 2.3e-7` or the mismatch. */
export function formatVerifyReport(r: VerifyReport): string[] {
  const lines = [`${r.model}: cpu vs ${r.reference === 'onnxruntime' ? 'onnxruntime-node' : 'test data'} (rtol ${r.tolerance.rtol}, atol ${r.tolerance.atol})`];
  for (const o of r.outputs) {
    const what = `${o.name} ${o.dtype}[${o.shape.join(',')}]`;
    lines.push(o.ok ? `  ok ${what} max |diff| ${formatNumber(Number(o.maxAbsDiff.toPrecision(2)))}` : `  MISMATCH ${what}: ${o.message}`);
  }
  return lines;
}

/** Throws a VerificationError naming the first mismatching output and its worst element. */
export function assertVerified(r: VerifyReport): void {
  const bad = r.outputs.find((o) => !o.ok);
  if (bad) throw new VerificationError(`output ${JSON.stringify(bad.name)} differs from ${r.reference === 'onnxruntime' ? 'onnxruntime-node' : 'the test data'}: ${bad.message}`);
}
