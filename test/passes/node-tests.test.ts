/**
 * The default pipeline must keep every ONNX backend node test that passes on the CPU runtime
 * passing (constant folding, canonicalisation, dead code and shape inference change no number),
 * with the verifier after every pass; and the text form round-trips every imported graph.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { parseGraph, printGraph } from '../../src/ir/text.js';
import { loadModel } from '../../src/onnx/import.js';
import { readTensorFile } from '../../src/onnx/tensor-file.js';
import { defaultPipeline } from '../../src/passes/index.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { ONNX_TEST_TOLERANCE } from '../../src/verify/compare.js';
import { compareOutputs, listNodeTests, runNodeTest } from '../../src/verify/conformance.js';
import { feedsFromFiles, numberedTensorFiles, testDataSets } from '../../src/verify/feeds.js';

const ROOT = join(__dirname, '..', '..', '..', 'shared', 'onnx-node-tests');
const registry = createCoreRegistry();
const full = { maxInlineElements: Infinity };

const describeIf = existsSync(ROOT) ? describe : describe.skip;

describeIf('default pipeline on the ONNX node tests', () => {
  it('keeps every passing test passing, and the text form round-trips', () => {
    const problems: string[] = [];
    let checked = 0;
    for (const t of listNodeTests(ROOT)) {
      const dir = join(ROOT, t);
      if (runNodeTest(dir, registry).status !== 'pass') continue;
      checked++;
      try {
        const g = loadModel(join(dir, 'model.onnx')).graph;
        const before = printGraph(g, full);
        if (printGraph(parseGraph(before), full) !== before) problems.push(`${t}: text round trip of the imported graph`);
        defaultPipeline({ registry, verifyEach: true }).run(g);
        const after = printGraph(g, full);
        if (printGraph(parseGraph(after), full) !== after) problems.push(`${t}: text round trip after the pipeline`);
        for (const set of testDataSets(dir)) {
          const inputs = numberedTensorFiles(set, 'input').map((f) => readTensorFile(f));
          const expected = numberedTensorFiles(set, 'output').map((f) => readTensorFile(f));
          const outputs = runGraph(g, feedsFromFiles(g, inputs, set), { registry });
          const bad = compareOutputs(g, outputs, expected, ONNX_TEST_TOLERANCE);
          if (bad) problems.push(`${t}: ${bad}`);
        }
      } catch (e) {
        problems.push(`${t}: ${(e as Error).message}`);
      }
    }
    expect(checked).toBeGreaterThan(600);
    expect(problems).toEqual([]);
  });
});
