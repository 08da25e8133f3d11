// Conversions between fp32 and the 16-bit formats: exact values, round-to-nearest-even,
// overflow, subnormals and NaN.
#include "kernels/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace lockstep {
namespace {

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::I32), 4u);
  for (DType t : kAllDTypes) EXPECT_EQ(parse_dtype(dtype_name(t)), t);
  EXPECT_EQ(parse_dtype("bf16"), DType::BF16);
  EXPECT_FALSE(parse_dtype("fp64").has_value());
}

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f).bits, 0x3f80);
  EXPECT_EQ(bf16_to_float(float_to_bf16(257.0f)), 256.0f);  // tie -> even mantissa
  EXPECT_EQ(bf16_to_float(float_to_bf16(259.0f)), 260.0f);  // tie -> even mantissa
  EXPECT_EQ(bf16_to_float(float_to_bf16(258.9f)), 258.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(-3.0f)), -3.0f);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(bf16_to_float(float_to_bf16(std::numeric_limits<float>::max()))));
}

TEST(DType, Fp16RoundTripsEveryHalfValue) {
  for (unsigned b = 0; b < 0x10000; ++b) {
    const fp16 h{static_cast<std::uint16_t>(b)};
    const float f = fp16_to_float(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_float(float_to_fp16(f))));
      continue;
    }
    ASSERT_EQ(float_to_fp16(f).bits, h.bits) << "bits 0x" << std::hex << b << " value " << f;
  }
}

TEST(DType, Fp16RoundingOverflowAndSubnormals) {
  EXPECT_EQ(fp16_to_float(float_to_fp16(2049.0f)), 2048.0f);  // tie -> even
  EXPECT_EQ(fp16_to_float(float_to_fp16(2051.0f)), 2052.0f);
  EXPECT_EQ(fp16_to_float(float_to_fp16(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(fp16_to_float(float_to_fp16(65520.0f))));
  EXPECT_EQ(fp16_to_float(float_to_fp16(65519.0f)), 65504.0f);
  EXPECT_EQ(fp16_to_float(float_to_fp16(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_to_float(float_to_fp16(std::ldexp(1.0f, -26))), 0.0f);
  EXPECT_EQ(fp16_to_float(float_to_fp16(std::ldexp(3.0f, -26))), std::ldexp(1.0f, -24));
}

TEST(DType, TypedLoadStore) {
  for (DType t : kAllDTypes) {
    alignas(4) unsigned char buf[16] = {};
    store_from_float(buf, 2, t, -7.0f);
    EXPECT_EQ(load_as_float(buf, 2, t), -7.0f) << dtype_name(t);
  }
}

}  // namespace
}  // namespace lockstep
