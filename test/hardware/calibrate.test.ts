/**
 * `shardc bench --calibrate` without a clock: the fit on made-up timings from known lines gives
 * those lines' slopes and intercepts back (and so the figures), the driver keeps the median of the
 * timed samples after warm-up, and the hardware it makes validates with loadHardware, round-trips
 * byte for byte, keeps a base file's topology, and is the same file for the same measurements.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Probe, type Sampler, calibrate, calibrationDevices } from '../../src/bench/calibrate.js';
import { type CalibrationContext, type CalibrationSamples, calibratedHardware, fitFigures, fitLine, fitRelative } from '../../src/hardware/calibrate.js';
import { type Hardware, hardwareJson, loadHardware, parseHardware } from '../../src/hardware/hardware.js';
import { collectiveSeconds } from '../../src/passes/sharding/cost.js';

const examples = join(__dirname, '../../examples/hardware');
let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'shardc-calibrate-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The machine the made-up timings describe. */
const TRUE = { flops: 4e10, bandwidth: 2e10, launch: 7e-6, linkBandwidth: 1e9, linkLatency: 5e-6, roundTrip: 4e-5, overhead: 3e-4 };
const N = 4;
const line = (a: number, b: number) => (x: number) => a + b * x;
const times = {
  matmul: line(2e-5, 1 / TRUE.flops),
  stream: line(1e-5, 1 / TRUE.bandwidth),
  launches: line(TRUE.overhead, TRUE.launch),
  allReduce: (bytes: number) => TRUE.roundTrip + collectiveSeconds('AllReduce', bytes, N, { bandwidth: TRUE.linkBandwidth, latency: TRUE.linkLatency }),
};

function exactSamples(): CalibrationSamples {
  return {
    matmulFlops: [64, 128, 256, 512].map((n) => [2 * n ** 3, times.matmul(2 * n ** 3)]),
    streamBytes: [1 << 16, 1 << 18, 1 << 20].map((e) => [8 * e, times.stream(8 * e)]),
    launches: [1, 16, 64, 128].map((k) => [k, times.launches(k)]),
    allReduce: [1 << 12, 1 << 15, 1 << 18, 1 << 20].map((b) => [b, times.allReduce(b)]),
    roundTrip: TRUE.roundTrip,
  };
}

const context = (over: Partial<CalibrationContext> = {}): CalibrationContext => ({
  target: 'wgsl',
  adapter: 'Test Adapter 1',
  devices: N,
  memoryBytes: 2 ** 32,
  memorySource: 'made up',
  collectivePath: 'AllReduce between 4 logical devices (made up)',
  warmup: 1,
  runs: 3,
  ...over,
});

