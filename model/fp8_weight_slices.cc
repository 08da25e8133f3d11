// fp8_stacked_blocks, read_fp8_stacked_scales (see fp8_weight_slices.h).
#include "model/fp8_weight_slices.h"

#include "model/safetensors_reader.h"

namespace lockstep {

Fp8Blocks fp8_stacked_blocks(const WeightSource& w, const StackedSlices& slices) {
  if (slices.empty()) return {};
  const Fp8Blocks blocks = w.fp8_blocks(slices.front().name);
  if (!blocks.stored()) return {};
  for (const WeightSlice& s : slices) {
    const Fp8Blocks b = w.fp8_blocks(s.name);
    if (b.rows != blocks.rows || b.cols != blocks.cols || s.shape.size() != 2) return {};
    const std::int64_t rows = s.shape[0], cols = s.shape[1];
    if (s.r0 % b.rows != 0 || s.rows() % b.rows != 0 || s.rows() <= 0 || s.r1 > rows) return {};
    if (s.c0 % b.cols != 0 || (s.c1 % b.cols != 0 && s.c1 != cols) || s.cols() != slices.front().cols()) return {};
  }
  return blocks;
}

std::vector<float> read_fp8_stacked_scales(const WeightSource& w, const StackedSlices& slices, Fp8Blocks b) {
  std::vector<float> scales;
  for (const WeightSlice& s : slices) {
    const std::vector<std::int64_t> shape = fp8_scale_shape(s.shape[0], s.shape[1], b.rows, b.cols);
    const std::vector<float> window =
        w.read<float>(fp8_scale_name(s.name), shape, s.r0 / b.rows, s.r1 / b.rows, s.c0 / b.cols,
                      (s.c1 + b.cols - 1) / b.cols);
    scales.insert(scales.end(), window.begin(), window.end());
  }
  return scales;
}

}  // namespace lockstep
