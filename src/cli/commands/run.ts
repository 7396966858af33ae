/**
 * `shardc run <model.onnx | bundle-dir> --inputs <dir> [--outputs <dir>] [--target cpu]`:
 * runs a model on the CPU runtime, or a bundle (from `shardc partition`) on the simulated
 * multi-device CPU runtime with the bundle's per-device programs and weights. Inputs are input_<i>.pb (TensorProto) or .npy files; outputs
 * are written as output_<i>.pb (or summarised on stdout without --outputs). Every output is
 * computed before anything is written, and files go through a temporary name, so a failure
 * leaves no half-written output.
 */
import { Command } from 'commander';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadBundleForRun } from '../../bundle/run.js';
import { UserError } from '../../ir/errors.js';
import { createCoreRegistry } from '../../ir/ops/index.js';
import type { Tensor } from '../../ir/tensor.js';
import { loadModel, unsupportedOps } from '../../onnx/import.js';
import { readTensorFile, writeTensorFile } from '../../onnx/tensor-file.js';
import { runGraph } from '../../targets/cpu/interpreter.js';
import { formatNumber } from '../../verify/compare.js';
import { feedsFromFiles, numberedTensorFiles } from '../../verify/feeds.js';
import { type CliContext, printJson, println, requireCpuTarget, type CommandState, verbosity, helpExamples } from '../context.js';

interface RunOptions {
  inputs: string;
  outputs?: string;
  target?: string;
  json?: boolean;
}

export function runCommand(ctx: CliContext, _state: CommandState): Command {
  return new Command('run')
    .description('run a model, or a partitioned bundle on simulated devices, on inputs from a directory')
    .addHelpText(
      'after',
      helpExamples([
      ['run a model on the CPU runtime and print the outputs', 'shardc run examples/gpt-tiny.onnx --inputs test_data_set_0'],
      ['run a bundle (simulated devices, or WebGPU for a wgsl bundle) and write output_<i>.pb', 'shardc run out --inputs test_data_set_0 --outputs results'],
      ]),
    )
    .argument('<model>', 'ONNX model file, or a bundle directory written by `shardc partition`')
    .requiredOption('--inputs <dir>', 'directory with input_<i>.pb or input_<i>.npy')
    .option('--outputs <dir>', 'write output_<i>.pb here')
    .option('--target <target>', 'cpu (a bundle runs on its own target: wgsl bundles on WebGPU)', 'cpu')
    .option('--json', 'print one JSON document: {outputs: [{name, dtype, shape, values (the first 8)}], outputsDir}')
    .action(async (modelPath: string, opts: RunOptions, command: Command) => {
      const level = verbosity(command);
      requireCpuTarget(opts.target);
      const outputs =
        existsSync(modelPath) && statSync(modelPath).isDirectory() ? await runBundleOnTarget(modelPath, opts.inputs) : runModelOnFiles(modelPath, opts.inputs);
      if (opts.outputs !== undefined) writeOutputs(opts.outputs, outputs);
      if (opts.json) printJson(ctx, { outputs: outputs.map((o) => tensorJson(o.name, o.tensor)), outputsDir: opts.outputs ?? null });
      else if (opts.outputs !== undefined) {
        if (level !== 'quiet') println(ctx.stdout, `wrote ${outputs.length} output${outputs.length === 1 ? '' : 's'} to ${opts.outputs}`);
      } else for (const [i, o] of outputs.entries()) println(ctx.stdout, describeTensor(`output_${i} ${o.name}`, o.tensor));
    });
}

