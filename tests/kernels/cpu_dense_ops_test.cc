// The CPU reference ops' own contracts (the CUDA kernels are checked against them): a row's
// linear output does not depend on the rows beside it (batch invariance, threads or not), the
// argmax's ties and row stride, the fused q|k|v split with bias and RoPE, the fused gate|up.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/dense_ops.h"
#include "tests/kernels/random_values.h"

namespace lockstep {
namespace {

using testing::normal;

template <HalfFloat W = bf16>
std::vector<W> normal_half(std::size_t n, std::mt19937& rng, float sigma) {
  std::vector<W> v(n);
  const std::vector<float> f = normal(n, rng);
  for (std::size_t i = 0; i < n; ++i) v[i] = from_float<W>(f[i] * sigma);
  return v;
}

template <typename W>
class CpuLinear : public ::testing::Test {};
using ModelDTypes = ::testing::Types<bf16, fp16>;
TYPED_TEST_SUITE(CpuLinear, ModelDTypes);

TYPED_TEST(CpuLinear, RowsDoNotDependOnTheirBatch) {
  using W = TypeParam;
  std::mt19937 rng(1);
  const int in = 512, out = 640, rows = 7;  // 2.3 M multiply-adds: the threaded path
  const std::vector<float> x = normal(static_cast<std::size_t>(rows) * in, rng);
  const std::vector<W> w = normal_half<W>(static_cast<std::size_t>(out) * in, rng, 0.05f);
  const std::vector<W> bias = normal_half<W>(out, rng, 1.0f);
  std::vector<float> all(static_cast<std::size_t>(rows) * out);
  cpu::linear(x.data(), rows, in, w.data(), out, bias.data(), all.data());
  for (int r = 0; r < rows; ++r) {
    std::vector<float> alone(out);
    cpu::linear(x.data() + r * in, 1, in, w.data(), out, bias.data(), alone.data());
    EXPECT_EQ(std::memcmp(alone.data(), all.data() + r * out, out * sizeof(float)), 0) << "row " << r;
    for (int o = 0; o < out; o += 97) {  // and it is the product, to fp32 rounding
      double want = to_float(bias[o]);
      for (int k = 0; k < in; ++k) want += static_cast<double>(x[r * in + k]) * to_float(w[o * in + k]);
      EXPECT_NEAR(alone[o], want, 1e-4) << "row " << r << " out " << o;
    }
  }
}

TEST(CpuDenseOps, ArgmaxTakesTheFirstMaximumWithinTheStride) {
  const float inf = std::numeric_limits<float>::infinity();
  // Rows of 6 columns, 8 apart; the two past the 6 are larger but not part of the row.
  const std::vector<float> logits = {1, 5, 5, 2, 0, 0, 99, 99,  //
                                     -inf, -inf, -inf, -inf, -inf, -inf, 99, 99,  //
                                     -3, -2, -1, -4, -1, -5, 99, 99};
  int ids[3];
  float values[3];
  cpu::argmax(logits.data(), 3, 6, ids, 8, values);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(values[0], 5.0f);
  EXPECT_EQ(ids[1], 0);  // nothing above -inf: id 0
  EXPECT_EQ(values[1], -inf);
  EXPECT_EQ(ids[2], 2);
  EXPECT_EQ(values[2], -1.0f);
}

TEST(CpuDenseOps, SplitQkvRopeCacheAddsBiasRotatesAndScatters) {
  std::mt19937 rng(2);
  const int qh = 3, kvh = 2, hd = 8, tokens = 2, half = hd / 2, kv_row = kvh * hd;
  const int width = (qh + 2 * kvh) * hd;
  const std::vector<float> qkv = normal(static_cast<std::size_t>(tokens) * width, rng);
  const std::vector<bf16> bias = normal_half(width, rng, 1.0f);
  const std::vector<int> positions = {5, 1000};
  std::vector<float> inv_freq(half);
  for (int i = 0; i < half; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / hd);
  const std::vector<std::int64_t> slots = {3, 0};
  std::vector<float> q(static_cast<std::size_t>(tokens) * qh * hd), k_cache(4 * kv_row, 7.0f), v_cache(4 * kv_row, 7.0f);
  cpu::split_qkv_rope_cache<bf16>(qkv.data(), tokens, qh, kvh, hd, bias.data(), positions.data(), inv_freq.data(),
                            slots.data(), q.data(), k_cache.data(), v_cache.data());
  for (int t = 0; t < tokens; ++t) {
    auto in = [&](int e) { return static_cast<double>(qkv[t * width + e]) + bf16_to_float(bias[e]); };
    for (int h = 0; h < qh + kvh; ++h)
      for (int i = 0; i < half; ++i) {
        const double angle = static_cast<double>(static_cast<float>(positions[t]) * inv_freq[i]);
        const double a = in(h * hd + i), b = in(h * hd + i + half);
        const float* got = h < qh ? &q[(t * qh + h) * hd] : &k_cache[slots[t] * kv_row + (h - qh) * hd];
        EXPECT_NEAR(got[i], a * std::cos(angle) - b * std::sin(angle), 1e-4) << "token " << t << " head " << h;
        EXPECT_NEAR(got[i + half], b * std::cos(angle) + a * std::sin(angle), 1e-4) << "token " << t << " head " << h;
      }
    for (int e = 0; e < kv_row; ++e)
      EXPECT_FLOAT_EQ(v_cache[slots[t] * kv_row + e], static_cast<float>(in((qh + kvh) * hd + e)));
  }
  for (const int untouched : {1, 2})
    for (int e = 0; e < kv_row; ++e) {
      EXPECT_EQ(k_cache[untouched * kv_row + e], 7.0f);
      EXPECT_EQ(v_cache[untouched * kv_row + e], 7.0f);
    }
}

// --kv-cache-dtype fp8: the same q, and the cache rows as an fp8 cache holds them (the fp32
// values rounded), every other slot untouched.
TEST(CpuDenseOps, SplitQkvRopeCacheRoundsToAnFp8Cache) {
  std::mt19937 rng(3);
  const int qh = 4, kvh = 2, hd = 16, tokens = 3, kv_row = kvh * hd, width = (qh + 2 * kvh) * hd;
  const std::vector<float> qkv = normal(static_cast<std::size_t>(tokens) * width, rng, 20.0f);
  const std::vector<int> positions = {0, 7, 300};
  std::vector<float> inv_freq(hd / 2);
  for (int i = 0; i < hd / 2; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / hd);
  const std::vector<std::int64_t> slots = {4, 0, 2};
  for (const KvCacheDtype dt : {KvCacheDtype::Fp8E4M3, KvCacheDtype::Fp8E5M2}) {
    SCOPED_TRACE(std::string(kv_cache_dtype_name(dt)));
    std::vector<float> q(static_cast<std::size_t>(tokens) * qh * hd), q8(q.size());
    std::vector<float> k(5 * kv_row, 7.0f), v(k), k8(k), v8(k);
    cpu::split_qkv_rope_cache<bf16>(qkv.data(), tokens, qh, kvh, hd, nullptr, positions.data(), inv_freq.data(),
                                    slots.data(), q.data(), k.data(), v.data());
    cpu::split_qkv_rope_cache<bf16>(qkv.data(), tokens, qh, kvh, hd, nullptr, positions.data(), inv_freq.data(),
                                    slots.data(), q8.data(), k8.data(), v8.data(), dt);
    EXPECT_EQ(q8, q);
    int changed = 0;
    for (std::size_t i = 0; i < k.size(); ++i) {
      const bool written = i / kv_row != 1 && i / kv_row != 3;
      EXPECT_EQ(k8[i], written ? round_to_kv_cache(k[i], dt) : 7.0f) << i;
      EXPECT_EQ(v8[i], written ? round_to_kv_cache(v[i], dt) : 7.0f) << i;
      changed += k8[i] != k[i];
    }
    EXPECT_GT(changed, kv_row);  // it did round
  }
}

TEST(CpuDenseOps, SiluMulReadsGateThenUpFromEachRow) {
  const std::vector<float> gate_up = {1, -2, 3, 4,   // row 0: gate (1, -2), up (3, 4)
                                      0, 5, -1, 2};  // row 1: gate (0, 5), up (-1, 2)
  float out[4];
  cpu::silu_mul(gate_up.data(), 2, 2, out);
  auto silu = [](float g) { return g / (1.0f + std::exp(-g)); };
  EXPECT_FLOAT_EQ(out[0], silu(1) * 3);
  EXPECT_FLOAT_EQ(out[1], silu(-2) * 4);
  EXPECT_FLOAT_EQ(out[2], silu(0) * -1);
  EXPECT_FLOAT_EQ(out[3], silu(5) * 2);
}

}  // namespace
}  // namespace lockstep
