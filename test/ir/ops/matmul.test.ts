import { type Attr, Attrs } from '../../../src/ir/attrs.js';
import type { DType } from '../../../src/ir/dtype.js';
import { UserError } from '../../../src/ir/errors.js';
import { Node, Value } from '../../../src/ir/graph.js';
import { parseEinsum } from '../../../src/ir/ops/einsum.js';
import { gemm, setWasmGemm } from '../../../src/ir/ops/matmul-kernel.js';
import { matmulOps } from '../../../src/ir/ops/matmul.js';
import type { OpDef, TypeInfo } from '../../../src/ir/registry.js';
import type { Dim } from '../../../src/ir/shape.js';
import { Tensor } from '../../../src/ir/tensor.js';

// ---- harness ----
type AttrIn = number | string | { float: number };
const row = (op: string): OpDef => matmulOps.find((d) => d.op === op)!;

function nodeOf(op: string, nIn: number, attrs: Record<string, AttrIn>): Node {
  const a = new Attrs(
    Object.entries(attrs).map(([k, v]): [string, Attr] => [
      k,
      typeof v === 'string' ? { kind: 'string', value: v } : typeof v === 'number' ? { kind: 'int', value: v } : { kind: 'float', value: v.float },
    ]),
  );
  const ins = Array.from({ length: nIn }, (_, i) => new Value(`in${i}`));
  return new Node(op, ins, [new Value('out')], a, `${op.toLowerCase()}_0`);
}

function run(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrIn> = {}): Tensor {
  const node = nodeOf(op, inputs.length, attrs);
  return row(op).evaluate({ node, attrs: node.attrs, inputs })[0]!;
}

function ctxOf(op: string, inputs: (TypeInfo | undefined)[], attrs: Record<string, AttrIn> = {}) {
  const node = nodeOf(op, inputs.length, attrs);
  return { node, attrs: node.attrs, inputs, constant: () => undefined };
}
const infer = (op: string, inputs: TypeInfo[], attrs: Record<string, AttrIn> = {}) => row(op).infer(ctxOf(op, inputs, attrs));

const t = (dtype: DType, shape: number[], v: number[]) => Tensor.from(dtype, shape, v);
const f32 = (shape: number[], v: number[]) => t('float32', shape, v);
const close = (x: Tensor, expected: number[], digits = 4) => {
  expect(x.data.length).toBe(expected.length);
  expected.forEach((e, i) => expect(x.data[i]).toBeCloseTo(e, digits));
};

let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
const randT = (shape: number[]) => f32(shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand));

/** Naive triple loop in float64 over row-major operands. */
function naive(a: ArrayLike<number>, b: ArrayLike<number>, M: number, K: number, N: number): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += a[i * K + k]! * b[k * N + j]!;
    c[i * N + j] = s;
  }
  return c;
}

const maxRelErr = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  let e = 0;
  for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  return e;
};

// A = [[1,2,3],[4,5,6]], B = [[7,8],[9,10],[11,12]]; A·B = [[58,64],[139,154]]
const A = f32([2, 3], [1, 2, 3, 4, 5, 6]);
const B = f32([3, 2], [7, 8, 9, 10, 11, 12]);

