/**
 * The bundle `shardc partition` writes (DESIGN.md "Bundle"), for target cpu:
 *   manifest.json                 format, shardc version, model file name and SHA-256, mesh, strategy,
 *                                 target, symbol bindings, devices, and a SHA-256 per other file
 *   plan.json                     layouts and reasons per value, collectives (what explain/run read)
 *   schedule.json                 per device, its ordered steps with dependencies and streams (estimated times with a hardware file)
 *   report.json, report.html      per-device estimates and every collective with its reason
 *   device-<r>/model.onnx         the device's local graph (collectives in domain shardc.collective)
 *   device-<r>/weights.safetensors  its weights, referenced from model.onnx as external data
 * and for target wgsl also, per device (src/bundle/wgsl.ts), its ahead-of-time host program:
 *   device-<r>/kernels.wgsl, host-program.json, constants.safetensors, host.ts, host.js
 * With `noWeights` (partition --no-weights) no device model.onnx or weights.safetensors is written and
 * no weight is read: the manifest says `noWeights: true` and its device entries name no model or
 * weights (empty strings); such a bundle is a plan and its reports (and wgsl kernels), not runnable.
 * Every JSON file has sorted keys; nothing depends on time or paths unless SOURCE_DATE_EPOCH is set
 * (then manifest.json records it as `created`), so the same model and options give the same bytes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Graph } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import type { DeviceProgram } from '../passes/sharding/lower.js';
import type { ShardPlan } from '../passes/sharding/plan.js';
import { writeDirAtomic, type AtomicWriteOptions, type DirFile } from './atomic-dir.js';
import { canonicalJson, compareCodeUnits, sha256Hex, utf8 } from './canonical.js';
import { DEVICE_MODEL_FILE, DEVICE_WEIGHTS_FILE, externalizeWeights } from './device-model.js';
import { planRecord } from './plan-record.js';
import { buildReport, buildReportView, reportHtml, type ReportOptions } from './report.js';
import { buildSchedule, scheduleJson } from './schedule.js';

export const BUNDLE_FORMAT = 'shardc-bundle';
export const BUNDLE_FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const PLAN_FILE = 'plan.json';
export const SCHEDULE_FILE = 'schedule.json';
export const REPORT_FILE = 'report.json';
export const REPORT_HTML_FILE = 'report.html';

/** What a bundle is for: the simulated CPU runtime, or WebGPU (per-device kernels.wgsl). */
export type BundleTarget = 'cpu' | 'wgsl' | 'cuda';

export interface BundleFileEntry {
  path: string;
  sha256: string;
  bytes: number;
}

export interface Manifest {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  shardc: string;
  model: { file: string; sha256: string };
  mesh: { spec: string; axes: { name: string; size: number }[]; devices: number };
  strategy: string;
  /** The spec file's name and hash when the strategy is a spec file. */
  strategySpec?: { file: string; sha256: string };
  target: BundleTarget;
  bindings: Record<string, number>;
  /**
   * `kernels`: device-<r>/kernels.wgsl of a wgsl bundle; `host`: its ahead-of-time host program
   * (device-<r>/host-program.json; host.ts and host.js beside it), compiled for `bindings`.
   */
  devices: { device: number; coords: number[]; model: string; weights: string; kernels?: string; host?: string }[];
  /** Every other file of the bundle, sorted by path. */
  files: BundleFileEntry[];
  /** From SOURCE_DATE_EPOCH when set (ISO 8601); absent otherwise. */
  created?: string;
  /** Written with --no-weights: no device models or weights (plan, schedule, reports, kernels only). */
  noWeights?: true;
}

export interface BundleInput {
  plan: ShardPlan;
  programs: readonly DeviceProgram[];
  registry: OpRegistry;
  /** Serializes a device graph as ONNX (exportModel); its initializers are moved to safetensors. */
  exportGraph(graph: Graph): Uint8Array;
  /** Model file name (no directory) and the SHA-256 of its bytes. */
  model: { file: string; sha256: string };
  /** Strategy as recorded (a preset name, or `spec:<file name>`). */
  strategy: string;
  strategySpec?: { file: string; sha256: string };
  target: BundleTarget;
  /** Per device, target files besides model and weights (wgsl: kernels.wgsl), by file name. */
  deviceFiles?: ReadonlyMap<number, ReadonlyMap<string, Uint8Array>>;
  /** Bundle-level target files by path (cuda: CMakeLists.txt, devices.cpp, runtime/*, README.md). */
  bundleFiles?: ReadonlyMap<string, Uint8Array>;
  shardcVersion: string;
  /** Environment to read SOURCE_DATE_EPOCH from (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** partition --no-weights: write no device model or weights, read no weight. */
  noWeights?: boolean;
  /** Options for report.json (hardware file, memory limit). */
  report?: ReportOptions;
  /** Progress of reading each device's weights (label 'reading weights', counted in devices). */
  onProgress?(done: number, total: number, label: string): void;
}

export interface BuiltBundle {
  files: DirFile[];
  manifest: Manifest;
  manifestSha256: string;
}

