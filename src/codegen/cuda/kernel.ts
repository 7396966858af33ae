/**
 * CUDA C++ rendering of a kernel: one `extern "C" __global__` function whose arguments are the
 * buffers (inputs `const T* __restrict__`, outputs `T* __restrict__`, in `bindingOrder`) and one
 * struct of i32 params passed by value. The bodies mirror the WGSL templates
 * (src/codegen/wgsl/kernel.ts) line for line — elementwise map with lets and loop lets, matmul with
 * shared-memory tiles (fp32), row templates with a block tree reduction — so the launch geometry is
 * `dispatchSize` for the grid and `cudaBlockDim` for the block, as on WebGPU.
 *
 * The text depends only on the kernel and the chosen function name, never on parameter values.
 * Kernels use only `__shared__`, `__syncthreads()`, `blockIdx`, `threadIdx`, `gridDim` and the
 * prelude helpers, so the test shim (test/codegen/cuda-shim.h) can run them as host C++.
 */
import type { Expr } from '../expr.js';
import type { Kernel, KernelBody, Let, LetLoop, MatmulBody, NormBody, ReduceBody, ReduceOp, SoftmaxBody, Store } from '../kernel.js';
import { type Launch, dispatchSize, evalHostInt, letType } from '../kernel.js';
import { IdentifierTable, commentSafe, identifier } from '../names.js';
import { CUDA_PRELUDE, CUDA_TYPE, type CudaNames, type HalfStorage, bufferCType, f32Literal, literal, renderExpr, storeStatement, storeValue, varName } from './expr.js';
import { type WmmaLayout, renderWmmaBody } from './wmma.js';

export { CUDA_PRELUDE };

/** Names the kernel templates use for themselves; buffers never take them. */
const RESERVED = ['p', 'i', 'row', 'tid', 'part', 'r', 's', 'b', 'm', 'n', 'k', 'k0', 'kk', 'tx', 'ty', 'acc', 'xhat', 'mean', 'inv_std', 'tile_a', 'tile_b', 'v'];

/** Block dimensions of a kernel's launches: [x, y, z]. */
export function cudaBlockDim(k: Kernel): [number, number, number] {
  return k.body.kind === 'matmul' ? [k.body.tile, k.body.tile, 1] : [k.workgroupSize, 1, 1];
}

/**
 * Grid dimensions of a launch. As `dispatchSize`, except that matmul tiles are always tile × tile
 * outputs here: this renderer does not use the optional register blocking (`MatmulBody.block`),
 * which changes only how work is split, never what is stored.
 */
export function cudaGridDim(l: Launch): [number, number, number] {
  const b = l.kernel.body;
  if (b.kind !== 'matmul') return dispatchSize(l);
  const v = (e: Expr): number => evalHostInt(e, l.params);
  return [Math.ceil(v(b.n) / b.tile), Math.ceil(v(b.m) / b.tile), v(b.batch)];
}

/** Buffer argument names of a kernel, in binding order (inputs then outputs). */
function bufferNames(k: Kernel): Map<string, string> {
  const table = new IdentifierTable(RESERVED, 'buf');
  const m = new Map<string, string>();
  for (const b of [...k.inputs, ...k.outputs]) m.set(b.name, table.id(b.name));
  return m;
}

/** The CUDA name of a kernel's params struct. */
export const paramsStructName = (fn: string): string => `${fn}_params`;

/** How one launch variant of a kernel is rendered (src/bundle/cuda.ts picks it per dispatch). */
export interface CudaVariant {
  /** Kernel buffers stored as 2-byte floats (f32 buffers of the kernel IR only). */
  storage?: Readonly<Record<string, HalfStorage>>;
  /** Matmul bodies only: the tensor-core (WMMA) template instead of the shared-memory tiles. */
  wmma?: WmmaLayout;
}

export interface RenderedCudaKernel {
  /** Function name. */
  name: string;
  /** The params struct and the __global__ function (no prelude). */
  code: string;
}

