/**
 * `shardc bench`: what it measures and the one JSON document it reports. The model (an ONNX file,
 * or a bundle directory) gets seeded random inputs (the same tensors for every engine); shardc
 * runs it on WebGPU — in headless Chromium with --browser (next to onnxruntime-web's default
 * build on its wasm execution provider and its WebGPU build on its webgpu execution provider), else
 * on Node's Dawn (one device, or a mesh of devices on one adapter; onnxruntime-node for
 * reference). Every engine: warm-up runs, then timed runs from CPU inputs to CPU outputs; medians.
 * The outputs are checked against the reference (onnxruntime, else shardc's CPU runtime) at
 * rtol 1e-3, atol 1e-4.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { inlineExternalData } from '../browser/index.js';
import { bundleShardPlan, loadBundlePrograms, readBundle } from '../bundle/read.js';
import { checkMeshFits } from '../bundle/fit.js';
import { resolveStrategy } from '../bundle/strategy.js';
import { UserError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import { createCoreRegistry } from '../ir/ops/index.js';
import { Tensor } from '../ir/tensor.js';
import { checkRelativeLocation } from '../onnx/external-data.js';
import { importModel, unsupportedOps } from '../onnx/import.js';
import { decodeModelProto } from '../onnx/proto.js';
import { shardGraph } from '../passes/sharding/index.js';
import { type DeviceProgram, lowerPlan } from '../passes/sharding/lower.js';
import { DeviceMesh } from '../passes/sharding/mesh.js';
import type { ShardPlan } from '../passes/sharding/plan.js';
import { createCoreShardingRules } from '../passes/sharding/rules/index.js';
import { runGraph } from '../targets/cpu/interpreter.js';
import { randomInputs } from '../verify/random-inputs.js';
import { bindingsFromFeeds } from '../verify/sharded.js';
import { runBrowserBench } from './browser.js';
import { type ShardcNodeResult, type TimedResult, benchMesh, benchOrtNode, benchSingleDevice } from './node.js';
import type { EngineResult, PageEngine, PageTensor } from './page.js';
import { type OpSummary, type Profile, type ProfileEntry, profileReport, summarizeProfile, topEntries } from './profile.js';
import { type Agreement, BENCH_TOLERANCE, agreement } from './stats.js';

export const COMPARE_ENGINES = ['onnxruntime-web', 'onnxruntime-node'] as const;
export type CompareEngine = (typeof COMPARE_ENGINES)[number];

export interface BenchOptions {
  packageRoot: string;
  /** An ONNX file or a bundle directory. */
  model: string;
  browser: boolean;
  compare?: CompareEngine;
  /** For an ONNX file: the mesh to shard it over in memory (default tp=1). */
  mesh?: string;
  strategy?: string;
  dims?: Readonly<Record<string, number>>;
  seed?: number;
  warmup: number;
  runs: number;
  profile?: boolean;
  /** ort.env.wasm.numThreads (default: the cores, at most 4). */
  numThreads?: number;
  chromium?: string;
  /** shardc's engine (default compiled) and kernel fusion (default on). */
  engine?: 'compiled' | 'interpretive';
  /** Runs done (Node only: 'shardc runs', 'onnxruntime-node runs'), for progress bars. */
  onProgress?: (done: number, total: number, label: string) => void;
  fuse?: boolean;
}

export interface EngineTimes {
  medianMs: number | null;
  times: number[];
  error?: string;
}

