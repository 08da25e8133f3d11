// DeepSeek's block-scaled fp8 weights, kept so on the GPU (the MoE's routed experts: R1's do not
// fit 8 GPUs in bf16). Value (r, c) of a [rows, cols] weight is its fp8 e4m3 code times
// scales[r / block_rows][c / block_cols]; scales is [ceil(rows / block_rows), ceil(cols /
// block_cols)], fp32 (the checkpoint's NAME_scale_inv). The decode GEMVs read them as they are
// (kernels/cuda/gemv.h, grouped_gemv_fp8); bigger steps dequantize an expert into a scratch
// buffer for cuBLASLt's GEMMs (dequantize_fp8_blocks).
#pragma once

#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/fp8.h"
#include "kernels/gpu_context.h"

namespace lockstep {
namespace cpu {

// out[r][c] = to_float(w[r][c]) * scales[r / block_rows][c / block_cols] (fp32).
void dequantize_fp8_blocks(const fp8_e4m3* w, const float* scales, std::int64_t rows, std::int64_t cols,
                           std::int64_t block_rows, std::int64_t block_cols, float* out);

}  // namespace cpu

namespace cuda {

// The same, rounded to W (the value the CPU computes, then rounded to nearest even). cols a
// multiple of 4, w 4-byte aligned (else a fatal error).
template <HalfFloat W>
void dequantize_fp8_blocks(GpuContext& ctx, const fp8_e4m3* w, const float* scales, std::int64_t rows,
                           std::int64_t cols, std::int64_t block_rows, std::int64_t block_cols, W* out);

}  // namespace cuda
}  // namespace lockstep
