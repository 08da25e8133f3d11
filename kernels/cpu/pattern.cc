// CPU reference of the verification pattern (see kernels/pattern.h), and the dispatch by
// buffer location.
#include "kernels/pattern.h"

#include <algorithm>
#include <cmath>

#include "kernels/fatal.h"

namespace lockstep {

double expected_pattern_value(const ExpectedPattern& e, std::uint64_t i, DType type) {
  const std::uint64_t idx = e.index_offset + i;
  if (e.ranks == 0) return pattern_value(e.seed, idx);
  double acc = pattern_value(e.seed, idx);
  for (int q = 1; q < e.ranks; ++q) {
    const double x = pattern_value(e.seed + q, idx);
    switch (e.op) {
      case PatternReduce::Sum:
      case PatternReduce::Avg: acc += x; break;
      case PatternReduce::Prod: acc *= x; break;
      case PatternReduce::Max: acc = std::max(acc, x); break;
      case PatternReduce::Min: acc = std::min(acc, x); break;
    }
  }
  if (e.op == PatternReduce::Avg) acc = type == DType::I32 ? std::trunc(acc / e.ranks) : acc / e.ranks;
  return acc;
}

namespace cpu {

void fill_pattern(void* data, std::size_t count, DType type, std::uint32_t seed, std::uint64_t index_offset) {
  for (std::size_t i = 0; i < count; ++i)
    store_from_float(data, i, type, static_cast<float>(pattern_value(seed, index_offset + i)));
}

std::uint64_t count_mismatches(const void* data, std::size_t count, DType type, const ExpectedPattern& e) {
  // Avg of floats: NCCL pre-scales each input by 1/n in the element type before summing.
  const double rel = e.op == PatternReduce::Avg && e.ranks > 0
                         ? (type == DType::BF16 ? 1.0 / 64 : type == DType::F16 ? 1.0 / 512 : 1e-6)
                         : 0.0;
  std::uint64_t wrong = 0;
  alignas(4) unsigned char rounded[4];
  for (std::size_t i = 0; i < count; ++i) {
    store_from_float(rounded, 0, type, static_cast<float>(expected_pattern_value(e, i, type)));
    const double want = load_as_float(rounded, 0, type);
    const double got = load_as_float(data, i, type);
    if (rel == 0.0 ? got != want : !(std::fabs(got - want) <= rel * std::max(1.0, std::fabs(want)))) ++wrong;
  }
  return wrong;
}

}  // namespace cpu

void fill_pattern(DeviceKind where, void* data, std::size_t count, DType type, std::uint32_t seed,
                  std::uint64_t index_offset, cudaStream_t stream) {
  if (where == DeviceKind::Cpu) return cpu::fill_pattern(data, count, type, seed, index_offset);
#if LOCKSTEP_WITH_CUDA
  cuda::fill_pattern(data, count, type, seed, index_offset, stream);
#else
  LS_FATAL("fill_pattern on a GPU buffer in a build without CUDA");
#endif
}

std::uint64_t count_mismatches(DeviceKind where, const void* data, std::size_t count, DType type,
                               const ExpectedPattern& e, cudaStream_t stream) {
  if (where == DeviceKind::Cpu) return cpu::count_mismatches(data, count, type, e);
#if LOCKSTEP_WITH_CUDA
  return cuda::count_mismatches(data, count, type, e, stream);
#else
  LS_FATAL("count_mismatches on a GPU buffer in a build without CUDA");
#endif
}

}  // namespace lockstep
