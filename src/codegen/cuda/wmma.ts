/**
 * Tensor-core matmul for half-precision storage: C[b, M, N] (f32) = A[b, M, K] × B[b, K, N], A and B
 * stored as `__half` or `__nv_bfloat16` (row-major), products and sums in f32. One warp computes a
 * 16×16 tile of C with nvcuda::wmma 16×16×16 fragments (f16 on sm_70+, bf16 on sm_80+); the grid
 * is (N/16, M/16, batch) blocks of 32 threads, so M, N, K must be multiples of 16 (`wmmaFits`).
 *
 * Where the architecture lacks the fragments (bf16 below sm_80) and on the host (the test shim
 * compiles this file with g++, where __CUDA_ARCH__ is undefined) the same kernel runs a scalar
 * path: each of the warp's 32 threads computes 8 outputs of the tile from the same loads (half →
 * float) in the same k order per 16-wide chunk. The shim checks that path's indexing against the
 * definition; the WMMA path is compile-checked by nvcc in CI and compared with the f32 kernel on
 * a GPU by `shardc_run --selfcheck` (wmmaSelfcheckSource).
 *
 * Bundles use the kernel-IR form below (`wmmaPlan`, `renderWmmaBody`): a matmul kernel whose A
 * and B are plain loads of 2-byte buffers gets a WMMA launch variant when this launch's shapes and
 * strides allow it; its epilogue (the body's `out` store, fused bias/activation included) runs
 * per element from a 16×16 f32 tile in shared memory, so what is stored is the same as with the
 * shared-memory-tile kernel up to summation order.
 */
import type { Expr } from '../expr.js';
import type { MatmulBody } from '../kernel.js';
import { evalHostInt } from '../kernel.js';
import { type CudaNames, type HalfStorage, HALF_TYPE, renderExpr, storeStatement, storeValue } from './expr.js';

export type HalfType = HalfStorage;

const ELEM: Record<HalfType, { type: string; toFloat: string; arch: number }> = {
  f16: { type: '__half', toFloat: '__half2float', arch: 700 },
  bf16: { type: '__nv_bfloat16', toFloat: '__bfloat162float', arch: 800 },
};

/** True when an M×N×K matmul fits the 16×16×16 fragment tiling. */
export function wmmaFits(m: number, n: number, k: number): boolean {
  return m > 0 && n > 0 && k > 0 && m % 16 === 0 && n % 16 === 0 && k % 16 === 0;
}

/** Launch geometry of `renderWmmaMatmul` kernels: grid [N/16, M/16, batch], block [32, 1, 1]. */
export function wmmaLaunch(m: number, n: number, batch = 1): { grid: [number, number, number]; block: [number, number, number] } {
  if (!wmmaFits(m, n, 16)) throw new Error(`WMMA matmul needs M and N multiples of 16, got ${m}×${n}`);
  return { grid: [n / 16, m / 16, batch], block: [32, 1, 1] };
}

/** Includes a translation unit with WMMA kernels needs (once, before the kernels). */
export const WMMA_INCLUDES = ['#include <cuda_fp16.h>', '#include <cuda_bf16.h>', '#if defined(__CUDA_ARCH__)', '#include <mma.h>', '#endif'].join('\n');

/**
 * `extern "C" __global__ void <fn>(const T* a, const T* b, float* c, int M, int N, int K)`:
 * batch stride M*K, K*N and M*N along blockIdx.z.
 */
