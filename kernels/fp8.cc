// fp8 e4m3 / e5m2 conversions on the host (the CPU backend's fp8 KV cache, and the reference the
// GPU's conversions are tested against).
#include "kernels/fp8.h"

#include <algorithm>
#include <cmath>

namespace lockstep {
namespace {

// An fp8 format: kMant mantissa bits, kMinExp the exponent of its smallest normal, kBias, the
// largest finite value and the NaN code.
template <int kMant, int kMinExp, int kBias>
std::uint8_t encode(float f, float max_finite, std::uint8_t nan) {
  const std::uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  if (std::isnan(f)) return sign | nan;
  const float a = std::min(std::fabs(f), max_finite);  // saturate (inf included)
  int e = 0;
  std::frexp(a, &e);  // a = fr 2^e, fr in [0.5, 1): its exponent is e - 1
  const int exponent = std::max(e - 1, kMinExp);
  const float quantum = std::ldexp(1.0f, exponent - kMant);
  // Nearest even multiple of the quantum (the default rounding mode); a tie past the largest
  // finite value rounds to it, as does anything above it.
  const float r = std::min(std::nearbyint(a / quantum) * quantum, max_finite);
  if (r == 0.0f) return sign;
  std::frexp(r, &e);
  if (e - 1 < kMinExp)  // subnormal: exponent field 0
    return sign | static_cast<std::uint8_t>(std::ldexp(r, kMant - kMinExp));
  const int field = e - 1 + kBias;
  const int mant = static_cast<int>(std::ldexp(r, kMant - (e - 1))) - (1 << kMant);
  return sign | static_cast<std::uint8_t>(field << kMant | mant);
}

}  // namespace

std::optional<KvCacheDtype> parse_kv_cache_dtype(std::string_view n) {
  if (n == "auto" || n == "bfloat16") return KvCacheDtype::Auto;
  if (n == "fp8" || n == "fp8_e4m3") return KvCacheDtype::Fp8E4M3;
  if (n == "fp8_e5m2") return KvCacheDtype::Fp8E5M2;
  return std::nullopt;
}

std::string_view kv_cache_dtype_name(KvCacheDtype t) {
  switch (t) {
    case KvCacheDtype::Auto: return "auto";
    case KvCacheDtype::Fp8E4M3: return "fp8_e4m3";
    case KvCacheDtype::Fp8E5M2: return "fp8_e5m2";
  }
  return "?";
}

float to_float(fp8_e4m3 v) {
  const float sign = v.bits & 0x80 ? -1.0f : 1.0f;
  const int field = v.bits >> 3 & 0xf, mant = v.bits & 0x7;
  if (field == 0xf && mant == 0x7) return std::nanf("");
  if (field == 0) return sign * std::ldexp(static_cast<float>(mant), -9);
  return sign * std::ldexp(static_cast<float>(8 + mant), field - 10);
}

float to_float(fp8_e5m2 v) {
  const float sign = v.bits & 0x80 ? -1.0f : 1.0f;
  const int field = v.bits >> 2 & 0x1f, mant = v.bits & 0x3;
  if (field == 0x1f) return mant ? std::nanf("") : sign * INFINITY;
  if (field == 0) return sign * std::ldexp(static_cast<float>(mant), -16);
  return sign * std::ldexp(static_cast<float>(4 + mant), field - 17);
}

fp8_e4m3 float_to_fp8_e4m3(float f) { return {encode<3, -6, 7>(f, 448.0f, 0x7f)}; }
fp8_e5m2 float_to_fp8_e5m2(float f) { return {encode<2, -14, 15>(f, 57344.0f, 0x7f)}; }

float round_to_kv_cache(float f, KvCacheDtype cache) {
  switch (cache) {
    case KvCacheDtype::Auto: return f;
    case KvCacheDtype::Fp8E4M3: return to_float(float_to_fp8_e4m3(f));
    case KvCacheDtype::Fp8E5M2: return to_float(float_to_fp8_e5m2(f));
  }
  return f;
}

}  // namespace lockstep