/** Runs a model on input_<i> files; returns outputs in graph order. */
export function runModelOnFiles(modelPath: string, inputsDir: string): { name: string; tensor: Tensor }[] {
  if (!existsSync(inputsDir) || !statSync(inputsDir).isDirectory()) throw new UserError(`inputs directory does not exist`, { file: inputsDir });
  const model = loadModel(modelPath);
  const registry = createCoreRegistry();
  const missing = unsupportedOps(model.graph, registry);
  if (missing.length) throw new UserError(`unsupported ops: ${missing.map((m) => m.op).join(', ')}`, { file: modelPath });
  const files = numberedTensorFiles(inputsDir, 'input');
  if (files.length === 0) throw new UserError(`no input_<i>.pb or input_<i>.npy files`, { file: inputsDir });
  const feeds = feedsFromFiles(model.graph, files.map((f) => readTensorFile(f)), inputsDir);
  const result = runGraph(model.graph, feeds, { registry });
  return model.graph.outputs.map((o) => ({ name: o.name, tensor: result.get(o.name)! }));
}

/** Runs a bundle on input_<i> files (global tensors); returns the global outputs in graph order. */
export function runBundleOnFiles(bundleDir: string, inputsDir: string): { name: string; tensor: Tensor }[] {
  if (!existsSync(inputsDir) || !statSync(inputsDir).isDirectory()) throw new UserError(`inputs directory does not exist`, { file: inputsDir });
  const bundle = loadBundleForRun(bundleDir, createCoreRegistry());
  const files = numberedTensorFiles(inputsDir, 'input');
  if (files.length === 0) throw new UserError(`no input_<i>.pb or input_<i>.npy files`, { file: inputsDir });
  return bundle.run(feedsFromFiles(bundle.globalGraph, files.map((f) => readTensorFile(f)), inputsDir));
}

/** Runs a bundle on its target (a wgsl bundle on WebGPU devices); global outputs in graph order. */
export async function runBundleOnTarget(bundleDir: string, inputsDir: string): Promise<{ name: string; tensor: Tensor }[]> {
  if (!existsSync(inputsDir) || !statSync(inputsDir).isDirectory()) throw new UserError(`inputs directory does not exist`, { file: inputsDir });
  const bundle = loadBundleForRun(bundleDir, createCoreRegistry());
  const files = numberedTensorFiles(inputsDir, 'input');
  if (files.length === 0) throw new UserError(`no input_<i>.pb or input_<i>.npy files`, { file: inputsDir });
  return bundle.runOnTarget(feedsFromFiles(bundle.globalGraph, files.map((f) => readTensorFile(f)), inputsDir));
}

function writeOutputs(dir: string, outputs: { name: string; tensor: Tensor }[]): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UserError(`--outputs is not a directory`, { file: dir });
  mkdirSync(dir, { recursive: true });
  const tmp = `.shardc-tmp-${process.pid}`;
  outputs.forEach((o, i) => writeTensorFile(join(dir, `${tmp}-output_${i}.pb`), o.tensor, o.name));
  outputs.forEach((_, i) => renameSync(join(dir, `${tmp}-output_${i}.pb`), join(dir, `output_${i}.pb`)));
}

/** An output for --json: name, dtype, shape and the first values (NaN and ±Infinity as strings). */
export function tensorJson(name: string, t: Tensor, max = 8): { name: string; dtype: string; shape: number[]; values: (number | string)[] } {
  const values: (number | string)[] = [];
  for (let i = 0; i < Math.min(max, t.size); i++) {
    if (t.dtype === 'string') values.push(t.strings![i]!);
    else {
      const v = Number(t.data[i]!);
      values.push(Number.isFinite(v) ? v : String(v));
    }
  }
  return { name, dtype: t.dtype, shape: [...t.shape], values };
}

/** `name dtype[shape] = [v0, v1, ...]` (first values only). */
export function describeTensor(label: string, t: Tensor, max = 8): string {
  const vals: string[] = [];
  for (let i = 0; i < Math.min(max, t.size); i++) vals.push(t.dtype === 'string' ? JSON.stringify(t.strings![i]) : formatNumber(t.data[i]!));
  return `${label}: ${t.dtype}[${t.shape.join(',')}] = [${vals.join(', ')}${t.size > max ? ', ...' : ''}]`;
}
