/**
 * The example models through the whole path: partition → bundle on disk → run the bundle alone on
 * simulated devices → compare with the unsharded CPU run (rtol 1e-5, atol 1e-6).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { partitionModel } from '../../src/bundle/partition.js';
import { loadBundleForRun } from '../../src/bundle/run.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { loadModel } from '../../src/onnx/import.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { PACKAGE_ROOT } from './cli-helper.js';

const registry = createCoreRegistry();
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-bundle-models-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const CASES: [model: string, mesh: string, strategy: string, dims: Record<string, number>][] = [
  ['gpt-tiny', 'tp=4', 'megatron', { batch: 1, sequence: 8 }],
  ['gpt-tiny', 'tp=3', 'megatron', { batch: 1, sequence: 8 }],
  ['bert-tiny', 'tp=2', 'megatron', { batch: 2, sequence: 8 }],
  ['llama-tiny', 'tp=2', 'megatron', { batch: 1, sequence: 8 }],
  ['gpt-tiny', 'dp=2', 'data', { batch: 2, sequence: 8 }],
  ['gpt-tiny', 'dp=2,tp=2', 'data+megatron', { batch: 2, sequence: 8 }],
  ['cnn-tiny', 'dp=2', 'data', { batch: 2 }],
];

describe.each(CASES)('%s on %s (%s)', (model, mesh, strategy, dims) => {
  it('the bundle run alone equals the unsharded run', () => {
    const file = join(PACKAGE_ROOT, 'examples', `${model}.onnx`);
    const out = join(tmp, `${model}-${mesh}-${strategy}`);
    const r = partitionModel(file, { mesh, strategy, target: 'cpu', bindings: dims, out, shardcVersion: '0.1.0' });
    expect(r.devices).toBe(mesh.split(',').reduce((n, a) => n * Number(a.split('=')[1]), 1));
    const graph = loadModel(file).graph;
    const feeds = randomInputs(graph, { dims, seed: 1 });
    const want = runGraph(graph, feeds, { registry });
    const got = loadBundleForRun(out, registry).run(feeds);
    expect(got.map((o) => o.name)).toEqual(graph.outputs.map((o) => o.name));
    for (const o of got) expect(compareTensors(o.tensor, want.get(o.name)!, { rtol: 1e-5, atol: 1e-6 }).message).toBe('');
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    for (const c of report.collectives) expect(c.reason.trim()).not.toBe('');
  });
});

it('megatron at tp=4 on a weight-dominated model: per-device peak memory ≤ 0.3× the unsharded peak', () => {
  const out = join(tmp, 'gpt-tiny-tp4-memory');
  partitionModel(join(PACKAGE_ROOT, 'examples', 'gpt-tiny.onnx'), { mesh: 'tp=4', strategy: 'megatron', target: 'cpu', bindings: { batch: 1, sequence: 8 }, out, shardcVersion: '0.1.0' });
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  expect(report.unsharded.paramBytes / report.unsharded.peakMemoryBytes).toBeGreaterThan(0.8);
  for (const d of report.devices) expect(d.peakMemoryBytes).toBeLessThanOrEqual(0.3 * report.unsharded.peakMemoryBytes);
});
