/**
 * `partition`: model file → bundle directory. Everything that can fail on bad input (mesh, strategy,
 * target, the output directory, the model, propagation) fails before anything is written; the
 * bundle is then written atomically.
 *
 * --hardware <file> gives the mesh axes their links' bandwidth and latency (src/hardware), the
 * propagation its device's flop and byte costs, and report.json per-device time estimates; the
 * device memory is then the default --memory-limit. A plan over the limit is refused (exit 1) with
 * what would fit (fit.ts checkMemoryFits). --no-weights reads and writes no weight (write.ts).
 */
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { UserError } from '../ir/errors.js';
import { createCoreRegistry } from '../ir/ops/index.js';
import type { OpRegistry } from '../ir/registry.js';
import { exportModel } from '../onnx/export.js';
import { importModel, unsupportedOps } from '../onnx/import.js';
import { shardGraph } from '../passes/sharding/index.js';
import { lowerPlan, type DeviceProgram } from '../passes/sharding/lower.js';
import { DeviceMesh } from '../passes/sharding/mesh.js';
import type { ShardPlan } from '../passes/sharding/plan.js';
import type { ShardingRuleRegistry } from '../passes/sharding/rule.js';
import { createCoreShardingRules } from '../passes/sharding/rules/index.js';
import { type AtomicWriteOptions, checkWritableTarget } from './atomic-dir.js';
import { sha256Hex } from './canonical.js';
import { checkMeshFits } from './fit.js';
import { resolveStrategy, type StrategyChoice } from './strategy.js';
import { type BundleTarget, isBundleDir, writeBundle } from './write.js';
import { WgslCompiler } from './wgsl.js';
import { cudaBundleFiles, deviceCudaFiles } from './cuda.js';
import { type Hardware, loadHardware, meshWithHardware } from '../hardware/hardware.js';
import { costModelOf } from '../passes/sharding/cost.js';
import { DEFAULT_COST, type CostModel } from '../passes/sharding/propagate.js';
import { checkMemoryFits, devicePeaks } from './fit.js';
import { scheduleDevicePrograms } from '../passes/schedule/index.js';

export interface ShardedModel {
  plan: ShardPlan;
  programs: DeviceProgram[];
  modelBytes: Uint8Array;
}

export interface ShardOptions {
  mesh: DeviceMesh;
  strategy: StrategyChoice;
  bindings: Record<string, number>;
  registry: OpRegistry;
  rules: ShardingRuleRegistry;
  cost?: CostModel;
  /** Durations for the scheduling pass (src/passes/schedule; default: its default device). */
  hardware?: Hardware;
  /** auto: keep to plans whose per-device peak fits (bytes). */
  memoryLimit?: number;
  /** auto: also run the ILP layout search (passes/sharding/search). */
  search?: boolean;
}

