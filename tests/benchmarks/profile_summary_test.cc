// libkernel_profile.so's table without a GPU: busy time as a union of intervals, kernel names
// as listed, and the report's rows, order and warm-up cut.
#include "benchmarks/kernel_profile/profile_summary.h"

#include <gtest/gtest.h>

#include <sstream>

namespace lockstep {
namespace {

constexpr const char* kGemv = "_ZN8lockstep4cuda12_GLOBAL__N_111gemv_kernelI13__nv_bfloat16Li4EEEvPKT_PS4_i";
constexpr const char* kNorm = "_ZN8lockstep4cuda15rms_norm_kernelEPKfPfPFiiE";

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(CoveredNs, OverlapsCountOnce) {
  EXPECT_EQ(covered_ns({}), 0u);
  EXPECT_EQ(covered_ns({{10, 20}}), 10u);
  EXPECT_EQ(covered_ns({{30, 40}, {10, 20}}), 20u);            // gap 20..30 is idle
  EXPECT_EQ(covered_ns({{10, 30}, {20, 40}}), 30u);            // overlap (two streams)
  EXPECT_EQ(covered_ns({{10, 50}, {20, 30}, {35, 40}}), 40u);  // nested
  EXPECT_EQ(covered_ns({{10, 20}, {20, 30}}), 20u);            // touching
  EXPECT_EQ(covered_ns({{10, 10}, {5, 3}, {40, 41}}), 1u);     // empty and reversed ignored
}

TEST(ShortFunctionName, KeepsTemplateArgumentsOnly) {
  EXPECT_EQ(short_function_name("void lockstep::cuda::(anonymous namespace)::gemv_kernel<__nv_bfloat16, 4>("
                                "__nv_bfloat16 const*, __nv_bfloat16*, int)"),
            "gemv_kernel<__nv_bfloat16, 4>");
  EXPECT_EQ(short_function_name("lockstep::cuda::rms_norm_kernel(float const*, float*, int (*)(int))"),
            "rms_norm_kernel");
  EXPECT_EQ(short_function_name("void cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm_bf16_64x64_64x4_tn_align8>("
                                "cutlass_80_tensorop_bf16_s16816gemm_bf16_64x64_64x4_tn_align8::Params)"),
            "Kernel2<cutlass_80_tensorop_bf16_s16816gemm_bf16_64x64_64x4_tn_align8>");
  // Scopes and spaces inside template arguments stay; nvcc spells values as "(int)4".
  EXPECT_EQ(short_function_name("void at::native::elementwise_kernel<128, (int)4, at::native::Fill<float> >(int)"),
            "elementwise_kernel<128, (int)4, at::native::Fill<float> >");
  EXPECT_EQ(short_function_name("std::enable_if<true, void>::type ns::k<int>(int)"), "k<int>");
  EXPECT_EQ(short_function_name("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)"),
            "ncclDevKernel_AllReduce_Sum_f32_RING_LL");
  EXPECT_EQ(short_function_name("plain_c_kernel"), "plain_c_kernel");
}

TEST(KernelDisplayName, DemanglesShortensAndTruncates) {
  EXPECT_EQ(kernel_display_name(kGemv), "gemv_kernel<__nv_bfloat16, 4>");
  EXPECT_EQ(kernel_display_name(kNorm), "rms_norm_kernel");
  EXPECT_EQ(kernel_display_name("not_a_cxx_symbol"), "not_a_cxx_symbol");
  EXPECT_EQ(kernel_display_name(nullptr), "(unnamed)");
  const std::string longer = "k<" + std::string(200, 'x') + ">";
  const std::string shown = kernel_display_name(longer.c_str());
  EXPECT_EQ(shown.size(), kMaxNameChars);
  EXPECT_EQ(shown.substr(0, 3), "k<x");
  EXPECT_EQ(shown.substr(kMaxNameChars - 3), "...");
}

TEST(ProfileSummary, RowsByTotalTimeAndMemcpyKinds) {
  ProfileSummary s;
  // Times in ns. gemv: 3 calls 10+20+30 us; norm: 1 call 100 us. Busy 160 us over a 1000 us span.
  s.add_kernel(1'000'000, 1'010'000, kGemv);
  s.add_kernel(1'100'000, 1'120'000, kGemv);
  s.add_kernel(1'200'000, 1'300'000, kNorm);
  s.add_kernel(1'970'000, 2'000'000, kGemv);
  s.add_kernel(0, 0, kGemv);  // no timestamps: counted apart
  s.add_copy(500'000, 600'000, 2'000'000, CopyKind::HtoD);
  s.add_copy(1'500'000, 1'501'000, 4'000, CopyKind::DtoH);
  s.add_copy(1'600'000, 1'602'000, 1'000, CopyKind::PtoP);
  const auto l = lines(s.report("lockstep pid 7 rank 0", 0));
  ASSERT_GE(l.size(), 9u);
  EXPECT_EQ(l[0],
            "kernel_profile: lockstep pid 7 rank 0: 4 kernels, GPU span 1.000 ms, kernel time 0.160 ms, busy 0.160; "
            "1 records without timestamps");
  EXPECT_EQ(l[1], "  total_ms  kernel%    excl_ms    busy%    calls     avg_us     min_us     max_us  name");
  // No overlaps: exclusive time is the kernel time.
  EXPECT_EQ(l[2], "     0.100    62.5%      0.100    62.5%        1     100.00     100.00     100.00  rms_norm_kernel");
  EXPECT_EQ(l[3],
            "     0.060    37.5%      0.060    37.5%        3      20.00      10.00      30.00  gemv_kernel<__nv_bfloat16, 4>");
  EXPECT_EQ(l[4], "");
  EXPECT_EQ(l[5], "memcpy    count     total_MB   total_ms");
  EXPECT_EQ(l[6], "HtoD          1          2.0      0.100");
  EXPECT_EQ(l[7], "DtoH          1          0.0      0.001");
  EXPECT_EQ(l[8], "DtoD          0          0.0      0.000");
  EXPECT_EQ(l[9], "PtoP          1          0.0      0.002");
}

// With dependent launch a kernel starts before the previous one ends and waits: its exclusive
// time is only how far it moves the timeline's end, the rows sort by it, and the exclusive
// times add up to the busy time.
TEST(ProfileSummary, ExclusiveTimeUnderDependentLaunch) {
  ProfileSummary s;
  s.add_kernel(1'000'000, 1'010'000, kNorm);  // 10 us
  s.add_kernel(1'000'500, 1'012'000, kGemv);  // launched early, waits: 11.5 us long, 2 us past the norm
  s.add_kernel(1'011'500, 1'014'000, kGemv);  // 2.5 us long, 2 us past the first gemv
  const auto l = lines(s.report("p", 0));
  ASSERT_GE(l.size(), 4u);
  EXPECT_EQ(l[0], "kernel_profile: p: 3 kernels, GPU span 0.014 ms, kernel time 0.024 ms, busy 1.000");
  // The gemv has more kernel time (14 us) but the norm more exclusive time: the norm comes first.
  EXPECT_EQ(l[2], "     0.010    41.7%      0.010    71.4%        1      10.00      10.00      10.00  rms_norm_kernel");
  EXPECT_EQ(l[3],
            "     0.014    58.3%      0.004    28.6%        2       7.00       2.50      11.50  gemv_kernel<__nv_bfloat16, 4>");
}

TEST(ProfileSummary, SkipDropsEverythingBeforeTheCut) {
  ProfileSummary s;
  s.add_copy(100'000, 900'000, 8'000'000, CopyKind::HtoD);  // weight upload, before any kernel
  s.add_kernel(1'000'000, 1'500'000, kNorm);                // prefill-like, inside the first 1 ms
  s.add_kernel(2'000'000, 2'010'000, kGemv);
  s.add_kernel(2'020'000, 2'030'000, kGemv);
  s.add_copy(2'030'000, 2'031'000, 1'000, CopyKind::DtoH);
  s.add_dropped(3);
  const auto l = lines(s.report("p", 1.0));
  ASSERT_GE(l.size(), 4u);
  EXPECT_EQ(l[0],
            "kernel_profile: p: 2 kernels, GPU span 0.030 ms, kernel time 0.020 ms, busy 0.667; skipped the first 1 "
            "ms after the first kernel (1 kernels, 1 copies); 3 records DROPPED by CUPTI");
  EXPECT_NE(l[2].find("gemv_kernel"), std::string::npos);
  EXPECT_EQ(l[3], "");
  EXPECT_EQ(l[5], "HtoD          0          0.0      0.000");
  EXPECT_EQ(l[6], "DtoH          1          0.0      0.001");
}

TEST(ProfileSummary, NothingRecorded) {
  EXPECT_TRUE(ProfileSummary{}.empty());  // such a process (mpirun) writes no report
  ProfileSummary copied;
  copied.add_copy(1, 10, 4, CopyKind::HtoD);
  EXPECT_FALSE(copied.empty());
  ProfileSummary dropped;
  dropped.add_dropped(1);
  EXPECT_FALSE(dropped.empty());
  const auto l = lines(ProfileSummary{}.report("p", 500));
  ASSERT_GE(l.size(), 3u);
  EXPECT_EQ(l[0], "kernel_profile: p: 0 kernels, GPU span 0.000 ms, kernel time 0.000 ms, busy 0.000");
  EXPECT_EQ(l[2], "(no kernels recorded)");
}

}  // namespace
}  // namespace lockstep
