/**
 * Collective semantics for the simulated multi-device runtime (spmd.ts). Each function takes the
 * local tensors of one group's members, in the group's order along the mesh axis, and returns
 * every member's output, in the same order. Uneven shards are concatenated as they are; splits
 * follow shards.ts (balanced, in blocks of `unit`).
 *
 *   AllReduce      every member gets the elementwise reduction (sum/max/min) of all inputs
 *   AllGather      every member gets the inputs concatenated along `dim` in axis order
 *   ReduceScatter  the reduction, split along `dim`; member k gets block k
 *   AllToAll       member k's input is its block along from_dim; member j gets block j of every
 *                  member's input along to_dim, concatenated along from_dim
 *   LocalShard     member k keeps its block k along `dim` (no communication)
 *   LocalPartial   member 0 keeps x; for sum the others hold zeros (max/min: x is already valid)
 *   Broadcast      every member gets the root member's tensor
 */
import type { Attrs } from '../../ir/attrs.js';
import { roundToDType } from '../../ir/dtype.js';
import { UserError } from '../../ir/errors.js';
import { Tensor } from '../../ir/tensor.js';
import { type Range, placeBlock, sliceTensor, splitDim } from '../../passes/sharding/shards.js';

export type ReduceKind = 'sum' | 'max' | 'min';

function reduceKind(attrs: Attrs): ReduceKind {
  const r = attrs.string('reduce', 'sum');
  if (r !== 'sum' && r !== 'max' && r !== 'min') throw new UserError(`reduce must be sum, max or min, got ${JSON.stringify(r)}`);
  return r;
}

const shapeStr = (s: readonly number[]): string => `[${s.join(',')}]`;

function checkRank(xs: readonly Tensor[], dim: number, what: string): void {
  for (const x of xs)
    if (dim < 0 || dim >= x.rank) throw new UserError(`${what} dim ${dim} is out of range for a rank-${x.rank} tensor`);
}

/** Elementwise reduction of same-shaped tensors (accumulated in double precision, in group order). */
export function reduceAll(xs: readonly Tensor[], reduce: ReduceKind): Tensor {
  const first = xs[0]!;
  for (const x of xs)
    if (x.shape.length !== first.shape.length || x.shape.some((d, i) => d !== first.shape[i]))
      throw new UserError(`members hold different shapes ${xs.map((t) => shapeStr(t.shape)).join(', ')}`);
  if (first.dtype === 'string') throw new UserError('cannot reduce string tensors');
  const n = first.size;
  const acc = new Float64Array(n);
  acc.set(first.data as ArrayLike<number>);
  for (let k = 1; k < xs.length; k++) {
    const d = xs[k]!.data;
    if (reduce === 'sum') for (let i = 0; i < n; i++) acc[i]! += d[i]!;
    else if (reduce === 'max') for (let i = 0; i < n; i++) acc[i] = Math.max(acc[i]!, d[i]!);
    else for (let i = 0; i < n; i++) acc[i] = Math.min(acc[i]!, d[i]!);
  }
  const out = Tensor.zeros(first.dtype, first.shape);
  if (first.dtype === 'bool') for (let i = 0; i < n; i++) out.data[i] = acc[i] ? 1 : 0;
  else out.data.set(acc);
  roundToDType(out.dtype, out.data);
  return out;
}

/** Concatenation along `dim` (other dims must agree). */
export function concat(xs: readonly Tensor[], dim: number): Tensor {
  const first = xs[0]!;
  checkRank(xs, dim, 'concat');
  for (const x of xs)
    if (x.rank !== first.rank || x.shape.some((d, i) => i !== dim && d !== first.shape[i]))
      throw new UserError(`members hold shapes ${xs.map((t) => shapeStr(t.shape)).join(', ')} that differ outside dim ${dim}`);
  const shape = first.shape.slice();
  shape[dim] = xs.reduce((s, x) => s + x.shape[dim]!, 0);
  const out = Tensor.zeros(first.dtype, shape);
  let off = 0;
  for (const x of xs) {
    const ranges: Range[] = shape.map((n, i) => (i === dim ? { offset: off, size: x.shape[dim]! } : { offset: 0, size: n }));
    placeBlock(out, x, ranges);
    off += x.shape[dim]!;
  }
  return out;
}

/** Block k of `k` balanced blocks (in units of `unit`) along `dim`. */
export function block(x: Tensor, dim: number, parts: number, k: number, unit: number): Tensor {
  checkRank([x], dim, 'split');
  const r = splitDim(x.shape[dim]!, parts, unit)[k]!;
  const ranges: Range[] = x.shape.map((n, i) => (i === dim ? r : { offset: 0, size: n }));
  return sliceTensor(x, ranges);
}

/** Every member's output of one collective, given every member's input (group order). */
export function runCollective(op: string, attrs: Attrs, inputs: readonly Tensor[]): Tensor[] {
  const k = inputs.length;
  switch (op) {
    case 'AllReduce': {
      const r = reduceAll(inputs, reduceKind(attrs));
      return inputs.map(() => r);
    }
    case 'AllGather': {
      const r = concat(inputs, attrs.int('dim'));
      return inputs.map(() => r);
    }
    case 'ReduceScatter': {
      const r = reduceAll(inputs, reduceKind(attrs));
      const dim = attrs.int('dim');
      const unit = attrs.int('unit', 1);
      return inputs.map((_, j) => block(r, dim, k, j, unit));
    }
    case 'AllToAll': {
      const from = attrs.int('from_dim');
      const to = attrs.int('to_dim');
      const unit = attrs.int('unit', 1);
      if (from === to) throw new UserError(`AllToAll needs from_dim ≠ to_dim, got ${from}`);
      return inputs.map((_, j) => concat(inputs.map((x) => block(x, to, k, j, unit)), from));
    }
    case 'LocalShard': {
      const dim = attrs.int('dim');
      const unit = attrs.int('unit', 1);
      return inputs.map((x, j) => block(x, dim, k, j, unit));
    }
    case 'LocalPartial': {
      const reduce = reduceKind(attrs);
      return inputs.map((x, j) => (j === 0 || reduce !== 'sum' ? x : Tensor.zeros(x.dtype, x.shape)));
    }
    case 'Broadcast': {
      const root = attrs.int('root', 0);
      const r = inputs[root];
      if (!r) throw new UserError(`Broadcast root ${root} is outside a group of ${k}`);
      return inputs.map(() => r);
    }
    default:
      throw new UserError(`collective ${op} is not supported by the simulated runtime`);
  }
}
