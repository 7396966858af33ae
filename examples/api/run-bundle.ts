/**
 * Running a bundle from Node: `npx tsx examples/api/run-bundle.ts [bundle-dir]`.
 *
 * Without a bundle directory, partitions examples/gpt-tiny.onnx over tp=2 into a temporary folder
 * first (as `shardc partition` would). Loads the bundle (every file's SHA-256 checked), runs it on
 * its target (a cpu bundle on simulated devices, a wgsl bundle on WebGPU), and compares the
 * logits with the unsharded model on the CPU runtime. Exit 3 when they differ.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareTensors, createCoreRegistry, defaultPipeline, loadBundleForRun, loadModel, partitionModel, randomInputs, runGraph } from '../../src/index.js';

const MODEL = join(process.cwd(), 'examples', 'gpt-tiny.onnx');
const DIMS = { batch: 1, sequence: 8 };

let dir = process.argv[2];
if (dir === undefined) {
  dir = join(mkdtempSync(join(tmpdir(), 'shardc-run-')), 'gpt-tiny.tp2');
  const r = partitionModel(MODEL, { mesh: 'tp=2', strategy: 'megatron', target: 'cpu', bindings: DIMS, out: dir, shardcVersion: 'example' });
  console.log(`partitioned into ${r.bundle} (manifest sha256 ${r.manifestSha256.slice(0, 16)}…)`);
}

const registry = createCoreRegistry();
const bundle = loadBundleForRun(dir, registry);
const feeds = randomInputs(bundle.globalGraph, { seed: 3 });
const outputs = await bundle.runOnTarget(feeds);

const reference = loadModel(MODEL).graph;
defaultPipeline({ registry, bindings: DIMS }).run(reference);
const want = runGraph(reference, feeds, { registry });
let failed = false;
for (const { name, tensor } of outputs) {
  const c = compareTensors(tensor, want.get(name)!, { rtol: 1e-4, atol: 1e-5 });
  console.log(`${name} [${tensor.shape.join(',')}] on ${bundle.target}: ${c.message || 'matches the unsharded model'}`);
  failed ||= c.message !== '';
}
process.exitCode = failed ? 3 : 0;
