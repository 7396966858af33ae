/**
 * wgsl bundles: `partition --target wgsl` writes device-<r>/kernels.wgsl (byte-identical when
 * partitioned twice; hostile tensor and node names cannot break out of comments), `run <bundle>`
 * runs it on WebGPU devices (SwiftShader in CI) and matches the CPU runtime, and
 * `verify --target wgsl --mesh` compares the WebGPU sharded run with the CPU and onnxruntime-node.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Attrs } from '../../src/ir/attrs.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { LazyTensor, Tensor } from '../../src/ir/tensor.js';
import { exportModel } from '../../src/onnx/export.js';
import { loadModel } from '../../src/onnx/import.js';
import { readTensorFile, writeTensorFile } from '../../src/onnx/tensor-file.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { commentSafe, wgslIdentifier } from '../../src/bundle/wgsl.js';
import { compareTensors } from '../../src/verify/compare.js';
import { GPT_TINY, cli, listFiles } from './cli-helper.js';

jest.setTimeout(180_000);

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-wgsl-bundle-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const IDS = Tensor.from('int64', [1, 8], [5, 17, 0, 95, 42, 42, 7, 63]);

describe('partition --target wgsl', () => {
  it('writes kernels.wgsl per device, byte-identical when partitioned twice, and runs on WebGPU', async () => {
    const a = join(tmp, 'a');
    const b = join(tmp, 'b');
    for (const out of [a, b]) {
      const r = await cli('partition', GPT_TINY, '--mesh', 'tp=2', '--strategy', 'megatron', '--target', 'wgsl', '--dim', 'batch=1,sequence=8', '--out', out);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
    const files = listFiles(a);
    expect(files).toEqual(expect.arrayContaining(['device-0/kernels.wgsl', 'device-1/kernels.wgsl', 'device-0/model.onnx', 'device-1/weights.safetensors']));
    expect(listFiles(b)).toEqual(files);
    for (const f of files) expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f)))).toBe(true);
    const manifest = JSON.parse(readFileSync(join(a, 'manifest.json'), 'utf8'));
    expect(manifest.target).toBe('wgsl');
    expect(manifest.devices[1].kernels).toBe('device-1/kernels.wgsl');
    const wgsl = readFileSync(join(a, 'device-0', 'kernels.wgsl'), 'utf8');
    expect(wgsl).toMatch(/^\/\/ shardc kernels for device 0/);
    expect(wgsl).toMatch(/@compute @workgroup_size/);
    expect((wgsl.match(/^\/\/ ---- kernel \d+: [A-Za-z_][A-Za-z0-9_]* ----$/gm) ?? []).length).toBeGreaterThan(5);

    // run <bundle> on WebGPU matches the unsharded CPU run.
    const inputs = join(tmp, 'inputs');
    mkdirSync(inputs);
    writeTensorFile(join(inputs, 'input_0.pb'), IDS, 'input_ids');
    const outDir = join(tmp, 'outputs');
    const r = await cli('run', a, '--inputs', inputs, '--outputs', outDir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const got = readTensorFile(join(outDir, 'output_0.pb')).tensor;
    const want = runGraph(loadModel(GPT_TINY).graph, new Map([['input_ids', IDS]]), { registry: createCoreRegistry() }).get('logits')!;
    const c = compareTensors(got, want, { rtol: 1e-4, atol: 1e-5 });
    expect(c.message).toBe(c.ok ? c.message : 'ok');
    expect(c.ok).toBe(true);
  });

  it('hostile tensor and node names stay inside comments and become identifiers', async () => {
    const hostile = 'evil */ fn main() {} /* "quoted"\nnext line // \u2028';
    const g = new Graph('hostile');
    const x = new Value(`x${hostile}`, 'float32', [2, 3]);
    const w = new Value(`w${hostile}`, 'float32', [3, 2]);
    w.constant = LazyTensor.of(Tensor.from('float32', [3, 2], [1, 2, 3, 4, 5, 6]));
    const h = new Value(`h${hostile}`, 'float32', [2, 2]);
    const y = new Value(`y${hostile}`, 'float32', [2, 2]);
    g.inputs = [x];
    g.initializers = [w];
    g.addNode(new Node('MatMul', [x, w], [h], new Attrs(), `mm${hostile}`));
    g.addNode(new Node('Relu', [h], [y], new Attrs(), `relu${hostile}`));
    g.outputs = [y];
    const model = join(tmp, 'hostile.onnx');
    writeFileSync(model, exportModel(g));
    const out = join(tmp, 'hostile-bundle');
    const r = await cli('partition', model, '--mesh', 'tp=1', '--strategy', 'auto', '--target', 'wgsl', '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const wgsl = readFileSync(join(out, 'device-0', 'kernels.wgsl'), 'utf8');
    expect(wgsl).not.toContain('*/');
    expect(wgsl).not.toContain('/*');
    expect(wgsl).not.toContain('\u2028');
    // Every line that mentions the hostile name is a comment.
    for (const line of wgsl.split('\n')) if (line.includes('evil')) expect(line).toMatch(/^\/\/ /);
    // MatMul and Relu are fused into one kernel; its comment names both nodes, escaped.
    expect(wgsl).toMatch(/^\/\/ node "mmevil \*\\\/ fn main\(\) \{\} \/\\\* \\"quoted\\"\\nnext line \/\/ \\u2028 \+ reluevil \*\\\/ fn main\(\) \{\} \/\\\* \\"quoted\\"\\nnext line \/\/ \\u2028" \(MatMul\+Relu\)$/m);
    expect(wgslIdentifier('1 a*/b\n"c"')).toBe('k_1_a_b_c');
    expect(commentSafe('a*/b/*c\nd')).toBe('"a*\\/b/\\*c\\nd"');
    // The bundle runs on WebGPU: relu(x·w).
    const inputs = join(tmp, 'hostile-inputs');
    mkdirSync(inputs);
    writeTensorFile(join(inputs, 'input_0.pb'), Tensor.from('float32', [2, 3], [1, 0, -1, 0.5, 0.5, 0.5]), x.name);
    const run = await cli('run', out, '--inputs', inputs);
    expect(run.stderr).toBe('');
    // [1,0,-1]·w = [1-5, 2-6] = [-4,-4] → 0; [.5,.5,.5]·w = [4.5, 6]
    expect(run.stdout).toContain('= [0, 0, 4.5, 6]');
  });
});

describe('verify --target wgsl --mesh', () => {
  it('compares the WebGPU sharded run with the CPU run and onnxruntime-node', async () => {
    const r = await cli('verify', GPT_TINY, '--mesh', 'dp=1,tp=2', '--strategy', 'megatron', '--dim', 'batch=1,sequence=8', '--target', 'wgsl', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ target: 'wgsl', devices: 2, ok: true });
    expect(doc.unsharded.tolerance).toEqual({ rtol: 1e-4, atol: 1e-5 });
    expect(doc.reference).toMatchObject({ kind: 'onnxruntime', ok: true });
  });

  it('without --mesh runs one WebGPU device and compares it with the CPU run', async () => {
    const r = await cli('verify', GPT_TINY, '--dim', 'batch=1,sequence=8', '--target', 'wgsl', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ target: 'wgsl', devices: 1, ok: true });
  });

  it('exit 3 when the sharded WebGPU run is held to an impossible tolerance', async () => {
    const r = await cli('verify', GPT_TINY, '--mesh', 'tp=2', '--strategy', 'megatron', '--dim', 'batch=1,sequence=8', '--target', 'wgsl', '--shard-rtol', '0', '--shard-atol', '0');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/sharded output "logits" differs from the unsharded run/);
  });
});
