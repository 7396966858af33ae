/**
 * WGSL rendering of a kernel: bindings (inputs `read`, outputs `read_write`, one uniform struct
 * of i32 params), then the body — the elementwise map or one of the templates. The text depends
 * only on the kernel (never on parameter values), so it is the pipeline cache key.
 *
 * Binding order: inputs, outputs, params (uniform) — `bindingOrder` gives it to runtimes.
 */
import type { Expr } from '../expr.js';
import type { Kernel, KernelBody, Let, LetLoop, MatmulBody, NormBody, ReduceBody, ReduceOp, SoftmaxBody, Store } from '../kernel.js';
import { HELPERS, type Helpers, WGSL_TYPE, f32Literal, literal, renderExpr, storeValue } from './expr.js';

/** Buffer names in binding order; the param uniform (if any) follows at index = length. */
export function bindingOrder(k: Kernel): string[] {
  return [...k.inputs.map((b) => b.name), ...k.outputs.map((b) => b.name)];
}

export function renderKernel(k: Kernel): string {
  const h: Helpers = new Set();
  const body = renderBody(k, h);
  const lines: string[] = [`// kernel ${k.name.replace(/[^\w.:\-/ ]/g, '_')}`];
  if (k.params.length) lines.push(`struct Params {\n${k.params.map((p) => `  ${p}: i32,`).join('\n')}\n}`);
  let slot = 0;
  for (const b of k.inputs) lines.push(`@group(0) @binding(${slot++}) var<storage, read> ${b.name}: array<${WGSL_TYPE[b.type]}>;`);
  for (const b of k.outputs) lines.push(`@group(0) @binding(${slot++}) var<storage, read_write> ${b.name}: array<${WGSL_TYPE[b.type]}>;`);
  if (k.params.length) lines.push(`@group(0) @binding(${slot++}) var<uniform> u: Params;`);
  for (const name of [...h].sort()) lines.push('', HELPERS[name]!);
  lines.push('', body);
  return lines.join('\n') + '\n';
}

const ind = (s: string, n = 1): string => s.split('\n').map((l) => (l ? '  '.repeat(n) + l : l)).join('\n');

function renderBody(k: Kernel, h: Helpers): string {
  const b: KernelBody = k.body;
  switch (b.kind) {
    case 'map': return renderMap(k, b, h);
    case 'matmul': return renderMatmul(b, h);
    case 'reduce': return renderReduce(k, b, h);
    case 'softmax': return renderSoftmax(k, b, h);
    case 'norm': return renderNorm(k, b, h);
  }
}

const store = (s: Store, h: Helpers): string => `${s.buf}[${renderExpr(s.index, h)}] = ${storeValue(s.value, h)};`;

function renderMap(k: Kernel, b: Extract<KernelBody, { kind: 'map' }>, h: Helpers): string {
  const out = [
    `@compute @workgroup_size(${k.workgroupSize})`,
    'fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {',
    `  let i = i32(gid.x + gid.y * nwg.x * ${k.workgroupSize}u);`,
    `  if (i >= ${renderExpr(b.count, h)}) { return; }`,
  ];
  for (const l of b.lets) out.push(...(l.loop ? renderLoopLet(l, l.loop, h) : [`let ${l.name} = ${renderExpr(l.value, h)};`]).map((x) => ind(x)));
  for (const s of b.stores) out.push(`  ${store(s, h)}`);
  out.push('}');
  return out.join('\n');
}

/** A loop-folded let (`LetLoop`): a mutable accumulator and a for loop over the loop variable. */
function renderLoopLet(l: Let, loop: LetLoop, h: Helpers): string[] {
  const t = l.value.t === 'f32' ? 'f32' : 'i32';
  const v = loop.var;
  if (['i', 'u', 'gid', 'nwg', 'main'].includes(v)) throw new Error(`loop variable ${v} of ${l.name} shadows a kernel name`);
  const head = `for (var ${v} = 0; ${v} < ${renderExpr(loop.count, h)}; ${v}++) {`;
  const x = renderExpr(l.value, h);
  if (loop.op === 'argmax' || loop.op === 'argmin') {
    const isMax = loop.op === 'argmax';
    const rel = isMax ? (loop.last ? '>=' : '>') : loop.last ? '<=' : '<';
    return [
      `var ${l.name} = 0;`,
      `var ${l.name}_best = ${REDUCE_INIT[isMax ? 'max' : 'min'](t, h)};`,
      head,
      `  let ${l.name}_x = ${x};`,
      `  if (${l.name}_x ${rel} ${l.name}_best) { ${l.name}_best = ${l.name}_x; ${l.name} = ${v}; }`,
      '}',
    ];
  }
  return [`var ${l.name} = ${REDUCE_INIT[loop.op](t, h)};`, head, `  ${l.name} = ${combine(loop.op, l.name, x)};`, '}'];
}

