// Element types lockstep moves and computes with, and exact conversions between the 16-bit
// float formats and fp32 (round to nearest even, as CUDA's __float2bfloat16_rn does).
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lockstep {

enum class DType : std::uint8_t { F32, BF16, F16, I32 };

inline constexpr DType kAllDTypes[] = {DType::F32, DType::BF16, DType::F16, DType::I32};

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::I32: return 4;
  }
  return 0;
}

// Names as nccl-tests prints them ("float", "bfloat16", "half", "int32").
constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float";
    case DType::BF16: return "bfloat16";
    case DType::F16: return "half";
    case DType::I32: return "int32";
  }
  return "?";
}

// Accepts nccl-tests' names and the common short ones (fp32, bf16, fp16, int).
std::optional<DType> parse_dtype(std::string_view name);

struct bf16 { std::uint16_t bits; };
struct fp16 { std::uint16_t bits; };

constexpr float bf16_to_float(bf16 v) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(v.bits) << 16);
}

constexpr bf16 float_to_bf16(float f) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<std::uint16_t>((u >> 16) | 0x40)};  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<std::uint16_t>(u >> 16)};
}

float fp16_to_float(fp16 v);
fp16 float_to_fp16(float f);

// The 16-bit float types a model runs in (`--dtype`): its weights, the GPU's KV cache and the
// inputs of its linears are all of one of them. bf16 is the default (DeepSeek's checkpoints are
// bf16); fp16 is `--dtype half`, for GPUs before Ampere (no bf16 tensor cores) and fp16 models.
template <typename T>
concept HalfFloat = std::same_as<T, bf16> || std::same_as<T, fp16>;

template <typename T>
  requires HalfFloat<T> || std::same_as<T, float>
inline constexpr DType dtype_of = std::same_as<T, bf16> ? DType::BF16 : std::same_as<T, fp16> ? DType::F16 : DType::F32;

inline float to_float(bf16 v) { return bf16_to_float(v); }
inline float to_float(fp16 v) { return fp16_to_float(v); }
// f rounded to nearest even in T (fp16: past 65504 is +-inf, as a cast in PyTorch).
template <HalfFloat T>
T from_float(float f) {
  if constexpr (std::same_as<T, bf16>) return float_to_bf16(f);
  else return float_to_fp16(f);
}

// Reads element i of a buffer of type t as float (int32 converted exactly up to 2^24).
float load_as_float(const void* data, std::size_t i, DType t);
// Writes a float into element i of a buffer of type t (rounding to nearest even; int32 rounds
// to nearest).
void store_from_float(void* data, std::size_t i, DType t, float v);

}  // namespace lockstep
