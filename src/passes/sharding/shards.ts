/**
 * Shard arithmetic: which slice of a global tensor each device holds under a layout, with uneven
 * splits as first-class citizens.
 *
 * A dim of size n split over k devices in blocks of u elements (n = m·u) gives device i
 * `floor(m/k) + (i < m mod k ? 1 : 0)` blocks, in order: 6 heads of 8 on 4 devices are
 * 16,16,8,8 elements; a vocabulary of 50257 on 8 devices is 6283 ×1 then 6282 ×7. When several
 * mesh axes shard the same dim, the axes split it in mesh order (major axis first), i.e. the dim
 * is split by each axis in turn, nested: the major axis splits the dim (balanced, in blocks), then
 * the next axis splits each device's part, and so on. Gathering the minor axis therefore gives
 * exactly the major axis's split, which is what resharding assumes; it also equals the split over
 * the product of the sizes whenever the sizes divide evenly.
 */
import { UserError } from '../../ir/errors.js';
import type { Layout, Placement } from '../../ir/layout.js';
import { Tensor } from '../../ir/tensor.js';
import { stridesOf } from '../../ir/shape.js';
import type { DeviceMesh } from './mesh.js';

export interface Range {
  offset: number;
  size: number;
}

/** Balanced split of n elements over k parts in whole blocks of `unit`. */
export function splitDim(n: number, k: number, unit = 1): Range[] {
  if (n % unit !== 0) throw new UserError(`cannot split ${n} elements in blocks of ${unit}`);
  const out: Range[] = [];
  for (let i = 0; i < k; i++) out.push(splitPart(n, k, unit, i));
  return out;
}

/** Part `i` of splitDim(n, k, unit), without building the others (lowering asks for one device's part of every value). */
export function splitPart(n: number, k: number, unit: number, i: number): Range {
  if (n % unit !== 0) throw new UserError(`cannot split ${n} elements in blocks of ${unit}`);
  const m = n / unit;
  const base = Math.floor(m / k);
  const extra = m % k;
  return { offset: (i * base + Math.min(i, extra)) * unit, size: (base + (i < extra ? 1 : 0)) * unit };
}

/** For each tensor dim, the mesh axes that shard it (mesh order) and the common unit. */
export function shardedDims(layout: Layout | undefined, mesh: DeviceMesh, rank: number): Map<number, { axes: string[]; unit: number }> {
  const out = new Map<number, { axes: string[]; unit: number }>();
  if (!layout) return out;
  for (const a of mesh.axes) {
    const p = layout.get(a.name);
    if (!p || p.kind !== 'shard') continue;
    if (p.dim >= rank) throw new UserError(`layout shards dim ${p.dim} of a rank-${rank} tensor`);
    const e = out.get(p.dim);
    if (e) {
      e.axes.push(a.name);
      e.unit = Math.max(e.unit, p.unit ?? 1);
    } else out.set(p.dim, { axes: [a.name], unit: p.unit ?? 1 });
  }
  return out;
}

/** The part of each global dim that device `device` holds. */
export function localRanges(shape: readonly number[], layout: Layout | undefined, mesh: DeviceMesh, device: number): Range[] {
  const ranges = shape.map((n) => ({ offset: 0, size: n }));
  for (const [dim, { axes, unit }] of shardedDims(layout, mesh, shape.length)) {
    let r = ranges[dim]!;
    for (const a of axes) {
      const part = splitPart(r.size, mesh.axis(a).size, unit, mesh.coord(device, a));
      r = { offset: r.offset + part.offset, size: part.size };
    }
    ranges[dim] = r;
  }
  return ranges;
}

export function localShape(shape: readonly number[], layout: Layout | undefined, mesh: DeviceMesh, device: number): number[] {
  return localRanges(shape, layout, mesh, device).map((r) => r.size);
}

