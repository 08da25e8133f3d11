// fp16 conversions and typed element access for the CPU reference paths.
#include "kernels/dtype.h"

#include <cmath>
#include <cstring>

namespace lockstep {

std::optional<DType> parse_dtype(std::string_view n) {
  if (n == "float" || n == "fp32" || n == "f32" || n == "float32") return DType::F32;
  if (n == "bfloat16" || n == "bf16") return DType::BF16;
  if (n == "half" || n == "fp16" || n == "f16" || n == "float16") return DType::F16;
  if (n == "int32" || n == "int" || n == "i32") return DType::I32;
  return std::nullopt;
}

float fp16_to_float(fp16 v) {
  const std::uint32_t sign = static_cast<std::uint32_t>(v.bits & 0x8000u) << 16;
  std::uint32_t exp = (v.bits >> 10) & 0x1fu;
  std::uint32_t mant = v.bits & 0x3ffu;
  std::uint32_t out;
  if (exp == 0x1f) {
    out = sign | 0x7f800000u | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      out = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do { mant <<= 1; ++e; } while ((mant & 0x400u) == 0);
      out = sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else {
    out = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(out);
}

fp16 float_to_fp16(float f) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return fp16{static_cast<std::uint16_t>(sign | 0x7e00u)};  // NaN
  if (absu >= 0x477ff000u) return fp16{static_cast<std::uint16_t>(sign | 0x7c00u)};  // overflow -> inf
  if (absu < 0x38800000u) {  // result is subnormal or zero: round at the 2^-24 quantum
    const float a = std::bit_cast<float>(absu);
    const float scaled = a * 16777216.0f;  // exact: multiply by 2^24
    const auto q = static_cast<std::uint16_t>(std::nearbyint(scaled));  // ties to even
    return fp16{static_cast<std::uint16_t>(sign | q)};
  }
  std::uint32_t v = absu - (112u << 23);  // rebias exponent 127 -> 15
  v += 0xfffu + ((v >> 13) & 1u);
  return fp16{static_cast<std::uint16_t>(sign | (v >> 13))};
}

float load_as_float(const void* data, std::size_t i, DType t) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(data)[i];
    case DType::BF16: return bf16_to_float(static_cast<const bf16*>(data)[i]);
    case DType::F16: return fp16_to_float(static_cast<const fp16*>(data)[i]);
    case DType::I32: return static_cast<float>(static_cast<const std::int32_t*>(data)[i]);
  }
  return 0.0f;
}

void store_from_float(void* data, std::size_t i, DType t, float v) {
  switch (t) {
    case DType::F32: static_cast<float*>(data)[i] = v; break;
    case DType::BF16: static_cast<bf16*>(data)[i] = float_to_bf16(v); break;
    case DType::F16: static_cast<fp16*>(data)[i] = float_to_fp16(v); break;
    case DType::I32: static_cast<std::int32_t*>(data)[i] = static_cast<std::int32_t>(std::lrint(v)); break;
  }
}

}  // namespace lockstep
