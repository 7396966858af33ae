/**
 * Einsum: equation parsing (explicit and implicit output, '...' broadcast dims, repeated labels
 * for diagonals and traces) and evaluation. Two-operand contractions without diagonals or
 * single-operand sums are mapped onto the blocked batched matmul (permute to [batch, m, k] ×
 * [batch, k, n]); everything else runs one generic contraction loop over all labels.
 */
import { allocStorage, roundToDType, type TypedArray } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, OpDef, TypeInfo } from '../registry.js';
import { type Dim, dimEq, isStatic, numel, stridesOf } from '../shape.js';
import { Tensor } from '../tensor.js';
import { batchedMatmul } from './matmul-kernel.js';
import { input, typeOf } from './util.js';

/** A parsed equation: one label id per input dim, the output labels, and every label's name. */
export interface EinsumSpec {
  inputs: number[][];
  output: number[];
  names: string[];
}

const LETTERS = /^[A-Za-z]*$/;

/** Parses `equation` for inputs of the given ranks; UserError (naming `node`) when malformed. */
export function parseEinsum(equation: string, ranks: readonly number[], node: string): EinsumSpec {
  const fail = (why: string): never => {
    throw new UserError(`einsum equation '${equation}': ${why}`, { node });
  };
  const eq = equation.replace(/\s+/g, '');
  const arrow = eq.indexOf('->');
  const lhs = arrow >= 0 ? eq.slice(0, arrow) : eq;
  const rhs = arrow >= 0 ? eq.slice(arrow + 2) : undefined;
  const terms = lhs.split(',');
  if (terms.length !== ranks.length) fail(`has ${terms.length} operand terms but the node has ${ranks.length} inputs`);

  const split = (term: string): { before: string; after: string; ellipsis: boolean } => {
    const i = term.indexOf('...');
    const before = i >= 0 ? term.slice(0, i) : term;
    const after = i >= 0 ? term.slice(i + 3) : '';
    if (!LETTERS.test(before) || !LETTERS.test(after)) fail(`term '${term}' may hold only letters and one '...'`);
    return { before, after, ellipsis: i >= 0 };
  };
  const parsed = terms.map(split);
  const ellipsisRanks = parsed.map((p, k) => {
    const e = ranks[k]! - p.before.length - p.after.length;
    if (e < 0 || (!p.ellipsis && e !== 0)) fail(`term '${terms[k]}' does not match input ${k} of rank ${ranks[k]}`);
    return e;
  });
  const E = Math.max(0, ...ellipsisRanks);

  const names: string[] = [];
  const ids = new Map<string, number>();
  const id = (name: string): number => {
    let i = ids.get(name);
    if (i === undefined) {
      i = names.length;
      ids.set(name, i);
      names.push(name);
    }
    return i;
  };
  const ellipsisLabels = (e: number): number[] => Array.from({ length: e }, (_, d) => id(`...${E - e + d}`));
  const inputs = parsed.map((p, k) => [
    ...Array.from(p.before, id),
    ...ellipsisLabels(ellipsisRanks[k]!),
    ...Array.from(p.after, id),
  ]);

  let output: number[];
  if (rhs !== undefined) {
    const p = split(rhs);
    const letters = p.before + p.after;
    for (const ch of letters) if (!ids.has(ch)) fail(`output label '${ch}' appears in no input`);
    if (new Set(letters).size !== letters.length) fail(`output repeats a label`);
    output = [...Array.from(p.before, id), ...(p.ellipsis ? ellipsisLabels(E) : []), ...Array.from(p.after, id)];
  } else {
    const count = new Map<string, number>();
    for (const p of parsed) for (const ch of p.before + p.after) count.set(ch, (count.get(ch) ?? 0) + 1);
    const once = [...count].filter(([, c]) => c === 1).map(([ch]) => ch);
    once.sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0));
    output = [...ellipsisLabels(E), ...once.map(id)];
  }
  return { inputs, output, names };
}

