/**
 * From timings to a hardware file (`shardc bench --calibrate`): the least-squares line through
 * measured (x, seconds) points, the device and link figures read off those lines, and the
 * Hardware they make (alone, or over a base file whose topology is kept). Pure — no clock, no
 * device: src/bench/calibrate.ts measures and hands the medians in, tests hand in made-up ones.
 *
 * Each probe is a line, time = intercept + x · slope, fitted over several sizes by least squares
 * of the relative error (fitRelative: every size counts alike, not only the largest):
 *   matmulFlops   x = 2n³ flops of one n×n·n×n MatMul         peakFlops.float32 = 1 / slope
 *   streamBytes   x = bytes an elementwise kernel reads+writes memoryBandwidth  = 1 / slope
 *   launches      x = kernel launches in one run               launchLatency    = slope
 *   allReduce     x = bytes of the AllReduce input per device  link: the cost model's formula
 *                 (passes/sharding/cost.ts collectiveSeconds) read backwards — time =
 *                 2(n−1)·latency + 2(n−1)/n · bytes / bandwidth, so bandwidth = 2(n−1)/n / slope and
 *                 latency = (intercept − the timing's own round trip) / 2(n−1).
 * The intercepts of the first two (a launch and the timing's round trip) are not figures. A slope
 * that is not positive (noise swamping a too-small budget) falls back to the best rate any single
 * size achieved, and says so in the notes; a negative latency is 0. Medians and figures are
 * rounded to 4 significant digits, medians first, so the figures are what the samples written to
 * the file give.
 */
import { basename } from 'node:path';
import { UserError } from '../ir/errors.js';
import { collectiveSeconds } from '../passes/sharding/cost.js';
import type { Calibration, Hardware, LinkSpec } from './hardware.js';

export interface Line {
  intercept: number;
  slope: number;
}

/**
 * Weighted least squares through (x, y) points (centred sums; at least two distinct x): minimises
 * Σ wᵢ (yᵢ − intercept − slope·xᵢ)², every weight 1 unless given.
 */
