/**
 * `shardc bench --calibrate` end to end with the smallest budget (no warm-up, one timed run per
 * size): on the CPU runtime, and on WebGPU through Dawn (skipped where Dawn cannot run: no npm
 * `webgpu` or no Vulkan driver). The tests check the file — it loads, its figures are positive,
 * it says what was measured — and never a speed. Bad flags are one line, exit 1.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hardwareJson, loadHardware } from '../../src/hardware/hardware.js';
import { SWIFTSHADER_ICD } from '../../src/targets/webgpu/device.js';
import { cli, expectUserError, PACKAGE_ROOT } from '../bundle/cli-helper.js';

/** Dawn can run here: npm `webgpu` resolves and there is a Vulkan driver (SwiftShader's or a GPU's). */
const HAS_DAWN = ((): boolean => {
  try {
    require.resolve('webgpu');
  } catch {
    return false;
  }
  return existsSync(SWIFTSHADER_ICD) || process.env.VK_ICD_FILENAMES !== undefined || existsSync('/usr/share/vulkan/icd.d');
})();

const TINY = ['--warmup', '0', '--runs', '1'];

describe('shardc bench --calibrate', () => {
  let tmp = '';
  beforeAll(() => (tmp = mkdtempSync(join(tmpdir(), 'shardc-calibrate-cli-'))));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  function expectCalibratedFile(file: string, target: string, devices: number): void {
    const hw = loadHardware(file);
    expect(hardwareJson(hw)).toBe(readFileSync(file, 'utf8'));
    expect(hw.devices).toBe(devices);
    for (const x of [hw.device.peakFlops.float32!, hw.device.memoryBandwidth, hw.device.memoryBytes, hw.links[0]!.bandwidth]) expect(x).toBeGreaterThan(0);
    expect(hw.device.launchLatency).toBeGreaterThanOrEqual(0);
    expect(hw.links[0]!.latency).toBeGreaterThanOrEqual(0);
    expect(hw.calibrated!.target).toBe(target);
    for (const k of ['matmulFlops', 'streamBytes', 'launches', 'allReduce']) expect(hw.calibrated!.samples[k]!.length).toBeGreaterThanOrEqual(2);
  }

  it('--target cpu writes a valid hardware file of the CPU runtime and prints the figures', async () => {
    const out = join(tmp, 'cpu.json');
    const r = await cli('bench', '--calibrate', '--target', 'cpu', ...TINY, '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^calibrated cpu on .*: 4 devices\n {2}matmul f32 +[\d.]+ [kMGT]?flop\/s/);
    expect(r.stdout).toMatch(/link shared-process .* per step \(AllReduce over 4 devices: /);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(`wrote ${out}`);
    expectCalibratedFile(out, 'cpu', 4);
    expect(loadHardware(out).calibrated!.notes.join('\n')).toMatch(/runCollective on host tensors/);
  }, 120000);

  it('--hardware keeps the base file\'s topology; --json prints the figures and the document', async () => {
    const out = join(tmp, 'laptop.json');
    const base = join(PACKAGE_ROOT, 'examples', 'hardware', 'laptop-webgpu.json');
    const r = await cli('bench', '--calibrate', '--target', 'cpu', '--hardware', base, ...TINY, '--out', out, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { out: string; target: string; devices: number; figures: { peakFlops: number; link: { devices: number } }; hardware: unknown };
    expect(doc).toMatchObject({ out, target: 'cpu', devices: 4, figures: { link: { devices: 4 } } });
    expect(doc.hardware).toEqual(JSON.parse(readFileSync(out, 'utf8')));
    expectCalibratedFile(out, 'cpu', 4);
    const hw = loadHardware(out);
    expect(hw.device.memoryBytes).toBe(loadHardware(base).device.memoryBytes);
    expect(hw.links.map((l) => [l.name, l.kind])).toEqual([['shared-adapter', 'shared']]);
    expect(hw.device.peakFlops.float32).toBe(doc.figures.peakFlops);
  }, 120000);

  (HAS_DAWN ? it : it.skip)('--target wgsl measures the WebGPU adapter through Dawn, collectives as device-side copy kernels', async () => {
    const out = join(tmp, 'wgsl.json');
    const r = await cli('bench', '--calibrate', ...TINY, '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^calibrated wgsl on /);
    expectCalibratedFile(out, 'wgsl', 4);
    const hw = loadHardware(out);
    expect(hw.links[0]).toMatchObject({ name: 'shared-adapter', kind: 'shared' });
    expect(hw.calibrated!.notes.join('\n')).toMatch(/collectives: AllReduce between 4 logical devices on one GPUDevice/);
  }, 180000);

  it('bad flags are one line, exit 1, nothing written', async () => {
    const out = join(tmp, 'never.json');
    expectUserError(await cli('bench'), /bench needs a model .*or --calibrate/);
    expectUserError(await cli('bench', '--calibrate', '--target', 'cpu'), /--calibrate needs --out <file>/);
    expectUserError(await cli('bench', '--calibrate', '--target', 'cuda', '--out', out), /--calibrate measures --target wgsl or cpu; got "cuda"/);
    expectUserError(await cli('bench', '--calibrate', '--mesh', 'tp=2', '--out', out), /--mesh does not apply to --calibrate/);
    expectUserError(await cli('bench', '--calibrate', '--no-fuse', '--out', out), /--no-fuse does not apply to --calibrate/);
    expectUserError(await cli('bench', 'examples/gpt-tiny.onnx', '--calibrate', '--out', out), /takes no model; got "examples\/gpt-tiny.onnx"/);
    expectUserError(await cli('bench', 'examples/gpt-tiny.onnx', '--hardware', 'hw.json'), /--hardware is the base file of --calibrate/);
    expectUserError(await cli('bench', '--calibrate', '--target', 'cpu', '--hardware', join(tmp, 'missing.json'), '--out', out), /missing\.json: hardware file not found/);
    expectUserError(await cli('bench', '--calibrate', '--target', 'cpu', '--runs', '0', '--out', out), /--runs must be at least 1; got 0/);
    expectUserError(await cli('bench', '--calibrate', '--target', 'cpu', '--out', join(tmp, 'no-such-dir', 'hw.json')), /no-such-dir.*the folder to write the hardware file in does not exist/);
    expect(existsSync(out)).toBe(false);
  });
});
