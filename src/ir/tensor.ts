/**
 * Runtime tensors (dense, row-major, static shape) and lazily loaded constant tensors.
 * Storage per dtype is described in dtype.ts (int64 in a Float64Array, float16 in a Float32Array).
 */
import { DType, TypedArray, allocStorage, roundToDType } from './dtype.js';
import { numel } from './shape.js';

export class Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Numeric storage; empty for string tensors. */
  readonly data: TypedArray;
  /** Values of a string tensor; undefined otherwise. */
  readonly strings?: string[];

  constructor(dtype: DType, shape: readonly number[], data: TypedArray | string[]) {
    this.dtype = dtype;
    this.shape = shape.slice();
    if (Array.isArray(data)) {
      this.data = new Uint8Array(0);
      this.strings = data;
    } else {
      this.data = data;
    }
    const n = numel(shape);
    const len = this.strings ? this.strings.length : this.data.length;
    if (len !== n) throw new Error(`tensor storage holds ${len} elements but shape [${shape}] needs ${n}`);
  }

  get size(): number {
    return numel(this.shape);
  }
  get rank(): number {
    return this.shape.length;
  }

  static zeros(dtype: DType, shape: readonly number[]): Tensor {
    if (dtype === 'string') return new Tensor(dtype, shape, new Array<string>(numel(shape)).fill(''));
    return new Tensor(dtype, shape, allocStorage(dtype, numel(shape)));
  }

  /** Copies `values` into new storage of `dtype` (rounding float16/bfloat16). */
  static from(dtype: DType, shape: readonly number[], values: ArrayLike<number>): Tensor {
    const data = allocStorage(dtype, values.length);
    for (let i = 0; i < values.length; i++) data[i] = values[i]!;
    roundToDType(dtype, data);
    return new Tensor(dtype, shape, data);
  }

  static scalar(dtype: DType, v: number): Tensor {
    return Tensor.from(dtype, [], [v]);
  }

  /** Elements as plain numbers (int64 exact up to 2^53). */
  toArray(): number[] {
    return Array.from(this.data as ArrayLike<number>);
  }

  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.dtype, shape, this.strings ?? this.data);
  }
}

/** Where a constant's bytes live. */
export type ConstantLocation =
  | { kind: 'inline' }
  | { kind: 'external'; path: string; offset: number; length: number };

/**
 * A constant (initializer or Constant-node value) whose data is read only when needed: a 70B
 * model's graph can be imported, inspected and partitioned without touching its weights.
 */
export class LazyTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly location: ConstantLocation;
  private cached?: Tensor;
  private readonly loader: () => Tensor;

  constructor(dtype: DType, shape: readonly number[], location: ConstantLocation, loader: () => Tensor) {
    this.dtype = dtype;
    this.shape = shape.slice();
    this.location = location;
    this.loader = loader;
  }

  static of(t: Tensor): LazyTensor {
    const lt = new LazyTensor(t.dtype, t.shape, { kind: 'inline' }, () => t);
    lt.cached = t;
    return lt;
  }

  get loaded(): boolean {
    return this.cached !== undefined;
  }

  get size(): number {
    return numel(this.shape);
  }

  load(): Tensor {
    if (!this.cached) this.cached = this.loader();
    return this.cached;
  }

  /** Drops loaded data (it can be loaded again). */
  release(): void {
    if (this.location.kind === 'external') this.cached = undefined;
  }
}
