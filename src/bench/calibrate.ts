/**
 * `shardc bench --calibrate`: measures this machine's target and makes a hardware file of it
 * (src/hardware/hardware.ts schema; the fitting is src/hardware/calibrate.ts). A Probe times the
 * tiny graphs of calibrate-graphs.ts on one target — WebGPU through Dawn (calibrate-wgsl.ts) or
 * the CPU runtime (calibrate-cpu.ts) — and this driver runs each size's warm-up and timed samples,
 * keeps the medians, and hands them to the fit. With a base hardware file its topology (devices,
 * memory, links, axes) is kept and the collective runs over as many logical devices as its
 * innermost link joins (at most 8); without one, over 4.
 */
import { totalmem } from 'node:os';
import { UserError } from '../ir/errors.js';
import { type CalibrationFigures, type CalibrationSamples, calibratedHardware, fitFigures, round4 } from '../hardware/calibrate.js';
import { type Hardware, formatBytes, loadHardware } from '../hardware/hardware.js';
import { median } from './stats.js';

/** One size of one probe, ready to time: each sample is one measurement in seconds. */
export interface Sampler {
  sample(): Promise<number>;
  dispose(): void;
}

/** The measurements of one target (see the implementations for what each times). */
export interface Probe {
  readonly target: 'wgsl' | 'cpu';
  /** The adapter or processor, in words. */
  readonly adapter: string;
  /** The path the collectives took, in words (known after allReduce has run). */
  collectivePath: string;
  /** One MatMul of n×n by n×n. */
  matmul(n: number): Promise<Sampler>;
  /** One elementwise kernel over `elements` float32s. */
  elementwise(elements: number): Promise<Sampler>;
  /** A whole run of `launches` tiny kernels, unfused. */
  launches(launches: number): Promise<Sampler>;
  /** One AllReduce of `elements` float32s per device over `devices` logical devices. */
  allReduce(elements: number, devices: number): Promise<Sampler>;
  /** What the collective's timing adds around its work (0 where it is a plain call). */
  roundTrip(): Promise<Sampler>;
  dispose(): void;
}

/** The sizes each probe is timed at (x of the fitted lines). */
export interface CalibrationSizes {
  /** n of the n×n MatMuls. */
  matmul: number[];
  /** float32 elements of the elementwise kernel. */
  elementwise: number[];
  /** Kernels per chain. */
  launches: number[];
  /** float32 elements per device of the AllReduce. */
  allReduce: number[];
}

export const DEFAULT_SIZES: Record<'wgsl' | 'cpu', CalibrationSizes> = {
  wgsl: { matmul: [64, 128, 256, 384], elementwise: [1 << 16, 1 << 18, 1 << 20, 1 << 21], launches: [1, 16, 64, 128], allReduce: [1 << 10, 1 << 13, 1 << 16, 1 << 18] },
  cpu: { matmul: [64, 128, 256, 384], elementwise: [1 << 14, 1 << 16, 1 << 18, 1 << 20], launches: [1, 16, 64, 128], allReduce: [1 << 10, 1 << 13, 1 << 16, 1 << 18] },
};

/** Logical devices of the collective without a base file. */
export const DEFAULT_CALIBRATION_DEVICES = 4;
const MAX_CALIBRATION_DEVICES = 8;

export const CALIBRATION_TARGETS = ['wgsl', 'cpu'] as const;
export type CalibrationTarget = (typeof CALIBRATION_TARGETS)[number];

export interface CalibrateOptions {
  target: CalibrationTarget;
  /** A base hardware file whose topology is kept. */
  base?: string;
  warmup: number;
  runs: number;
  /** Override the sizes (tests use tiny ones). */
  sizes?: Partial<CalibrationSizes>;
  /** Supply the probe (tests); by default the target's. */
  probe?: Probe;
  /** Samples done (warm-up and timed), label 'calibration runs'. */
  onProgress?: (done: number, total: number, label: string) => void;
}

export interface CalibrationResult {
  hardware: Hardware;
  figures: CalibrationFigures;
  samples: CalibrationSamples;
  /** Logical devices the collective ran over (0: none measured). */
  devices: number;
}

/** The devices the collective runs over: the base's innermost island (2..8), or 4. */
export function calibrationDevices(base: Hardware | undefined): number {
  if (!base) return DEFAULT_CALIBRATION_DEVICES;
  const inner = base.links[0];
  if (!inner) return 0;
  return Math.max(2, Math.min(inner.groupSize ?? base.devices, base.devices, MAX_CALIBRATION_DEVICES));
}

async function createProbe(target: CalibrationTarget): Promise<Probe> {
  if (target === 'wgsl') return (await import('./calibrate-wgsl.js')).createWebGPUProbe();
  return (await import('./calibrate-cpu.js')).createCpuProbe();
}