describe('MatMul', () => {
  test('2-D hand-computed', () => {
    const y = run('MatMul', [A, B]);
    expect(y.shape).toEqual([2, 2]);
    close(y, [58, 64, 139, 154]);
  });

  test('1-D operands are promoted and the promoted dim dropped', () => {
    const v = f32([3], [1, 0, -1]);
    const vb = run('MatMul', [v, B]); // [7-11, 8-12]
    expect(vb.shape).toEqual([2]);
    close(vb, [-4, -4]);
    const av = run('MatMul', [A, v]); // [1-3, 4-6]
    expect(av.shape).toEqual([2]);
    close(av, [-2, -2]);
    const vv = run('MatMul', [v, f32([3], [2, 5, 7])]);
    expect(vv.shape).toEqual([]);
    close(vv, [-5]);
  });

  test('batch dims broadcast', () => {
    // a: [2,1,2,3] (batch 2 of A and 2·A), b: [3,3,2] (B, -B, 0·B)
    const a = f32([2, 1, 2, 3], [...A.toArray(), ...A.toArray().map((x) => 2 * x)]);
    const b = f32([3, 3, 2], [...B.toArray(), ...B.toArray().map((x) => -x), ...new Array(6).fill(0)]);
    const y = run('MatMul', [a, b]);
    expect(y.shape).toEqual([2, 3, 2, 2]);
    const AB = [58, 64, 139, 154];
    close(y, [...AB, ...AB.map((x) => -x), 0, 0, 0, 0, ...AB.map((x) => 2 * x), ...AB.map((x) => -2 * x), 0, 0, 0, 0]);
  });

  test('integer matmul (int32 and int64)', () => {
    const y = run('MatMul', [t('int32', [2, 3], A.toArray()), t('int32', [3, 2], B.toArray())]);
    expect(y.dtype).toBe('int32');
    expect(y.toArray()).toEqual([58, 64, 139, 154]);
    const big = run('MatMul', [t('int64', [1, 2], [2 ** 40, 1]), t('int64', [2, 1], [4, 3])]);
    expect(big.toArray()).toEqual([2 ** 42 + 3]);
  });

  test('mismatched inner dims: UserError', () => {
    expect(() => run('MatMul', [A, A])).toThrow(UserError);
  });

  test('random cross-check of the blocked kernel against a naive triple loop', () => {
    // Sizes cross the 4-row / 8-column panel edges and the 256 (M, K) and 2048 (N) blocks.
    for (const [M, K, N] of [[1, 1, 1], [5, 7, 9], [33, 300, 17], [261, 513, 70], [9, 20, 2055]] as const) {
      const a = randT([M, K]);
      const b = randT([K, N]);
      const y = run('MatMul', [a, b]);
      expect(y.shape).toEqual([M, N]);
      expect(maxRelErr(y.data, naive(a.data, b.data, M, K, N))).toBeLessThan(1e-5);
    }
  });

  test('batched with a shared weight (rows folded) and per-batch weights', () => {
    const a = randT([2, 3, 5, 16]);
    const w = randT([16, 11]);
    const y = run('MatMul', [a, w]);
    expect(y.shape).toEqual([2, 3, 5, 11]);
    expect(maxRelErr(y.data, naive(a.data, w.data, 30, 16, 11))).toBeLessThan(1e-5);
    const wb = randT([3, 16, 4]);
    const z = run('MatMul', [a, wb]);
    for (let p = 0; p < 6; p++) {
      const want = naive(a.data.subarray(p * 80, p * 80 + 80), wb.data.subarray((p % 3) * 64, (p % 3) * 64 + 64), 5, 16, 4);
      expect(maxRelErr(z.data.subarray(p * 20, p * 20 + 20), want)).toBeLessThan(1e-5);
    }
  });

  test('strided operands, wasm and generic kernels agree', () => {
    const [M, K, N] = [37, 45, 29];
    const at = randT([K, M]); // A stored transposed
    const b = randT([K, N]);
    const fast = new Float32Array(M * N);
    const slow = new Float32Array(M * N);
    gemm(M, N, K, { data: at.data, off: 0, rs: 1, cs: M }, { data: b.data, off: 0, rs: N, cs: 1 }, fast, 0, N);
    setWasmGemm(false);
    try {
      gemm(M, N, K, { data: at.data, off: 0, rs: 1, cs: M }, { data: b.data, off: 0, rs: N, cs: 1 }, slow, 0, N);
    } finally {
      setWasmGemm(true);
    }
    const a = new Float64Array(M * K);
    for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) a[i * K + k] = at.data[k * M + i]!;
    const want = naive(a, b.data, M, K, N);
    expect(maxRelErr(fast, want)).toBeLessThan(1e-5);
    expect(maxRelErr(slow, want)).toBeLessThan(1e-6);
  });
});

describe('Gemm', () => {
  test('defaults: A·B + C with C broadcast as a row', () => {
    const y = run('Gemm', [A, B, f32([2], [1, -1])]);
    expect(y.shape).toEqual([2, 2]);
    close(y, [59, 63, 140, 153]);
  });
  test('transA, transB, alpha, beta and a scalar C', () => {
    const at = f32([3, 2], [1, 4, 2, 5, 3, 6]);
    const bt = f32([2, 3], [7, 9, 11, 8, 10, 12]);
    const y = run('Gemm', [at, bt, f32([], [10])], { transA: 1, transB: 1, alpha: { float: 0.5 }, beta: { float: 2 } });
    close(y, [49, 52, 89.5, 97]);
  });
  test('C as a column [M,1] and no C', () => {
    close(run('Gemm', [A, B, f32([2, 1], [1, 2])]), [59, 65, 141, 156]);
    close(run('Gemm', [A, B], { alpha: { float: 2 } }), [116, 128, 278, 308]);
  });
  test('bad shapes are UserErrors', () => {
    expect(() => run('Gemm', [A, A])).toThrow(UserError);
    expect(() => run('Gemm', [A, B, f32([3], [1, 2, 3])])).toThrow(UserError);
    expect(() => run('Gemm', [f32([3], [1, 2, 3]), B])).toThrow(UserError);
  });
});