export function devicePath(device: number, file: string): string {
  return `device-${device}/${file}`;
}

export function buildBundleFiles(input: BundleInput): BuiltBundle {
  const { plan, programs } = input;
  const mesh = plan.mesh;
  if (programs.length !== mesh.deviceCount) throw new Error(`${programs.length} device programs for a mesh of ${mesh.deviceCount} devices`);
  const ordered = programs.slice().sort((a, b) => a.device - b.device);
  const files: DirFile[] = [];
  const json = (path: string, doc: unknown): void => void files.push({ path, parts: [utf8(canonicalJson(doc))] });

  if (!input.noWeights) input.onProgress?.(0, ordered.length, 'reading weights');
  for (const [i, p] of ordered.entries()) {
    for (const [file, bytes] of input.deviceFiles?.get(p.device) ?? []) files.push({ path: devicePath(p.device, file), parts: [bytes] });
    if (input.noWeights) continue;
    const modelPath = devicePath(p.device, DEVICE_MODEL_FILE);
    const { model, weights } = externalizeWeights(input.exportGraph(p.graph), {
      file: modelPath,
      metadata: { 'shardc.device': String(p.device), 'shardc.mesh': mesh.toString() },
    });
    files.push({ path: modelPath, parts: [model] });
    files.push({ path: devicePath(p.device, DEVICE_WEIGHTS_FILE), parts: weights.parts });
    input.onProgress?.(i + 1, ordered.length, 'reading weights');
  }
  for (const [path, bytes] of input.bundleFiles ?? []) files.push({ path, parts: [bytes] });
  const hardware = input.report?.hardware;
  const schedule = buildSchedule(plan, ordered, (d) => devicePath(d, DEVICE_MODEL_FILE), hardware && { hardware, registry: input.registry });
  files.push({ path: SCHEDULE_FILE, parts: [utf8(scheduleJson(schedule))] }); // canonicalJson's text, each shared steps array once
  json(PLAN_FILE, { ...planRecord(plan, input.strategy), model: input.model.file });
  const report = buildReport(plan, ordered, input.registry, input.strategy, input.report);
  json(REPORT_FILE, report);
  files.push({ path: REPORT_HTML_FILE, parts: [utf8(reportHtml(report, input.model.file, buildReportView(plan, ordered, schedule.devices)))] });

  files.sort((a, b) => compareCodeUnits(a.path, b.path));
  const manifest: Manifest = {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    shardc: input.shardcVersion,
    model: { ...input.model },
    mesh: { spec: mesh.toString(), axes: mesh.axes.map((a) => ({ name: a.name, size: a.size })), devices: mesh.deviceCount },
    strategy: input.strategy,
    strategySpec: input.strategySpec,
    target: input.target,
    bindings: { ...plan.bindings },
    devices: ordered.map((p) => ({
      device: p.device,
      coords: p.coords.slice(),
      model: input.noWeights ? '' : devicePath(p.device, DEVICE_MODEL_FILE),
      weights: input.noWeights ? '' : devicePath(p.device, DEVICE_WEIGHTS_FILE),
      ...(input.deviceFiles?.get(p.device)?.has('kernels.wgsl') ? { kernels: devicePath(p.device, 'kernels.wgsl') } : {}),
      ...(input.deviceFiles?.get(p.device)?.has('kernels.cu') ? { kernels: devicePath(p.device, 'kernels.cu') } : {}),
      ...(input.deviceFiles?.get(p.device)?.has('host-program.json') ? { host: devicePath(p.device, 'host-program.json') } : {}),
    })),
    files: files.map((f) => ({ path: f.path, sha256: sha256Hex(...f.parts), bytes: f.parts.reduce((n, x) => n + x.length, 0) })),
    created: sourceDateEpoch(input.env ?? process.env),
    ...(input.noWeights ? { noWeights: true as const } : {}),
  };
  const manifestBytes = utf8(canonicalJson(manifest));
  files.unshift({ path: MANIFEST_FILE, parts: [manifestBytes] });
  return { files, manifest, manifestSha256: sha256Hex(manifestBytes) };
}

/** SOURCE_DATE_EPOCH (seconds since 1970, reproducible-builds.org) as ISO 8601, or undefined. */
function sourceDateEpoch(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const s = env['SOURCE_DATE_EPOCH'];
  if (s === undefined || !/^\d{1,15}$/.test(s.trim())) return undefined;
  return new Date(Number(s.trim()) * 1000).toISOString();
}

/** Builds and writes a bundle atomically; `dir` is replaced only when complete. */
export function writeBundle(dir: string, input: BundleInput, opts: AtomicWriteOptions = {}): BuiltBundle {
  const built = buildBundleFiles(input);
  writeDirAtomic(dir, built.files, { what: 'bundle', isReplaceable: isBundleDir, ...opts });
  return built;
}

/** Whether `dir` holds a shardc bundle (its manifest names the format). */
export function isBundleDir(dir: string): boolean {
  try {
    const m = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as { format?: unknown };
    return m.format === BUNDLE_FORMAT;
  } catch {
    return false;
  }
}

