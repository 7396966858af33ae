/**
 * Micro-batches: which dim is the batch, how many micro-batches, and how a layout looks through
 * the views that split a batch into micro-batches (see index.ts for the whole design).
 */
import { UserError } from '../../../ir/errors.js';
import type { Graph, Value } from '../../../ir/graph.js';
import { type Layout, type Placement, Shard } from '../../../ir/layout.js';
import { isSymbolName } from '../../../ir/shape.js';
import type { DeviceMesh } from '../mesh.js';

/**
 * The batch symbol: the symbolic dim 0 of the graph inputs (before binding). Inputs whose dim 0 is
 * another symbol make it ambiguous (a UserError); undefined when no input has a symbolic dim 0.
 */
export function batchSymbol(graph: Graph): string | undefined {
  const syms = new Map<string, string>();
  for (const v of graph.inputs) {
    if (v.constant) continue;
    const d = v.shape?.[0];
    if (typeof d === 'string' && isSymbolName(d) && !syms.has(d)) syms.set(d, v.name);
  }
  if (syms.size > 1) {
    const list = [...syms].map(([s, v]) => `${s} (${v})`).join(', ');
    throw new UserError(`strategy pipeline: the inputs have different symbolic dims 0 (${list}); micro-batches split one batch dim`);
  }
  return syms.keys().next().value;
}

export interface MicroBatchRequest {
  /** --micro-batches (ShardOptions.microBatches), if given. */
  requested?: number;
  /** The batch symbol and its bound size, if the inputs have one. */
  batch?: { symbol: string; size: number };
  stages: number;
  /** Devices that split each micro-batch's batch further (the product of the data-parallel axes). */
  dataDevices: number;
}

/**
 * The number of micro-batches M. Given: it must divide the batch (M > 1 needs a symbolic batch).
 * Default: the largest M ≤ min(stages, batch) that divides the batch and leaves micro-batches the
 * data-parallel axes can split evenly; 1 when there is no batch symbol.
 */
export function chooseMicroBatches(r: MicroBatchRequest): number {
  const { requested, batch } = r;
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < 1) throw new UserError(`micro-batches must be a positive integer, got ${requested}`);
    if (requested === 1) return 1;
    if (!batch)
      throw new UserError(
        `strategy pipeline: ${requested} micro-batches need a batch dim to split, but no graph input has a symbolic dim 0 (use 1 micro-batch)`,
      );
    if (batch.size % requested !== 0)
      throw new UserError(`strategy pipeline: ${requested} micro-batches do not divide the batch ${batch.symbol}=${batch.size}`);
    if ((batch.size / requested) % r.dataDevices !== 0)
      throw new UserError(
        `strategy pipeline: micro-batches of ${batch.size / requested} (${batch.symbol}=${batch.size} in ${requested}) do not split over the ${r.dataDevices} data-parallel devices; use fewer micro-batches`,
      );
    return requested;
  }
  if (!batch) return 1;
  for (let m = Math.min(r.stages, batch.size); m > 1; m--)
    if (batch.size % m === 0 && (batch.size / m) % r.dataDevices === 0) return m;
  return 1;
}

/**
 * F: how many blocks dim 0 of a value is split into (the product of the sizes of the mesh axes
 * that shard dim 0). A micro-batch of `rows` rows must split evenly into them.
 */
export function batchFactor(v: Value, mesh: DeviceMesh, rows: number): number {
  let f = 1;
  let unit = 1;
  for (const a of mesh.axes) {
    const p = v.layout?.get(a.name);
    if (p?.kind === 'shard' && p.dim === 0) {
      f *= a.size;
      unit = Math.max(unit, p.unit ?? 1);
    }
  }
  if (f > 1 && (rows % f !== 0 || (rows / f) % unit !== 0))
    throw new UserError(
      `strategy pipeline: a micro-batch of ${rows} rows of ${v.name} does not split evenly into the ${f} blocks its layout needs; choose micro-batches so that batch/micro-batches is a multiple of ${f * unit}`,
      { tensor: v.name },
    );
  return f;
}

/** The layout of the [F, n, rest...] view of a [F·n, rest...] value whose dim 0 is split F ways. */
export function viewLayout(layout: Layout | undefined, mesh: DeviceMesh): Map<string, Placement> {
  const out = new Map<string, Placement>();
  for (const a of mesh.axes) {
    const p = layout?.get(a.name) ?? { kind: 'replicate' };
    if (p.kind === 'shard') out.set(a.name, p.dim === 0 ? Shard(0) : Shard(p.dim + 1, p.unit ?? 1));
    else out.set(a.name, p);
  }
  return out;
}
