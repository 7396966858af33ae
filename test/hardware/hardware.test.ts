/**
 * Hardware files: every bundled example loads; validation names the file and the field; mesh axes
 * map onto links (tp inside the NVLink island); byte counts parse.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../src/ir/errors.js';
import { axisLinks, formatBytes, loadHardware, meshWithHardware, parseBytes, parseHardware, peakFlops } from '../../src/hardware/hardware.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';

const examples = join(__dirname, '../../examples/hardware');
let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'shardc-hw-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const valid = () => ({
  name: 'two islands',
  source: 'made up for a test',
  devices: 16,
  device: { name: 'g', memoryBytes: 1e9, memoryBandwidth: 1e12, peakFlops: { float32: 1e13, float16: 4e13 } },
  links: [
    { name: 'fast', kind: 'nvlink', bandwidth: 4e11, latency: 1e-6, groupSize: 8 },
    { name: 'slow', kind: 'network', bandwidth: 5e10, latency: 1e-5 },
  ],
});

test('every bundled hardware file loads, with a source', () => {
  for (const f of ['h100-8x-nvlink.json', 'h100-2x8-infiniband.json', 'pcie-4gpu.json', 'laptop-webgpu.json']) {
    const hw = loadHardware(join(examples, f));
    expect(hw.source.length).toBeGreaterThan(20);
    expect(hw.device.peakFlops.float32).toBeGreaterThan(0);
  }
  const h100 = loadHardware(join(examples, 'h100-8x-nvlink.json'));
  expect(h100.devices).toBe(8);
  expect(h100.device.memoryBytes).toBe(80 * 2 ** 30);
  expect(peakFlops(h100, 'bfloat16')).toBe(9.894e14);
  expect(peakFlops(h100, 'float64')).toBe(6.7e13); // not listed: float32's
});

test('mesh axes map onto links: tp inside the NVLink island, dp over the network', () => {
  const hw = loadHardware(join(examples, 'h100-2x8-infiniband.json'));
  const names = (spec: string) => Object.fromEntries([...axisLinks(DeviceMesh.parse(spec), hw)].map(([a, l]) => [a, l.name]));
  expect(names('dp=2,tp=8')).toEqual({ dp: 'infiniband', tp: 'nvlink' });
  expect(names('tp=16')).toEqual({ tp: 'infiniband' });
  expect(names('tp=2,dp=8')).toEqual({ dp: 'nvlink', tp: 'infiniband' }); // dp is the fast (last) axis here
  expect(names('dp=4,tp=4')).toEqual({ dp: 'infiniband', tp: 'nvlink' });
  expect(names('pp=2,tp=4')).toEqual({ pp: 'nvlink', tp: 'nvlink' }); // 8 devices fit one island
  const m = meshWithHardware(DeviceMesh.parse('dp=2,tp=8'), hw);
  expect(m.axis('tp').link).toEqual({ bandwidth: 4.5e11, latency: 3e-6 });
  expect(m.axis('dp').link).toEqual({ bandwidth: 5e10, latency: 1e-5 });
  expect(() => axisLinks(DeviceMesh.parse('dp=4,tp=8'), hw)).toThrow(/needs 32 devices but the hardware file describes 16/);
});

test('an axes entry overrides the island rule', () => {
  const hw = parseHardware({ ...valid(), axes: { tp: 'slow' } });
  expect(axisLinks(DeviceMesh.parse('dp=2,tp=4'), hw).get('tp')!.name).toBe('slow');
  expect(axisLinks(DeviceMesh.parse('dp=2,tp=4'), hw).get('dp')!.name).toBe('fast');
});

test('validation names the file and the field', () => {
  const bad = (doc: unknown, re: RegExp) => {
    const f = join(dir, 'hw.json');
    writeFileSync(f, JSON.stringify(doc));
    let err: unknown;
    try {
      loadHardware(f);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain(f);
    expect((err as Error).message).toMatch(re);
  };
  bad({ ...valid(), devices: 0 }, /field devices: must be an integer ≥ 1, got 0/);
  bad({ ...valid(), source: undefined }, /field source: must be a non-empty string/);
  bad({ ...valid(), device: { ...valid().device, memoryBandwidth: -1 } }, /field device\.memoryBandwidth: must be a positive number/);
  bad({ ...valid(), device: { ...valid().device, peakFlops: { float16: 1 } } }, /field device\.peakFlops\.float32: is required/);
  bad({ ...valid(), links: [{ ...valid().links[0], kind: 'carrier-pigeon' }, valid().links[1]] }, /field links\[0\]\.kind: must be one of nvlink, pcie/);
  bad({ ...valid(), links: [{ ...valid().links[0], groupSize: undefined }, valid().links[1]] }, /field links\[0\]\.groupSize: is required/);
  bad({ ...valid(), links: [valid().links[0], { ...valid().links[1], groupSize: 12 }] }, /links\[1\]\.groupSize: must be a multiple of the previous link's groupSize 8/);
  bad({ ...valid(), axes: { tp: 'warp' } }, /field axes\.tp: names no link/);
  bad({ ...valid(), colour: 'red' }, /field colour: unknown field/);
  expect(() => loadHardware(join(dir, 'missing.json'))).toThrow(/missing\.json: hardware file not found/);
  writeFileSync(join(dir, 'broken.json'), '{');
  expect(() => loadHardware(join(dir, 'broken.json'))).toThrow(/broken\.json: not valid JSON/);
});

test('byte counts: plain, decimal and binary units', () => {
  expect(parseBytes('1024')).toBe(1024);
  expect(parseBytes('80GiB')).toBe(80 * 2 ** 30);
  expect(parseBytes('40 GB')).toBe(40e9);
  expect(parseBytes('1.5MiB')).toBe(1572864);
  expect(() => parseBytes('lots')).toThrow(/--memory-limit: "lots" is not a byte count/);
  expect(() => parseBytes('0')).toThrow(/more than 0 bytes/);
  expect(formatBytes(80 * 2 ** 30)).toBe('80 GiB');
  expect(formatBytes(1536)).toBe('1.5 KiB');
});