describe('fitting', () => {
  test('a line through exact points: its slope and intercept, plain and relative', () => {
    const pts: [number, number][] = [1e3, 1e5, 1e7, 1e9].map((x) => [x, 3e-4 + x * 2.5e-11]);
    for (const fit of [fitLine(pts), fitRelative(pts)]) {
      expect(fit.slope / 2.5e-11).toBeCloseTo(1, 12);
      expect(fit.intercept / 3e-4).toBeCloseTo(1, 9);
    }
    expect(fitLine([[1, 3], [3, 7]])).toEqual({ slope: 2, intercept: 1 });
    expect(() => fitLine([[1, 2]])).toThrow(/two/);
    expect(() => fitLine([[1, 2], [1, 3]])).toThrow(/same x/);
  });

  test('least squares: a known fit through scattered points, and the relative fit heeds the small sizes', () => {
    // Worked by hand: x̄ = 1.5, ȳ = 2.5, Sxx = 5, Sxy = 3, so slope 3/5 and intercept 2.5 − 0.6·1.5.
    const ls = fitLine([[0, 2], [1, 1], [2, 4], [3, 3]]);
    expect(ls.slope).toBeCloseTo(0.6, 14);
    expect(ls.intercept).toBeCloseTo(1.6, 14);
    // Weights: a zero weight drops a point.
    expect(fitLine([[0, 1], [1, 3], [2, 100]], [1, 1, 0])).toEqual({ slope: 2, intercept: 1 });
    // A large size off the line pulls the plain fit's intercept below 0; the relative fit keeps it.
    const pts: [number, number][] = [[1, 1.1], [10, 2], [100, 11], [1000, 200]];
    expect(fitLine(pts).intercept).toBeLessThan(0);
    expect(fitRelative(pts).intercept).toBeGreaterThan(0.5);
  });

  test('the figures of exact timings are the machine the timings came from', () => {
    const f = fitFigures(exactSamples(), N);
    expect(f.peakFlops).toBe(TRUE.flops);
    expect(f.memoryBandwidth).toBe(TRUE.bandwidth);
    expect(f.launchLatency).toBe(TRUE.launch);
    expect(f.link).toEqual({ bandwidth: TRUE.linkBandwidth, latency: TRUE.linkLatency, devices: N });
    expect(f.notes.join('\n')).toMatch(/peakFlops.float32 \(MatMul\): 4e\+10 flop\/s from the slope of time over 4 sizes/);
  });

  test('a slope that is not positive falls back to the best size, and says so; a negative latency is 0', () => {
    const s = exactSamples();
    s.matmulFlops = [[1e6, 2e-3], [8e6, 1e-3]]; // the larger one faster: noise
    const f = fitFigures({ ...s, roundTrip: 1 }, N); // a round trip longer than the whole intercept
    expect(f.peakFlops).toBe(8e9);
    expect(f.notes.join('\n')).toMatch(/the best single size \(the fitted slope over 2 sizes was not positive/);
    expect(f.link!.latency).toBe(0);
  });
});

describe('the hardware file', () => {
  const write = (hw: Hardware, name: string): { file: string; text: string } => {
    const file = join(dir, name);
    const text = hardwareJson(hw);
    writeFileSync(file, text);
    return { file, text };
  };

  test('loads with loadHardware, round-trips byte for byte, and holds the figures and their samples', () => {
    const hw = calibratedHardware(exactSamples(), context());
    const { file, text } = write(hw, 'alone.json');
    const back = loadHardware(file);
    expect(hardwareJson(back)).toBe(text);
    expect({ ...back, file: undefined }).toEqual({ ...hw, file: undefined });
    expect(back).toMatchObject({
      devices: N,
      name: '4 logical devices on Test Adapter 1 (WebGPU), calibrated',
      device: { name: 'Test Adapter 1', memoryBytes: 2 ** 32, memoryBandwidth: TRUE.bandwidth, peakFlops: { float32: TRUE.flops }, launchLatency: TRUE.launch },
      links: [{ name: 'shared-adapter', kind: 'shared', bandwidth: TRUE.linkBandwidth, latency: TRUE.linkLatency }],
      axes: {},
    });
    expect(back.calibrated!.target).toBe('wgsl');
    expect(back.calibrated!.samples.launches).toEqual(exactSamples().launches);
    expect(back.calibrated!.notes.some((n) => n.includes('AllReduce between 4 logical devices (made up)'))).toBe(true);
    // No date or time anywhere: the same measurements give the same bytes.
    expect(hardwareJson(calibratedHardware(exactSamples(), context()))).toBe(text);
    expect(text).not.toMatch(/20\d\d-\d\d-\d\d|T\d\d:\d\d/);
    // The sample pairs are one line each.
    expect(text).toMatch(/\n\s+\[128, 0\.00\d+\],?\n/);
  });

  test('a base file keeps its topology, memory and outer links; the device and the innermost link are measured', () => {
    const base = loadHardware(join(examples, 'h100-2x8-infiniband.json'));
    expect(calibrationDevices(base)).toBe(8);
    const hw = calibratedHardware(exactSamples(), context({ devices: 8 }), base);
    const back = loadHardware(write(hw, 'based.json').file);
    expect(back.devices).toBe(16);
    expect(back.device.memoryBytes).toBe(base.device.memoryBytes);
    expect(back.device.peakFlops).toEqual({ float32: TRUE.flops }); // base float16 etc. were for another device
    expect(back.links.map((l) => [l.name, l.kind, l.groupSize])).toEqual(base.links.map((l) => [l.name, l.kind, l.groupSize]));
    expect(back.links[1]).toEqual(base.links[1]);
    // Over 8 devices the same timings read as another link (the formula's n changed).
    const f8 = fitFigures(exactSamples(), 8);
    expect(back.links[0]).toMatchObject({ bandwidth: f8.link!.bandwidth, latency: f8.link!.latency });
    expect(back.source).toMatch(/topology and memory from h100-2x8-infiniband.json/);
    expect(back.calibrated!.notes.join('\n')).toMatch(/link nvlink \(the innermost\).*links infiniband, the topology and the memory: the base file's/);
  });

  test('calibration devices: the base file\'s innermost island, 2 to 8; 4 without a base; none without links', () => {
    expect(calibrationDevices(undefined)).toBe(4);
    expect(calibrationDevices(loadHardware(join(examples, 'laptop-webgpu.json')))).toBe(4);
    expect(calibrationDevices(loadHardware(join(examples, 'h100-8x-nvlink.json')))).toBe(8);
    const one = parseHardware({ name: 'one', source: 's', devices: 1, device: { name: 'g', memoryBytes: 1, memoryBandwidth: 1, peakFlops: { float32: 1 } }, links: [] });
    expect(calibrationDevices(one)).toBe(0);
  });

  test('validation of the calibrated fields names the field', () => {
    const doc = JSON.parse(hardwareJson(calibratedHardware(exactSamples(), context()))) as Record<string, any>;
    const bad = (mutate: (d: Record<string, any>) => void, re: RegExp) => {
      const d = JSON.parse(JSON.stringify(doc));
      mutate(d);
      expect(() => parseHardware(d, 'x.json')).toThrow(re);
    };
    bad((d) => (d.device.launchLatency = -1), /field device.launchLatency: must be a number ≥ 0, got -1/);
    bad((d) => (d.calibrated.samples.launches[1] = [16]), /field calibrated.samples.launches\[1\]: must be an \[x, seconds\] pair/);
    bad((d) => (d.calibrated.notes = 'one'), /field calibrated.notes: must be an array of strings/);
    bad((d) => delete d.calibrated.adapter, /field calibrated.adapter: must be a non-empty string/);
  });
});

describe('the driver (calibrate) with a made-up probe', () => {
  /** Each sampler gives a warm-up value far off, then the true time, an outlier, the true time. */
  function fakeProbe(log: string[]): Probe {
    const sampler = (t: number): Sampler => {
      const seq = [50 * t, t, 9 * t, t];
      let i = 0;
      return { sample: async () => seq[i++ % seq.length]!, dispose: () => void log.push('disposed') };
    };
    return {
      target: 'cpu',
      adapter: 'Made-up CPU',
      collectivePath: 'not yet',
      matmul: async (n) => sampler(times.matmul(2 * n ** 3)),
      elementwise: async (e) => sampler(times.stream(8 * e)),
      launches: async (k) => sampler(times.launches(k)),
      async allReduce(e, devices) {
        expect(devices).toBe(N);
        this.collectivePath = 'made-up collective path';
        return sampler(times.allReduce(4 * e));
      },
      roundTrip: async () => sampler(TRUE.roundTrip),
      dispose: () => void log.push('probe disposed'),
    };
  }

  test('medians of the timed samples after warm-up, then the fit; progress counts every sample', async () => {
    const log: string[] = [];
    const progress: number[] = [];
    const sizes = { matmul: [64, 256], elementwise: [1 << 16, 1 << 20], launches: [1, 64], allReduce: [1 << 10, 1 << 18] };
    const r = await calibrate({ target: 'cpu', warmup: 1, runs: 3, sizes, probe: fakeProbe(log), onProgress: (d, t) => progress.push(d / t) });
    expect(r.samples.launches).toEqual([[1, Number(times.launches(1).toPrecision(4))], [64, Number(times.launches(64).toPrecision(4))]]);
    expect(r.samples.roundTrip).toBe(TRUE.roundTrip);
    // The medians are rounded to 4 digits, so the figures come within that.
    const near = (got: number, want: number) => expect(Math.abs(got / want - 1)).toBeLessThan(2e-3);
    near(r.hardware.device.peakFlops.float32!, TRUE.flops);
    near(r.hardware.device.memoryBandwidth, TRUE.bandwidth);
    near(r.hardware.device.launchLatency!, TRUE.launch);
    near(r.hardware.links[0]!.bandwidth, TRUE.linkBandwidth);
    near(r.hardware.links[0]!.latency, TRUE.linkLatency);
    expect(r.hardware.calibrated!.notes).toContain('collectives: made-up collective path');
    expect(r.hardware.name).toBe('4 logical devices on Made-up CPU, calibrated');
    expect(log).toEqual([...Array(9).fill('disposed'), 'probe disposed']);
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(1);
    expect(progress).toHaveLength(1 + 9 * 4);
    // The file of the same measurements is the same file.
    const again = await calibrate({ target: 'cpu', warmup: 1, runs: 3, sizes, probe: fakeProbe([]) });
    expect(hardwareJson(again.hardware)).toBe(hardwareJson(r.hardware));
  });

  test('a base file with no link measures no collective', async () => {
    const file = join(dir, 'one-device.json');
    writeFileSync(file, JSON.stringify({ name: 'one', source: 'made up', devices: 1, device: { name: 'g', memoryBytes: 1e9, memoryBandwidth: 1, peakFlops: { float32: 1 } }, links: [] }));
    const probe = fakeProbe([]);
    probe.allReduce = () => Promise.reject(new Error('not called'));
    const r = await calibrate({ target: 'cpu', base: file, warmup: 0, runs: 1, sizes: { matmul: [8, 16], elementwise: [8, 16], launches: [1, 2] }, probe });
    expect(r.samples.allReduce).toBeUndefined();
    expect(r.hardware.links).toEqual([]);
    expect(r.hardware.devices).toBe(1);
    expect(r.hardware.calibrated!.notes.join('\n')).toMatch(/it has no link to measure/);
  });
});
