// The KV cache's element type (`--kv-cache-dtype`, vLLM's flag) and the two fp8 formats it may
// take: e4m3 (OCP "FN": no infinities, 0x7f NaN, largest finite 448) and e5m2 (fp16's top byte,
// largest finite 57344). An fp8 cache halves the KV bytes every decode step reads and doubles
// the tokens the cache holds. Values are stored unscaled (vLLM's k_scale = v_scale = 1.0, what
// it uses for checkpoints without calibrated scales): rounded to nearest even, saturating at the
// largest finite value (CUDA's __NV_SATFINITE); NaN stays NaN.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lockstep {

enum class KvCacheDtype : std::uint8_t { Auto, Fp8E4M3, Fp8E5M2 };

// vLLM's names: auto (the model's dtype), fp8 (= fp8_e4m3, as vLLM on CUDA), fp8_e4m3, fp8_e5m2;
// bfloat16 is Auto for a bf16 model (the app refuses it for another).
std::optional<KvCacheDtype> parse_kv_cache_dtype(std::string_view name);
inline constexpr const char* kKvCacheDtypeNames[] = {"auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"};
std::string_view kv_cache_dtype_name(KvCacheDtype t);  // "auto", "fp8_e4m3", "fp8_e5m2"

struct fp8_e4m3 { std::uint8_t bits; };
struct fp8_e5m2 { std::uint8_t bits; };

template <typename T>
concept Fp8 = std::same_as<T, fp8_e4m3> || std::same_as<T, fp8_e5m2>;

float to_float(fp8_e4m3 v);
float to_float(fp8_e5m2 v);
fp8_e4m3 float_to_fp8_e4m3(float f);
fp8_e5m2 float_to_fp8_e5m2(float f);

template <Fp8 T>
T fp8_from_float(float f) {
  if constexpr (std::same_as<T, fp8_e4m3>) return float_to_fp8_e4m3(f);
  else return float_to_fp8_e5m2(f);
}

// f as a cache of type `cache` holds it (Auto: unchanged; the CPU backend's cache is fp32).
float round_to_kv_cache(float f, KvCacheDtype cache);

}  // namespace lockstep