export function renderWmmaMatmul(fn: string, t: HalfType): string {
  const e = ELEM[t];
  return `// WMMA matmul, ${t} storage, f32 accumulation: one warp per 16x16 tile of C.
extern "C" __global__ void __launch_bounds__(32) ${fn}(const ${e.type}* __restrict__ a, const ${e.type}* __restrict__ b, float* __restrict__ c, int M, int N, int K) {
  const int tm = (int)blockIdx.y * 16, tn = (int)blockIdx.x * 16;
  const long long bz = (long long)blockIdx.z;
  const ${e.type}* A = a + bz * M * K;
  const ${e.type}* B = b + bz * K * N;
  float* C = c + bz * M * N;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= ${e.arch}
  using namespace nvcuda;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, ${e.type}, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, ${e.type}, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  for (int k0 = 0; k0 < K; k0 += 16) {
    wmma::load_matrix_sync(fa, A + (long long)tm * K + k0, K);
    wmma::load_matrix_sync(fb, B + (long long)k0 * N + tn, N);
    wmma::mma_sync(acc, fa, fb, acc);
  }
  wmma::store_matrix_sync(C + (long long)tm * N + tn, acc, N, wmma::mem_row_major);
#else
  // Scalar path (no fragments on this architecture, or the host shim): thread t computes rows
  // t/2 and columns (t%2)*8 .. +8 of the tile.
  const int r = tm + (int)threadIdx.x / 2, c0 = tn + ((int)threadIdx.x % 2) * 8;
  for (int j = 0; j < 8; j++) {
    float acc = 0.0f;
    for (int k = 0; k < K; k++) acc += ${e.toFloat}(A[(long long)r * K + k]) * ${e.toFloat}(B[(long long)k * N + c0 + j]);
    C[(long long)r * N + c0 + j] = acc;
  }
#endif
}
`;
}

/**
 * runtime source of `shardc_run --selfcheck` (bundle file wmma_selfcheck.cu): for f16 and bf16,
 * a 64×48×32 matmul of deterministic values on the GPU through the WMMA kernel and through a
 * plain f32 kernel over the same rounded inputs; the largest difference must stay below 1e-3 of
 * the largest |C| (both sum in f32; only the order differs). Returns 0 when both pass.
 */
export function wmmaSelfcheckSource(): string {
  return `// Generated by shardc: the device self-check of the WMMA (tensor-core) matmul path.
#include <cuda_runtime.h>
${WMMA_INCLUDES}
#include <cmath>
#include <cstdio>
#include <vector>

${renderWmmaMatmul('shardc_wmma_f16', 'f16')}
${renderWmmaMatmul('shardc_wmma_bf16', 'bf16')}
template <typename T, typename F>
__global__ void shardc_ref_matmul(const T* a, const T* b, float* c, int M, int N, int K, F conv) {
  const int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= M * N) return;
  const int m = i / N, n = i % N;
  float acc = 0.0f;
  for (int k = 0; k < K; k++) acc += conv(a[m * K + k]) * conv(b[k * N + n]);
  c[i] = acc;
}
struct ToF16 { __device__ float operator()(__half x) const { return __half2float(x); } };
struct ToBF16 { __device__ float operator()(__nv_bfloat16 x) const { return __bfloat162float(x); } };

template <typename T, typename Conv, typename Make>
static bool check_one(const char* name, void (*wmma)(const T*, const T*, float*, int, int, int), Conv conv, Make make) {
  const int M = 64, N = 48, K = 32;
  std::vector<T> ha(M * K), hb(K * N);
  for (int i = 0; i < M * K; i++) ha[i] = make(((i * 37) % 17 - 8) / 8.0f);
  for (int i = 0; i < K * N; i++) hb[i] = make(((i * 11) % 13 - 6) / 6.0f);
  T *da, *db; float *dc, *dr;
  cudaMalloc(&da, ha.size() * sizeof(T)); cudaMalloc(&db, hb.size() * sizeof(T));
  cudaMalloc(&dc, M * N * 4); cudaMalloc(&dr, M * N * 4);
  cudaMemcpy(da, ha.data(), ha.size() * sizeof(T), cudaMemcpyHostToDevice);
  cudaMemcpy(db, hb.data(), hb.size() * sizeof(T), cudaMemcpyHostToDevice);
  wmma<<<dim3(N / 16, M / 16, 1), 32>>>(da, db, dc, M, N, K);
  shardc_ref_matmul<<<(M * N + 127) / 128, 128>>>(da, db, dr, M, N, K, conv);
  cudaError_t e = cudaDeviceSynchronize();
  std::vector<float> c(M * N), r(M * N);
  cudaMemcpy(c.data(), dc, M * N * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(r.data(), dr, M * N * 4, cudaMemcpyDeviceToHost);
  cudaFree(da); cudaFree(db); cudaFree(dc); cudaFree(dr);
  if (e != cudaSuccess) { std::printf("selfcheck %s: %s\\n", name, cudaGetErrorString(e)); return false; }
  double diff = 0, scale = 0;
  for (int i = 0; i < M * N; i++) { diff = std::fmax(diff, std::fabs(c[i] - r[i])); scale = std::fmax(scale, std::fabs(r[i])); }
  const bool ok = diff <= 1e-3 * std::fmax(scale, 1.0);
  std::printf("selfcheck %s: WMMA vs f32 kernel on %dx%dx%d: max |diff| %.3g (max |C| %.3g) %s\\n", name, M, N, K, diff, scale, ok ? "ok" : "FAILED");
  return ok;
}

// Both precisions; 0 when both agree.
int shardc_wmma_selfcheck() {
  bool ok = check_one<__half>("f16", shardc_wmma_f16, ToF16{}, [](float x) { return __float2half(x); });
  ok = check_one<__nv_bfloat16>("bf16", shardc_wmma_bf16, ToBF16{}, [](float x) { return __float2bfloat16(x); }) && ok;
  return ok ? 0 : 1;
}
`;
}