describe('MatMulInteger', () => {
  test('zero points per tensor and per row/column', () => {
    const a = t('uint8', [2, 2], [3, 4, 5, 6]);
    const b = t('uint8', [2, 2], [1, 2, 3, 4]);
    // ·(B-[1,2]) = [[2,3],[4,5]]·[[0,0],[2,2]] = [[6,6],[10,10]]
    const y = run('MatMulInteger', [a, b, t('uint8', [], [1]), t('uint8', [2], [1, 2])]);
    expect(y.dtype).toBe('int32');
    expect(y.toArray()).toEqual([6, 6, 10, 10]);
    // per-row A zero point [3,5]: [[0,1],[0,1]]·B = [[3,4],[3,4]]
    expect(run('MatMulInteger', [a, b, t('uint8', [2], [3, 5])]).toArray()).toEqual([3, 4, 3, 4]);
  });
});

describe('QLinearMatMul', () => {
  test('integer product, scales, round half to even, saturation', () => {
    const a = t('uint8', [2, 2], [2, 3, 2, 5]);
    const b = t('uint8', [2, 1], [3, 3]);
    const q = (yzp: number) =>
      run('QLinearMatMul', [a, f32([], [0.25]), t('uint8', [], [0]), b, f32([], [1]), t('uint8', [], [1]), f32([], [1]), t('uint8', [], [yzp])]);
    // (A)·(B−1) = [[10],[14]]; ×0.25 = [[2.5],[3.5]] → rint [[2],[4]]
    expect(q(0).toArray()).toEqual([2, 4]);
    expect(q(252).toArray()).toEqual([254, 255]);
  });
});

describe('Einsum', () => {
  const ein = (eq: string, ...xs: Tensor[]) => run('Einsum', xs, { equation: eq });
  test('matmul, implicit output, transpose, sum, inner product', () => {
    close(ein('ij,jk->ik', A, B), [58, 64, 139, 154]);
    close(ein('ij,jk', A, B), [58, 64, 139, 154]);
    const tr = ein('ij->ji', A);
    expect(tr.shape).toEqual([3, 2]);
    close(tr, [1, 4, 2, 5, 3, 6]);
    close(ein('ba', A), [1, 4, 2, 5, 3, 6]); // implicit output sorts labels: 'ab'
    close(ein('ij->', A), [21]);
    close(ein('ij->j', A), [5, 7, 9]);
    close(ein('i,i', f32([3], [1, 2, 3]), f32([3], [4, 5, 6])), [32]);
    close(ein('i,j->ij', f32([2], [1, 2]), f32([2], [3, 4])), [3, 4, 6, 8]);
  });
  test('diagonal and trace (repeated labels)', () => {
    const m = f32([3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    close(ein('ii->i', m), [1, 5, 9]);
    close(ein('ii', m), [15]);
    const bd = ein('...ii->...i', f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]));
    expect(bd.shape).toEqual([2, 2]);
    close(bd, [1, 4, 5, 8]);
  });
  test('ellipsis with broadcasting, batch matmul, three operands', () => {
    const a = randT([2, 1, 3, 4]);
    const b = randT([5, 4, 2]);
    const y = ein('...ij,...jk->...ik', a, b);
    expect(y.shape).toEqual([2, 5, 3, 2]);
    const z = run('MatMul', [a, b]);
    expect(maxRelErr(y.data, z.data)).toBeLessThan(1e-5);
    const bm = ein('bij,bjk->bik', randT([3, 2, 4]), randT([3, 4, 5]));
    expect(bm.shape).toEqual([3, 2, 5]);
    const C = f32([2, 2], [1, 0, 0, 2]);
    // A·B·C = [[58,128],[139,308]]
    close(ein('ij,jk,kl->il', A, B, C), [58, 128, 139, 308]);
  });
  test('label-order outputs of the matmul path (bhqd,bhkd->bhqk as attention scores)', () => {
    const q = randT([2, 3, 4, 5]);
    const k = randT([2, 3, 6, 5]);
    const s = ein('bhqd,bhkd->bhqk', q, k);
    expect(s.shape).toEqual([2, 3, 4, 6]);
    for (let p = 0; p < 6; p++) {
      const kt = new Float64Array(30);
      for (let i = 0; i < 6; i++) for (let d = 0; d < 5; d++) kt[d * 6 + i] = k.data[p * 30 + i * 5 + d]!;
      expect(maxRelErr(s.data.subarray(p * 24, p * 24 + 24), naive(q.data.subarray(p * 20, p * 20 + 20), kt, 4, 5, 6))).toBeLessThan(1e-5);
    }
  });
  test('parse errors and size mismatches are UserErrors', () => {
    expect(() => ein('ij,jk->ik', A, A)).toThrow(UserError);
    expect(() => ein('ijk->i', A)).toThrow(UserError);
    expect(() => ein('ij->iz', A)).toThrow(/einsum_0/);
    expect(parseEinsum('...ij,jk', [3, 2], 'n').output.length).toBe(3);
  });
});

