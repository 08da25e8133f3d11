// cuda:: block-fp8 weights (see kernels/fp8_weights.h); cpu/fp8_weights.cc is the reference.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/fatal.h"
#include "kernels/fp8_weights.h"

namespace lockstep::cuda {
namespace {

// A thread per 4 values of a row (one 4-byte load; cols is a multiple of 4), each value times
// the scale of its own block, so blocks of any width work.
template <typename T>
__global__ void dequantize_fp8_blocks_kernel(const unsigned* w, const float* scales, std::int64_t rows,
                                             std::int64_t cols, std::int64_t block_rows, std::int64_t block_cols,
                                             T* out) {
  dependent_launch_enter();
  const std::int64_t quads = rows * cols / 4, scale_cols = (cols + block_cols - 1) / block_cols;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < quads;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    float f[4];
    unpack_fp8x4<__nv_fp8_e4m3>(w[i], f);
    const std::int64_t r = 4 * i / cols, c = 4 * i % cols;
    const float* s = scales + (r / block_rows) * scale_cols;
#pragma unroll
    for (int k = 0; k < 4; ++k) store(out + 4 * i + k, f[k] * s[(c + k) / block_cols]);
  }
}

}  // namespace

template <HalfFloat W>
void dequantize_fp8_blocks(GpuContext& ctx, const fp8_e4m3* w, const float* scales, std::int64_t rows,
                           std::int64_t cols, std::int64_t block_rows, std::int64_t block_cols, W* out) {
  if (rows == 0 || cols == 0) return;
  LS_CHECK(cols % 4 == 0 && reinterpret_cast<std::uintptr_t>(w) % 4 == 0 && block_rows > 0 && block_cols > 0,
           "dequantize_fp8_blocks: cols (" << cols << ") must be a multiple of 4 and w 4-byte aligned");
  constexpr int kThreads = 256;
  const unsigned blocks = static_cast<unsigned>(std::min<std::int64_t>((rows * cols / 4 + kThreads - 1) / kThreads,
                                                                       std::int64_t{ctx.sm_count()} * 16));
  launch(ctx, dequantize_fp8_blocks_kernel<device_t<W>>, blocks, kThreads, reinterpret_cast<const unsigned*>(w),
         scales, rows, cols, block_rows, block_cols, on_device(out));
}

template void dequantize_fp8_blocks<bf16>(GpuContext&, const fp8_e4m3*, const float*, std::int64_t, std::int64_t,
                                          std::int64_t, std::int64_t, bf16*);
template void dequantize_fp8_blocks<fp16>(GpuContext&, const fp8_e4m3*, const float*, std::int64_t, std::int64_t,
                                          std::int64_t, std::int64_t, fp16*);

}  // namespace lockstep::cuda
