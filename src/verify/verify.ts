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

export async function verifyModel(modelPath: string, opts: VerifyOptions): Promise<VerifyReport> {
  const tolerance = opts.tolerance ?? VERIFY_TOLERANCE;
  const model = loadModel(modelPath);
  const graph = model.graph;
  const missing = unsupportedOps(graph, opts.registry);
  if (missing.length)
    throw new UserError(`unsupported ops: ${missing.map((m) => `${m.op} (${m.nodes.length} node${m.nodes.length === 1 ? '' : 's'})`).join(', ')}`, {
      file: modelPath,
    });

  let feeds: Map<string, Tensor>;
  let expectedFiles: { name?: string; tensor: Tensor }[] = [];
  let source: 'file' | 'random' = 'random';
  if (opts.inputsDir !== undefined) {
    const dir = opts.inputsDir;
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`inputs directory does not exist`, { file: dir });
    const inputFiles = numberedTensorFiles(dir, 'input');
    if (inputFiles.length === 0) throw new UserError(`no input_<i>.pb or input_<i>.npy files`, { file: dir });
    feeds = feedsFromFiles(graph, inputFiles.map((f) => readTensorFile(f)), dir);
    expectedFiles = numberedTensorFiles(dir, 'output').map((f) => readTensorFile(f));
    source = 'file';
  } else {
    feeds = randomInputs(graph, { seed: opts.seed, dims: opts.dims });
  }

  const got = runGraph(graph, feeds, { registry: opts.registry });
  let expected: Map<string, Tensor>;
  let reference: VerifyReport['reference'];
  if (expectedFiles.length > 0) {
    if (expectedFiles.length !== graph.outputs.length)
      throw new UserError(`${expectedFiles.length} output files but the model has ${graph.outputs.length} outputs`, { file: opts.inputsDir });
    expected = new Map(graph.outputs.map((o, i) => [o.name, expectedFiles[i]!.tensor]));
    reference = 'test-data';
  } else {
    expected = await runWithOrt(modelPath, feeds);
    reference = 'onnxruntime';
  }

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
