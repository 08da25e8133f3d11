// The verification pattern: values stay in {-2,-1,1,2}; the CPU checker accepts exactly the
// right results and counts every wrong element; on a GPU host the CUDA kernels agree with
// the CPU reference on fresh inputs (skipped where no GPU is visible).
#include "kernels/pattern.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace lockstep {
namespace {

TEST(Pattern, ValuesAreSmallNonZeroAndVaried) {
  std::set<int> seen;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    const int v = pattern_value(7, i);
    EXPECT_TRUE(v == -2 || v == -1 || v == 1 || v == 2) << v;
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 4u);
  int same = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) same += pattern_value(7, i) == pattern_value(8, i);
  EXPECT_LT(same, 400);  // different seeds give different data (~1/4 coincide)
}

std::vector<unsigned char> reduced(const ExpectedPattern& e, std::size_t n, DType t) {
  std::vector<unsigned char> buf(n * dtype_size(t));
  for (std::size_t i = 0; i < n; ++i) store_from_float(buf.data(), i, t, static_cast<float>(expected_pattern_value(e, i, t)));
  return buf;
}

TEST(Pattern, CpuCheckerAcceptsRightAndCountsWrong) {
  for (DType t : kAllDTypes) {
    for (PatternReduce op : {PatternReduce::Sum, PatternReduce::Prod, PatternReduce::Max, PatternReduce::Min,
                             PatternReduce::Avg}) {
      const ExpectedPattern e{3, op, 40, 5};
      std::vector<unsigned char> buf = reduced(e, 257, t);
      EXPECT_EQ(cpu::count_mismatches(buf.data(), 257, t, e), 0u) << dtype_name(t);
      store_from_float(buf.data(), 3, t, 1000.0f);
      store_from_float(buf.data(), 200, t, 999.0f);
      EXPECT_EQ(cpu::count_mismatches(buf.data(), 257, t, e), 2u) << dtype_name(t);
    }
    // Moved data: a block from the wrong seed (rank) is caught.
    std::vector<unsigned char> buf(512 * dtype_size(t));
    cpu::fill_pattern(buf.data(), 512, t, 9, 0);
    EXPECT_EQ(cpu::count_mismatches(buf.data(), 512, t, {0, PatternReduce::Sum, 9, 0}), 0u);
    EXPECT_GT(cpu::count_mismatches(buf.data(), 512, t, {0, PatternReduce::Sum, 10, 0}), 256u);
    EXPECT_GT(cpu::count_mismatches(buf.data(), 512, t, {0, PatternReduce::Sum, 9, 1}), 256u);
  }
}

TEST(Pattern, IntegerAverageTruncatesLikeNccl) {
  const ExpectedPattern e{2, PatternReduce::Avg, 0, 0};
  for (std::uint64_t i = 0; i < 64; ++i) {
    const int sum = pattern_value(0, i) + pattern_value(1, i);
    EXPECT_EQ(expected_pattern_value(e, i, DType::I32), sum / 2);  // C division truncates
  }
}

TEST(Pattern, CudaKernelsMatchCpuReference) {
  if (visible_gpu_count() == 0) GTEST_SKIP() << "no GPU visible (runs on the GPU host)";
  select_gpu(0);
  constexpr std::size_t n = (1 << 20) + 3;
  for (DType t : kAllDTypes) {
    DeviceBuffer dev(DeviceKind::Cuda, n * dtype_size(t));
    dev.fill_bytes(0xff);
    fill_pattern(DeviceKind::Cuda, dev.data(), n, t, 1234, 77);
    std::vector<unsigned char> from_gpu(n * dtype_size(t)), ref(n * dtype_size(t));
    dev.copy_to_host(from_gpu.data(), from_gpu.size());
    cpu::fill_pattern(ref.data(), n, t, 1234, 77);
    EXPECT_EQ(from_gpu, ref) << dtype_name(t);
    for (PatternReduce op : {PatternReduce::Sum, PatternReduce::Prod, PatternReduce::Max, PatternReduce::Min,
                             PatternReduce::Avg}) {
      const ExpectedPattern e{4, op, 1234, 77};
      std::vector<unsigned char> want = reduced(e, n, t);
      store_from_float(want.data(), 5, t, 1000.0f);  // one wrong element at each end
      store_from_float(want.data(), n - 1, t, -1000.0f);
      dev.copy_from_host(want.data(), want.size());
      EXPECT_EQ(count_mismatches(DeviceKind::Cuda, dev.data(), n, t, e), 2u) << dtype_name(t);
      EXPECT_EQ(cpu::count_mismatches(want.data(), n, t, e), 2u) << dtype_name(t);
    }
  }
}

}  // namespace
}  // namespace lockstep
