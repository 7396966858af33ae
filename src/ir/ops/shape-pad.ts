/** Pad (constant, reflect, edge, wrap; negative pads crop) and the block rearrangements DepthToSpace / SpaceToDepth. */
import type { EvalContext, InferContext, OpDef } from '../registry.js';
import { type Dim, dimDiv, dimMul, numel, stridesOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { axisOf, constInts, input, typeOf } from './util.js';
import { allocLike, arg, bufOf, fail, gatherMaps, intsOf, like, stridedCopy } from './shape-kernels.js';

type Ctx = { node: { label: string } };
const noFlops = (): number => 0;

// ---- Pad ----

const PAD_MODES = new Set(['constant', 'reflect', 'edge', 'wrap']);

function padMode(ctx: InferContext | EvalContext): string {
  const mode = ctx.attrs.string('mode', 'constant');
  if (!PAD_MODES.has(mode)) fail(ctx, `unknown pad mode '${mode}' (expected constant, reflect, edge or wrap)`);
  return mode;
}

/** Pads before and after each dim, from the pads input and the optional axes input. */
function padAmounts(ctx: Ctx, rank: number, pads: readonly number[], axes: readonly number[] | undefined): { begin: number[]; end: number[] } {
  const ax = axes ? axes.map((a) => axisOf(ctx, a, rank)) : Array.from({ length: rank }, (_, i) => i);
  if (new Set(ax).size !== ax.length) fail(ctx, `axes [${axes}] repeat an axis`);
  if (pads.length !== 2 * ax.length) fail(ctx, `pads has ${pads.length} entries but ${2 * ax.length} are needed for ${ax.length} axes`);
  const begin = new Array<number>(rank).fill(0);
  const end = new Array<number>(rank).fill(0);
  ax.forEach((a, i) => {
    begin[a] = pads[i]!;
    end[a] = pads[i + ax.length]!;
  });
  return { begin, end };
}

function paddedDim(ctx: Ctx, d: Dim, b: number, e: number): Dim | undefined {
  if (typeof d !== 'number') return b === 0 && e === 0 ? d : undefined;
  const n = d + b + e;
  if (n < 0) fail(ctx, `pads ${b}, ${e} make a dim of size ${d} negative`);
  return n;
}

/** Source index of output coordinate x (input coordinate, may be outside [0, d)) for a non-constant mode. */
function sourceIndex(mode: string, x: number, d: number): number {
  if (x >= 0 && x < d) return x;
  if (mode === 'edge') return x < 0 ? 0 : d - 1;
  if (mode === 'wrap') return ((x % d) + d) % d;
  // reflect (no edge repeat): period 2(d-1)
  if (d === 1) return 0;
  const p = 2 * (d - 1);
  const m = ((x % p) + p) % p;
  return m < d ? m : p - m;
}

const pad: OpDef = {
  op: 'Pad',
  family: 'shape',
  inputs: [2, 4],
  outputs: [1, 1],
  infer(ctx) {
    const x = input(ctx, 0);
    input(ctx, 1);
    padMode(ctx);
    const pads = constInts(ctx, 1);
    const axes = ctx.inputs[3] ? constInts(ctx, 3) : undefined;
    if (!x.shape || !pads || (ctx.inputs[3] && !axes)) return [typeOf(x.dtype)];
    const s = x.shape;
    const { begin, end } = padAmounts(ctx, s.length, pads, axes);
    const out: Dim[] = [];
    for (let i = 0; i < s.length; i++) {
      const d = paddedDim(ctx, s[i]!, begin[i]!, end[i]!);
      if (d === undefined) return [typeOf(x.dtype)];
      out.push(d);
    }
    return [typeOf(x.dtype, out)];
  },
  evaluate(ctx) {
    const x = arg(ctx, 0);
    const mode = padMode(ctx);
    const { begin, end } = padAmounts(ctx, x.rank, intsOf(arg(ctx, 1)), ctx.inputs[3] && intsOf(ctx.inputs[3]));
    const outShape = x.shape.map((d, i) => paddedDim(ctx, d, begin[i]!, end[i]!) as number);
    const out = allocLike(x, numel(outShape));
    const inStrides = stridesOf(x.shape);
    if (mode === 'constant') {
      const cv = ctx.inputs[2];
      if (cv && cv.size > 0 && !x.strings) (out as Exclude<typeof out, string[]>).fill(cv.data[0]!);
      // Copy the part of the input that survives (negative pads crop) into the interior.
      const outStrides = stridesOf(outShape);
      let srcOff = 0;
      let dstOff = 0;
      const region = x.shape.map((d, i) => {
        const lo = Math.max(0, -begin[i]!);
        const hi = Math.min(d, d + end[i]!);
        srcOff += lo * inStrides[i]!;
        dstOff += (lo + begin[i]!) * outStrides[i]!;
        return Math.max(0, hi - lo);
      });
      stridedCopy(bufOf(x), srcOff, inStrides, region, out, dstOff, outStrides);
      return [like(x, outShape, out)];
    }
    const maps = outShape.map((n, i) => {
      const d = x.shape[i]!;
      if (d === 0 && n > 0) fail(ctx, `cannot ${mode}-pad dim ${i} of size 0`);
      const m = new Int32Array(n);
      for (let o = 0; o < n; o++) m[o] = sourceIndex(mode, o - begin[i]!, d) * inStrides[i]!;
      return m;
    });
    gatherMaps(bufOf(x), maps, outShape, out, 0);
    return [like(x, outShape, out)];
  },
  flops: noFlops,
};

// ---- DepthToSpace / SpaceToDepth ----

/**
 * Both ops are reshape → transpose → reshape: `view` is the 6-D view of the input, `perm` the
 * transpose, and the result is the permuted view laid out contiguously.
 */
function permutedCopy(x: Tensor, view: number[], perm: number[], outShape: number[]): Tensor {
  const strides = stridesOf(view);
  const shape = perm.map((p) => view[p]!);
  const out = allocLike(x, x.size);
  stridedCopy(bufOf(x), 0, perm.map((p) => strides[p]!), shape, out, 0, stridesOf(shape));
  return like(x, outShape, out);
}

function blockSize(ctx: InferContext | EvalContext): number {
  const b = ctx.attrs.int('blocksize');
  if (!Number.isInteger(b) || b <= 0) fail(ctx, `blocksize must be positive, got ${b}`);
  return b;
}

function checkRank4(ctx: Ctx, s: readonly Dim[]): void {
  if (s.length !== 4) fail(ctx, `input must have rank 4 (N, C, H, W), got rank ${s.length}`);
}

function depthToSpaceShape(ctx: Ctx, s: readonly Dim[], b: number): Dim[] | undefined {
  checkRank4(ctx, s);
  const c = dimDiv(s[1]!, b * b);
  if (c === undefined) {
    if (typeof s[1] === 'number') fail(ctx, `channels ${s[1]} are not divisible by blocksize² ${b * b}`);
    return undefined;
  }
  return [s[0]!, c, dimMul(s[2]!, b), dimMul(s[3]!, b)];
}

function depthMode(ctx: InferContext | EvalContext): string {
  const m = ctx.attrs.string('mode', 'DCR');
  if (m !== 'DCR' && m !== 'CRD') fail(ctx, `mode must be DCR or CRD, got '${m}'`);
  return m;
}

function spaceToDepthShape(ctx: Ctx, s: readonly Dim[], b: number): Dim[] | undefined {
  checkRank4(ctx, s);
  const h = dimDiv(s[2]!, b);
  const w = dimDiv(s[3]!, b);
  if (typeof s[2] === 'number' && h === undefined) fail(ctx, `height ${s[2]} is not divisible by blocksize ${b}`);
  if (typeof s[3] === 'number' && w === undefined) fail(ctx, `width ${s[3]} is not divisible by blocksize ${b}`);
  if (h === undefined || w === undefined) return undefined;
  return [s[0]!, dimMul(s[1]!, b * b), h, w];
}

type AttrCtx = InferContext | EvalContext;

/**
 * A DepthToSpace-like row: `shapeOf` gives the output shape (undefined when unknown), `layout`
 * the 6-D view of the static input [n, c, h, w] and its transpose; `checkAttrs` validates further
 * attributes at inference.
 */
function blockOp(
  op: string,
  shapeOf: (ctx: Ctx, s: readonly Dim[], b: number) => Dim[] | undefined,
  layout: (ctx: AttrCtx, nchw: [number, number, number, number], b: number) => [view: number[], perm: number[]],
  checkAttrs: (ctx: AttrCtx) => void = () => {},
): OpDef {
  return {
    op,
    family: 'shape',
    inputs: [1, 1],
    outputs: [1, 1],
    infer(ctx) {
      const x = input(ctx, 0);
      const b = blockSize(ctx);
      checkAttrs(ctx);
      return [typeOf(x.dtype, x.shape && shapeOf(ctx, x.shape, b))];
    },
    evaluate(ctx) {
      const x = arg(ctx, 0);
      const b = blockSize(ctx);
      const outShape = shapeOf(ctx, x.shape, b) as number[];
      const [view, perm] = layout(ctx, x.shape as [number, number, number, number], b);
      return [permutedCopy(x, view, perm, outShape)];
    },
    flops: noFlops,
  };
}

const depthToSpace = blockOp(
  'DepthToSpace',
  depthToSpaceShape,
  (ctx, [n, c, h, w], b) => {
    const cb = c / (b * b);
    return depthMode(ctx) === 'DCR'
      ? [[n, b, b, cb, h, w], [0, 3, 4, 1, 5, 2]]
      : [[n, cb, b, b, h, w], [0, 1, 4, 2, 5, 3]];
  },
  depthMode,
);

const spaceToDepth = blockOp('SpaceToDepth', spaceToDepthShape, (_ctx, [n, c, h, w], b) => [
  [n, c, h / b, b, w / b, b],
  [0, 3, 5, 1, 2, 4],
]);

export const padOps: OpDef[] = [pad, depthToSpace, spaceToDepth];
