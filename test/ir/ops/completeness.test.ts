/** Every core op (../shared/onnx-node-tests/CORE_OPS.txt) has a row in the IR op registry. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCoreRegistry } from '../../../src/ir/ops/index.js';

const CORE = join(__dirname, '..', '..', '..', '..', 'shared', 'onnx-node-tests', 'CORE_OPS.txt');

test('every core op has a row (schema, inference, reference evaluation)', () => {
  expect(existsSync(CORE)).toBe(true);
  const ops = readFileSync(CORE, 'utf8').split(/\s+/).filter(Boolean);
  expect(ops.length).toBe(122);
  const registry = createCoreRegistry();
  const missing = ops.filter((op) => !registry.has(op));
  expect(missing).toEqual([]);
});

test('every row names a family and sane arities', () => {
  for (const def of createCoreRegistry().list()) {
    expect(['elementwise', 'matmul', 'reduce', 'shape', 'normalization', 'conv', 'attention', 'collective']).toContain(def.family);
    expect(def.inputs[0]).toBeLessThanOrEqual(def.inputs[1]);
    expect(def.outputs[0]).toBeGreaterThanOrEqual(1);
  }
});