function renderMatmul(b: MatmulBody, h: Helpers): string {
  if ((b.block ?? 1) > 1) return renderBlockedMatmul(b, h);
  const t = b.tile;
  const M = renderExpr(b.m, h);
  const N = renderExpr(b.n, h);
  const K = renderExpr(b.k, h);
  return [
    `var<workgroup> tile_a: array<f32, ${t * t}>;`,
    `var<workgroup> tile_b: array<f32, ${t * t}>;`,
    '',
    `@compute @workgroup_size(${t}, ${t})`,
    'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {',
    '  let b = i32(wid.z);',
    `  let m = i32(wid.y) * ${t} + i32(lid.y);`,
    `  let n = i32(wid.x) * ${t} + i32(lid.x);`,
    `  let tx = i32(lid.x);`,
    `  let ty = i32(lid.y);`,
    '  var acc = 0.0f;',
    `  for (var k0 = 0; k0 < ${K}; k0 += ${t}) {`,
    '    {',
    '      let k = k0 + tx;',
    '      var v = 0.0f;',
    `      if (m < ${M} && k < ${K}) { v = ${renderExpr(b.a, h)}; }`,
    `      tile_a[ty * ${t} + tx] = v;`,
    '    }',
    '    {',
    '      let k = k0 + ty;',
    '      var v = 0.0f;',
    `      if (k < ${K} && n < ${N}) { v = ${renderExpr(b.b, h)}; }`,
    `      tile_b[ty * ${t} + tx] = v;`,
    '    }',
    '    workgroupBarrier();',
    `    for (var kk = 0; kk < ${t}; kk++) {`,
    `      acc = acc + tile_a[ty * ${t} + kk] * tile_b[kk * ${t} + tx];`,
    '    }',
    '    workgroupBarrier();',
    '  }',
    `  if (m < ${M} && n < ${N}) {`,
    `    ${store(b.out, h)}`,
    '  }',
    '}',
  ].join('\n');
}

/**
 * The register-blocked matmul (`block` > 1): a tile × tile workgroup computes a (tile·block)²
 * output tile. Each K step (tile wide) stages A[rows, k0..k0+tile) and B[k0..k0+tile, cols] in
 * workgroup memory (every invocation loads `block` elements of each, coalesced along k for A and
 * along n for B), then each invocation accumulates its block × block outputs — rows ty + r·tile,
 * columns tx + c·tile, strided so that neighbouring invocations read neighbouring words — in
 * registers (`acc_r_c`, unrolled). Per output, k is summed in ascending order like block 1. The
 * store (with any fused epilogue) is one function called per output.
 */
function renderBlockedMatmul(b: MatmulBody, h: Helpers): string {
  const t = b.tile;
  const bl = b.block!;
  const edge = t * bl; // output tile edge
  const M = renderExpr(b.m, h);
  const N = renderExpr(b.n, h);
  const K = renderExpr(b.k, h);
  const rc = (f: (r: number, c: number) => string): string[] =>
    Array.from({ length: bl * bl }, (_, x) => f(Math.floor(x / bl), x % bl));
  const rs = (f: (r: number) => string): string[] => Array.from({ length: bl }, (_, r) => f(r));
  return [
    '// The output store (and any fused epilogue) of one element, bounds-checked.',
    'fn epilogue(b: i32, m: i32, n: i32, acc: f32) {',
    `  if (m < ${M} && n < ${N}) {`,
    `    ${store(b.out, h)}`,
    '  }',
    '}',
    '',
    `var<workgroup> tile_a: array<f32, ${edge * t}>; // [${edge} rows][${t} k]`,
    `var<workgroup> tile_b: array<f32, ${t * edge}>; // [${t} k][${edge} cols]`,
    '',
    `@compute @workgroup_size(${t}, ${t})`,
    'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {',
    '  let b = i32(wid.z);',
    `  let row0 = i32(wid.y) * ${edge};`,
    `  let col0 = i32(wid.x) * ${edge};`,
    '  let tx = i32(lid.x);',
    '  let ty = i32(lid.y);',
    `  let tid = ty * ${t} + tx;`,
    ...rc((r, c) => `  var acc_${r}_${c} = 0.0f;`),
    `  for (var k0 = 0; k0 < ${K}; k0 += ${t}) {`,
    `    for (var e = tid; e < ${edge * t}; e += ${t * t}) {`,
    `      let m = row0 + e / ${t};`,
    `      let k = k0 + e % ${t};`,
    '      var v = 0.0f;',
    `      if (m < ${M} && k < ${K}) { v = ${renderExpr(b.a, h)}; }`,
    '      tile_a[e] = v;',
    '    }',
    `    for (var e = tid; e < ${t * edge}; e += ${t * t}) {`,
    `      let k = k0 + e / ${edge};`,
    `      let n = col0 + e % ${edge};`,
    '      var v = 0.0f;',
    `      if (k < ${K} && n < ${N}) { v = ${renderExpr(b.b, h)}; }`,
    '      tile_b[e] = v;',
    '    }',
    '    workgroupBarrier();',
    `    for (var kk = 0; kk < ${t}; kk++) {`,
    ...rs((r) => `      let a_${r} = tile_a[(ty + ${r * t}) * ${t} + kk];`),
    ...rs((c) => `      let b_${c} = tile_b[kk * ${edge} + tx + ${c * t}];`),
    ...rc((r, c) => `      acc_${r}_${c} = acc_${r}_${c} + a_${r} * b_${c};`),
    '    }',
    '    workgroupBarrier();',
    '  }',
    ...rc((r, c) => `  epilogue(b, row0 + ty + ${r * t}, col0 + tx + ${c * t}, acc_${r}_${c});`),
    '}',
  ].join('\n');
}

