// The fp8 formats of --kv-cache-dtype (kernels/fp8.h): every code decodes to the value its bits
// say; rounding picks the nearest code (ties to the even one), found here by brute force over
// all 256, and saturates at the largest finite value as CUDA's __NV_SATFINITE does.
// And cpu::dequantize_fp8_blocks, the reference of the GPU's block-fp8 weights.
#include "kernels/fp8.h"
#include "kernels/fp8_weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace lockstep {
namespace {

template <Fp8 T>
bool finite_code(int c) {
  return std::isfinite(to_float(T{static_cast<std::uint8_t>(c)}));
}

// The nearest finite code's value, ties to an even mantissa, past the largest finite: it.
template <Fp8 T>
float nearest_by_search(float f) {
  float best = 0.0f, best_err = std::numeric_limits<float>::infinity();
  int best_code = 0;
  for (int c = 0; c < 256; ++c) {
    if (!finite_code<T>(c)) continue;
    const float v = to_float(T{static_cast<std::uint8_t>(c)});
    const float err = std::fabs(v - f);
    if (err < best_err || (err == best_err && (c & 1) == 0 && (best_code & 1) == 1)) {
      best = v, best_err = err, best_code = c;
    }
  }
  return best;
}

TEST(Fp8, CodesDecodeAsTheirBitsSay) {
  EXPECT_EQ(to_float(fp8_e4m3{0x38}), 1.0f);
  EXPECT_EQ(to_float(fp8_e4m3{0x7e}), 448.0f);  // the largest finite
  EXPECT_EQ(to_float(fp8_e4m3{0xfe}), -448.0f);
  EXPECT_EQ(to_float(fp8_e4m3{0x01}), std::ldexp(1.0f, -9));  // the smallest subnormal
  EXPECT_EQ(to_float(fp8_e4m3{0x08}), std::ldexp(1.0f, -6));  // the smallest normal
  EXPECT_TRUE(std::isnan(to_float(fp8_e4m3{0x7f})));
  EXPECT_EQ(to_float(fp8_e4m3{0x78}), 256.0f);  // no infinities in e4m3: exponent 15 is a number
  EXPECT_EQ(to_float(fp8_e5m2{0x3c}), 1.0f);
  EXPECT_EQ(to_float(fp8_e5m2{0x7b}), 57344.0f);
  EXPECT_EQ(to_float(fp8_e5m2{0x01}), std::ldexp(1.0f, -16));
  EXPECT_EQ(to_float(fp8_e5m2{0x7c}), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(to_float(fp8_e5m2{0x7d})));
}

TEST(Fp8, EveryFiniteCodeRoundsToItself) {
  for (int c = 0; c < 256; ++c) {
    if (finite_code<fp8_e4m3>(c) && c != 0x80) {  // -0 comes back as -0: same bits
      EXPECT_EQ(float_to_fp8_e4m3(to_float(fp8_e4m3{static_cast<std::uint8_t>(c)})).bits, c) << c;
    }
    if (finite_code<fp8_e5m2>(c) && c != 0x80) {
      EXPECT_EQ(float_to_fp8_e5m2(to_float(fp8_e5m2{static_cast<std::uint8_t>(c)})).bits, c) << c;
    }
  }
  EXPECT_EQ(float_to_fp8_e4m3(-0.0f).bits, 0x80);
}

TEST(Fp8, RoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(to_float(float_to_fp8_e4m3(1.0625f)), 1.0f);    // halfway 1 .. 1.125: the even one
  EXPECT_EQ(to_float(float_to_fp8_e4m3(1.1875f)), 1.25f);   // halfway 1.125 .. 1.25: the even one
  EXPECT_EQ(to_float(float_to_fp8_e4m3(1.07f)), 1.125f);
  EXPECT_EQ(to_float(float_to_fp8_e4m3(464.0f)), 448.0f);   // halfway to 480, which does not exist
  EXPECT_EQ(to_float(float_to_fp8_e4m3(1e6f)), 448.0f);
  EXPECT_EQ(to_float(float_to_fp8_e4m3(-INFINITY)), -448.0f);
  EXPECT_EQ(to_float(float_to_fp8_e4m3(std::ldexp(1.0f, -10))), 0.0f);  // half the smallest: even (0)
  EXPECT_EQ(to_float(float_to_fp8_e4m3(std::ldexp(3.0f, -10))), std::ldexp(2.0f, -9));
  EXPECT_TRUE(std::isnan(to_float(float_to_fp8_e4m3(NAN))));
  EXPECT_EQ(to_float(float_to_fp8_e5m2(1e9f)), 57344.0f);
  EXPECT_EQ(to_float(float_to_fp8_e5m2(INFINITY)), 57344.0f);
  EXPECT_EQ(to_float(float_to_fp8_e5m2(1.125f)), 1.0f);  // halfway 1 .. 1.25
  EXPECT_TRUE(std::isnan(to_float(float_to_fp8_e5m2(NAN))));
}

TEST(Fp8, RoundingIsTheNearestCodeOverAllMagnitudes) {
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> exponent(-20.0f, 18.0f), sign(-1.0f, 1.0f);
  for (int i = 0; i < 20000; ++i) {
    const float f = std::copysign(std::exp2(exponent(rng)), sign(rng));
    ASSERT_EQ(to_float(float_to_fp8_e4m3(f)), nearest_by_search<fp8_e4m3>(f)) << f;
    ASSERT_EQ(to_float(float_to_fp8_e5m2(f)), nearest_by_search<fp8_e5m2>(f)) << f;
  }
}

TEST(Fp8, KvCacheDtypeNamesAsVllm) {
  EXPECT_EQ(parse_kv_cache_dtype("auto"), KvCacheDtype::Auto);
  EXPECT_EQ(parse_kv_cache_dtype("bfloat16"), KvCacheDtype::Auto);  // the app checks the model is bf16
  EXPECT_EQ(parse_kv_cache_dtype("fp8"), KvCacheDtype::Fp8E4M3);
  EXPECT_EQ(parse_kv_cache_dtype("fp8_e4m3"), KvCacheDtype::Fp8E4M3);
  EXPECT_EQ(parse_kv_cache_dtype("fp8_e5m2"), KvCacheDtype::Fp8E5M2);
  EXPECT_FALSE(parse_kv_cache_dtype("int8"));
  for (const char* name : kKvCacheDtypeNames) EXPECT_TRUE(parse_kv_cache_dtype(name)) << name;
  EXPECT_EQ(round_to_kv_cache(0.1f, KvCacheDtype::Auto), 0.1f);
  EXPECT_EQ(round_to_kv_cache(0.1f, KvCacheDtype::Fp8E4M3), 0.1015625f);
}

// DeepSeek's block-scaled weights (kernels/fp8_weights.h): each value its code times the scale
// of its block, partial blocks at the right and bottom edges included.
TEST(Fp8Weights, DequantizesEachValueWithItsBlocksScale) {
  const int rows = 3, cols = 5, block_rows = 2, block_cols = 2;
  std::vector<fp8_e4m3> w(rows * cols);
  for (int i = 0; i < rows * cols; ++i) w[i] = float_to_fp8_e4m3(static_cast<float>(i % 7) - 3.0f);
  const std::vector<float> scales = {1.0f, 2.0f, 4.0f, 0.5f, 0.25f, 8.0f};  // [2, 3] blocks
  std::vector<float> out(rows * cols, std::nanf(""));
  cpu::dequantize_fp8_blocks(w.data(), scales.data(), rows, cols, block_rows, block_cols, out.data());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      EXPECT_EQ(out[r * cols + c], (static_cast<float>((r * cols + c) % 7) - 3.0f) * scales[(r / 2) * 3 + c / 2])
          << r << ", " << c;
}

}  // namespace
}  // namespace lockstep
