/**
 * Deterministic random inputs for a graph (verification against onnxruntime when no test data is
 * given): a seeded PRNG (mulberry32), floats uniform in [-1, 1), integers in [0, intHigh), bools
 * 0/1. Symbolic dims are bound from `dims`, else 1.
 */
import type { DType } from '../ir/dtype.js';
import { UserError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import { mulberry32 } from '../ir/random.js';
import { type Dim, bindDim, symbolsOf } from '../ir/shape.js';
import { Tensor } from '../ir/tensor.js';
import { requiredInputs } from './feeds.js';

/** Re-exported for callers that import the PRNG from here. */
export { mulberry32 };

export interface RandomInputOptions {
  seed?: number;
  /** Bindings of symbolic dims; unbound symbols become 1. */
  dims?: Readonly<Record<string, number>>;
  /** Integer inputs are drawn from [0, intHigh) (default 10: small enough to index most tables). */
  intHigh?: number;
}

/** Binds a shape: bound symbols from `dims`, the others 1. */
export function concreteShape(shape: readonly Dim[], dims: Readonly<Record<string, number>>): number[] {
  return shape.map((d) => {
    const b = bindDim(d, dims);
    return typeof b === 'number' ? b : (bindDim(b, Object.fromEntries(symbolsOf(b).map((s) => [s, 1]))) as number);
  });
}

export function randomTensor(dtype: DType, shape: readonly number[], rand: () => number, intHigh = 10): Tensor {
  if (dtype === 'string') throw new UserError(`random inputs of dtype string are not supported; pass --inputs`);
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float64Array(n);
  if (dtype === 'bool') for (let i = 0; i < n; i++) values[i] = rand() < 0.5 ? 0 : 1;
  else if (dtype.startsWith('float') || dtype === 'bfloat16') for (let i = 0; i < n; i++) values[i] = rand() * 2 - 1;
  else for (let i = 0; i < n; i++) values[i] = Math.floor(rand() * intHigh);
  return Tensor.from(dtype, shape, values);
}

/** One random tensor per graph input that has no initializer default, in input order. */
export function randomInputs(graph: Graph, opts: RandomInputOptions = {}): Map<string, Tensor> {
  const rand = mulberry32(opts.seed ?? 0);
  const feeds = new Map<string, Tensor>();
  for (const v of requiredInputs(graph)) {
    if (!v.dtype || !v.shape)
      throw new UserError(`graph input has no ${v.dtype ? 'shape' : 'dtype'}; pass --inputs with a test data set`, { tensor: v.name });
    feeds.set(v.name, randomTensor(v.dtype, concreteShape(v.shape, opts.dims ?? {}), rand, opts.intHigh));
  }
  return feeds;
}