// ---- the kernel-IR WMMA variant (used by src/bundle/cuda.ts) -------------------------------------

/** Storage and fragment layouts of a WMMA launch variant of a matmul kernel. */
export interface WmmaLayout {
  type: HalfStorage;
  a: 'row' | 'col';
  b: 'row' | 'col';
}

/** idx = c + x·X + y·Y over two free variables (the others fixed). */
interface Affine { c: number; x: number; y: number }

const I32 = (v: number): number | undefined => (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31 ? v : undefined);

/**
 * `e` as an affine function of vars `free` (others from `env`, params from `params`), exactly:
 * `/` and `%` only between terms without free variables, `*` only by such a term. undefined when
 * the expression is not of that form.
 */
function affine(e: Expr, free: readonly [string, string], env: Record<string, number>, params: Record<string, number>): Affine | undefined {
  const konst = (v: number | undefined): Affine | undefined => (v === undefined ? undefined : { c: v, x: 0, y: 0 });
  const isConst = (a: Affine): boolean => a.x === 0 && a.y === 0;
  switch (e.k) {
    case 'const': return e.t === 'i32' || e.t === 'u32' ? konst(I32(e.v)) : undefined;
    case 'param': return konst(params[e.name] === undefined ? undefined : I32(params[e.name]!));
    case 'var':
      if (e.name === free[0]) return { c: 0, x: 1, y: 0 };
      if (e.name === free[1]) return { c: 0, x: 0, y: 1 };
      return konst(env[e.name]);
    case 'cast': return (e.t === 'i32' || e.t === 'u32') && (e.a.t === 'i32' || e.a.t === 'u32') ? affine(e.a, free, env, params) : undefined;
    case 'bin': {
      const a = affine(e.a, free, env, params);
      const b = affine(e.b, free, env, params);
      if (!a || !b) return undefined;
      const ok = (r: Affine): Affine | undefined => (I32(r.c) === undefined || I32(r.x) === undefined || I32(r.y) === undefined ? undefined : r);
      switch (e.op) {
        case '+': return ok({ c: a.c + b.c, x: a.x + b.x, y: a.y + b.y });
        case '-': return ok({ c: a.c - b.c, x: a.x - b.x, y: a.y - b.y });
        case '*':
          if (isConst(b)) return ok({ c: a.c * b.c, x: a.x * b.c, y: a.y * b.c });
          if (isConst(a)) return ok({ c: a.c * b.c, x: b.x * a.c, y: b.y * a.c });
          return undefined;
        case '/': return isConst(a) && isConst(b) && b.c !== 0 ? konst(Math.trunc(a.c / b.c)) : undefined;
        case '%': return isConst(a) && isConst(b) && b.c !== 0 ? konst(a.c % b.c) : undefined;
        default: return undefined;
      }
    }
    default: return undefined;
  }
}

