// cpu:: block-fp8 weights (see kernels/fp8_weights.h): the reference of the CUDA kernels.
#include "kernels/fp8_weights.h"

namespace lockstep::cpu {

void dequantize_fp8_blocks(const fp8_e4m3* w, const float* scales, std::int64_t rows, std::int64_t cols,
                           std::int64_t block_rows, std::int64_t block_cols, float* out) {
  const std::int64_t scale_cols = (cols + block_cols - 1) / block_cols;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      out[r * cols + c] = to_float(w[r * cols + c]) * scales[(r / block_rows) * scale_cols + c / block_cols];
}

}  // namespace lockstep::cpu