/** The document `shardc bench --json` prints (times in milliseconds, medians of the timed runs). */
export interface BenchReport {
  model: string;
  target: 'wgsl';
  /** 'browser' (headless Chromium) or 'node' (Dawn). */
  runtime: 'browser' | 'node';
  mesh: string;
  strategy: string;
  devices: number;
  adapter: string;
  /** shardc's runtime: 'interpretive' (kernel runner) or 'compiled' (host program session). */
  shardcEngine: string;
  /** Kernel fusion of the compiled host program (--no-fuse: false). */
  fuse: boolean;
  inputs: { name: string; dtype: string; shape: number[] }[];
  seed: number;
  warmup: number;
  runs: number;
  shardcMs: number;
  shardcTimes: number[];
  /** --compare onnxruntime-web: the faster of its two builds. */
  onnxruntimeWebMs?: number | null;
  onnxruntimeWeb?: { wasmMs: number | null; webgpuMs: number | null; numThreads: number; faster: 'wasm' | 'webgpu' | null; wasmTimes: number[]; webgpuTimes: number[]; wasmError?: string; webgpuError?: string };
  /** --compare onnxruntime-node (CPU execution provider). */
  onnxruntimeNodeMs?: number;
  /** shardcMs / the peer's time (below 1: shardc is faster); null without a peer time. */
  ratio: number | null;
  /** Agreement with the reference (the first of `agreement`). */
  agree: boolean;
  maxAbsDiff: number;
  maxRelDiff: number;
  reference: string;
  tolerance: { rtol: number; atol: number };
  agreement: Agreement[];
  browser?: { userAgent: string; crossOriginIsolated: boolean; hardwareConcurrency: number };
  profile?: { timing: Profile['timing']; totalMs: number; byOp: OpSummary[]; top: ProfileEntry[] };
}

interface LoadedModel {
  /** Self-contained ONNX bytes (external data inlined) when there is one model for the whole run. */
  bytes?: Uint8Array;
  graph: Graph;
  /** A multi-device bundle: its programs and plan. */
  bundle?: { programs: DeviceProgram[]; plan: ShardPlan; mesh: DeviceMesh; strategy: string };
}

/** Inlines the external data of ONNX bytes, reading the files next to `file`. */
function selfContained(bytes: Uint8Array, file: string): Uint8Array {
  const proto = decodeModelProto(bytes, { file, maxDepth: 100 });
  const files: Record<string, Uint8Array> = {};
  for (const t of proto.graph?.initializer ?? [])
    for (const e of t.externalData ?? [])
      if (e.key === 'location' && e.value && !(e.value in files)) {
        checkRelativeLocation(e.value, { file, tensor: t.name ?? undefined });
        const p = join(dirname(file), e.value);
        if (!existsSync(p)) throw new UserError(`external data file ${JSON.stringify(e.value)} is missing`, { file, tensor: t.name ?? undefined });
        files[e.value] = readFileSync(p);
      }
  return Object.keys(files).length ? inlineExternalData(bytes, files, file) : bytes;
}

function loadBenchModel(path: string): LoadedModel {
  if (!existsSync(path)) throw new UserError('file not found', { file: path });
  if (statSync(path).isDirectory()) {
    const b = readBundle(path);
    const programs = loadBundlePrograms(b);
    if (programs.length === 1) {
      const model = b.manifest.devices[0]!.model;
      const file = join(path, ...model.split('/'));
      const bytes = selfContained(readFileSync(file), file);
      return { bytes, graph: importModel(bytes, { file }).graph };
    }
    const plan = bundleShardPlan(b);
    return { graph: plan.graph, bundle: { programs, plan, mesh: b.mesh, strategy: b.manifest.strategy } };
  }
  const bytes = selfContained(readFileSync(path), path);
  return { bytes, graph: importModel(bytes, { file: path }).graph };
}

const pageTensor = (name: string, t: Tensor): PageTensor => ({ name, dtype: t.dtype, shape: [...t.shape], data: Array.from(t.data as ArrayLike<number>, Number) });
const fromPage = (ts: readonly PageTensor[]): Map<string, Tensor> => new Map(ts.map((t) => [t.name, Tensor.from(t.dtype, t.shape, t.data)]));

function engineTimes(e: EngineResult | undefined): EngineTimes {
  return e ? { medianMs: e.medianMs, times: e.times, error: e.error } : { medianMs: null, times: [], error: 'not run' };
}