/** The most batch entries the host checks one by one (larger batches keep the tiled kernel). */
const MAX_WMMA_BATCH = 4096;

/**
 * The WMMA variant for one launch of a matmul kernel, or undefined: A and B must be plain loads
 * of buffers with the same 2-byte storage, M, N, K multiples of 16, and each operand's index
 * exactly affine in its two matrix coordinates for every batch entry, with unit stride along one
 * of them (row- or column-major), the other stride (ldm) a multiple of 8 and every 16×16 tile
 * start 32-byte aligned (what wmma::load_matrix_sync requires). Checked with this launch's
 * params; the kernel recomputes the same offsets from its index expressions at run time.
 */
export function wmmaPlan(body: MatmulBody, params: Record<string, number>, storage: (buf: string) => HalfStorage | undefined): WmmaLayout | undefined {
  const v = (e: Expr): number => evalHostInt(e, params);
  const [batch, M, N, K] = [v(body.batch), v(body.m), v(body.n), v(body.k)];
  if (!wmmaFits(M, N, K) || batch < 1 || batch > MAX_WMMA_BATCH) return undefined;
  if (body.a.k !== 'load' || body.b.k !== 'load') return undefined;
  const type = storage(body.a.buf);
  if (!type || storage(body.b.buf) !== type) return undefined;
  // Per operand: affine over (row, col) of its matrix: A (m, k), B (k, n).
  const layoutOf = (idx: Expr, free: [string, string]): 'row' | 'col' | undefined => {
    let layout: 'row' | 'col' | undefined;
    for (let bz = 0; bz < batch; bz++) {
      const f = affine(idx, free, { b: bz }, params);
      if (!f || f.c < 0 || f.c % 16 !== 0) return undefined;
      const l = f.y === 1 && f.x > 0 && f.x % 8 === 0 ? 'row' : f.x === 1 && f.y > 0 && f.y % 8 === 0 ? 'col' : undefined;
      if (!l || (layout && l !== layout)) return undefined;
      layout = l;
    }
    return layout;
  };
  const a = layoutOf(body.a.index, ['m', 'k']);
  const b = a && layoutOf(body.b.index, ['k', 'n']);
  return a && b ? { type, a, b } : undefined;
}

/** Grid and block of a WMMA variant launch: one warp per 16×16 output tile. */
export function wmmaVariantGeometry(body: MatmulBody, params: Record<string, number>): { grid: [number, number, number]; block: [number, number, number] } {
  const v = (e: Expr): number => evalHostInt(e, params);
  return wmmaLaunch(v(body.m), v(body.n), v(body.batch));
}

/**
 * The body of a matmul kernel's WMMA variant (grid [N/16, M/16, batch], block [32]): the operands'
 * index expressions become `wm_a_at(b, m, k)` / `wm_b_at(b, k, n)`; ldm is the difference of two
 * neighbouring offsets. The fragment path (sm_70+ for f16, sm_80+ for bf16) and the scalar path
 * (older architectures, and the host shim of the tests) both leave the f32 tile in `wm_c`; the
 * epilogue then stores each element through the body's `out` store with b, m, n and acc set.
 */