export function fitLine(points: readonly (readonly [number, number])[], weights?: readonly number[]): Line {
  const n = points.length;
  if (n < 2) throw new Error(`fitLine: ${n} points; a line needs two`);
  const w = (i: number): number => weights?.[i] ?? 1;
  let sw = 0;
  let mx = 0;
  let my = 0;
  points.forEach(([x, y], i) => {
    sw += w(i);
    mx += w(i) * x;
    my += w(i) * y;
  });
  mx /= sw;
  my /= sw;
  let sxx = 0;
  let sxy = 0;
  points.forEach(([x, y], i) => {
    sxx += w(i) * (x - mx) * (x - mx);
    sxy += w(i) * (x - mx) * (y - my);
  });
  if (!(sxx > 0)) throw new Error('fitLine: every point has the same x');
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

/**
 * The line with the least RELATIVE error (weights 1/y²): sizes grow geometrically, and plain least
 * squares would let the largest size alone decide the intercept (the latency).
 */
export function fitRelative(points: readonly (readonly [number, number])[]): Line {
  return fitLine(points, points.map(([, y]) => 1 / Math.max(y, 1e-9) ** 2));
}

/** What was timed: per probe, [x, median seconds] pairs (see the file comment for each x). */
export interface CalibrationSamples {
  matmulFlops: [number, number][];
  streamBytes: [number, number][];
  launches: [number, number][];
  /** Absent when no link was measured. */
  allReduce?: [number, number][];
  /** Seconds the timing of one collective step adds around its work (submit and wait); 0 on the CPU. */
  roundTrip: number;
}

export interface CalibrationFigures {
  /** float32 flop/s. */
  peakFlops: number;
  /** Bytes/s. */
  memoryBandwidth: number;
  /** Seconds per kernel launch. */
  launchLatency: number;
  /** Bytes/s one device sends, seconds per step, over `devices` devices. */
  link?: { bandwidth: number; latency: number; devices: number };
  /** How each figure was read off its line, one line each. */
  notes: string[];
}

/** `x` at 4 significant digits (what the file holds). */
export const round4 = (x: number): number => Number(x.toPrecision(4));

/** `1.937e+9 unit`: 4 significant digits, as the file holds the figure. */
const sci = (x: number, unit: string): string => `${round4(x).toExponential()} ${unit}`;

/** 1 / slope, or the best single-size rate when the slope is not positive. */
function rate(points: readonly [number, number][], what: string, unit: string, notes: string[]): number {
  const { slope } = fitRelative(points);
  if (slope > 0) {
    notes.push(`${what}: ${sci(1 / slope, unit)} from the slope of time over ${points.length} sizes`);
    return 1 / slope;
  }
  const best = Math.max(...points.filter((p) => p[1] > 0).map((p) => p[0] / p[1]));
  if (!(best > 0)) throw new UserError(`${what}: no timing above 0 to read a rate from; raise --runs`);
  notes.push(`${what}: ${sci(best, unit)}, the best single size (the fitted slope over ${points.length} sizes was not positive: too few runs?)`);
  return best;
}

/** The figures of the samples; `devices`: how many devices the AllReduce was over. */
export function fitFigures(s: CalibrationSamples, devices: number): CalibrationFigures {
  const notes: string[] = [];
  const peakFlops = round4(rate(s.matmulFlops, 'peakFlops.float32 (MatMul)', 'flop/s', notes));
  const memoryBandwidth = round4(rate(s.streamBytes, 'memoryBandwidth (elementwise kernel, bytes read + written)', 'B/s', notes));
  const launchLatency = round4(Math.max(0, fitRelative(s.launches).slope));
  notes.push(`launchLatency: ${sci(launchLatency, 's')}, the slope of run time over ${s.launches.length} chains of kernel launches (${s.launches.map((p) => p[0]).join(', ')})`);
  const figures: CalibrationFigures = { peakFlops, memoryBandwidth, launchLatency, notes };
  if (s.allReduce && devices > 1) {
    // The cost model's AllReduce time is perStep·latency + perByte·bytes/bandwidth.
    const perByte = collectiveSeconds('AllReduce', 1, devices, { bandwidth: 1, latency: 0 });
    const perStep = collectiveSeconds('AllReduce', 0, devices, { bandwidth: 1, latency: 1 });
    const scaled = s.allReduce.map(([bytes, t]): [number, number] => [bytes * perByte, t]);
    const bandwidth = round4(rate(scaled, `link bandwidth (AllReduce over ${devices} devices, ${round4(perByte)}·bytes per device sent)`, 'B/s', notes));
    const { intercept } = fitRelative(scaled);
    const latency = round4(Math.max(0, intercept - s.roundTrip) / perStep);
    notes.push(`link latency: ${sci(latency, 's')}, the intercept (${sci(intercept, 's')}) less the timing's round trip (${sci(s.roundTrip, 's')}) over ${perStep} steps`);
    figures.link = { bandwidth, latency, devices };
  }
  return figures;
}

/** What the measurement was and where (the provenance the file records). */
export interface CalibrationContext {
  target: 'wgsl' | 'cpu';
  adapter: string;
  /** The logical devices the collective ran over (the file's device count without a base). */
  devices: number;
  /** Per-device memory to write when no base file gives one. */
  memoryBytes: number;
  /** Where memoryBytes comes from, in words. */
  memorySource: string;
  /** The collective's path, in words (e.g. device-side copy kernels on one GPUDevice). */
  collectivePath: string;
  warmup: number;
  runs: number;
}

/** The link a measurement without a base file describes: logical devices sharing one adapter or process. */
const SHARED_LINK = { wgsl: 'shared-adapter', cpu: 'shared-process' } as const;

/**
 * The calibrated hardware: measured device (and innermost link) figures over the base file's
 * topology (device count, memory, links, axes) when given, else `ctx.devices` logical devices on
 * one shared link. Deterministic: a function of the samples and the context only.
 */
export function calibratedHardware(samples: CalibrationSamples, ctx: CalibrationContext, base?: Hardware): Hardware {
  const f = fitFigures(samples, ctx.devices);
  const notes = [
    `${ctx.warmup} warm-up and ${ctx.runs} timed runs per size; medians; lines time = a + x·b by least squares of the relative error (src/hardware/calibrate.ts)`,
    ...f.notes,
    `collectives: ${ctx.collectivePath}`,
  ];
  let links: LinkSpec[];
  if (base) {
    links = base.links.map((l) => ({ ...l }));
    if (f.link && links[0]) {
      links[0] = { ...links[0], bandwidth: f.link.bandwidth, latency: f.link.latency };
      const rest = links.length > 1 ? `links ${links.slice(1).map((l) => l.name).join(', ')}, ` : '';
      notes.push(`link ${links[0].name} (the innermost): the figures of the collective path measured above; ${rest}the topology and the memory: the base file's`);
    } else notes.push('links, topology and memory: the base file\'s (it has no link to measure)');
  } else {
    links = f.link ? [{ name: SHARED_LINK[ctx.target], kind: 'shared', bandwidth: f.link.bandwidth, latency: f.link.latency }] : [];
    notes.push(`memoryBytes: ${ctx.memorySource}`);
  }
  const devices = base?.devices ?? (links.length ? ctx.devices : 1);
  const on = `${ctx.adapter}${ctx.target === 'wgsl' ? ' (WebGPU)' : ''}`;
  const calibrated: Calibration = { target: ctx.target, adapter: ctx.adapter, notes, samples: samplesRecord(samples) };
  return {
    name: base ? `${base.name}, calibrated on ${on}` : `${devices} logical device${devices > 1 ? 's' : ''} on ${on}, calibrated`,
    source: `measured by shardc bench --calibrate --target ${ctx.target} (see "calibrated")${base ? `; topology and memory from ${base.file ? basename(base.file) : 'the base file'}: ${base.source}` : ''}`,
    devices,
    device: {
      name: ctx.adapter,
      memoryBytes: base?.device.memoryBytes ?? ctx.memoryBytes,
      memoryBandwidth: f.memoryBandwidth,
      peakFlops: { float32: f.peakFlops },
      launchLatency: f.launchLatency,
    },
    links,
    axes: base ? { ...base.axes } : {},
    calibrated,
  };
}

function samplesRecord(s: CalibrationSamples): Record<string, [number, number][]> {
  return {
    matmulFlops: s.matmulFlops,
    streamBytes: s.streamBytes,
    launches: s.launches,
    ...(s.allReduce ? { allReduce: s.allReduce } : {}),
    roundTrip: [[0, s.roundTrip]],
  };
}
