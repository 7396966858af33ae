/**
 * The default pipeline on a Llama-3-70B-shaped graph whose 282 GB of weights are a sparse external
 * file: it must finish quickly, never load a large weight, make every shape static under
 * `--dim batch=1,sequence=128`, and find every layer's patterns.
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LLAMA_70B, llamaModel } from '../../examples/models/transformers.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { loadModel } from '../../src/onnx/import.js';
import { MAX_EXTERNAL_CONSTANT_LOAD, defaultPipeline, findPatterns } from '../../src/passes/index.js';

let dir: string;
let modelPath: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'shardc-70b-passes-'));
  const b = llamaModel(LLAMA_70B, 'weights.bin');
  modelPath = join(dir, 'model.onnx');
  writeFileSync(modelPath, b.encode());
  const fd = openSync(join(dir, 'weights.bin'), 'w');
  ftruncateSync(fd, b.externalBytes!);
  closeSync(fd);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the default pipeline runs on the 70B graph without loading its weights', () => {
  const g = loadModel(modelPath).graph;
  const big = g.initializers.filter((v) => v.constant!.location.kind === 'external' && v.constant!.size > MAX_EXTERNAL_CONSTANT_LOAD);
  expect(big.length).toBe(2 + 80 * 7); // embedding, LM head, 7 matrices per layer
  const pm = defaultPipeline({ registry: createCoreRegistry(), verifyEach: true, bindings: { batch: 1, sequence: 128 } });
  pm.run(g);
  expect(big.every((v) => !v.constant!.loaded)).toBe(true);
  expect(big.every((v) => g.initializers.includes(v))).toBe(true);
  for (const n of g.nodes) for (const o of n.outputs) expect(o.shape?.every((d) => typeof d === 'number')).toBe(true);
  expect(g.outputs[0]!.shape).toEqual([1, 128, 128256]);
  const counts: Record<string, number> = {};
  for (const p of findPatterns(g)) counts[p.kind] = (counts[p.kind] ?? 0) + 1;
  expect(counts).toEqual({ RMSNorm: 161, RoPE: 160, Attention: 80, SwiGLU: 80 });
});
