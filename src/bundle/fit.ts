/**
 * Whether a mesh fits a plan: every mesh axis with more than one device must split at least one
 * tensor dim into at least as many blocks as the axis has devices (or carry partial sums). Otherwise
 * (an axis larger than every dim the strategy shards) most devices would hold empty shards and the
 * axis buys nothing; that is bad input (exit 1), naming the axis and the largest dim it could split.
 * Also whether each device's memory fits a limit (checkMemoryFits, below).
 */
import { UserError } from '../ir/errors.js';
import type { Value } from '../ir/graph.js';
import type { MeshAxis } from '../passes/sharding/mesh.js';
import type { ShardPlan } from '../passes/sharding/plan.js';
import type { OpRegistry } from '../ir/registry.js';
import type { DeviceProgram } from '../passes/sharding/lower.js';
import { formatBytes } from '../hardware/hardware.js';
import { estimateGraph } from './estimate.js';

export function checkMeshFits(plan: ShardPlan): void {
  const values: Value[] = [...plan.graph.inputs, ...plan.graph.initializers, ...plan.graph.nodes.flatMap((n) => n.outputs)];
  for (const axis of plan.mesh.axes) {
    if (axis.name === plan.pipeline?.axis) continue; // stages split the nodes, not tensors (pipeline/stages.ts checks the count)
    const problem = axisProblem(axis, values, plan.strategy);
    if (problem) throw new UserError(problem);
  }
}

function axisProblem(axis: MeshAxis, values: readonly Value[], strategy: string): string | undefined {
  if (axis.size <= 1) return undefined;
  let best: { blocks: number; value: string; dim: number } | undefined;
  let partial = false;
  for (const v of values) {
    const p = v.layout?.get(axis.name);
    if (p?.kind === 'partial') partial = true;
    if (p?.kind !== 'shard') continue;
    const n = v.shape?.[p.dim];
    if (typeof n !== 'number') continue;
    const blocks = Math.floor(n / (p.unit ?? 1));
    if (blocks >= axis.size) return undefined;
    if (!best || blocks > best.blocks) best = { blocks, value: v.name, dim: p.dim };
  }
  if (best)
    return `mesh axis ${axis.name}=${axis.size} does not fit the model: the largest dim strategy ${strategy} splits over it has ${best.blocks} block${best.blocks === 1 ? '' : 's'} (${best.value} dim ${best.dim}); use ${axis.name}=${best.blocks} or less`;
  if (!partial) return `mesh axis ${axis.name}=${axis.size} does not fit the model: strategy ${strategy} splits no tensor over it`;
  return undefined;
}

/**
 * Whether every device's estimated peak memory (parameters + activation peak, bundle/estimate.ts)
 * fits `limitBytes` (partition --memory-limit, or the hardware file's device memory). When it does
 * not: a UserError (exit 1) saying which devices need how much and by how much they are over, and
 * what would fit, found by planning the model again (`tryPlan`) on the alternatives in order:
 *   1. the same device count with every device on the tensor-parallel axis (tp=N), when the mesh
 *      has other axes;
 *   2. more devices: the tensor-parallel axis (or the mesh's last axis) doubled, while the model
 *      has room for it;
 *   3. two pipeline stages in front of the current mesh (pp=2,<mesh>).
 * The first ones that fit are named (at most two), with their peak per device.
 */
export interface MemoryFitOptions {
  limitBytes: number;
  registry: OpRegistry;
  /** The limit's origin for the message (e.g. "--memory-limit" or the hardware file). */
  limitSource?: string;
  /** Plans the model on another mesh and strategy; the devices' peaks, or undefined where it does not apply. */
  tryPlan?: (mesh: string, strategy: string) => number[] | undefined;
}

export function devicePeaks(programs: readonly DeviceProgram[], registry: OpRegistry): number[] {
  return programs.map((p) => estimateGraph(p.graph, registry).peakMemoryBytes);
}

export function checkMemoryFits(plan: ShardPlan, programs: readonly DeviceProgram[], opts: MemoryFitOptions): void {
  const peaks = devicePeaks(programs, opts.registry);
  const over = programs.map((p, i) => ({ device: p.device, peak: peaks[i]! })).filter((d) => d.peak > opts.limitBytes);
  if (!over.length) return;
  const limit = `${formatBytes(opts.limitBytes)}${opts.limitSource ? ` (${opts.limitSource})` : ''}`;
  const worst = over.reduce((a, b) => (b.peak > a.peak ? b : a));
  const same = over.every((d) => d.peak === over[0]!.peak);
  const who = same
    ? `${over.length === programs.length ? `every device (${over.length})` : `device${over.length > 1 ? 's' : ''} ${over.map((d) => d.device).join(', ')}`} needs ${formatBytes(worst.peak)}, ${formatBytes(worst.peak - opts.limitBytes)} over`
    : over
        .slice(0, 8)
        .map((d) => `device ${d.device} needs ${formatBytes(d.peak)} (${formatBytes(d.peak - opts.limitBytes)} over)`)
        .join(', ') + (over.length > 8 ? `, and ${over.length - 8} more` : '');
  const fits = suggestions(plan, opts);
  throw new UserError(
    `the plan does not fit the memory limit of ${limit} per device on mesh ${plan.mesh} (${plan.strategy}): ${who}; ${fits}`,
  );
}

function suggestions(plan: ShardPlan, opts: MemoryFitOptions): string {
  if (!opts.tryPlan) return 'use more devices or a lower --dim';
  const mesh = plan.mesh;
  const n = mesh.deviceCount;
  const tpAxis = mesh.hasAxis('tp') ? 'tp' : mesh.axes[mesh.axes.length - 1]!.name;
  const tried: { mesh: string; strategy: string }[] = [];
  const spec = (axes: { name: string; size: number }[]): string => axes.map((a) => `${a.name}=${a.size}`).join(',');
  if (mesh.axes.filter((a) => a.size > 1).length > 1 || !mesh.hasAxis(tpAxis)) tried.push({ mesh: `tp=${n}`, strategy: 'auto' });
  for (let f = 2; f <= 8; f *= 2) tried.push({ mesh: spec(mesh.axes.map((a) => (a.name === tpAxis ? { name: a.name, size: a.size * f } : a))), strategy: plan.strategy });
  if (!mesh.hasAxis('pp')) tried.push({ mesh: `pp=2,${mesh}`, strategy: 'auto' });
  const ok: string[] = [];
  const notes: string[] = [];
  for (const t of tried) {
    if (ok.length >= 2) break;
    let peaks: number[] | undefined;
    try {
      peaks = opts.tryPlan(t.mesh, t.strategy);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      continue;
    }
    if (!peaks?.length) continue;
    const peak = Math.max(...peaks);
    const devices = peaks.length;
    const what = `--mesh ${t.mesh}${t.strategy !== plan.strategy ? ` --strategy ${t.strategy}` : ''} (${devices} devices, ${formatBytes(peak)} per device)`;
    if (peak <= opts.limitBytes) ok.push(what);
    else notes.push(what);
  }
  if (ok.length) return `would fit: ${ok.join(' or ')}`;
  return `nothing tried fits${notes.length ? ` (${notes.join('; ')})` : ''}: use more devices, pipeline stages or a lower --dim`;
}
