/**
 * Sharded verification (`shardc verify --mesh ... --strategy ... --target cpu`): shard the model,
 * lower it to one program per device, run them on the simulated multi-device CPU runtime, and
 * compare the assembled outputs with
 *   1. the unsharded CPU run on the same inputs (the oracle; default rtol 1e-5, atol 1e-6), and
 *   2. the reference: output_<i>.pb of the test data set when given, else onnxruntime-node
 *      (default tolerance of `verify`, rtol 1e-3, atol 1e-5).
 * Symbolic dims are bound from the input tensors' shapes (and --dim), so the plan is made for the
 * inputs that are fed.
 */
import { UserError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import { isSymbolName } from '../ir/shape.js';
import type { Tensor } from '../ir/tensor.js';
import { loadModel, unsupportedOps } from '../onnx/import.js';
import { shardGraph } from '../passes/sharding/index.js';
import { lowerPlan } from '../passes/sharding/lower.js';
import { DeviceMesh } from '../passes/sharding/mesh.js';
import type { ShardingRuleRegistry } from '../passes/sharding/rule.js';
import { runGraph } from '../targets/cpu/interpreter.js';
import { runSpmd } from '../targets/cpu/spmd.js';
import { runMeshOnWebGPU } from '../targets/webgpu/mesh-session.js';
import { checkMeshFits } from '../bundle/fit.js';
import { resolveStrategy } from '../bundle/strategy.js';
import { type Tolerance, compareTensors } from './compare.js';
import { requiredInputs } from './feeds.js';
import { type OutputCheck, VERIFY_TOLERANCE, loadInputs, referenceOutputs } from './verify.js';

/** Sharded vs unsharded on the same runtime: same math, reductions split over devices. */
export const SHARDED_TOLERANCE: Tolerance = { rtol: 1e-5, atol: 1e-6 };

/** The WebGPU sharded run vs the unsharded CPU run (f32 kernels, other summation orders). */
export const WGSL_SHARDED_TOLERANCE: Tolerance = { rtol: 1e-4, atol: 1e-5 };

export interface ShardedVerifyOptions {
  registry: OpRegistry;
  rules: ShardingRuleRegistry;
  mesh: string;
  strategy: string;
  inputsDir?: string;
  /** For the comparison with the reference (test data or onnxruntime). */
  tolerance?: Tolerance;
  /** For the comparison with the unsharded CPU run. */
  shardTolerance?: Tolerance;
  dims?: Readonly<Record<string, number>>;
  seed?: number;
  /** Runtime of the sharded run: the simulated CPU devices (default) or WebGPU devices (wgsl). */
  target?: 'cpu' | 'wgsl';
}

export interface Comparison {
  tolerance: Tolerance;
  ok: boolean;
  outputs: OutputCheck[];
}

export interface ShardedVerifyReport {
  model: string;
  target: 'cpu' | 'wgsl';
  mesh: string;
  strategy: string;
  devices: number;
  collectives: number;
  bindings: Record<string, number>;
  inputs: { name: string; dtype: string; shape: number[]; source: 'file' | 'random' }[];
  ok: boolean;
  /** Sharded outputs vs the unsharded CPU run. */
  unsharded: Comparison;
  /** Sharded outputs vs the test data or onnxruntime-node. */
  reference: Comparison & { kind: 'test-data' | 'onnxruntime' };
}

/** Bindings of the inputs' symbolic dims from the fed tensors (explicit `dims` win). */
export function bindingsFromFeeds(graph: Graph, feeds: ReadonlyMap<string, Tensor>, dims: Readonly<Record<string, number>> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of requiredInputs(graph)) {
    const t = feeds.get(v.name);
    if (!t || !v.shape || v.shape.length !== t.rank) continue;
    v.shape.forEach((d, i) => {
      if (typeof d !== 'string' || !isSymbolName(d)) return;
      const n = t.shape[i]!;
      if (out[d] !== undefined && out[d] !== n)
        throw new UserError(`symbolic dim ${d} is ${out[d]} in one input and ${n} in another`, { tensor: v.name });
      out[d] = n;
    });
  }
  return { ...out, ...dims };
}

