// Deterministic verification data for collectives (commbench's -c check, the GPU tests):
// pattern_value(seed, i) is a hash-chosen value in {-2, -1, 1, 2}, so sums, products,
// extrema and averages over a rank's group stay exact (or bounded) in every dtype, and a
// misplaced element differs from its expectation with probability 3/4.
// fill_pattern / count_mismatches run where the buffer lives: CPU reference in cpu/pattern.cc,
// CUDA kernels in cuda/pattern.cu (enqueued on `stream`; count_mismatches synchronizes it).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/device_buffer.h"
#include "kernels/dtype.h"

typedef struct CUstream_st* cudaStream_t;

namespace lockstep {

enum class PatternReduce : std::uint8_t { Sum, Prod, Max, Min, Avg };

// What element i of a checked block must hold.
struct ExpectedPattern {
  // ranks == 0: pattern_value(seed, index_offset + i) — data moved unchanged.
  // ranks > 0:  op over q in [0, ranks) of pattern_value(seed + q, index_offset + i).
  int ranks = 0;
  PatternReduce op = PatternReduce::Sum;
  std::uint32_t seed = 0;
  std::uint64_t index_offset = 0;
};

constexpr int pattern_value(std::uint32_t seed, std::uint64_t index) {
  std::uint64_t h = index * 0x9E3779B97F4A7C15ull ^ (static_cast<std::uint64_t>(seed) + 1) * 0xC2B2AE3D27D4EB4Full;
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 29;
  const int v = static_cast<int>(h & 3u);  // 0..3 -> -2, -1, 1, 2
  return v < 2 ? v - 2 : v - 1;
}

// The exact expected value before rounding to the dtype (int32 averages truncate, as NCCL's).
double expected_pattern_value(const ExpectedPattern& e, std::uint64_t i, DType type);

// Writes pattern_value(seed, index_offset + i) into elements [0, count).
void fill_pattern(DeviceKind where, void* data, std::size_t count, DType type, std::uint32_t seed,
                  std::uint64_t index_offset, cudaStream_t stream = nullptr);

// Elements of [0, count) that differ from the expectation rounded to `type`. Exact for every
// op but Avg of floating types, which allows the rounding of a pre-scaled sum.
std::uint64_t count_mismatches(DeviceKind where, const void* data, std::size_t count, DType type,
                               const ExpectedPattern& expected, cudaStream_t stream = nullptr);

namespace cpu {
void fill_pattern(void* data, std::size_t count, DType type, std::uint32_t seed, std::uint64_t index_offset);
std::uint64_t count_mismatches(const void* data, std::size_t count, DType type, const ExpectedPattern& e);
}  // namespace cpu

namespace cuda {
void fill_pattern(void* data, std::size_t count, DType type, std::uint32_t seed, std::uint64_t index_offset,
                  cudaStream_t stream);
std::uint64_t count_mismatches(const void* data, std::size_t count, DType type, const ExpectedPattern& e,
                               cudaStream_t stream);
}  // namespace cuda

}  // namespace lockstep
