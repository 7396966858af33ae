import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor } from '../../src/ir/tensor.js';
import { readTensorFile, writeTensorFile } from '../../src/onnx/tensor-file.js';
import { compareTensors } from '../../src/verify/compare.js';
import { GPT_TINY, cli, digestTree, expectUserError, listFiles, sha256 } from '../bundle/cli-helper.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-partition-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const GPT_ARGS = ['--mesh', 'tp=2', '--strategy', 'megatron', '--dim', 'batch=1,sequence=8'];

describe('shardc partition --target cpu', () => {
  it('--json prints {bundle, manifestSha256, devices, collectives} and writes the bundle', async () => {
    const out = join(tmp, 'gpt-tp2');
    const r = await cli('partition', GPT_TINY, ...GPT_ARGS, '--out', out, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc).sort()).toEqual(['bundle', 'collectives', 'devices', 'manifestSha256']);
    expect(doc.bundle).toBe(out);
    expect(doc.devices).toBe(2);
    expect(doc.manifestSha256).toBe(sha256(readFileSync(join(out, 'manifest.json'))));
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.collectives).toHaveLength(doc.collectives);
    expect(doc.collectives).toBeGreaterThan(0);
    for (const c of report.collectives) expect(c.reason.trim()).not.toBe('');
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.model).toEqual({ file: 'gpt-tiny.onnx', sha256: sha256(readFileSync(GPT_TINY)) });
    expect(manifest.bindings).toEqual({ batch: 1, sequence: 8 });
    expect(manifest.strategy).toBe('megatron');
    expect(listFiles(out)).toEqual(expect.arrayContaining(['device-0/model.onnx', 'device-1/weights.safetensors', 'schedule.json', 'plan.json']));
    // Weights dominate: each device holds about half the parameters.
    const [d0, d1] = report.devices;
    expect(d0.paramBytes).toBeLessThan(0.75 * report.unsharded.paramBytes);
    expect(d0.paramBytes + d1.paramBytes).toBeGreaterThanOrEqual(report.unsharded.paramBytes);
  });

  it('is deterministic: partitioning again gives byte-identical files and the same hash', async () => {
    const a = join(tmp, 'det-a');
    const b = join(tmp, 'det-b');
    const ra = await cli('partition', GPT_TINY, ...GPT_ARGS, '--out', a);
    const rb = await cli('partition', GPT_TINY, ...GPT_ARGS, '--out', b);
    expect([ra.code, rb.code]).toEqual([0, 0]);
    expect(ra.stdout).toMatch(new RegExp(`^wrote bundle ${a.replace(/[/\\.]/g, '\\$&')} \\(2 devices, \\d+ collectives\\)\\nmanifest sha256 [0-9a-f]{64}\\n$`));
    expect(rb.stdout.split('\n')[1]).toBe(ra.stdout.split('\n')[1]);
    expect(digestTree(b)).toEqual(digestTree(a));
    // Re-partitioning over an existing bundle replaces it (no --force needed) with the same bytes.
    const rc = await cli('partition', GPT_TINY, ...GPT_ARGS, '--out', a);
    expect(rc.code).toBe(0);
    expect(digestTree(a)).toEqual(digestTree(b));
  });

  it('`shardc run <bundle>` equals the unsharded run', async () => {
    const out = join(tmp, 'run-bundle');
    expect((await cli('partition', GPT_TINY, ...GPT_ARGS, '--out', out)).code).toBe(0);
    const inputs = join(tmp, 'inputs');
    mkdirSync(inputs);
    writeTensorFile(join(inputs, 'input_0.pb'), Tensor.from('int64', [1, 8], [5, 17, 0, 95, 42, 42, 7, 63]), 'input_ids');
    const sharded = join(tmp, 'out-sharded');
    const plain = join(tmp, 'out-plain');
    const r1 = await cli('run', out, '--inputs', inputs, '--outputs', sharded);
    expect(r1.stderr).toBe('');
    expect(r1.code).toBe(0);
    expect((await cli('run', GPT_TINY, '--inputs', inputs, '--outputs', plain)).code).toBe(0);
    expect(readdirSync(sharded)).toEqual(['output_0.pb']);
    const got = readTensorFile(join(sharded, 'output_0.pb'));
    const want = readTensorFile(join(plain, 'output_0.pb'));
    expect(got.name).toBe('logits');
    expect(got.tensor.shape).toEqual([1, 8, 96]);
    const c = compareTensors(got.tensor, want.tensor, { rtol: 1e-5, atol: 1e-6 });
    expect(c.message).toBe('');
  });

  it('a spec file strategy is recorded by name and hash, and its seeds explain the layouts', async () => {
    const spec = join(tmp, 'mlp-spec.json');
    const text = JSON.stringify({ rules: [{ match: 'h*.mlp.c_fc.weight', layout: { tp: 'S(1)' } }, { match: 'h*.mlp.c_proj.weight', layout: { tp: 'S(0)' } }] });
    writeFileSync(spec, text);
    const out = join(tmp, 'spec-bundle');
    const r = await cli('partition', GPT_TINY, '--mesh', 'tp=2', '--strategy', spec, '--dim', 'batch=1,sequence=4', '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(m.strategy).toBe('spec:mlp-spec.json');
    expect(m.strategySpec).toEqual({ file: 'mlp-spec.json', sha256: sha256(new TextEncoder().encode(text)) });
    const e = await cli('explain', out, '--tensor', 'h1.mlp.c_proj.weight');
    expect(e.stdout).toMatch(/h1\.mlp\.c_proj\.weight \{tp: S\(0\)\}: seeded by strategy spec:mlp-spec\.json: .*rule 1/);
  });

  describe('bad input: exit 1, one line naming the problem, nothing written', () => {
    const nothingWritten = (out: string): void => {
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(tmp).filter((f) => f.startsWith('.'))).toEqual([]);
    };

    it('an unknown target', async () => {
      const out = join(tmp, 'bad-target');
      expectUserError(await cli('partition', GPT_TINY, ...GPT_ARGS, '--target', 'metal', '--out', out), /unknown target "metal"; expected one of cpu, wgsl, cuda/);
      nothingWritten(out);
    });

    it('an unknown strategy, a missing spec file', async () => {
      const out = join(tmp, 'bad-strategy');
      expectUserError(await cli('partition', GPT_TINY, '--mesh', 'tp=2', '--strategy', 'zigzag', '--out', out), /unknown strategy "zigzag"/);
      expectUserError(await cli('partition', GPT_TINY, '--mesh', 'tp=2', '--strategy', join(tmp, 'nope.json'), '--out', out), /nope\.json: strategy spec file not found/);
      nothingWritten(out);
    });

    it('a strategy needing a mesh axis the mesh lacks; a malformed mesh', async () => {
      const out = join(tmp, 'bad-mesh');
      expectUserError(await cli('partition', GPT_TINY, '--mesh', 'dp=2,xy=2', '--strategy', 'megatron', '--dim', 'batch=2,sequence=8', '--out', out), /\btp\b/);
      expectUserError(await cli('partition', GPT_TINY, '--mesh', 'tp=two', '--out', out), /--mesh: "tp=two" is not axis=size/);
      nothingWritten(out);
    });

    it('a mesh axis larger than every shardable dim names the axis', async () => {
      const out = join(tmp, 'too-big');
      // ffn 128 is the largest dim megatron splits on gpt-tiny.
      const r = await cli('partition', GPT_TINY, '--mesh', 'tp=256', '--strategy', 'megatron', '--dim', 'batch=1,sequence=8', '--out', out);
      expectUserError(r, /mesh axis tp=256 does not fit the model: the largest dim strategy megatron splits over it has 128 blocks \(h0\.mlp\.c_fc\.weight dim 1\); use tp=128 or less/);
      nothingWritten(out);
    });

    it('a spec file naming a tensor that does not exist names it', async () => {
      const spec = join(tmp, 'spec.json');
      writeFileSync(spec, JSON.stringify({ rules: [{ match: 'no.such.weight', layout: { tp: 'S(0)' } }] }));
      const out = join(tmp, 'bad-spec');
      expectUserError(await cli('partition', GPT_TINY, '--mesh', 'tp=2', '--strategy', spec, '--dim', 'batch=1,sequence=8', '--out', out), /no\.such\.weight/);
      nothingWritten(out);
    });

    it('refuses to overwrite a directory that is not a bundle unless --force', async () => {
      const out = join(tmp, 'precious');
      mkdirSync(out);
      writeFileSync(join(out, 'thesis.tex'), 'do not delete');
      expectUserError(await cli('partition', GPT_TINY, ...GPT_ARGS, '--out', out), /refusing to overwrite a directory that is not a shardc bundle/);
      expect(listFiles(out)).toEqual(['thesis.tex']);
      const r = await cli('partition', GPT_TINY, ...GPT_ARGS, '--out', out, '--force');
      expect(r.code).toBe(0);
      expect(existsSync(join(out, 'thesis.tex'))).toBe(false);
    });
  });
});