/** Measures, fits and builds the hardware (nothing written: the command writes it). */
export async function calibrate(opts: CalibrateOptions): Promise<CalibrationResult> {
  if (!(opts.runs >= 1)) throw new UserError(`--runs must be at least 1; got ${opts.runs}`);
  const base = opts.base !== undefined ? loadHardware(opts.base) : undefined;
  const devices = calibrationDevices(base);
  const sizes = { ...DEFAULT_SIZES[opts.target], ...opts.sizes };
  for (const [k, v] of Object.entries(sizes)) if (new Set(v).size < 2) throw new Error(`calibration sizes of ${k}: at least two different sizes are needed for a line`);
  const probe = opts.probe ?? (await createProbe(opts.target));
  try {
    const total = (sizes.matmul.length + sizes.elementwise.length + sizes.launches.length + (devices ? sizes.allReduce.length : 0) + 1) * (opts.warmup + opts.runs);
    let done = 0;
    opts.onProgress?.(0, total, 'calibration runs');
    /** Warm-up, then the median of the timed samples (rounded as the file holds it). */
    const time = async (make: Promise<Sampler>): Promise<number> => {
      const s = await make;
      try {
        const times: number[] = [];
        for (let i = 0; i < opts.warmup + opts.runs; i++) {
          const t = await s.sample();
          if (i >= opts.warmup) times.push(t);
          opts.onProgress?.(++done, total, 'calibration runs');
        }
        return round4(median(times)!);
      } finally {
        s.dispose();
      }
    };
    const samples: CalibrationSamples = { matmulFlops: [], streamBytes: [], launches: [], roundTrip: 0 };
    for (const n of sizes.matmul) samples.matmulFlops.push([2 * n * n * n, await time(probe.matmul(n))]);
    for (const e of sizes.elementwise) samples.streamBytes.push([8 * e, await time(probe.elementwise(e))]);
    for (const k of sizes.launches) samples.launches.push([k, await time(probe.launches(k))]);
    if (devices) {
      samples.allReduce = [];
      for (const e of sizes.allReduce) samples.allReduce.push([4 * e, await time(probe.allReduce(e, devices))]);
    }
    samples.roundTrip = await time(probe.roundTrip());
    const hardware = calibratedHardware(
      samples,
      {
        target: opts.target,
        adapter: probe.adapter,
        devices,
        memoryBytes: Math.floor(totalmem() / Math.max(1, devices)),
        memorySource: `not measured: this host's memory (${formatBytes(totalmem())}) split over ${Math.max(1, devices)} logical devices${opts.target === 'wgsl' ? ' (WebGPU does not report device memory)' : ''}`,
        collectivePath: devices ? probe.collectivePath : 'none measured (the base file lists no link)',
        warmup: opts.warmup,
        runs: opts.runs,
      },
      base,
    );
    return { hardware, figures: fitFigures(samples, devices), samples, devices };
  } finally {
    probe.dispose();
  }
}

const si = (x: number, unit: string): string => {
  const prefixes: [number, string][] = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k'], [1, '']];
  const [f, p] = prefixes.find(([f]) => x >= f) ?? [1, ''];
  return `${Number((x / f).toPrecision(3))} ${p}${unit}`;
};
const us = (s: number): string => `${Number((s * 1e6).toPrecision(3))} us`;

/** The figures in words (the terminal output of --calibrate). */
export function formatCalibration(r: CalibrationResult): string[] {
  const hw = r.hardware;
  const d = hw.device;
  const s = r.samples;
  const lines = [
    `calibrated ${hw.calibrated!.target} on ${hw.calibrated!.adapter}: ${hw.devices} device${hw.devices > 1 ? 's' : ''}`,
    `  matmul f32       ${si(d.peakFlops.float32!, 'flop/s')}  (achieved: ${s.matmulFlops.map(([f, t]) => `n=${Math.round(Math.cbrt(f / 2))} ${si(f / t, 'flop/s')}`).join(', ')})`,
    `  memory           ${si(d.memoryBandwidth, 'B/s')}  (achieved: ${s.streamBytes.map(([b, t]) => `${formatBytes(b)} ${si(b / t, 'B/s')}`).join(', ')})`,
    `  launch latency   ${us(d.launchLatency ?? 0)} per kernel`,
  ];
  const link = hw.links[0];
  if (r.figures.link && link)
    lines.push(`  link ${link.name}  ${si(link.bandwidth, 'B/s')}, latency ${us(link.latency)} per step (AllReduce over ${r.devices} devices: ${s.allReduce!.map(([b, t]) => `${formatBytes(b)} ${us(t)}`).join(', ')})`);
  lines.push(`  memory per device ${formatBytes(d.memoryBytes)}`);
  return lines;
}
