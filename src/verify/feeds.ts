/**
 * Test data sets on disk: `test_data_set_N/` directories, numbered `input_K`/`output_K` tensor
 * files, and feeding them to a graph's inputs.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import { bf16BitsToF32 } from '../ir/dtype.js';
import { Tensor } from '../ir/tensor.js';

/** `test_data_set_N` directories of a test, in numeric order. */
export function testDataSets(dir: string): string[] {
  return readdirSync(dir)
    .filter((d) => /^test_data_set_\d+$/.test(d) && statSync(join(dir, d)).isDirectory())
    .sort((a, b) => Number(a.slice(14)) - Number(b.slice(14)))
    .map((d) => join(dir, d));
}

/** `<prefix>_K.pb` (or .npy) files of a data set, in K order. */
export function numberedTensorFiles(dir: string, prefix: 'input' | 'output'): string[] {
  const re = new RegExp(`^${prefix}_(\\d+)\\.(pb|npy)$`);
  return readdirSync(dir)
    .map((f) => ({ f, m: re.exec(f) }))
    .filter((x): x is { f: string; m: RegExpExecArray } => x.m !== null)
    .sort((a, b) => Number(a.m[1]) - Number(b.m[1]))
    .map((x) => join(dir, x.f));
}

/** Graph inputs that the caller must feed (those without an initializer default). */
export function requiredInputs(graph: Graph): Graph['inputs'] {
  return graph.inputs.filter((v) => !v.constant);
}

/**
 * Feeds from tensor files: by the name stored in the files when every name matches a distinct
 * graph input, else by position among the inputs that have no initializer.
 */
export function feedsFromFiles(graph: Graph, files: { name?: string; tensor: Tensor }[], where: string): Map<string, Tensor> {
  const inputs = requiredInputs(graph);
  const all = new Set(graph.inputs.map((v) => v.name));
  const names = files.map((f) => f.name ?? '');
  const byName = names.every((n) => n !== '' && all.has(n)) && new Set(names).size === names.length;
  const feeds = new Map<string, Tensor>();
  const byValue = new Map(graph.inputs.map((v) => [v.name, v]));
  const feed = (name: string, t: Tensor): void => {
    feeds.set(name, byValue.get(name)?.dtype === 'bfloat16' ? bfloat16FromBits(t) : t);
  };
  if (byName) {
    files.forEach((f) => feed(f.name!, f.tensor));
    return feeds;
  }
  if (files.length > inputs.length)
    throw new UserError(`${files.length} input files but the model has ${inputs.length} inputs`, { file: where });
  files.forEach((f, i) => feed(inputs[i]!.name, f.tensor));
  return feeds;
}

/**
 * numpy has no bfloat16, so ONNX test data stores bfloat16 tensors as uint16 bit patterns. A
 * uint16 tensor becomes the bfloat16 tensor those bits encode; any other tensor is returned as is.
 */
export function bfloat16FromBits(t: Tensor): Tensor {
  if (t.dtype !== 'uint16') return t;
  const out = new Float32Array(t.size);
  for (let i = 0; i < out.length; i++) out[i] = bf16BitsToF32(t.data[i]!);
  return new Tensor('bfloat16', t.shape, out);
}
