/**
 * The preamble the WebGPU bench scripts share (webgpu-tp.ts, webgpu-vs-ort-web.ts): their common
 * flags, the package root, and the larger GPT-like model (src/bench/models.ts) written to a
 * temporary file for the length of the benchmark. Under bench/lib/ so that `npm run bench`
 * (bench/run.ts runs the top-level files) does not run it as a benchmark of its own.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gptModel } from '../../examples/models/transformers.js';
import { GPT_BENCH } from '../../src/bench/models.js';

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface WebGPUBenchFlags {
  runs: number;
  warmup: number;
  /** Sequence length of the GPT-like model's input. */
  sequence: number;
  engine: 'compiled' | 'interpretive';
  fuse: boolean;
}

/** `[--runs 5] [--warmup 2] [--sequence 64] [--engine compiled|interpretive] [--no-fuse]` from argv. */
export function webgpuBenchFlags(): WebGPUBenchFlags {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '2' },
      sequence: { type: 'string', default: '64' },
      engine: { type: 'string', default: 'compiled' },
      'no-fuse': { type: 'boolean', default: false },
    },
  });
  if (values.engine !== 'compiled' && values.engine !== 'interpretive') throw new Error(`--engine ${values.engine}: expected compiled or interpretive`);
  return { runs: Number(values.runs), warmup: Number(values.warmup), sequence: Number(values.sequence), engine: values.engine, fuse: !values['no-fuse'] };
}

/** Runs `f` with the GPT-like bench model in a temporary ONNX file (removed afterwards). */
export async function withGptBenchModel<T>(f: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'shardc-bench-'));
  try {
    const file = join(dir, 'gpt-l4-h256.onnx');
    writeFileSync(file, gptModel({ ...GPT_BENCH }).encode());
    return await f(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