/** Runs the benchmark; the report and the full profile (when asked). */
export async function benchModel(opts: BenchOptions): Promise<{ report: BenchReport; profile?: Profile }> {
  if (!(opts.runs >= 1)) throw new UserError(`--runs must be at least 1; got ${opts.runs}`);
  if (opts.compare === 'onnxruntime-web' && !opts.browser) throw new UserError('--compare onnxruntime-web runs in the browser: add --browser');
  if (opts.compare === 'onnxruntime-node' && opts.browser) throw new UserError('--compare onnxruntime-node runs in Node: drop --browser (or compare with onnxruntime-web)');
  const registry = createCoreRegistry();
  const loaded = loadBenchModel(opts.model);
  const missing = unsupportedOps(loaded.graph, registry);
  if (missing.length) throw new UserError(`unsupported ops: ${missing.map((m) => m.op).join(', ')}`, { file: opts.model });
  if (loaded.bundle && opts.mesh !== undefined && DeviceMesh.parse(opts.mesh).toString() !== loaded.bundle.mesh.toString())
    throw new UserError(`--mesh ${opts.mesh} differs from the bundle's mesh ${loaded.bundle.mesh}; a bundle runs on its own mesh`, { file: opts.model });
  const mesh = loaded.bundle?.mesh ?? DeviceMesh.parse(opts.mesh ?? 'tp=1');
  const strategyName = loaded.bundle?.strategy ?? opts.strategy ?? 'megatron';
  if (opts.browser && mesh.deviceCount !== 1) throw new UserError(`--browser runs one device; mesh ${mesh} has ${mesh.deviceCount} (bench a sharded run without --browser)`);
  if (!loaded.bytes && opts.compare) throw new UserError(`--compare needs one ONNX model; this bundle has ${mesh.deviceCount} devices (bench the model file with --mesh instead)`, { file: opts.model });

  const seed = opts.seed ?? 0;
  const feeds = randomInputs(loaded.graph, { seed, dims: opts.dims });
  const inputs = [...feeds].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] }));
  const base = {
    model: opts.model,
    target: 'wgsl' as const,
    mesh: mesh.toString(),
    strategy: mesh.deviceCount === 1 ? 'none' : strategyName,
    devices: mesh.deviceCount,
    fuse: opts.fuse !== false,
    inputs,
    seed,
    warmup: opts.warmup,
    runs: opts.runs,
    tolerance: { ...BENCH_TOLERANCE },
  };
  /** shardc's CPU runtime on the same inputs (the reference when no peer runs). */
  const cpuReference = (): Map<string, Tensor> => {
    if (loaded.bundle) throw new Error('unreachable: a multi-device bundle has no single graph');
    const g = importModel(loaded.bytes!, { file: opts.model }).graph;
    return runGraph(g, feeds, { registry });
  };

  if (opts.browser) {
    const numThreads = opts.numThreads ?? Math.min(4, availableParallelism());
    const engines: PageEngine[] = opts.compare === 'onnxruntime-web' ? ['shardc', 'ort-wasm', 'ort-webgpu'] : ['shardc'];
    const page = await runBrowserBench({
      packageRoot: opts.packageRoot,
      model: loaded.bytes!,
      chromium: opts.chromium,
      args: { feeds: [...feeds].map(([n, t]) => pageTensor(n, t)), warmup: opts.warmup, runs: opts.runs, numThreads, profile: !!opts.profile, engines, shardcEngine: opts.engine, fuse: opts.fuse },
    });
    const shardc = page.engines.find((e) => e.engine === 'shardc')!;
    if (shardc.error || shardc.medianMs === null) throw new UserError(`shardc failed in the page: ${shardc.error ?? 'no time'}`, { file: opts.model });
    const got = fromPage(shardc.outputs);
    const checks: Agreement[] = [];
    let webReport: BenchReport['onnxruntimeWeb'];
    let peerMs: number | null = null;
    if (opts.compare === 'onnxruntime-web') {
      const wasm = page.engines.find((e) => e.engine === 'ort-wasm');
      const webgpu = page.engines.find((e) => e.engine === 'ort-webgpu');
      const w = engineTimes(wasm);
      const g = engineTimes(webgpu);
      for (const [label, e] of [['onnxruntime-web wasm', wasm], ['onnxruntime-web webgpu', webgpu]] as const)
        if (e && !e.error) checks.push(agreement(label, got, fromPage(e.outputs)));
      const faster = w.medianMs === null ? (g.medianMs === null ? null : 'webgpu') : g.medianMs === null || w.medianMs <= g.medianMs ? 'wasm' : 'webgpu';
      peerMs = faster === 'wasm' ? w.medianMs : faster === 'webgpu' ? g.medianMs : null;
      webReport = {
        wasmMs: w.medianMs,
        webgpuMs: g.medianMs,
        numThreads,
        faster,
        wasmTimes: w.times,
        webgpuTimes: g.times,
        ...(w.error ? { wasmError: w.error } : {}),
        ...(g.error ? { webgpuError: g.error } : {}),
      };
    }
    if (!checks.length) checks.push(agreement('shardc cpu runtime', got, cpuReference()));
    const report: BenchReport = {
      ...base,
      runtime: 'browser',
      adapter: page.adapter,
      shardcEngine: page.shardcEngine,
      shardcMs: shardc.medianMs,
      shardcTimes: shardc.times,
      ...(webReport ? { onnxruntimeWebMs: peerMs, onnxruntimeWeb: webReport } : {}),
      ratio: peerMs ? shardc.medianMs / peerMs : null,
      ...summaryOf(checks),
      agreement: checks,
      browser: { userAgent: page.userAgent, crossOriginIsolated: page.crossOriginIsolated, hardwareConcurrency: page.hardwareConcurrency },
      ...(page.profile ? { profile: profileSummary(page.profile) } : {}),
    };
    return { report: ordered(report), profile: page.profile };
  }

  // Node: Dawn.
  const nodeOpts = { registry, warmup: opts.warmup, runs: opts.runs, profile: opts.profile, engine: opts.engine, fuse: opts.fuse, onProgress: opts.onProgress };
  let result: ShardcNodeResult;
  if (loaded.bundle) result = await benchMesh(loaded.bundle.programs, loaded.bundle.plan, mesh, feeds, nodeOpts);
  else if (mesh.deviceCount === 1) result = await benchSingleDevice(importModel(loaded.bytes!, { file: opts.model }).graph, feeds, nodeOpts);
  else {
    const rules = createCoreShardingRules();
    const strategy = resolveStrategy(strategyName);
    const graph = importModel(loaded.bytes!, { file: opts.model }).graph;
    const plan = shardGraph(graph, mesh, { strategy: strategy.strategy, specFile: strategy.specFile, registry, rules, bindings: bindingsFromFeeds(graph, feeds, opts.dims) });
    checkMeshFits(plan);
    result = await benchMesh(lowerPlan(plan, { registry, rules }), plan, mesh, feeds, nodeOpts);
  }
  let ortNode: TimedResult | undefined;
  const checks: Agreement[] = [];
  if (opts.compare === 'onnxruntime-node') {
    ortNode = await benchOrtNode(loaded.bytes!, feeds, opts);
    checks.push(agreement('onnxruntime-node', result.outputs, ortNode.outputs));
  } else if (!loaded.bundle) checks.push(agreement('shardc cpu runtime', result.outputs, cpuReference()));
  const report: BenchReport = {
    ...base,
    runtime: 'node',
    adapter: result.adapter,
    shardcEngine: result.engine,
    shardcMs: result.medianMs,
    shardcTimes: result.times,
    ...(ortNode ? { onnxruntimeNodeMs: ortNode.medianMs } : {}),
    ratio: ortNode ? result.medianMs / ortNode.medianMs : null,
    ...summaryOf(checks),
    agreement: checks,
    ...(result.profile ? { profile: profileSummary(result.profile) } : {}),
  };
  return { report: ordered(report), profile: result.profile };
}