/**
 * Renders `k` as a CUDA function named `fn` (default: an identifier from the kernel's name). The
 * result needs CUDA_PRELUDE before it in the translation unit.
 */
export function renderCudaKernel(k: Kernel, fn = identifier(k.name, 'k'), variant: CudaVariant = {}): RenderedCudaKernel {
  const bufs = bufferNames(k);
  const storage = variant.storage ?? {};
  for (const b of [...k.inputs, ...k.outputs]) if (storage[b.name] && b.type !== 'f32') throw new Error(`buffer ${b.name} of ${k.name} is ${b.type}; only f32 buffers have half storage`);
  const names: CudaNames = { buf: (b) => bufs.get(b) ?? identifier(b, 'buf'), params: 'p', storage: (b) => storage[b] };
  const struct = paramsStructName(fn);
  const lines: string[] = [`// kernel ${commentSafe(k.name)}`];
  lines.push(`struct ${struct} {${k.params.length ? '' : ' int unused_;'}`);
  for (const p of k.params) lines.push(`  int ${identifier(p, 'p')};`);
  lines.push('};');
  const args = [
    ...k.inputs.map((b) => `const ${bufferCType(b.name, b.type, names)}* __restrict__ ${bufs.get(b.name)!}`),
    ...k.outputs.map((b) => `${bufferCType(b.name, b.type, names)}* __restrict__ ${bufs.get(b.name)!}`),
    `const ${struct} p`,
  ];
  const [bx, by] = variant.wmma ? [32, 1] : cudaBlockDim(k);
  lines.push(`extern "C" __global__ void __launch_bounds__(${bx * by}) ${fn}(${args.join(', ')}) {`);
  if (variant.wmma) {
    if (k.body.kind !== 'matmul') throw new Error(`WMMA variant of a ${k.body.kind} kernel (${k.name})`);
    lines.push(renderWmmaBody(k.body, names, variant.wmma).join('\n'));
  } else lines.push(renderBody(k, names));
  lines.push('}');
  return { name: fn, code: lines.join('\n') + '\n' };
}

/** One self-contained translation unit (prelude + kernel), e.g. for golden files and nvcc checks. */
export function renderCudaKernelFile(k: Kernel, fn?: string, variant?: CudaVariant): string {
  return `${CUDA_PRELUDE}\n\n${renderCudaKernel(k, fn, variant).code}`;
}

const ind = (lines: string[], n = 1): string[] => lines.map((l) => (l ? '  '.repeat(n) + l : l));

function renderBody(k: Kernel, n: CudaNames): string {
  const b: KernelBody = k.body;
  switch (b.kind) {
    case 'map': return renderMap(k, b, n).join('\n');
    case 'matmul': return renderMatmul(b, n).join('\n');
    case 'reduce': return renderReduce(k, b, n).join('\n');
    case 'softmax': return renderSoftmax(k, b, n).join('\n');
    case 'norm': return renderNorm(k, b, n).join('\n');
  }
}

const store = (s: Store, n: CudaNames): string => storeStatement(s.buf, renderExpr(s.index, n), storeValue(s.value, n), n);

function renderMap(k: Kernel, b: Extract<KernelBody, { kind: 'map' }>, n: CudaNames): string[] {
  const out = [
    `  const int i = (int)((blockIdx.x + blockIdx.y * gridDim.x) * ${k.workgroupSize}u + threadIdx.x);`,
    `  if (i >= ${renderExpr(b.count, n)}) return;`,
  ];
  for (const l of b.lets) out.push(...ind(l.loop ? renderLoopLet(l, l.loop, n) : [`const ${CUDA_TYPE[letType(l)]} ${varName(l.name)} = ${renderExpr(l.value, n)};`]));
  for (const s of b.stores) out.push(`  ${store(s, n)}`);
  return out;
}

