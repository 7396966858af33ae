/**
 * The kernel IR: a Kernel is named buffers (inputs read-only, outputs read-write), i32 parameters
 * (sizes and strides, passed at launch so one compiled kernel serves many shapes), a workgroup
 * size, and a body. A body is either
 *
 * - `map`: an elementwise map over `count` invocations (flat index var `i`), with `let` bindings
 *   and stores `buf[index] = value` — fused elementwise chains and every index-map movement op
 *   (transpose, slice, gather, concat, expand ...);
 * - a parameterised template whose operand loads and output stores are expressions over the
 *   template's loop variables (so transposed or broadcast operands need no copy):
 *   - `matmul`: tiled in workgroup memory, batched; vars `b`, `m`, `n`, `k`; epilogue over `acc`;
 *   - `reduce`: one workgroup per output row, tree reduction; vars `row`, `r`; epilogue over `acc`;
 *   - `softmax`: one workgroup per row (max, sum of exp, write), plain or log;
 *   - `norm`: layer or RMS norm, one workgroup per row; epilogue over `xhat` (scale, bias).
 *
 * `makeKernel` derives the buffer and parameter lists from the body, so every declared binding is
 * used and nothing is listed by hand. The emitted code depends only on the kernel (never on
 * parameter values), so renderers key their pipeline caches by the rendered code.
 */
import { type Expr, type ScalarType, walk } from './expr.js';

export interface Let {
  name: string;
  value: Expr;
  /**
   * When set, the let is a fold of `value` over the loop variable `loop.var` (i32) in
   * [0, loop.count): sum/prod/max/min give a value of `value`'s type; argmax/argmin give the i32
   * index of the first (or, with `last`, the last) extreme value. `value` and `count` may use the
   * earlier lets and the invocation index (pooling windows, conv taps, scans, arg reductions).
   */
  loop?: LetLoop;
}

export type LoopOp = 'sum' | 'prod' | 'max' | 'min' | 'argmax' | 'argmin';

export interface LetLoop {
  var: string;
  count: Expr;
  op: LoopOp;
  last?: boolean;
}

/** Type of a let's variable (arg folds give the i32 index). */
export const letType = (l: Let): ScalarType => (l.loop && (l.loop.op === 'argmax' || l.loop.op === 'argmin') ? 'i32' : l.value.t);

export interface Store {
  buf: string;
  index: Expr;
  value: Expr;
}

export interface MapBody {
  kind: 'map';
  /** Number of invocations (i32), usually a param. */
  count: Expr;
  lets: Let[];
  stores: Store[];
}

export interface MatmulBody {
  kind: 'matmul';
  /** Tile edge (workgroup is tile × tile invocations; also the K step of the blocked kernel). */
  tile: number;
  /**
   * Register blocking (default 1): each invocation computes block × block outputs, so one
   * workgroup covers a (tile·block) × (tile·block) output tile and the dispatch is
   * ceil(N / (tile·block)) × ceil(M / (tile·block)) × batch workgroups. Semantics (what is
   * stored where) do not depend on it; it only says how the work is split.
   */
  block?: number;
  batch: Expr;
  m: Expr;
  n: Expr;
  k: Expr;
  /** A[b, m, k] as an f32 expression over vars b, m, k. */
  a: Expr;
  /** B[b, k, n] as an f32 expression over vars b, k, n. */
  b: Expr;
  /** Output buffer and index over b, m, n; value over `acc` (and b, m, n). */
  out: Store;
}

export type ReduceOp = 'sum' | 'prod' | 'max' | 'min';

export interface ReduceBody {
  kind: 'reduce';
  op: ReduceOp;
  rows: Expr;
  len: Expr;
  /** The element (row, r) as an f32 or i32 expression. */
  value: Expr;
  /** Output store over `row` with value over `acc`. */
  out: Store;
}

export interface SoftmaxBody {
  kind: 'softmax';
  log: boolean;
  rows: Expr;
  len: Expr;
  /** x(row, r) (f32). */
  value: Expr;
  /** Index over row, r; the value is computed by the template (store.value is ignored: use `variable('y')`). */
  out: Store;
}

export interface NormBody {
  kind: 'norm';
  /** 'layer': (x - mean) / sqrt(var + eps); 'rms': x / sqrt(mean(x²) + eps). */
  mode: 'layer' | 'rms';
  epsilon: number;
  rows: Expr;
  len: Expr;
  value: Expr;
  /** Index over row, r; value over `xhat`, row, r (scale and bias applied here). */
  out: Store;
}

