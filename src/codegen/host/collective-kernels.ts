/**
 * Collectives as kernels, for devices that share memory (several logical devices on one GPU, and
 * a device's local collectives: LocalShard, LocalPartial, groups of one): every collective is a
 * few "box copies" — a map kernel copying a box of elements from one or more source buffers
 * (reduced elementwise: sum, max, min) into the same place of one or more destination buffers.
 *
 *   AllReduce      one launch: every input reduced into every output
 *   AllGather      one launch per member: its input into its block of every output (dim offsets)
 *   ReduceScatter  one launch per member: its block of every input, reduced, into its output
 *   AllToAll       one launch per (receiver, sender): the sender's block along to_dim into the
 *                  receiver's output at the sender's offset along from_dim
 *   Broadcast      one launch: the root's input into every output
 *   LocalShard     one launch: the member's block of its input
 *   LocalPartial   member 0 (or reduce max/min) copies its input; the others write zeros
 *
 * Blocks follow the CPU runtime exactly (targets/cpu/collectives.ts: balanced splits in whole
 * `unit`s, uneven shards concatenated as they are). Box dims that are whole in every buffer are
 * merged, so most collectives compile to rank-1..3 kernels (deduplicated by code like any other).
 * Float sums add in group order in f32 (the CPU runtime adds in double and rounds once: equal for
 * two members, within an ulp or so beyond).
 */
import { UserError } from '../../ir/errors.js';
import { numel, stridesOf } from '../../ir/shape.js';
import { splitDim } from '../../passes/sharding/shards.js';
import { type Expr, type ScalarType, add, bin, i32, load, variable } from '../expr.js';
import { Params, coordinates } from '../index-map.js';
import { type Launch, type Let, makeKernel } from '../kernel.js';
import { collectiveAttrs, describeStep } from './lockstep.js';
import type { CollectiveStep } from './program.js';

/** Which member's input or output a kernel buffer is. */
export interface MemberBuffer {
  member: number;
  which: 'input' | 'output';
}

export interface CollectiveLaunch {
  launch: Launch;
  /** Kernel buffer name → member buffer. */
  bind: Record<string, MemberBuffer>;
}

type Reduce = 'sum' | 'max' | 'min';

interface Box {
  /** Box extent per dim. */
  size: number[];
  srcShape: number[];
  srcOffset: number[];
  dstShape: number[];
  dstOffset: number[];
}

/** Merges dims d, d+1 when dim d+1 is whole in the box, the source and the destination. */
function collapse(b: Box): Box {
  const out: Box = { size: [], srcShape: [], srcOffset: [], dstShape: [], dstOffset: [] };
  b.size.forEach((n, d) => {
    const whole = d > 0 && n === b.srcShape[d] && n === b.dstShape[d] && b.srcOffset[d] === 0 && b.dstOffset[d] === 0;
    if (whole) {
      const k = out.size.length - 1;
      out.size[k]! *= n;
      out.srcShape[k]! *= n;
      out.dstShape[k]! *= n;
      out.srcOffset[k]! *= n;
      out.dstOffset[k]! *= n;
    } else {
      out.size.push(n);
      out.srcShape.push(b.srcShape[d]!);
      out.srcOffset.push(b.srcOffset[d]!);
      out.dstShape.push(b.dstShape[d]!);
      out.dstOffset.push(b.dstOffset[d]!);
    }
  });
  if (out.size.length === 0) return { size: [1], srcShape: [1], srcOffset: [0], dstShape: [1], dstOffset: [0] };
  return out;
}

/**
 * One box-copy launch: `sources` input buffers (x0..) reduced elementwise, stored into `outputs`
 * output buffers (y0..), all of the same shapes; no sources writes zeros.
 */