/** A loop-folded let (`LetLoop`): an accumulator and a for loop over the loop variable. */
function renderLoopLet(l: Let, loop: LetLoop, n: CudaNames): string[] {
  const t = l.value.t === 'f32' ? 'f32' : 'i32';
  const ty = CUDA_TYPE[t];
  const v = varName(loop.var);
  const name = varName(l.name);
  if (['i', 'p', 'tid', 'row'].includes(v)) throw new Error(`loop variable ${v} of ${l.name} shadows a kernel name`);
  const head = `for (int ${v} = 0; ${v} < ${renderExpr(loop.count, n)}; ${v}++) {`;
  const x = renderExpr(l.value, n);
  if (loop.op === 'argmax' || loop.op === 'argmin') {
    const isMax = loop.op === 'argmax';
    const rel = isMax ? (loop.last ? '>=' : '>') : loop.last ? '<=' : '<';
    return [
      `int ${name} = 0;`,
      `${ty} ${name}_best = ${REDUCE_INIT[isMax ? 'max' : 'min'](t)};`,
      head,
      `  const ${ty} ${name}_x = ${x};`,
      `  if (${name}_x ${rel} ${name}_best) { ${name}_best = ${name}_x; ${name} = ${v}; }`,
      '}',
    ];
  }
  return [`${ty} ${name} = ${REDUCE_INIT[loop.op](t)};`, head, `  ${name} = ${combine(loop.op, name, x, t)};`, '}'];
}

function renderMatmul(b: MatmulBody, n: CudaNames): string[] {
  const t = b.tile;
  const M = renderExpr(b.m, n);
  const N = renderExpr(b.n, n);
  const K = renderExpr(b.k, n);
  return [
    `  __shared__ float tile_a[${t * t}];`,
    `  __shared__ float tile_b[${t * t}];`,
    '  const int b = (int)blockIdx.z;',
    `  const int m = (int)blockIdx.y * ${t} + (int)threadIdx.y;`,
    `  const int n = (int)blockIdx.x * ${t} + (int)threadIdx.x;`,
    '  const int tx = (int)threadIdx.x;',
    '  const int ty = (int)threadIdx.y;',
    '  float acc = 0.0f;',
    `  for (int k0 = 0; k0 < ${K}; k0 += ${t}) {`,
    '    {',
    '      const int k = k0 + tx;',
    '      float v = 0.0f;',
    `      if (m < ${M} && k < ${K}) v = ${renderExpr(b.a, n)};`,
    `      tile_a[ty * ${t} + tx] = v;`,
    '    }',
    '    {',
    '      const int k = k0 + ty;',
    '      float v = 0.0f;',
    `      if (k < ${K} && n < ${N}) v = ${renderExpr(b.b, n)};`,
    `      tile_b[ty * ${t} + tx] = v;`,
    '    }',
    '    __syncthreads();',
    `    for (int kk = 0; kk < ${t}; kk++) acc = acc + tile_a[ty * ${t} + kk] * tile_b[kk * ${t} + tx];`,
    '    __syncthreads();',
    '  }',
    `  if (m < ${M} && n < ${N}) {`,
    `    ${store(b.out, n)}`,
    '  }',
  ];
}

const REDUCE_INIT: Record<ReduceOp, (t: 'f32' | 'i32') => string> = {
  sum: (t) => literal(t, 0),
  prod: (t) => literal(t, 1),
  max: (t) => (t === 'f32' ? f32Literal(-Infinity) : literal('i32', -(2 ** 31))),
  min: (t) => (t === 'f32' ? f32Literal(Infinity) : literal('i32', 2 ** 31 - 1)),
};

function combine(op: ReduceOp, a: string, b: string, t: 'f32' | 'i32'): string {
  if (op === 'sum') return `${a} + ${b}`;
  if (op === 'prod') return `${a} * ${b}`;
  return t === 'f32' ? `f${op}f(${a}, ${b})` : `${op}(${a}, ${b})`;
}

