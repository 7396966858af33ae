/**
 * `shardc bench`: in headless Chromium next to onnxruntime-web's two builds (wasm and webgpu
 * execution providers), in Node (Dawn) next to onnxruntime-node, and on a tp=2 mesh on one
 * adapter. The tests check what the bench reports — times exist, the outputs agree with the
 * peers, the ratio is the one of the medians, the profile adds up — never a speed threshold.
 * Tiny shapes (SwiftShader is slow). Needs /usr/bin/chromium like test/browser.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor } from '../../src/ir/tensor.js';
import { agreement } from '../../src/bench/stats.js';
import { summarizeProfile } from '../../src/bench/profile.js';
import type { BenchReport } from '../../src/bench/run.js';
import { GPT_TINY, cli, expectUserError } from '../bundle/cli-helper.js';

const SMALL = ['--dim', 'batch=1,sequence=4'];

describe('shardc bench', () => {
  let tmp = '';
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'shardc-bench-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('--browser --compare onnxruntime-web: shardc and both ORT-web builds time gpt-tiny in one page, and the outputs agree', async () => {
    const r = await cli('bench', GPT_TINY, '--target', 'wgsl', '--browser', '--compare', 'onnxruntime-web', '--json', '--runs', '2', '--warmup', '1', ...SMALL);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as BenchReport;
    expect(doc).toMatchObject({ target: 'wgsl', runtime: 'browser', mesh: 'tp=1', runs: 2, warmup: 1, agree: true, reference: 'onnxruntime-web wasm' });
    expect(doc.adapter).toMatch(/swiftshader/i);
    expect(doc.inputs).toEqual([{ name: 'input_ids', dtype: 'int64', shape: [1, 4] }]);
    const web = doc.onnxruntimeWeb!;
    expect(web.wasmError).toBeUndefined();
    expect(web.webgpuError).toBeUndefined();
    for (const ms of [doc.shardcMs, web.wasmMs!, web.webgpuMs!]) expect(ms).toBeGreaterThan(0);
    expect(web.wasmTimes).toHaveLength(2);
    expect(web.webgpuTimes).toHaveLength(2);
    expect(web.numThreads).toBeGreaterThanOrEqual(1);
    expect(doc.onnxruntimeWebMs).toBe(Math.min(web.wasmMs!, web.webgpuMs!));
    expect(doc.ratio).toBeCloseTo(doc.shardcMs / doc.onnxruntimeWebMs!, 10);
    // Both builds were compared, and both agree within rtol 1e-3, atol 1e-4.
    expect(doc.agreement.map((a) => [a.against, a.agree])).toEqual([
      ['onnxruntime-web wasm', true],
      ['onnxruntime-web webgpu', true],
    ]);
    expect(doc.maxAbsDiff).toBeLessThan(1e-3);
    expect(doc.browser?.crossOriginIsolated).toBe(true);
  }, 120000);

  it('Node (Dawn) with --compare onnxruntime-node and --profile: agreement, and a report.json whose per-op summary adds up', async () => {
    const out = join(tmp, 'report.json');
    const r = await cli('bench', GPT_TINY, '--compare', 'onnxruntime-node', '--json', '--runs', '1', '--warmup', '1', '--profile', '--out', out, ...SMALL);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as BenchReport;
    expect(doc).toMatchObject({ runtime: 'node', mesh: 'tp=1', devices: 1, agree: true, reference: 'onnxruntime-node', shardcEngine: 'compiled', fuse: true });
    expect(doc.onnxruntimeNodeMs).toBeGreaterThan(0);
    expect(doc.ratio).toBeCloseTo(doc.shardcMs / doc.onnxruntimeNodeMs!, 10);
    const file = JSON.parse(readFileSync(out, 'utf8')) as BenchReport & { profile: { entries: { op: string; ms: number; kind: string }[] } };
    const entries = file.profile.entries;
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((e) => e.ms >= 0 && e.kind === 'kernel')).toBe(true);
    // The summary counts every entry once, per op type; gpt-tiny's MatMuls are there.
    expect(file.profile.byOp.reduce((a, s) => a + s.count, 0)).toBe(entries.length);
    expect(entries.some((e) => /MatMul/.test(e.op))).toBe(true);
    expect(doc.profile!.top.length).toBe(Math.min(10, entries.length));
  }, 120000);

  it('--mesh tp=2 (megatron) on one adapter matches the CPU runtime', async () => {
    const r = await cli('bench', GPT_TINY, '--mesh', 'tp=2', '--json', '--runs', '1', '--warmup', '0', ...SMALL);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as BenchReport;
    expect(doc).toMatchObject({ mesh: 'tp=2', strategy: 'megatron', devices: 2, agree: true, reference: 'shardc cpu runtime', ratio: null });
  }, 120000);

  it('bad input is one line, exit 1', async () => {
    expectUserError(await cli('bench', join(tmp, 'missing.onnx'), '--json'), /missing\.onnx.*file not found|file not found.*missing\.onnx/);
    expectUserError(await cli('bench', GPT_TINY, '--compare', 'onnxruntime-web'), /add --browser/);
    expectUserError(await cli('bench', GPT_TINY, '--target', 'cpu'), /wgsl/);
    expectUserError(await cli('bench', GPT_TINY, '--compare', 'tvm'), /unknown --compare "tvm"/);
    expectUserError(await cli('bench', GPT_TINY, '--browser', '--mesh', 'tp=2'), /--browser runs one device/);
    expectUserError(await cli('bench', GPT_TINY, '--browser', '--chromium', join(tmp, 'no-chromium')), /needs Chromium.*apt-get install chromium/);
  });

  it('agreement fails on a difference beyond rtol 1e-3, atol 1e-4 and reports the max differences', () => {
    const ref = new Map([['y', Tensor.from('float32', [3], [1, 2, 0])]]);
    const near = agreement('ref', new Map([['y', Tensor.from('float32', [3], [1.0005, 2, 0.00005])]]), ref);
    expect(near.agree).toBe(true);
    expect(near.maxAbsDiff).toBeCloseTo(0.0005, 6);
    const far = agreement('ref', new Map([['y', Tensor.from('float32', [3], [1, 2.01, 0])]]), ref);
    expect(far).toMatchObject({ agree: false, message: 'output y: 1 of 3 elements differ beyond rtol 0.001, atol 0.0001' });
    expect(far.maxRelDiff).toBeCloseTo(0.005, 4);
    expect(agreement('ref', new Map(), ref)).toMatchObject({ agree: false, message: 'output y is missing' });
  });

  it('the profile summary groups by op type, largest first', () => {
    const s = summarizeProfile({
      timing: 'host',
      entries: [
        { kind: 'kernel', node: 'a', op: 'MatMul', name: 'a', device: 0, ms: 2 },
        { kind: 'kernel', node: 'b', op: 'Add', name: 'b', device: 0, ms: 1 },
        { kind: 'kernel', node: 'c', op: 'MatMul', name: 'c', device: 0, ms: 3 },
        { kind: 'collective', node: 'd', op: 'AllReduce', name: 'd', device: 1, ms: 4 },
      ],
    });
    expect(s.map((x) => [x.kind, x.op, x.count, x.totalMs, x.share])).toEqual([
      ['kernel', 'MatMul', 2, 5, 0.5],
      ['collective', 'AllReduce', 1, 4, 0.4],
      ['kernel', 'Add', 1, 1, 0.1],
    ]);
  });
});
