/**
 * Whole models: the generated transformer examples and the core-op models of
 * ../shared/onnx-simple-tests run on the CPU runtime and match onnxruntime-node.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { loadModel } from '../../src/onnx/import.js';
import { defaultPipeline } from '../../src/passes/manager.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { compareTensors } from '../../src/verify/compare.js';
import { feedsFromFiles, numberedTensorFiles } from '../../src/verify/feeds.js';
import { readTensorFile } from '../../src/onnx/tensor-file.js';
import { runWithOrt } from '../../src/verify/ort.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { verifyModel } from '../../src/verify/verify.js';
import { EXAMPLE_MODELS } from '../../examples/models/index.js';

const ROOT = join(__dirname, '..', '..');
const SIMPLE = join(ROOT, '..', 'shared', 'onnx-simple-tests');
const registry = createCoreRegistry();
const TOL = { rtol: 1e-4, atol: 1e-5 };

describe('generated example models', () => {
  // cnn-tiny has no sequence dim (output [batch, 10]); test/examples/more-models.test.ts covers it.
  for (const [name, make] of Object.entries(EXAMPLE_MODELS).filter(([n]) => n !== 'cnn-tiny.onnx')) {
    const file = join(ROOT, 'examples', name);

    test(`${name} is up to date with examples/generate.ts`, () => {
      expect(Buffer.from(make()).equals(readFileSync(file))).toBe(true);
    });

    for (const dims of [{ batch: 1, sequence: 5 }, { batch: 2, sequence: 16 }]) {
      test(`${name} matches onnxruntime-node at 1e-4 (batch=${dims.batch}, sequence=${dims.sequence})`, async () => {
        const r = await verifyModel(file, { registry, tolerance: TOL, dims, seed: 7 });
        expect(r.reference).toBe('onnxruntime');
        for (const o of r.outputs) expect(o.message).toBe('');
        expect(r.ok).toBe(true);
        expect(r.outputs[0]!.shape).toEqual([dims.batch, dims.sequence, expect.any(Number)]);
      });
    }

    test(`${name} still matches after the default pass pipeline`, async () => {
      const model = loadModel(file);
      const feeds = randomInputs(model.graph, { seed: 3, dims: { batch: 2, sequence: 6 } });
      const before = model.graph.nodes.length;
      defaultPipeline({ registry, verifyEach: true }).run(model.graph);
      expect(model.graph.nodes.length).toBeLessThan(before); // constants folded
      const got = runGraph(model.graph, feeds, { registry });
      const want = await runWithOrt(file, feeds);
      for (const [k, t] of want) expect(compareTensors(got.get(k)!, t, TOL).message).toBe('');
    });
  }
});

describe('onnx-simple-tests with core ops', () => {
  const dirs = existsSync(SIMPLE) ? readdirSync(SIMPLE).sort() : [];
  const core = dirs.filter((d) => /^test_(expand_shape_model\d|shrink|sign_model|single_relu_model)$/.test(d));

  test('the core-op models are present', () => {
    expect(core.length).toBe(7);
  });

  for (const d of core) {
    test(`${d}: test data and onnxruntime-node agree with the CPU runtime`, async () => {
      const model = join(SIMPLE, d, 'model.onnx');
      const sets = readdirSync(join(SIMPLE, d)).filter((s) => s.startsWith('test_data_set_'));
      expect(sets.length).toBeGreaterThan(0);
      for (const s of sets) {
        const r = await verifyModel(model, { registry, inputsDir: join(SIMPLE, d, s), tolerance: TOL });
        expect(r.reference).toBe('test-data');
        expect(r.ok).toBe(true);
      }
      // Some of these models take shapes as inputs, so onnxruntime gets the test data's inputs.
      const graph = loadModel(model).graph;
      const dir = join(SIMPLE, d, sets[0]!);
      const feeds = feedsFromFiles(graph, numberedTensorFiles(dir, 'input').map((f) => readTensorFile(f)), dir);
      const got = runGraph(graph, feeds, { registry });
      const want = await runWithOrt(model, feeds);
      expect(want.size).toBe(graph.outputs.length);
      for (const [k, t] of want) expect(compareTensors(got.get(k)!, t, TOL).message).toBe('');
    });
  }
});
