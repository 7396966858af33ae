#ifndef SHARDC_CUDA_PRELUDE
#define SHARDC_CUDA_PRELUDE
#define SC_DEV __device__ __forceinline__
// Integer division and remainder: x / 0 = x, x % 0 = 0, INT_MIN / -1 wraps (WGSL semantics).
SC_DEV int sc_div_i32(int a, int b) { return b == 0 ? a : b == -1 ? (int)(0u - (unsigned int)a) : a / b; }
SC_DEV int sc_rem_i32(int a, int b) { return (b == 0 || b == -1) ? 0 : a % b; }
SC_DEV unsigned int sc_div_u32(unsigned int a, unsigned int b) { return b == 0u ? a : a / b; }
SC_DEV unsigned int sc_rem_u32(unsigned int a, unsigned int b) { return b == 0u ? 0u : a % b; }
SC_DEV int sc_neg_i32(int a) { return (int)(0u - (unsigned int)a); }
SC_DEV int sc_abs_i32(int a) { return a < 0 ? (int)(0u - (unsigned int)a) : a; }
SC_DEV int sc_shl_i32(int a, int b) { return (int)((unsigned int)a << (b & 31)); }
SC_DEV int sc_shr_i32(int a, int b) { return a >> (b & 31); }
// Saturating f32 -> integer conversions (NaN -> 0), as the CPU executor and PTX cvt.rzi.sat.
SC_DEV int sc_f2i(float x) { return x != x ? 0 : x >= 2147483648.0f ? 2147483647 : x <= -2147483648.0f ? (-2147483647 - 1) : (int)x; }
SC_DEV unsigned int sc_f2u(float x) { return x != x ? 0u : x >= 4294967296.0f ? 4294967295u : x <= 0.0f ? 0u : (unsigned int)x; }
// sign keeps NaN and -0 (Math.sign).
SC_DEV float sc_sign_f32(float x) { return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x; }
// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26): the polynomial the WGSL and CPU targets use.
SC_DEV float sc_erf(float x) {
  float t = 1.0f / (1.0f + 0.3275911f * fabsf(x));
  float y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t) + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t * expf(-x * x);
  return x >= 0.0f ? y : -y;
}
#endif

// kernel "LayerNormalization"
struct layernormalization_0_params {
  int len;
  int rows;
};
extern "C" __global__ void __launch_bounds__(64) layernormalization_0(const float* __restrict__ x0, const float* __restrict__ x1, const float* __restrict__ x2, float* __restrict__ y0, const layernormalization_0_params p) {
  __shared__ float part[64];
  const int row = (int)(blockIdx.x + blockIdx.y * gridDim.x);
  if (row >= p.rows) return;
  const int tid = (int)threadIdx.x;
  float row_sum_acc = 0.0f;
  for (int r = tid; r < p.len; r += 64) row_sum_acc = row_sum_acc + x0[(r + (row * p.len))];
  part[tid] = row_sum_acc;
  __syncthreads();
  for (int s = 32; s > 0; s = s / 2) {
    if (tid < s) part[tid] = part[tid] + part[tid + s];
    __syncthreads();
  }
  const float row_sum = part[0];
  __syncthreads();
  const float mean = row_sum / (float)(p.len);
  float row_sq_acc = 0.0f;
  for (int r = tid; r < p.len; r += 64) row_sq_acc = row_sq_acc + (x0[(r + (row * p.len))] - mean) * (x0[(r + (row * p.len))] - mean);
  part[tid] = row_sq_acc;
  __syncthreads();
  for (int s = 32; s > 0; s = s / 2) {
    if (tid < s) part[tid] = part[tid] + part[tid + s];
    __syncthreads();
  }
  const float row_sq = part[0];
  __syncthreads();
  const float inv_std = rsqrtf(row_sq / (float)(p.len) + 0.000009999999747378752f);
  for (int r = tid; r < p.len; r += 64) {
    const float xhat = (x0[(r + (row * p.len))] - mean) * inv_std;
    y0[(r + (row * p.len))] = ((xhat * x1[r]) + x2[r]);
  }
}