/** The headline figures first (the issue's order), then the details. */
const KEY_ORDER: (keyof BenchReport)[] = [
  'model', 'target', 'runtime', 'mesh', 'strategy', 'devices', 'adapter', 'shardcEngine', 'fuse',
  'shardcMs', 'onnxruntimeWebMs', 'onnxruntimeWeb', 'onnxruntimeNodeMs', 'ratio', 'agree', 'maxAbsDiff', 'maxRelDiff',
  'reference', 'tolerance', 'runs', 'warmup', 'seed', 'inputs', 'shardcTimes', 'agreement', 'browser', 'profile',
];

function ordered(r: BenchReport): BenchReport {
  const out: Record<string, unknown> = {};
  for (const k of KEY_ORDER) if (r[k] !== undefined) out[k] = r[k];
  return out as unknown as BenchReport;
}

function summaryOf(checks: readonly Agreement[]): Pick<BenchReport, 'agree' | 'maxAbsDiff' | 'maxRelDiff' | 'reference'> {
  const first = checks[0];
  // A multi-device bundle without a peer has nothing to compare with.
  if (!first) return { agree: true, maxAbsDiff: 0, maxRelDiff: 0, reference: 'none' };
  return { agree: first.agree, maxAbsDiff: first.maxAbsDiff, maxRelDiff: first.maxRelDiff, reference: first.against };
}