/** Imports, shards and lowers a model file. */
export function shardModelFile(modelPath: string, opts: ShardOptions): ShardedModel {
  let modelBytes: Uint8Array;
  try {
    if (statSync(modelPath).isDirectory()) throw new UserError('is a directory, not an ONNX file', { file: modelPath });
    modelBytes = readFileSync(modelPath);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? 'error'})`, { file: modelPath });
  }
  const model = importModel(modelBytes, { file: modelPath });
  const missing = unsupportedOps(model.graph, opts.registry);
  if (missing.length) throw new UserError(`unsupported ops: ${missing.map((m) => m.op).join(', ')}`, { file: modelPath });
  try {
    const plan = shardGraph(model.graph, opts.mesh, {
      strategy: opts.strategy.strategy,
      specFile: opts.strategy.specFile,
      registry: opts.registry,
      rules: opts.rules,
      bindings: opts.bindings,
      cost: opts.cost,
      memoryLimit: opts.memoryLimit,
      hardware: opts.hardware,
      search: opts.search,
    });
    checkMeshFits(plan);
    const programs = lowerPlan(plan, { registry: opts.registry, rules: opts.rules });
    scheduleDevicePrograms(programs, opts.mesh, { registry: opts.registry, hardware: opts.hardware }); // overlap order (src/passes/schedule)
    return { plan, programs, modelBytes };
  } catch (e) {
    // Errors of the passes name the node; the message also names the model file.
    throw e instanceof UserError ? e.at({ file: modelPath }) : e;
  }
}

export interface PartitionOptions {
  mesh: string;
  strategy: string;
  target: BundleTarget;
  bindings?: Record<string, number>;
  out: string;
  force?: boolean;
  shardcVersion: string;
  registry?: OpRegistry;
  rules?: ShardingRuleRegistry;
  /** Test hooks for the atomic write. */
  writeHooks?: Pick<AtomicWriteOptions, 'beforeFile' | 'beforeRename'>;
  env?: Readonly<Record<string, string | undefined>>;
  /** Bundle-level target files (set by partitionModelForTarget for cuda). */
  bundleFiles?: ReadonlyMap<string, Uint8Array>;
  /** A hardware file (src/hardware/hardware.ts). */
  hardware?: string;
  /** Per-device memory limit in bytes (default: the hardware file's device memory). */
  memoryLimit?: number;
  /** Read and write no weight: plan, schedule, reports (and wgsl kernels) only. */
  noWeights?: boolean;
  /** --strategy auto: also run the ILP layout search (passes/sharding/search; seconds per mesh axis). */
  search?: boolean;
  /**
   * Progress of the long steps, for progress bars: 'reading weights' (devices whose weights are
   * read and exported), 'writing bundle' (bytes written).
   */
  onProgress?: (done: number, total: number, label: string) => void;
}

export interface PartitionResult {
  bundle: string;
  manifestSha256: string;
  devices: number;
  collectives: number;
}

/**
 * `partition` for any target: wgsl bundles also get, per device, the ahead-of-time host program
 * and what is generated from it (kernels.wgsl, host-program.json, constants.safetensors, host.ts,
 * host.js; src/bundle/wgsl.ts).
 */
export async function partitionModelForTarget(modelPath: string, opts: PartitionOptions): Promise<PartitionResult> {
  if (opts.target === 'cuda' && opts.noWeights) throw new UserError('--no-weights is supported with --target cpu and wgsl (cuda bundles embed constants)');
  if (opts.target === 'cuda') return partitionCuda(modelPath, opts);
  if (opts.target !== 'wgsl') return partitionModel(modelPath, opts);
  const registry = opts.registry ?? createCoreRegistry();
  const mesh = DeviceMesh.parse(opts.mesh);
  return partitionModel(modelPath, { ...opts, registry }, async (programs) => {
    // One compiler for all devices: they share fusion decisions and, where identical, whole programs.
    const compiler = new WgslCompiler({ registry, mesh, bindings: opts.bindings });
    const files = new Map<number, Map<string, Uint8Array>>();
    for (const p of programs) files.set(p.device, opts.noWeights ? compiler.kernelsOnly(p) : compiler.files(p));
    return files;
  });
}

export function partitionModel(modelPath: string, opts: PartitionOptions): PartitionResult;
export function partitionModel(
  modelPath: string,
  opts: PartitionOptions,
  deviceFiles: (programs: DeviceProgram[]) => Promise<Map<number, Map<string, Uint8Array>>>,
): Promise<PartitionResult>;
export function partitionModel(
  modelPath: string,
  opts: PartitionOptions,
  deviceFiles?: (programs: DeviceProgram[]) => Promise<Map<number, Map<string, Uint8Array>>>,
): PartitionResult | Promise<PartitionResult> {
  const hardware = opts.hardware ? loadHardware(opts.hardware) : undefined;
  const withLinks = (spec: string): DeviceMesh => (hardware ? meshWithHardware(DeviceMesh.parse(spec), hardware) : DeviceMesh.parse(spec));
  const mesh = withLinks(opts.mesh);
  const strategy = resolveStrategy(opts.strategy);
  checkWritableTarget(opts.out, { what: 'bundle', force: opts.force, isReplaceable: isBundleDir });
  const registry = opts.registry ?? createCoreRegistry();
  const rules = opts.rules ?? createCoreShardingRules();
  const cost = hardware ? costModelOf(hardware, DEFAULT_COST) : undefined;
  const bindings = opts.bindings ?? {};
  const memoryLimit = opts.memoryLimit ?? hardware?.device.memoryBytes;
  const { plan, programs, modelBytes } = shardModelFile(modelPath, { mesh, strategy, bindings, registry, rules, cost, hardware, memoryLimit, search: opts.search });
  if (memoryLimit !== undefined)
    checkMemoryFits(plan, programs, {
      limitBytes: memoryLimit,
      registry,
      limitSource: opts.memoryLimit !== undefined ? '--memory-limit' : `the device memory in ${basename(opts.hardware!)}`,
      tryPlan: (meshSpec, strategyName) => {
        const m = withLinks(meshSpec);
        const other = shardModelFile(modelPath, { mesh: m, strategy: resolveStrategy(strategyName), bindings, registry, rules, cost, hardware });
        return devicePeaks(other.programs, registry);
      },
    });
  const write = (files?: Map<number, Map<string, Uint8Array>>): PartitionResult => {
  const built = writeBundle(
    opts.out,
    {
      plan,
      programs,
      registry,
      exportGraph: (g) => exportModel(g),
      model: { file: basename(modelPath), sha256: sha256Hex(modelBytes) },
      strategy: strategy.recorded,
      strategySpec: strategy.spec,
      target: opts.target,
      deviceFiles: files,
      bundleFiles: opts.bundleFiles,
      shardcVersion: opts.shardcVersion,
      env: opts.env,
      noWeights: opts.noWeights,
      report: hardware ? { hardware, memoryLimitBytes: memoryLimit } : memoryLimit !== undefined ? { memoryLimitBytes: memoryLimit } : undefined,
      onProgress: opts.onProgress,
    },
    { force: opts.force, ...opts.writeHooks, onProgress: opts.onProgress },
  );
  return { bundle: opts.out, manifestSha256: built.manifestSha256, devices: programs.length, collectives: plan.collectives.length };
  };
  return deviceFiles ? deviceFiles(programs).then(write) : write();
}

/** cuda bundles: per device kernels.cu, program.txt, constants.safetensors; CMake project and runtime (src/bundle/cuda.ts). */
function partitionCuda(modelPath: string, opts: PartitionOptions): Promise<PartitionResult> {
  const registry = opts.registry ?? createCoreRegistry();
  const mesh = DeviceMesh.parse(opts.mesh);
  const bundleFiles = cudaBundleFiles(Array.from({ length: mesh.deviceCount }, (_, device) => ({ device })), { mesh: mesh.toString(), model: basename(modelPath) });
  return partitionModel(modelPath, { ...opts, registry, bundleFiles }, async (programs) =>
    new Map(programs.map((p) => [p.device, deviceCudaFiles(p, { registry, mesh, bindings: opts.bindings })])));
}
