/**
 * Builders for `map` kernels: broadcast elementwise maps over a node's output, and general index
 * maps (an output coordinate → an input offset) used by the movement ops.
 */
import type { DType } from '../../ir/dtype.js';
import { shapeEq, numel } from '../../ir/shape.js';
import { type Expr, cast, i32 } from '../expr.js';
import { Params, broadcastOffset, coordinates, deviceTypeOrThrow, flatIndex, loadTyped } from '../index-map.js';
import type { Let, Store } from '../kernel.js';
import { type LaunchSpec, type LowerContext, type Lowered, kernels, launch, need } from './index.js';

/** Kernel state while a map body is built: params, let-bound coordinates of the output. */
export class MapBuilder {
  readonly p = new Params();
  readonly lets: Let[] = [];
  private coords?: Expr[];

  constructor(readonly shape: readonly number[]) {}

  /** The flat output index. */
  get i(): Expr {
    return flatIndex();
  }

  /** Output coordinates (let-bound `c0, c1, ...`). */
  coord(): Expr[] {
    this.coords ??= coordinates(this.p, this.lets, 'c', flatIndex(), this.shape);
    return this.coords;
  }

  /** Input `buf` of `inShape` broadcast to the output, at the current output element. */
  broadcastLoad(buf: string, dtype: DType, inShape: readonly number[]): Expr {
    if (shapeEq(inShape, this.shape)) return loadTyped(buf, dtype, flatIndex());
    if (numel(inShape) === 1) return loadTyped(buf, dtype, i32(0));
    return loadTyped(buf, dtype, broadcastOffset(this.p, buf, this.coord(), inShape));
  }

  /** Binds a value to a name (emitted once, reused by later expressions). */
  let(name: string, value: Expr): Expr {
    this.lets.push({ name, value });
    return { k: 'var', t: value.t, name };
  }

  /** The launch that stores `value` (cast to the output dtype) at the flat index of `out`. */
  build(ctx: LowerContext, out: string, outDtype: DType, value: Expr, what?: string, extraStores: Store[] = []): LaunchSpec {
    const count = this.p.int('n', numel(this.shape));
    const stores: Store[] = [{ buf: out, index: flatIndex(), value: cast(value, deviceTypeOrThrow(outDtype)) }, ...extraStores];
    return launch(ctx, { kind: 'map', count, lets: this.lets, stores }, this.p, what);
  }
}

/** out0 = f(inputs broadcast to the output); absent inputs give undefined. */
export function broadcastMap(ctx: LowerContext, f: (xs: (Expr | undefined)[]) => Expr): Lowered {
  const out = ctx.outputs[0]!;
  const mb = new MapBuilder(out.shape);
  const xs = ctx.inputs.map((v, k) => (v ? mb.broadcastLoad(`x${k}`, v.dtype, v.shape) : undefined));
  return kernels(mb.build(ctx, 'y0', out.dtype, f(xs)));
}

/** out0[i] = input `k` at the offset `offset(coords)` (a pure index map: transpose, slice, tile ...). */
export function indexMap(ctx: LowerContext, k: number, offset: (mb: MapBuilder, c: Expr[]) => Expr): Lowered {
  const out = ctx.outputs[0]!;
  const mb = new MapBuilder(out.shape);
  const value = loadTyped(`x${k}`, need(ctx, k).dtype, offset(mb, mb.coord()));
  return kernels(mb.build(ctx, 'y0', out.dtype, value));
}