export function boxLaunch(name: string, type: ScalarType, box: Box, sources: number, outputs: number, reduce: Reduce = 'sum'): Launch {
  const b = collapse(box);
  const p = new Params();
  const lets: Let[] = [];
  const count = numel(b.size);
  const c = coordinates(p, lets, 'c', variable('i'), b.size);
  const ss = stridesOf(b.srcShape);
  const ds = stridesOf(b.dstShape);
  const offset = (prefix: string, strides: number[], base: number): Expr => {
    let e: Expr = p.int(`${prefix}_base`, base);
    c.forEach((cd, d) => {
      e = add(e, strides[d] === 1 ? cd : bin('*', cd, p.int(`${prefix}_s${d}`, strides[d]!)));
    });
    return e;
  };
  const srcBase = b.srcOffset.reduce((a, o, d) => a + o * ss[d]!, 0);
  const dstBase = b.dstOffset.reduce((a, o, d) => a + o * ds[d]!, 0);
  let value: Expr;
  if (sources === 0) value = type === 'f32' ? { k: 'const', t: 'f32', v: 0 } : type === 'u32' ? { k: 'const', t: 'u32', v: 0 } : i32(0);
  else {
    lets.push({ name: 'src', value: offset('src', ss, srcBase) });
    const src = variable('src');
    // Bool words (u32 0/1): a sum is an or, i.e. the max.
    const op = reduce === 'sum' ? (type === 'u32' ? 'max' : '+') : reduce;
    value = load('x0', type, src);
    for (let m = 1; m < sources; m++) value = bin(op, value, load(`x${m}`, type, src));
  }
  lets.push({ name: 'v', value });
  lets.push({ name: 'dst', value: offset('dst', ds, dstBase) });
  const stores = Array.from({ length: outputs }, (_, k) => ({ buf: `y${k}`, index: variable('dst'), value: variable('v', type) }));
  const kernel = makeKernel(name, { kind: 'map', count: p.int('count', count), lets, stores });
  return { kernel, params: { ...p.values } };
}

const whole = (shape: readonly number[]): Box => ({
  size: shape.slice(),
  srcShape: shape.slice(),
  srcOffset: shape.map(() => 0),
  dstShape: shape.slice(),
  dstOffset: shape.map(() => 0),
});

/** A box along `dim` only: [from offset, size] within src, placed at dst offset. */
function slab(src: readonly number[], dst: readonly number[], dim: number, srcOff: number, dstOff: number, size: number, extra?: { dim: number; srcOff: number; dstOff: number; size: number }): Box {
  const box: Box = { size: src.slice(), srcShape: src.slice(), srcOffset: src.map(() => 0), dstShape: dst.slice(), dstOffset: dst.map(() => 0) };
  box.size[dim] = size;
  box.srcOffset[dim] = srcOff;
  box.dstOffset[dim] = dstOff;
  if (extra) {
    box.size[extra.dim] = extra.size;
    box.srcOffset[extra.dim] = extra.srcOff;
    box.dstOffset[extra.dim] = extra.dstOff;
  }
  return box;
}

const typeOf = (s: CollectiveStep): ScalarType => (s.dtype === 'float32' ? 'f32' : s.dtype === 'bool' ? 'u32' : 'i32');

/**
 * The launches of one collective over `steps` (each member's step, group order), or undefined
 * when it is not done by kernels (Send, Recv: copies) or needs more than `maxBuffers` storage
 * buffers in one kernel (the caller stages it through the host instead).
 * For a local collective pass the one member's step and its index in the group as `index`.
 */