const REDUCE_INIT: Record<ReduceOp, (t: 'f32' | 'i32', h: Helpers) => string> = {
  sum: (t) => literal(t, 0),
  prod: (t) => literal(t, 1),
  max: (t, h) => (t === 'f32' ? f32Literal(-Infinity, h) : literal('i32', -(2 ** 31))),
  min: (t, h) => (t === 'f32' ? f32Literal(Infinity, h) : literal('i32', 2 ** 31 - 1)),
};
const combine = (op: ReduceOp, a: string, b: string): string =>
  op === 'sum' ? `${a} + ${b}` : op === 'prod' ? `${a} * ${b}` : `${op}(${a}, ${b})`;

function rowPrologue(k: Kernel, rows: Expr, h: Helpers, shared: string): string[] {
  return [
    `var<workgroup> part: array<${shared}, ${k.workgroupSize}>;`,
    '',
    `@compute @workgroup_size(${k.workgroupSize})`,
    'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {',
    '  let row = i32(wid.x + wid.y * nwg.x);',
    `  if (row >= ${renderExpr(rows, h)}) { return; }`,
    '  let tid = i32(lid.x);',
  ];
}

/** Strided partial `acc` per thread over r, then a tree reduction in `part`; leaves `<name>` = the row's result. */
function rowReduce(k: Kernel, h: Helpers, op: ReduceOp, t: 'f32' | 'i32', value: string, len: string, name: string): string[] {
  const w = k.workgroupSize;
  return [
    `var ${name}_acc = ${REDUCE_INIT[op](t, h)};`,
    `for (var r = tid; r < ${len}; r += ${w}) {`,
    `  ${name}_acc = ${combine(op, `${name}_acc`, value)};`,
    '}',
    `part[tid] = ${name}_acc;`,
    'workgroupBarrier();',
    `for (var s = ${w / 2}; s > 0; s = s / 2) {`,
    `  if (tid < s) { part[tid] = ${combine(op, 'part[tid]', 'part[tid + s]')}; }`,
    '  workgroupBarrier();',
    '}',
    `let ${name} = part[0];`,
    'workgroupBarrier();',
  ];
}

function renderReduce(k: Kernel, b: ReduceBody, h: Helpers): string {
  const t = b.value.t === 'f32' ? 'f32' : 'i32';
  return [
    ...rowPrologue(k, b.rows, h, t),
    ...rowReduce(k, h, b.op, t, renderExpr(b.value, h), renderExpr(b.len, h), 'total').map((l) => ind(l)),
    '  if (tid == 0) {',
    '    let acc = total;',
    `    ${store(b.out, h)}`,
    '  }',
    '}',
  ].join('\n');
}

function renderSoftmax(k: Kernel, b: SoftmaxBody, h: Helpers): string {
  const x = renderExpr(b.value, h);
  const len = renderExpr(b.len, h);
  const y = b.log ? `${x} - row_max - log(row_sum)` : `exp(${x} - row_max) / row_sum`;
  return [
    ...rowPrologue(k, b.rows, h, 'f32'),
    ...rowReduce(k, h, 'max', 'f32', x, len, 'row_max').map((l) => ind(l)),
    ...rowReduce(k, h, 'sum', 'f32', `exp(${x} - row_max)`, len, 'row_sum').map((l) => ind(l)),
    `  for (var r = tid; r < ${len}; r += ${k.workgroupSize}) {`,
    `    ${b.out.buf}[${renderExpr(b.out.index, h)}] = ${y};`,
    '  }',
    '}',
  ].join('\n');
}

function renderNorm(k: Kernel, b: NormBody, h: Helpers): string {
  const x = renderExpr(b.value, h);
  const len = renderExpr(b.len, h);
  const stats =
    b.mode === 'layer'
      ? [
          ...rowReduce(k, h, 'sum', 'f32', x, len, 'row_sum'),
          `let mean = row_sum / f32(${len});`,
          ...rowReduce(k, h, 'sum', 'f32', `(${x} - mean) * (${x} - mean)`, len, 'row_sq'),
          `let inv_std = inverseSqrt(row_sq / f32(${len}) + ${f32Literal(b.epsilon)});`,
        ]
      : [
          ...rowReduce(k, h, 'sum', 'f32', `${x} * ${x}`, len, 'row_sq'),
          'let mean = 0.0f;',
          `let inv_std = inverseSqrt(row_sq / f32(${len}) + ${f32Literal(b.epsilon)});`,
        ];
  return [
    ...rowPrologue(k, b.rows, h, 'f32'),
    ...stats.map((l) => ind(l)),
    `  for (var r = tid; r < ${len}; r += ${k.workgroupSize}) {`,
    `    let xhat = (${x} - mean) * inv_std;`,
    `    ${store(b.out, h)}`,
    '  }',
    '}',
  ].join('\n');
}
