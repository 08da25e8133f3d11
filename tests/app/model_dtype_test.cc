// --dtype resolution (app/model_dtype.h) against vLLM's rules.
#include "app/model_dtype.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace lockstep {
namespace {

constexpr int kCpu = 0, kVolta = 70, kTuring = 75, kAmpere = 80, kHopper = 90;

TEST(ModelDType, AutoFollowsTheCheckpoint) {
  for (int gpu : {kCpu, kAmpere, kHopper}) {
    EXPECT_EQ(resolve_model_dtype("auto", "bfloat16", gpu), DType::BF16);
    EXPECT_EQ(resolve_model_dtype("auto", "float16", gpu), DType::F16);
    EXPECT_EQ(resolve_model_dtype("auto", "float32", gpu), DType::BF16);
  }
}

TEST(ModelDType, AutoFallsBackToHalfBeforeAmpere) {
  for (int gpu : {kVolta, kTuring}) {
    EXPECT_EQ(resolve_model_dtype("auto", "bfloat16", gpu), DType::F16);
    EXPECT_EQ(resolve_model_dtype("auto", "float32", gpu), DType::F16);
    EXPECT_EQ(resolve_model_dtype("auto", "float16", gpu), DType::F16);
  }
}

TEST(ModelDType, ExplicitNames) {
  for (const char* half : {"half", "float16", "fp16"})
    for (int gpu : {kCpu, kVolta, kHopper}) EXPECT_EQ(resolve_model_dtype(half, "bfloat16", gpu), DType::F16);
  for (const char* bf : {"bfloat16", "bf16"}) {
    EXPECT_EQ(resolve_model_dtype(bf, "float16", kCpu), DType::BF16);
    EXPECT_EQ(resolve_model_dtype(bf, "float16", kHopper), DType::BF16);
  }
}

std::string error_of(const std::string& flag, int gpu) {
  try {
    resolve_model_dtype(flag, "bfloat16", gpu);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelDType, RefusesWhatCannotRun) {
  const std::string volta = error_of("bfloat16", kVolta);
  EXPECT_NE(volta.find("7.0"), std::string::npos) << volta;
  EXPECT_NE(volta.find("--dtype half"), std::string::npos) << volta;
  for (const char* f32 : {"float", "float32"}) {
    const std::string e = error_of(f32, kHopper);
    EXPECT_NE(e.find("not supported"), std::string::npos) << e;
  }
  EXPECT_NE(error_of("int8", kCpu).find("not one of"), std::string::npos);
}

}  // namespace
}  // namespace lockstep
