import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor } from '../../src/ir/tensor.js';
import { loadModel } from '../../src/onnx/import.js';
import { writeTensorFile } from '../../src/onnx/tensor-file.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { bindingsFromFeeds } from '../../src/verify/sharded.js';
import { GPT_TINY, cli, expectUserError } from './cli-helper.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-verify-sharded-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const IDS = Tensor.from('int64', [1, 8], [5, 17, 0, 95, 42, 42, 7, 63]);

describe('shardc verify --mesh --strategy --target cpu', () => {
  it('--json compares the sharded run with the unsharded run and with onnxruntime-node', async () => {
    const r = await cli('verify', GPT_TINY, '--mesh', 'tp=2', '--strategy', 'megatron', '--dim', 'batch=1,sequence=8', '--target', 'cpu', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ target: 'cpu', mesh: 'tp=2', strategy: 'megatron', devices: 2, ok: true, bindings: { batch: 1, sequence: 8 } });
    expect(doc.collectives).toBeGreaterThan(0);
    expect(doc.unsharded.tolerance).toEqual({ rtol: 1e-5, atol: 1e-6 });
    expect(doc.unsharded.outputs.map((o: { name: string; ok: boolean; shape: number[] }) => [o.name, o.ok, o.shape])).toEqual([['logits', true, [1, 8, 96]]]);
    expect(doc.reference.kind).toBe('onnxruntime');
    expect(doc.reference.outputs[0]).toMatchObject({ name: 'logits', ok: true });
    expect(doc.unsharded.outputs[0].maxAbsDiff).toBeLessThan(1e-5);
  });

  it('with a test data set: exit 3 naming the worst element when the expected output is wrong', async () => {
    const set = join(tmp, 'test_data_set_0');
    mkdirSync(set);
    writeTensorFile(join(set, 'input_0.pb'), IDS, 'input_ids');
    const want = runGraph(loadModel(GPT_TINY).graph, new Map([['input_ids', IDS]]), { registry: createCoreRegistry() }).get('logits')!;
    const wrong = Tensor.from('float32', want.shape, want.data);
    wrong.data[2 * 96 + 5] += 0.5; // [0, 2, 5]
    writeTensorFile(join(set, 'output_0.pb'), wrong, 'logits');
    const r = await cli('verify', GPT_TINY, '--mesh', 'tp=2', '--strategy', 'megatron', '--inputs', set);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/vs the unsharded cpu run \(rtol 0\.00001, atol 0\.000001\)\n {4}ok logits float32\[1,8,96\]/);
    expect(r.stdout).toMatch(/vs the test data .*\n {4}MISMATCH logits/);
    expect(r.stderr).toMatch(/^shardc: verification failed: sharded output "logits" differs from the test data: 1 of 768 elements differ; worst at \[0,2,5\]/);
    const j = await cli('verify', GPT_TINY, '--mesh', 'tp=2', '--strategy', 'megatron', '--inputs', set, '--json');
    expect(j.code).toBe(3);
    const doc = JSON.parse(j.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.unsharded.ok).toBe(true);
    expect(doc.reference).toMatchObject({ kind: 'test-data', ok: false });
    expect(doc.reference.outputs[0].worst.index).toEqual([0, 2, 5]);
  });

  it('bad input is exit 1', async () => {
    expectUserError(await cli('verify', GPT_TINY, '--strategy', 'megatron'), /--strategy needs --mesh/);
    expectUserError(await cli('verify', GPT_TINY, '--mesh', 'tp=2', '--strategy', 'zigzag'), /unknown strategy "zigzag"/);
    expectUserError(await cli('verify', GPT_TINY, '--mesh', 'tp=2', '--target', 'cuda'), /target cuda is not implemented yet/);
  });

  it('binds symbolic dims from the fed inputs', () => {
    const g = loadModel(GPT_TINY).graph;
    expect(bindingsFromFeeds(g, new Map([['input_ids', Tensor.zeros('int64', [3, 5])]]))).toEqual({ batch: 3, sequence: 5 });
    expect(bindingsFromFeeds(g, new Map([['input_ids', Tensor.zeros('int64', [3, 5])]]), { batch: 3, other: 2 })).toEqual({ batch: 3, sequence: 5, other: 2 });
  });
});