/** Copies the block `ranges` out of a global tensor. */
export function sliceTensor(t: Tensor, ranges: readonly Range[]): Tensor {
  const shape = ranges.map((r) => r.size);
  const out = Tensor.zeros(t.dtype, shape);
  copyBlock(t, out, ranges, true);
  return out;
}

/** Writes `part` into the block `ranges` of `into` (the inverse of sliceTensor). */
export function placeBlock(into: Tensor, part: Tensor, ranges: readonly Range[]): void {
  copyBlock(into, part, ranges, false);
}

function copyBlock(global: Tensor, local: Tensor, ranges: readonly Range[], toLocal: boolean): void {
  const rank = ranges.length;
  const gs = stridesOf(global.shape);
  const n = local.size;
  if (n === 0) return;
  const shape = ranges.map((r) => r.size);
  const inner = rank ? shape[rank - 1]! : 1;
  const idx = new Array<number>(rank).fill(0);
  const g = global.strings ?? global.data;
  const l = local.strings ?? local.data;
  for (let o = 0; o < n; o += inner) {
    let base = 0;
    for (let d = 0; d < rank; d++) base += (ranges[d]!.offset + (d === rank - 1 ? 0 : idx[d]!)) * gs[d]!;
    if (toLocal) for (let j = 0; j < inner; j++) l[o + j] = g[base + j]!;
    else for (let j = 0; j < inner; j++) g[base + j] = l[o + j]!;
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
}

/** The tensor device `device` holds for a value of this layout (Partial: device 0 of each group keeps it, others zero/identity). */
export function shardTensor(t: Tensor, layout: Layout | undefined, mesh: DeviceMesh, device: number): Tensor {
  const local = sliceTensor(t, localRanges(t.shape, layout, mesh, device));
  for (const a of mesh.axes) {
    const p = layout?.get(a.name);
    if (p?.kind === 'partial' && mesh.coord(device, a.name) !== 0) {
      if (p.reduce === 'sum') local.data.fill(0);
      // max/min: every device holding the same value is already a valid partial.
    }
  }
  return local;
}

/**
 * Reassembles the global tensor from every device's local tensor: shards are placed, partials
 * reduced (sum/max/min over each axis's group), replicas taken from the first device.
 */
export function assembleTensor(locals: readonly Tensor[], globalShape: readonly number[], layout: Layout | undefined, mesh: DeviceMesh): Tensor {
  const first = locals[0]!;
  const partialAxes = mesh.axes.filter((a) => layout?.get(a.name)?.kind === 'partial');
  const out = Tensor.zeros(first.dtype, globalShape);
  // Start from devices whose coordinate is 0 on every axis that neither shards nor is partial.
  const contributes = (d: number): boolean =>
    mesh.axes.every((a) => {
      const p: Placement | undefined = layout?.get(a.name);
      return (p !== undefined && p.kind !== 'replicate') || mesh.coord(d, a.name) === 0;
    });
  const seenBlock = new Set<string>();
  for (let d = 0; d < mesh.deviceCount; d++) {
    if (!contributes(d)) continue;
    const ranges = localRanges(globalShape, layout, mesh, d);
    const key = ranges.map((r) => `${r.offset}+${r.size}`).join(',');
    const local = locals[d]!;
    if (!partialAxes.length || !seenBlock.has(key)) {
      placeBlock(out, local, ranges);
      seenBlock.add(key);
      continue;
    }
    // Reduce into the block already placed.
    const cur = sliceTensor(out, ranges);
    const reduce = (layout!.get(partialAxes[0]!.name) as { reduce: 'sum' | 'max' | 'min' }).reduce;
    for (let i = 0; i < cur.size; i++) {
      const a = cur.data[i]!;
      const b = local.data[i]!;
      cur.data[i] = reduce === 'sum' ? a + b : reduce === 'max' ? Math.max(a, b) : Math.min(a, b);
    }
    placeBlock(out, cur, ranges);
  }
  return out;
}