export type KernelBody = MapBody | MatmulBody | ReduceBody | SoftmaxBody | NormBody;

export interface BufferDecl {
  name: string;
  /** Element type in the buffer (bool buffers hold u32 words). */
  type: ScalarType;
}

export interface Kernel {
  name: string;
  inputs: BufferDecl[];
  outputs: BufferDecl[];
  /** i32 parameters in binding order. */
  params: string[];
  workgroupSize: number;
  body: KernelBody;
}

/** A kernel with the parameter values and buffer bindings of one dispatch. */
export interface Launch {
  kernel: Kernel;
  params: Record<string, number>;
}

const storageType = (t: ScalarType): ScalarType => (t === 'bool' ? 'u32' : t);

/** Expressions of a body (for collecting buffers and params). */
export function bodyExprs(body: KernelBody): Expr[] {
  switch (body.kind) {
    case 'map': return [body.count, ...body.lets.flatMap((l) => (l.loop ? [l.value, l.loop.count] : [l.value])), ...body.stores.flatMap((s) => [s.index, s.value])];
    case 'matmul': return [body.batch, body.m, body.n, body.k, body.a, body.b, body.out.index, body.out.value];
    default: return [body.rows, body.len, body.value, body.out.index, body.out.value];
  }
}

export function bodyStores(body: KernelBody): Store[] {
  return body.kind === 'map' ? body.stores : [body.out];
}

export const DEFAULT_WORKGROUP = 64;

/** Builds a kernel, deriving its buffers (in first-use order) and params (sorted) from the body. */
export function makeKernel(name: string, body: KernelBody, workgroupSize = DEFAULT_WORKGROUP): Kernel {
  const inputs = new Map<string, ScalarType>();
  const params = new Set<string>();
  const outputs = new Map<string, ScalarType>();
  for (const s of bodyStores(body)) outputs.set(s.buf, storageType(s.value.t === 'bool' ? 'bool' : s.value.t));
  for (const e of bodyExprs(body))
    walk(e, (x) => {
      if (x.k === 'load') {
        if (outputs.has(x.buf)) throw new Error(`kernel ${name} reads its output ${x.buf}`);
        const t = storageType(x.t);
        const had = inputs.get(x.buf);
        if (had && had !== t) throw new Error(`kernel ${name} loads ${x.buf} as ${had} and ${t}`);
        inputs.set(x.buf, t);
      } else if (x.k === 'param') params.add(x.name);
    });
  if (body.kind === 'softmax' || body.kind === 'norm') outputs.set(body.out.buf, 'f32');
  return {
    name,
    inputs: [...inputs].map(([n, type]) => ({ name: n, type })),
    outputs: [...outputs].map(([n, type]) => ({ name: n, type })),
    params: [...params].sort(),
    workgroupSize: body.kind === 'matmul' ? body.tile * body.tile : workgroupSize,
    body,
  };
}

/** Workgroup counts of a launch: [x, y, z] (x·y covers the invocation or row count). */
export function dispatchSize(l: Launch, maxPerDim = 65535): [number, number, number] {
  const b = l.kernel.body;
  const v = (e: Expr): number => evalHostInt(e, l.params);
  let groups: number;
  if (b.kind === 'map') groups = Math.ceil(v(b.count) / l.kernel.workgroupSize);
  else if (b.kind === 'matmul') {
    const edge = b.tile * (b.block ?? 1);
    return [Math.ceil(v(b.n) / edge), Math.ceil(v(b.m) / edge), v(b.batch)];
  }
  else groups = v(b.rows);
  if (groups <= maxPerDim) return [groups, 1, 1];
  return [maxPerDim, Math.ceil(groups / maxPerDim), 1];
}

/** Value of a host-side integer expression (consts and params only). */
export function evalHostInt(e: Expr, params: Record<string, number>): number {
  if (e.k === 'const') return e.v;
  if (e.k === 'param') {
    const v = params[e.name];
    if (v === undefined) throw new Error(`param ${e.name} has no value`);
    return v;
  }
  if (e.k === 'bin' && (e.op === '*' || e.op === '+')) {
    const a = evalHostInt(e.a, params);
    const b = evalHostInt(e.b, params);
    return e.op === '*' ? a * b : a + b;
  }
  throw new Error(`not a host integer expression: ${e.k}`);
}