/** Size of every label (broadcasting size-1 dims); UserError on a mismatch. */
function labelSizes(spec: EinsumSpec, shapes: readonly (readonly number[])[], node: string): number[] {
  const sizes = new Array<number>(spec.names.length).fill(-1);
  spec.inputs.forEach((labels, k) =>
    labels.forEach((l, d) => {
      const s = shapes[k]![d]!;
      const cur = sizes[l]!;
      if (cur === -1 || cur === 1) sizes[l] = s;
      else if (s !== 1 && s !== cur)
        throw new UserError(`einsum label '${spec.names[l]}' has sizes ${cur} and ${s}`, { node });
    }),
  );
  return sizes;
}

/** Copies `data` (row-major `shape`) into the axis order `perm`. */
function permute(data: TypedArray, shape: readonly number[], perm: readonly number[]): TypedArray {
  const out = new (data.constructor as new (n: number) => TypedArray)(data.length);
  const rank = shape.length;
  if (perm.every((p, i) => p === i) || data.length === 0) {
    out.set(data);
    return out;
  }
  const inStrides = stridesOf(shape);
  const outShape = perm.map((p) => shape[p]!);
  const strides = perm.map((p) => inStrides[p]!);
  const counter = new Array<number>(rank).fill(0);
  const inner = outShape[rank - 1]!;
  const innerStride = strides[rank - 1]!;
  let src = 0;
  for (let o = 0; o < out.length; o += inner) {
    for (let j = 0; j < inner; j++) out[o + j] = data[src + j * innerStride]!;
    for (let d = rank - 2; d >= 0; d--) {
      counter[d]!++;
      src += strides[d]!;
      if (counter[d]! < outShape[d]!) break;
      src -= strides[d]! * counter[d]!;
      counter[d] = 0;
    }
  }
  return out;
}

/** Two operands, no diagonal, no broadcast, no label summed within one operand: one batched matmul. */
function tryMatmul(spec: EinsumSpec, sizes: number[], a: Tensor, b: Tensor): Tensor | undefined {
  const [la, lb] = spec.inputs as [number[], number[]];
  const out = new Set(spec.output);
  const inA = new Set(la);
  const inB = new Set(lb);
  if (inA.size !== la.length || inB.size !== lb.length) return undefined;
  if (la.some((l, d) => a.shape[d] !== sizes[l]) || lb.some((l, d) => b.shape[d] !== sizes[l])) return undefined;
  if (la.some((l) => !inB.has(l) && !out.has(l)) || lb.some((l) => !inA.has(l) && !out.has(l))) return undefined;
  const batch = la.filter((l) => inB.has(l) && out.has(l));
  const m = la.filter((l) => !inB.has(l));
  const k = la.filter((l) => inB.has(l) && !out.has(l));
  const n = lb.filter((l) => !inA.has(l));
  const size = (ls: number[]): number => numel(ls.map((l) => sizes[l]!));
  const [Bt, M, K, N] = [size(batch), size(m), size(k), size(n)];
  const ta = new Tensor(a.dtype, [Bt, M, K], permute(a.data, a.shape, [...batch, ...m, ...k].map((l) => la.indexOf(l))));
  const tb = new Tensor(b.dtype, [Bt, K, N], permute(b.data, b.shape, [...batch, ...k, ...n].map((l) => lb.indexOf(l))));
  const prod = batchedMatmul(ta, tb);
  const prodLabels = [...batch, ...m, ...n];
  const data = permute(prod.data, prodLabels.map((l) => sizes[l]!), spec.output.map((l) => prodLabels.indexOf(l)));
  return new Tensor(a.dtype, spec.output.map((l) => sizes[l]!), data);
}