describe('inference and flops', () => {
  const sym: Dim[] = ['batch', 'seq', 768];
  test('MatMul keeps symbolic dims and broadcasts batch', () => {
    expect(infer('MatMul', [{ dtype: 'float32', shape: sym }, { dtype: 'float32', shape: [768, 3072] }])).toEqual([
      { dtype: 'float32', shape: ['batch', 'seq', 3072] },
    ]);
    expect(infer('MatMul', [{ dtype: 'float32', shape: ['h', 'q', 64] }, { dtype: 'float32', shape: [1, 64, 'k'] }])[0]!.shape).toEqual([
      'h', 'q', 'k',
    ]);
    expect(infer('MatMul', [{ dtype: 'float32', shape: [4] }, { dtype: 'float32', shape: ['b', 4, 2] }])[0]!.shape).toEqual(['b', 2]);
    expect(infer('MatMul', [{ dtype: 'float32' }, { dtype: 'float32', shape: [4, 2] }])[0]!.shape).toBeUndefined();
  });
  test('MatMul K mismatch and batch mismatch: UserError naming the node', () => {
    expect(() => infer('MatMul', [{ dtype: 'float32', shape: sym }, { dtype: 'float32', shape: [512, 10] }])).toThrow(/matmul_0/);
    expect(() => infer('MatMul', [{ dtype: 'float32', shape: [2, 3, 4] }, { dtype: 'float32', shape: [5, 4, 1] }])).toThrow(UserError);
  });
  test('Gemm and Einsum shapes', () => {
    expect(infer('Gemm', [{ dtype: 'float32', shape: [64, 'n'] }, { dtype: 'float32', shape: [10, 64] }], { transA: 1, transB: 1 })[0]!.shape).toEqual([
      'n', 10,
    ]);
    expect(() => infer('Gemm', [{ dtype: 'float32', shape: [2, 3] }, { dtype: 'float32', shape: [4, 5] }])).toThrow(/gemm_0/);
    expect(
      infer('Einsum', [{ dtype: 'float32', shape: ['b', 'q', 8] }, { dtype: 'float32', shape: ['b', 'k', 8] }], { equation: 'bqd,bkd->bqk' })[0]!.shape,
    ).toEqual(['b', 'q', 'k']);
  });
  test('flops', () => {
    const mm = ctxOf('MatMul', [{ dtype: 'float32', shape: [2, 128, 768] }, { dtype: 'float32', shape: [768, 3072] }]);
    expect(row('MatMul').flops!(mm)).toBe(2 * 2 * 128 * 768 * 3072);
    const g = ctxOf('Gemm', [{ dtype: 'float32', shape: [3, 4] }, { dtype: 'float32', shape: [5, 3] }], { transA: 1, transB: 1 });
    expect(row('Gemm').flops!(g)).toBe(2 * 4 * 5 * 3);
    const e = ctxOf('Einsum', [{ dtype: 'float32', shape: [2, 3] }, { dtype: 'float32', shape: [3, 4] }], { equation: 'ij,jk->ik' });
    expect(row('Einsum').flops!(e)).toBe(2 * 2 * 3 * 4);
  });
});
