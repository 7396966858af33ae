/**
 * CPU runtime on a 12-layer BERT-base-shaped encoder (hidden 768, 12 heads, FFN 3072, vocabulary
 * 30522, sequence 128), against onnxruntime-node on the same inputs in the same run.
 * Prints figures and ratios; never a pass/fail timing.
 *   npx tsx bench/cpu-runtime.ts [--sequence 128] [--runs 3]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bertModel } from '../examples/models/transformers.js';
import { createCoreRegistry } from '../src/ir/ops/index.js';
import { loadModel } from '../src/onnx/import.js';
import { defaultPipeline } from '../src/passes/manager.js';
import { runGraph } from '../src/targets/cpu/interpreter.js';
import { compareTensors } from '../src/verify/compare.js';
import * as ort from 'onnxruntime-node';
import { fromOrt, toOrt } from '../src/verify/ort.js';
import { randomInputs } from '../src/verify/random-inputs.js';

const { values } = parseArgs({ options: { sequence: { type: 'string', default: '128' }, runs: { type: 'string', default: '3' } } });
const sequence = Number(values.sequence);
const runs = Number(values.runs);

const dir = mkdtempSync(join(tmpdir(), 'shardc-bench-'));
const file = join(dir, 'bert-base.onnx');
writeFileSync(file, bertModel({ vocab: 30522, hidden: 768, heads: 12, layers: 12, ffn: 3072, maxSeq: 512, opset: 14, seed: 5 }).encode());

const registry = createCoreRegistry();
const model = loadModel(file);
defaultPipeline({ registry, bindings: { batch: 1, sequence } }).run(model.graph);
const feeds = randomInputs(model.graph, { seed: 1, dims: { batch: 1, sequence } });

function time(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

runGraph(model.graph, feeds, { registry }); // warm-up
const ours: number[] = [];
let out = runGraph(model.graph, feeds, { registry });
for (let i = 0; i < runs; i++) ours.push(time(() => (out = runGraph(model.graph, feeds, { registry }))));

// The peer: onnxruntime-node, one session (all optimisations on), CPU tensors in and out, after warm-up.
const session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'] });
const ortFeeds = Object.fromEntries([...feeds].map(([k, t]) => [k, toOrt(t)]));
await session.run(ortFeeds);
const ortTimes: number[] = [];
let ortOut: ort.InferenceSession.ReturnType = {};
for (let i = 0; i < runs; i++) {
  const t = performance.now();
  ortOut = await session.run(ortFeeds);
  ortTimes.push(performance.now() - t);
}
const ref = fromOrt(ortOut['last_hidden_state']!);
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const check = compareTensors(out.get('last_hidden_state')!, ref, { rtol: 1e-3, atol: 1e-3 });

console.log(`BERT-base (12 layers, hidden 768, seq ${sequence}), median of ${runs} runs`);
console.log(`  shardc cpu runtime        ${median(ours).toFixed(0)} ms`);
console.log(`  onnxruntime-node (1 session, ${ort.env.versions?.common ?? ''} default threads) ${median(ortTimes).toFixed(0)} ms`);
console.log(`  ratio shardc / onnxruntime-node: ${(median(ours) / median(ortTimes)).toFixed(2)}`);
console.log(`  max |shardc - onnxruntime| = ${check.maxAbsDiff.toExponential(2)} (${check.ok ? 'within' : 'NOT within'} rtol 1e-3, atol 1e-3)`);
rmSync(dir, { recursive: true, force: true });