/** Generic contraction: one odometer over output labels then summed labels. */
function contract(spec: EinsumSpec, sizes: number[], xs: Tensor[]): Tensor {
  const outLabels = spec.output;
  const summed = sizes.map((_, l) => l).filter((l) => !outLabels.includes(l));
  const order = [...outLabels, ...summed];
  const L = order.length;
  const dims = order.map((l) => sizes[l]!);
  const outShape = outLabels.map((l) => sizes[l]!);
  const outStridesByLabel = new Map<number, number>();
  stridesOf(outShape).forEach((s, i) => outStridesByLabel.set(outLabels[i]!, s));
  const outStrides = order.map((l) => outStridesByLabel.get(l) ?? 0);
  // Per operand, the stride of each label (summed over repeated dims: the diagonal; 0 where broadcast).
  const opStrides = xs.map((x, k) => {
    const st = stridesOf(x.shape);
    const byLabel = new Array<number>(sizes.length).fill(0);
    spec.inputs[k]!.forEach((l, d) => {
      if (x.shape[d] !== 1 || sizes[l] === 1) byLabel[l]! += st[d]!;
    });
    return order.map((l) => byLabel[l]!);
  });
  const acc = new Float64Array(numel(outShape));
  const total = numel(dims);
  const nOps = xs.length;
  const datas = xs.map((x) => x.data);
  const offs = new Array<number>(nOps).fill(0);
  const counter = new Array<number>(L).fill(0);
  let o = 0;
  for (let n = 0; n < total; n++) {
    let p = 1;
    for (let k = 0; k < nOps; k++) p *= datas[k]![offs[k]!]!;
    acc[o] += p;
    for (let d = L - 1; d >= 0; d--) {
      counter[d]!++;
      o += outStrides[d]!;
      for (let k = 0; k < nOps; k++) offs[k]! += opStrides[k]![d]!;
      if (counter[d]! < dims[d]!) break;
      const c = counter[d]!;
      o -= outStrides[d]! * c;
      for (let k = 0; k < nOps; k++) offs[k]! -= opStrides[k]![d]! * c;
      counter[d] = 0;
    }
  }
  const dtype = xs[0]!.dtype;
  const data = allocStorage(dtype, acc.length);
  for (let i = 0; i < acc.length; i++) data[i] = acc[i]!;
  roundToDType(dtype, data);
  return new Tensor(dtype, outShape, data);
}

function inferEinsum(ctx: InferContext): TypeInfo[] {
  const xs = ctx.inputs.map((_, i) => input(ctx, i));
  const dtype = xs[0]!.dtype;
  const equation = ctx.attrs.string('equation');
  if (xs.some((x) => x.dtype !== dtype)) throw new UserError('einsum inputs must share one dtype', { node: ctx.node.label });
  if (xs.some((x) => x.shape === undefined)) return [typeOf(dtype)];
  const shapes = xs.map((x) => x.shape!);
  const spec = parseEinsum(equation, shapes.map((s) => s.length), ctx.node.label);
  const dims = new Array<Dim | undefined>(spec.names.length);
  spec.inputs.forEach((labels, k) =>
    labels.forEach((l, d) => {
      const s = shapes[k]![d]!;
      const cur = dims[l];
      if (cur === undefined || cur === 1) dims[l] = s;
      else if (s !== 1 && !dimEq(s, cur) && typeof s === 'number' && typeof cur === 'number')
        throw new UserError(`einsum label '${spec.names[l]}' has sizes ${cur} and ${s}`, { node: ctx.node.label });
    }),
  );
  return [typeOf(dtype, spec.output.map((l) => dims[l]!))];
}

export const einsumOp: OpDef = {
  op: 'Einsum',
  family: 'matmul',
  inputs: [1, Infinity],
  outputs: [1, 1],
  infer: inferEinsum,
  evaluate(ctx: EvalContext): Tensor[] {
    const xs = ctx.inputs.map((x, i) => {
      if (!x) throw new UserError(`input ${i} is required`, { node: ctx.node.label });
      return x;
    });
    const spec = parseEinsum(ctx.attrs.string('equation'), xs.map((x) => x.rank), ctx.node.label);
    const sizes = labelSizes(spec, xs.map((x) => x.shape), ctx.node.label);
    const fast = xs.length === 2 ? tryMatmul(spec, sizes, xs[0]!, xs[1]!) : undefined;
    return [fast ?? contract(spec, sizes, xs)];
  },
  flops(ctx: InferContext): number {
    const shapes = ctx.inputs.map((x) => x?.shape);
    if (shapes.some((s) => s === undefined || !isStatic(s))) return 0;
    const st = shapes as number[][];
    const spec = parseEinsum(ctx.attrs.string('equation'), st.map((s) => s.length), ctx.node.label);
    return 2 * numel(labelSizes(spec, st, ctx.node.label));
  },
};
