/**
 * A Llama-3-70B-shaped graph (80 layers, hidden 8192, GQA 64/8 heads, FFN 28672, vocabulary 128256)
 * whose 282 GB of float32 weights are external data in a sparse file: import and inspect must
 * count its parameters from the declared shapes without reading any weight.
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LLAMA_70B, llamaModel, llamaParams } from '../../examples/models/transformers.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { loadModel } from '../../src/onnx/import.js';
import { summarizeModel } from '../../src/verify/model-summary.js';
import { requireBuild, shardc } from '../cli/run-cli.js';

let dir: string;
let modelPath: string;
let weightBytes: number;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'shardc-70b-'));
  const b = llamaModel(LLAMA_70B, 'weights.bin');
  weightBytes = b.externalBytes!;
  modelPath = join(dir, 'model.onnx');
  writeFileSync(modelPath, b.encode());
  const fd = openSync(join(dir, 'weights.bin'), 'w');
  ftruncateSync(fd, weightBytes); // sparse: no blocks written
  closeSync(fd);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the 70B graph declares ~70.6 billion parameters in a 282 GB external file', () => {
  expect(llamaParams(LLAMA_70B)).toBe(70_553_706_496);
  expect(weightBytes).toBe(4 * 70_553_706_496);
});

test('import and summary count the parameters without loading any weight', () => {
  const model = loadModel(modelPath);
  const external = model.graph.initializers.filter((v) => v.constant?.location.kind === 'external');
  expect(external.length).toBe(2 + 80 * 9 + 1);
  const summary = summarizeModel(model, createCoreRegistry(), { batch: 1, sequence: 128 });
  const declared = external.reduce((n, v) => n + v.constant!.size, 0);
  expect(declared).toBe(70_553_706_496);
  expect(summary.parameters.count).toBeGreaterThanOrEqual(declared);
  expect(summary.parameters.count).toBeLessThan(declared + 1_000_000); // plus small inline tables
  expect(external.every((v) => !v.constant!.loaded)).toBe(true);
  expect(summary.unsupported).toEqual([]);
  // 2·(matmul params)·tokens is the usual estimate of a forward pass (the embedding is a lookup);
  // attention scores and elementwise work add well under 1%.
  const matmulParams = 70_553_706_496 - 128256 * 8192 - (2 * 80 + 1) * 8192; // less embedding and norm gains
  expect(summary.flops.total).toBeGreaterThan(2 * matmulParams * 128);
  expect(summary.flops.total).toBeLessThan(1.01 * 2 * matmulParams * 128);
});

test('shardc inspect --json prints the parameter count', () => {
  requireBuild();
  const r = shardc('inspect', modelPath, '--json', '--dim', 'batch=1,sequence=128');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const doc = JSON.parse(r.stdout);
  expect(doc.parameters.count).toBeGreaterThanOrEqual(70_553_706_496);
  expect(doc.parameters.count).toBeLessThan(70_553_706_496 + 1_000_000);
});