function rowPrologue(k: Kernel, rows: Expr, n: CudaNames, shared: 'f32' | 'i32'): string[] {
  return [
    `  __shared__ ${CUDA_TYPE[shared]} part[${k.workgroupSize}];`,
    '  const int row = (int)(blockIdx.x + blockIdx.y * gridDim.x);',
    `  if (row >= ${renderExpr(rows, n)}) return;`,
    '  const int tid = (int)threadIdx.x;',
  ];
}

/** Strided partial per thread over r, then a tree reduction in `part`; leaves `<name>` = the row's result. */
function rowReduce(k: Kernel, op: ReduceOp, t: 'f32' | 'i32', value: string, len: string, name: string): string[] {
  const w = k.workgroupSize;
  const ty = CUDA_TYPE[t];
  return [
    `${ty} ${name}_acc = ${REDUCE_INIT[op](t)};`,
    `for (int r = tid; r < ${len}; r += ${w}) ${name}_acc = ${combine(op, `${name}_acc`, value, t)};`,
    `part[tid] = ${name}_acc;`,
    '__syncthreads();',
    `for (int s = ${w / 2}; s > 0; s = s / 2) {`,
    `  if (tid < s) part[tid] = ${combine(op, 'part[tid]', 'part[tid + s]', t)};`,
    '  __syncthreads();',
    '}',
    `const ${ty} ${name} = part[0];`,
    '__syncthreads();',
  ];
}

function renderReduce(k: Kernel, b: ReduceBody, n: CudaNames): string[] {
  const t = b.value.t === 'f32' ? 'f32' : 'i32';
  return [
    ...rowPrologue(k, b.rows, n, t),
    ...ind(rowReduce(k, b.op, t, renderExpr(b.value, n), renderExpr(b.len, n), 'total')),
    '  if (tid == 0) {',
    `    const ${CUDA_TYPE[t]} acc = total;`,
    `    ${store(b.out, n)}`,
    '  }',
  ];
}

function renderSoftmax(k: Kernel, b: SoftmaxBody, n: CudaNames): string[] {
  const x = renderExpr(b.value, n);
  const len = renderExpr(b.len, n);
  const y = b.log ? `${x} - row_max - logf(row_sum)` : `expf(${x} - row_max) / row_sum`;
  return [
    ...rowPrologue(k, b.rows, n, 'f32'),
    ...ind(rowReduce(k, 'max', 'f32', x, len, 'row_max')),
    ...ind(rowReduce(k, 'sum', 'f32', `expf(${x} - row_max)`, len, 'row_sum')),
    `  for (int r = tid; r < ${len}; r += ${k.workgroupSize}) {`,
    `    ${storeStatement(b.out.buf, renderExpr(b.out.index, n), y, n)}`,
    '  }',
  ];
}

function renderNorm(k: Kernel, b: NormBody, n: CudaNames): string[] {
  const x = renderExpr(b.value, n);
  const len = renderExpr(b.len, n);
  const eps = f32Literal(Math.fround(b.epsilon));
  const stats =
    b.mode === 'layer'
      ? [
          ...rowReduce(k, 'sum', 'f32', x, len, 'row_sum'),
          `const float mean = row_sum / (float)(${len});`,
          ...rowReduce(k, 'sum', 'f32', `(${x} - mean) * (${x} - mean)`, len, 'row_sq'),
          `const float inv_std = rsqrtf(row_sq / (float)(${len}) + ${eps});`,
        ]
      : [
          ...rowReduce(k, 'sum', 'f32', `${x} * ${x}`, len, 'row_sq'),
          'const float mean = 0.0f;',
          `const float inv_std = rsqrtf(row_sq / (float)(${len}) + ${eps});`,
        ];
  return [
    ...rowPrologue(k, b.rows, n, 'f32'),
    ...ind(stats),
    `  for (int r = tid; r < ${len}; r += ${k.workgroupSize}) {`,
    `    const float xhat = (${x} - mean) * inv_std;`,
    `    ${store(b.out, n)}`,
    '  }',
  ];
}