function check(name: string, got: Tensor | undefined, expected: Tensor | undefined, tol: Tolerance): OutputCheck {
  if (!got) return { name, ok: false, message: 'not produced by the sharded run', dtype: expected?.dtype ?? '', shape: expected?.shape.slice() ?? [], mismatches: expected?.size ?? 0, maxAbsDiff: 0 };
  if (!expected) return { name, ok: false, message: 'missing in the reference', dtype: got.dtype, shape: got.shape.slice(), mismatches: got.size, maxAbsDiff: 0 };
  const r = compareTensors(got, expected, tol);
  return { name, ok: r.ok, message: r.message, dtype: got.dtype, shape: got.shape.slice(), mismatches: r.mismatches, maxAbsDiff: r.maxAbsDiff, worst: r.worst };
}

export async function verifySharded(modelPath: string, opts: ShardedVerifyOptions): Promise<ShardedVerifyReport> {
  const mesh = DeviceMesh.parse(opts.mesh);
  const strategy = resolveStrategy(opts.strategy);
  const model = loadModel(modelPath);
  const graph = model.graph;
  const missing = unsupportedOps(graph, opts.registry);
  if (missing.length) throw new UserError(`unsupported ops: ${missing.map((m) => m.op).join(', ')}`, { file: modelPath });

  const { feeds, expectedFiles, source } = loadInputs(graph, opts);
  const outputNames = graph.outputs.map((o) => o.name);
  const bindings = bindingsFromFeeds(graph, feeds, opts.dims);

  // The oracle runs first: sharding rewrites the graph.
  const unsharded = runGraph(graph, feeds, { registry: opts.registry });
  const plan = shardGraph(graph, mesh, { strategy: strategy.strategy, specFile: strategy.specFile, registry: opts.registry, rules: opts.rules, bindings });
  checkMeshFits(plan);
  const programs = lowerPlan(plan, { registry: opts.registry, rules: opts.rules });
  const sharded =
    opts.target === 'wgsl'
      ? (await runMeshOnWebGPU(programs, mesh, plan, feeds, { registry: opts.registry })).outputs
      : runSpmd(programs, mesh, feeds, { registry: opts.registry, plan }).outputs;

  const { expected, kind } = await referenceOutputs(modelPath, outputNames, feeds, expectedFiles, opts.inputsDir);
  const shardTol = opts.shardTolerance ?? SHARDED_TOLERANCE;
  const refTol = opts.tolerance ?? VERIFY_TOLERANCE;
  const vsUnsharded = outputNames.map((n) => check(n, sharded.get(n), unsharded.get(n), shardTol));
  const vsReference = outputNames.map((n) => check(n, sharded.get(n), expected.get(n), refTol));
  const u: Comparison = { tolerance: shardTol, ok: vsUnsharded.every((o) => o.ok), outputs: vsUnsharded };
  const r = { kind, tolerance: refTol, ok: vsReference.every((o) => o.ok), outputs: vsReference };
  return {
    model: modelPath,
    target: opts.target ?? 'cpu',
    mesh: mesh.toString(),
    strategy: strategy.recorded,
    devices: mesh.deviceCount,
    collectives: plan.collectives.length,
    bindings,
    inputs: [...feeds.entries()].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape.slice(), source })),
    ok: u.ok && r.ok,
    unsharded: u,
    reference: r,
  };
}

/** Text lines of the report. */
export function formatShardedReport(r: ShardedVerifyReport): string[] {
  const lines = [`${r.model}: ${r.strategy} on ${r.mesh} (${r.devices} devices, ${r.collectives} collectives), ${r.target}`];
  const section = (title: string, c: Comparison): void => {
    lines.push(`  vs ${title} (rtol ${c.tolerance.rtol}, atol ${c.tolerance.atol})`);
    for (const o of c.outputs) {
      const what = `${o.name} ${o.dtype}[${o.shape.join(',')}]`;
      lines.push(o.ok ? `    ok ${what} max |diff| ${Number(o.maxAbsDiff.toPrecision(2))}` : `    MISMATCH ${what}: ${o.message}`);
    }
  };
  section('the unsharded cpu run', r.unsharded);
  section(r.reference.kind === 'onnxruntime' ? 'onnxruntime-node' : 'the test data', r.reference);
  return lines;
}

/** The first mismatch as one line (for exit code 3), or undefined. */
export function firstMismatch(r: ShardedVerifyReport): string | undefined {
  const u = r.unsharded.outputs.find((o) => !o.ok);
  if (u) return `sharded output ${JSON.stringify(u.name)} differs from the unsharded run: ${u.message}`;
  const x = r.reference.outputs.find((o) => !o.ok);
  if (x) return `sharded output ${JSON.stringify(x.name)} differs from ${r.reference.kind === 'onnxruntime' ? 'onnxruntime-node' : 'the test data'}: ${x.message}`;
  return undefined;
}