export function collectiveLaunches(steps: readonly CollectiveStep[], maxBuffers: number, index?: number): CollectiveLaunch[] | undefined {
  const s = steps[0]!;
  const k = s.group.length;
  const t = typeOf(s);
  const attrs = collectiveAttrs(s);
  const name = `${s.op} ${s.node}`;
  const out: CollectiveLaunch[] = [];
  const bindOf = (srcs: MemberBuffer[], dsts: MemberBuffer[]): Record<string, MemberBuffer> => {
    const r: Record<string, MemberBuffer> = {};
    srcs.forEach((m, i) => (r[`x${i}`] = m));
    dsts.forEach((m, i) => (r[`y${i}`] = m));
    return r;
  };
  const input = (m: number): MemberBuffer => ({ member: m, which: 'input' });
  const output = (m: number): MemberBuffer => ({ member: m, which: 'output' });
  const inShape = (m: number): number[] => steps[m]!.inputShape!;
  const outShape = (m: number): number[] => steps[m]!.outputShape;
  /** Launches with `srcs` sources into `dsts`, chunking destinations to the buffer limit. */
  const emit = (box: Box, srcs: MemberBuffer[], dsts: MemberBuffer[], reduce: Reduce = 'sum'): boolean => {
    const room = maxBuffers - srcs.length;
    if (room < 1) return false;
    for (let i = 0; i < dsts.length; i += room) {
      const chunk = dsts.slice(i, i + room);
      out.push({ launch: boxLaunch(name, t, box, srcs.length, chunk.length, reduce), bind: bindOf(srcs, chunk) });
    }
    return true;
  };
  const reduce = (): Reduce => {
    const r = attrs.string('reduce', 'sum');
    if (r !== 'sum' && r !== 'max' && r !== 'min') throw new UserError(`reduce must be sum, max or min, got ${JSON.stringify(r)}`, { node: s.node });
    return r;
  };
  const all = (f: (m: number) => MemberBuffer): MemberBuffer[] => steps.map((_, m) => f(m));

  if (index !== undefined) {
    // Local collective: one member.
    const x = s.inputShape!;
    if (s.op === 'LocalShard') {
      const dim = attrs.int('dim');
      const r = splitDim(x[dim]!, k, attrs.int('unit', 1))[index]!;
      return emit(slab(x, s.outputShape, dim, r.offset, 0, r.size), [input(0)], [output(0)]) ? out : undefined;
    }
    if (s.op === 'LocalPartial' && index > 0 && reduce() === 'sum') return emit(whole(s.outputShape), [], [output(0)]) ? out : undefined;
    // LocalPartial keeping x, or any collective over a group of one: a copy.
    return emit(whole(x), [input(0)], [output(0)]) ? out : undefined;
  }
  if (steps.length !== k) throw new Error(`collective ${describeStep(s)}: ${steps.length} members for a group of ${k}`);
  let ok = true;
  switch (s.op) {
    case 'AllReduce':
      ok = emit(whole(inShape(0)), all(input), all(output), reduce());
      break;
    case 'AllGather': {
      const dim = attrs.int('dim');
      let off = 0;
      for (let m = 0; m < k && ok; m++) {
        ok = emit(slab(inShape(m), outShape(0), dim, 0, off, inShape(m)[dim]!), [input(m)], all(output));
        off += inShape(m)[dim]!;
      }
      break;
    }
    case 'ReduceScatter': {
      const dim = attrs.int('dim');
      const parts = splitDim(inShape(0)[dim]!, k, attrs.int('unit', 1));
      const r = reduce();
      for (let j = 0; j < k && ok; j++) ok = emit(slab(inShape(0), outShape(j), dim, parts[j]!.offset, 0, parts[j]!.size), all(input), [output(j)], r);
      break;
    }
    case 'AllToAll': {
      const from = attrs.int('from_dim');
      const to = attrs.int('to_dim');
      const unit = attrs.int('unit', 1);
      for (let j = 0; j < k && ok; j++) {
        let off = 0;
        for (let m = 0; m < k && ok; m++) {
          const x = inShape(m);
          const r = splitDim(x[to]!, k, unit)[j]!;
          ok = emit(slab(x, outShape(j), from, 0, off, x[from]!, { dim: to, srcOff: r.offset, dstOff: 0, size: r.size }), [input(m)], [output(j)]);
          off += x[from]!;
        }
      }
      break;
    }
    case 'Broadcast': {
      const root = attrs.int('root', 0);
      if (root < 0 || root >= k) throw new UserError(`Broadcast root ${root} is outside a group of ${k}`, { node: s.node });
      ok = emit(whole(inShape(root)), [input(root)], all(output));
      break;
    }
    default:
      return undefined;
  }
  return ok ? out : undefined;
}