export function renderWmmaBody(body: MatmulBody, n: CudaNames, layout: WmmaLayout): string[] {
  if (body.a.k !== 'load' || body.b.k !== 'load') throw new Error('WMMA variant of a matmul whose operands are not plain loads');
  const e = ELEM[layout.type];
  const h = HALF_TYPE[layout.type];
  const A = n.buf(body.a.buf);
  const B = n.buf(body.b.buf);
  const lda = layout.a === 'row' ? 'wm_a_at(wm_bz, wm_tm + 1, 0) - wm_a_at(wm_bz, wm_tm, 0)' : 'wm_a_at(wm_bz, wm_tm, 1) - wm_a_at(wm_bz, wm_tm, 0)';
  const ldb = layout.b === 'row' ? 'wm_b_at(wm_bz, 1, wm_tn) - wm_b_at(wm_bz, 0, wm_tn)' : 'wm_b_at(wm_bz, 0, wm_tn + 1) - wm_b_at(wm_bz, 0, wm_tn)';
  const major = (l: 'row' | 'col'): string => `wmma::${l}_major`;
  return [
    `  // WMMA variant (${layout.type} storage, A ${layout.a}-major, B ${layout.b}-major, f32 accumulation): one warp per 16x16 tile.`,
    '  const int wm_tm = (int)blockIdx.y * 16, wm_tn = (int)blockIdx.x * 16, wm_bz = (int)blockIdx.z;',
    `  auto wm_a_at = [&](int b, int m, int k) -> int { return ${renderExpr(body.a.index, n)}; };`,
    `  auto wm_b_at = [&](int b, int k, int n) -> int { return ${renderExpr(body.b.index, n)}; };`,
    `  const int wm_K = ${renderExpr(body.k, n)};`,
    '  __shared__ float wm_c[256];',
    `#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= ${e.arch}`,
    '  using namespace nvcuda;',
    `  const int wm_lda = ${lda}, wm_ldb = ${ldb};`,
    `  wmma::fragment<wmma::matrix_a, 16, 16, 16, ${h.type}, ${major(layout.a)}> wm_fa;`,
    `  wmma::fragment<wmma::matrix_b, 16, 16, 16, ${h.type}, ${major(layout.b)}> wm_fb;`,
    '  wmma::fragment<wmma::accumulator, 16, 16, 16, float> wm_acc;',
    '  wmma::fill_fragment(wm_acc, 0.0f);',
    '  for (int wm_k0 = 0; wm_k0 < wm_K; wm_k0 += 16) {',
    `    wmma::load_matrix_sync(wm_fa, ${A} + wm_a_at(wm_bz, wm_tm, wm_k0), wm_lda);`,
    `    wmma::load_matrix_sync(wm_fb, ${B} + wm_b_at(wm_bz, wm_k0, wm_tn), wm_ldb);`,
    '    wmma::mma_sync(wm_acc, wm_fa, wm_fb, wm_acc);',
    '  }',
    '  wmma::store_matrix_sync(wm_c, wm_acc, 16, wmma::mem_row_major);',
    '#else',
    '  for (int wm_e = (int)threadIdx.x; wm_e < 256; wm_e += 32) {',
    '    float wm_s = 0.0f;',
    `    for (int k = 0; k < wm_K; k++) wm_s += ${h.toFloat}(${A}[wm_a_at(wm_bz, wm_tm + wm_e / 16, k)]) * ${h.toFloat}(${B}[wm_b_at(wm_bz, k, wm_tn + wm_e % 16)]);`,
    '    wm_c[wm_e] = wm_s;',
    '  }',
    '#endif',
    '  __syncthreads();',
    '  for (int wm_e = (int)threadIdx.x; wm_e < 256; wm_e += 32) {',
    '    const int b = wm_bz, m = wm_tm + wm_e / 16, n = wm_tn + wm_e % 16;',
    '    const float acc = wm_c[wm_e];',
    `    ${storeStatement(body.out.buf, renderExpr(body.out.index, n), storeValue(body.out.value, n), n)}`,
    '  }',
  ];
}