function profileSummary(p: Profile): NonNullable<BenchReport['profile']> {
  const r = profileReport(p);
  return { timing: r.timing, totalMs: r.totalMs, byOp: r.byOp, top: topEntries({ timing: p.timing, entries: r.entries }, 10) };
}

/** The report.json document: the report, and every profile entry when profiled. */
export function reportFile(report: BenchReport, profile?: Profile): unknown {
  return profile ? { ...report, profile: { ...report.profile, entries: profileReport(profile).entries } } : report;
}

const fmt = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '-' : ms >= 100 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));

/** The human-readable table. */
export function formatBench(r: BenchReport): string[] {
  const lines = [
    `${basename(r.model)}: ${r.target} on ${r.runtime === 'browser' ? 'headless Chromium' : 'Node (Dawn)'}, mesh ${r.mesh}${r.devices > 1 ? ` (${r.strategy}, ${r.devices} devices on one adapter)` : ''}`,
    `  adapter: ${r.adapter}; inputs ${r.inputs.map((i) => `${i.name} ${i.dtype}[${i.shape.join(',')}]`).join(', ')}; ${r.warmup} warm-up, ${r.runs} timed runs (median ms)`,
  ];
  const rows: [string, string][] = [[`shardc (webgpu, ${r.shardcEngine}${r.shardcEngine === 'compiled' ? (r.fuse ? ', fused' : ', unfused') : ''})`, fmt(r.shardcMs)]];
  if (r.onnxruntimeWeb) {
    const w = r.onnxruntimeWeb;
    rows.push([`onnxruntime-web (wasm, ${w.numThreads} threads)`, w.wasmError ? `failed: ${w.wasmError}` : fmt(w.wasmMs)]);
    rows.push(['onnxruntime-web/webgpu (webgpu)', w.webgpuError ? `failed: ${w.webgpuError}` : fmt(w.webgpuMs)]);
  }
  if (r.onnxruntimeNodeMs !== undefined) rows.push(['onnxruntime-node (cpu)', fmt(r.onnxruntimeNodeMs)]);
  const width = Math.max(...rows.map((x) => x[0].length));
  for (const [name, v] of rows) lines.push(`  ${name.padEnd(width)}  ${v}`);
  if (r.ratio !== null) lines.push(`  ratio shardc / ${r.onnxruntimeWeb ? `onnxruntime-web (${r.onnxruntimeWeb.faster})` : 'onnxruntime-node'}: ${r.ratio.toFixed(2)}`);
  for (const a of r.agreement)
    lines.push(
      `  outputs ${a.agree ? 'agree' : 'DIFFER'} with ${a.against} (rtol ${r.tolerance.rtol}, atol ${r.tolerance.atol}): max |diff| ${a.maxAbsDiff.toPrecision(2)}, max rel ${a.maxRelDiff.toPrecision(2)}${a.agree ? '' : ` — ${a.message}`}`,
    );
  if (r.profile) {
    lines.push(`  profile (${r.profile.timing} timing, ${fmt(r.profile.totalMs)} ms in kernels and collectives): top ${r.profile.top.length}`);
    for (const e of r.profile.top) lines.push(`    ${fmt(e.ms).padStart(8)}  ${e.kind === 'collective' ? 'collective ' : ''}${e.op} ${e.node}${r.devices > 1 ? ` (device ${e.device})` : ''}`);
  }
  return lines;
}
