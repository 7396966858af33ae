// Host shim for running emitted CUDA kernels as plain C++ (no GPU): the semantics tests compile
// the generated .cu text with g++ -x c++ -include cuda-shim.h and run the grid on the CPU.
//
// Method: one OS thread per CUDA thread of a block, blocks run one after another. Every thread
// walks the whole grid (blockIdx is a thread_local set before each block) and the threads meet at
// a barrier after each block, so `__shared__` can be a function-local static (one block is live
// at a time) and `__syncthreads()` is that same barrier. Kernels return early only uniformly per
// block (`row >= rows` in row templates; map kernels have no barrier), so every thread passes the
// same number of barriers per block.
#pragma once
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __launch_bounds__(n)
#define __shared__ static

using std::isinf;
using std::isnan;
using std::max;
using std::min;
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __uint_as_float(unsigned int u) { float f; std::memcpy(&f, &u, 4); return f; }

struct ShimBarrier {
  std::mutex mu;
  std::condition_variable cv;
  unsigned count = 0, total = 0, generation = 0;
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    unsigned gen = generation;
    if (++count == total) {
      count = 0;
      generation++;
      cv.notify_all();
    } else {
      cv.wait(lock, [&] { return gen != generation; });
    }
  }
};
inline ShimBarrier shim_barrier;
inline void __syncthreads() { shim_barrier.wait(); }

// Runs `kernel` (a call of the __global__ function) over grid × block.
inline void shim_launch(dim3 grid, dim3 block, const std::function<void()>& kernel) {
  gridDim = grid;
  blockDim = block;
  unsigned n = block.x * block.y * block.z;
  shim_barrier.total = n;
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < n; t++)
    threads.emplace_back([&, t] {
      threadIdx.x = t % block.x;
      threadIdx.y = (t / block.x) % block.y;
      threadIdx.z = t / (block.x * block.y);
      for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
          for (unsigned x = 0; x < grid.x; x++) {
            blockIdx.x = x;
            blockIdx.y = y;
            blockIdx.z = z;
            kernel();
            shim_barrier.wait();
          }
    });
  for (auto& th : threads) th.join();
}

// 2-byte floats as the host sees them (no cuda_fp16.h here): bit patterns with the conversions
// kernels use, round-to-nearest-even like src/ir/dtype.ts (f32ToF16Bits, f32ToBf16Bits).
struct __half { uint16_t x; };
struct __nv_bfloat16 { uint16_t x; };
inline uint32_t shim_f2u(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float shim_u2f(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline float __bfloat162float(__nv_bfloat16 h) { return shim_u2f((uint32_t)h.x << 16); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u = shim_f2u(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {(uint16_t)((u >> 16) | 0x40u)};  // NaN stays NaN
  return {(uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}
inline float __half2float(__half h) {
  uint32_t s = (uint32_t)(h.x & 0x8000u) << 16, e = (h.x >> 10) & 0x1fu, m = h.x & 0x3ffu;
  if (e == 0x1fu) return shim_u2f(s | 0x7f800000u | (m << 13));
  if (e == 0) return (s ? -1.0f : 1.0f) * std::ldexp((float)m, -24);  // zero and subnormals
  return shim_u2f(s | ((e + 112u) << 23) | (m << 13));
}
inline __half __float2half_rn(float f) {
  uint32_t u = shim_f2u(f), s = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return {(uint16_t)(s | 0x7e00u)};
  if (a >= 0x477ff000u) return {(uint16_t)(s | 0x7c00u)};  // rounds to >= 65520: inf
  if (a < 0x38800000u) {  // below the smallest normal 2^-14: subnormal steps of 2^-24
    float q = std::nearbyint(shim_u2f(a) * 16777216.0f);  // default rounding mode: to nearest even
    return {(uint16_t)(s | (uint32_t)q)};
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
  return {(uint16_t)(s | ((r - 0x38000000u) >> 13))};
}
