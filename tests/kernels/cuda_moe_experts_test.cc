// The GPU's MoE routing ops (kernels/moe_experts.h) on fresh random inputs, outputs poisoned
// first: route_experts against cpu::route_experts (the same expert ids exactly, for DeepSeek-V3's
// and Moonlight's shapes, without normalizing, with more picks than unmasked experts, and with
// ties), group_by_expert against a stable counting sort on the host, combine_experts against a
// host loop; and the experts' grouped GEMVs (kernels/cuda/gemv.h) against cpu::linear per expert.
// Skips where no GPU is visible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/cuda/gemv.h"
#include "kernels/dense_ops.h"
#include "kernels/moe_experts.h"
#include "kernels/moe_routing.h"
#include "tests/kernels/cuda_ops_fixture.h"

namespace lockstep {
namespace {

class CudaMoeExperts : public CudaOpsTest {
 protected:
  // Routes `tokens` rows of logits on both sides; the ids must agree exactly, the weights to 1e-6.
  // Returns the CPU's ids for the caller's own checks.
  std::vector<int> expect_same_routing(const cpu::ExpertRouting& r, int tokens, const std::vector<float>& logits,
                                       const std::vector<float>& bias) {
    const std::size_t n = static_cast<std::size_t>(tokens) * r.top_k;
    std::vector<int> want_ids(n);
    std::vector<float> want_w(n);
    cpu::route_experts(logits.data(), tokens, bias.data(), r, want_ids.data(), want_w.data());
    int* ids = poisoned<int>(n);
    float* w = poisoned<float>(n);
    cuda::route_experts(ctx(), dev(logits), tokens, dev(bias), r, ids, w);
    const std::vector<int> got_ids = host(ids, n);
    int reported = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (got_ids[i] != want_ids[i] && reported++ < 5)
        ADD_FAILURE() << "token " << i / r.top_k << " pick " << i % r.top_k << ": cuda " << got_ids[i] << ", cpu "
                      << want_ids[i];
    expect_close(host(w, n), want_w, 0.0f, 1e-6f, "weights");
    return want_ids;
  }

  std::vector<int> route_random(const cpu::ExpertRouting& r, int tokens) {
    return expect_same_routing(r, tokens, normal(static_cast<std::size_t>(tokens) * r.experts, 2.0f),
                               normal(r.experts, 0.1f));
  }
};

TEST_F(CudaMoeExperts, RoutesLikeTheReference) {
  struct Case { const char* name; cpu::ExpertRouting r; };
  const Case cases[] = {
      {"DeepSeek-V3", {.experts = 256, .groups = 8, .top_groups = 4, .top_k = 8, .normalize = true, .scaling = 2.5f}},
      {"Moonlight", {.experts = 64, .groups = 1, .top_groups = 1, .top_k = 6, .normalize = true, .scaling = 2.446f}},
      {"unnormalized", {.experts = 128, .groups = 4, .top_groups = 2, .top_k = 8, .normalize = false, .scaling = 16.0f}},
      {"1024 experts", {.experts = 1024, .groups = 32, .top_groups = 3, .top_k = 20, .normalize = true, .scaling = 1.0f}},
      // More picks than a slice of 32 experts, a part slice, and masked picks.
      {"top 40 of 48", {.experts = 48, .groups = 3, .top_groups = 2, .top_k = 40, .normalize = true, .scaling = 1.0f}},
  };
  for (const Case& c : cases)
    for (int tokens : {1, 7, 300}) {
      SCOPED_TRACE(std::string(c.name) + ", " + std::to_string(tokens) + " tokens");
      route_random(c.r, tokens);
    }
}

// Two kept groups of two experts leave four unmasked for six picks: the last two are masked
// (-inf) experts, the lowest-indexed ones, as the CPU's sort takes them.
TEST_F(CudaMoeExperts, PicksMaskedExpertsByIndexWhenTooFewRemain) {
  const cpu::ExpertRouting r{.experts = 16, .groups = 8, .top_groups = 2, .top_k = 6, .normalize = true, .scaling = 1.5f};
  for (int tokens : {1, 7, 300}) {
    SCOPED_TRACE(std::to_string(tokens) + " tokens");
    const std::vector<int> ids = route_random(r, tokens);
    // The reference itself did pick outside its two groups (so this case tests what it claims).
    for (int t = 0; t < tokens; ++t) {
      const int* row = &ids[static_cast<std::size_t>(t) * r.top_k];
      int kept_groups = 0;
      for (int g = 0; g < r.groups; ++g) kept_groups += std::count_if(row, row + 4, [&](int e) { return e / 2 == g; }) > 0;
      ASSERT_EQ(kept_groups, 2) << "token " << t;
      ASSERT_LT(row[4], row[5]) << "token " << t;
    }
  }
}

// Logits on a coarse grid and no bias: many equal scores, equal group scores; both sides take
// the lower index (expert or group) among equals.
TEST_F(CudaMoeExperts, BreaksTiesByTheLowerIndex) {
  const cpu::ExpertRouting r{.experts = 256, .groups = 8, .top_groups = 4, .top_k = 8, .normalize = true, .scaling = 2.5f};
  const int tokens = 64;
  std::vector<float> logits = normal(static_cast<std::size_t>(tokens) * r.experts, 1.0f);
  for (float& x : logits) x = std::round(x);  // mostly -1, 0, 1
  expect_same_routing(r, tokens, logits, std::vector<float>(r.experts, 0.0f));
}

TEST_F(CudaMoeExperts, RoutingZeroTokensWritesNothing) {
  const cpu::ExpertRouting r{.experts = 64, .groups = 1, .top_groups = 1, .top_k = 6};
  int* ids = poisoned<int>(6);
  float* w = poisoned<float>(6);
  cuda::route_experts(ctx(), dev(normal(64)), 0, dev(normal(64)), r, ids, w);
  for (int id : host(ids, 6)) EXPECT_EQ(id, -1);
}

// The host's grouping: a stable counting sort of the pairs by expert.
struct HostGroups {
  std::vector<int> offsets, active, token, position;
};
HostGroups group_on_host(const std::vector<int>& ids, int top_k, int experts) {
  HostGroups h;
  h.offsets.assign(experts + 1, 0);
  for (int e : ids) ++h.offsets[e + 1];
  for (int e = 0; e < experts; ++e)
    if (h.offsets[e + 1] > 0) h.active.push_back(e);
  std::partial_sum(h.offsets.begin(), h.offsets.end(), h.offsets.begin());
  std::vector<int> next(h.offsets.begin(), h.offsets.end() - 1);
  h.token.resize(ids.size());
  h.position.resize(ids.size());
  for (std::size_t p = 0; p < ids.size(); ++p) {
    const int s = next[ids[p]]++;
    h.position[p] = s;
    h.token[s] = static_cast<int>(p) / top_k;
  }
  return h;
}

class CudaExpertGrouping : public CudaMoeExperts {
 protected:
  // ids drawn from [0, used) with repeats (within a token too), so experts [used, experts) and
  // some below are unused; the GPU's grouping must equal the host's exactly.
  void expect_same_groups(int tokens, int top_k, int experts, int used) {
    const std::size_t pairs = static_cast<std::size_t>(tokens) * top_k;
    std::uniform_int_distribution<int> pick(0, used - 1);
    std::vector<int> ids(pairs);
    for (int& e : ids) e = pick(rng_) / 3 * 3;  // only multiples of 3: more unused experts
    const HostGroups want = group_on_host(ids, top_k, experts);
    const cuda::ExpertGroups g{poisoned<int>(experts + 1), poisoned<int>(experts), poisoned<int>(1),
                               poisoned<int>(pairs), poisoned<int>(pairs)};
    cuda::group_by_expert(ctx(), dev(ids), static_cast<std::int64_t>(pairs), top_k, experts, g);
    EXPECT_EQ(host(g.offsets, experts + 1), want.offsets);
    const int count = host(g.count, 1)[0];
    ASSERT_EQ(count, static_cast<int>(want.active.size()));
    const std::vector<int> active = host(g.active, experts);
    EXPECT_EQ(std::vector<int>(active.begin(), active.begin() + count), want.active);
    EXPECT_EQ(host(g.token, pairs), want.token);
    EXPECT_EQ(host(g.position, pairs), want.position);
  }
};

TEST_F(CudaExpertGrouping, SortsPairsByExpertStably) {
  expect_same_groups(1, 8, 256, 256);
  expect_same_groups(13, 8, 64, 50);
  expect_same_groups(64, 8, 256, 256);
  expect_same_groups(5, 3, 1024, 1024);
}

TEST_F(CudaExpertGrouping, SortsManyPairs) { expect_same_groups(2500, 8, 256, 240); }

TEST_F(CudaExpertGrouping, ZeroPairsWriteNothing) {
  const cuda::ExpertGroups g{poisoned<int>(65), poisoned<int>(64), poisoned<int>(1), poisoned<int>(1),
                             poisoned<int>(1)};
  cuda::group_by_expert(ctx(), dev(std::vector<int>{}), 0, 8, 64, g);
  EXPECT_EQ(host(g.count, 1)[0], -1);
  for (int o : host(g.offsets, 65)) EXPECT_EQ(o, -1);
}

TEST_F(CudaMoeExperts, CombineAddsTheWeightedExpertRows) {
  for (const int width : {300, 7168}) {
    SCOPED_TRACE("width " + std::to_string(width));
    const int tokens = 5, top_k = 8, pairs = tokens * top_k;
    std::vector<int> position(pairs);
    std::iota(position.begin(), position.end(), 0);
    std::shuffle(position.begin(), position.end(), rng_);
    const std::vector<float> weights = normal(pairs), y = normal(static_cast<std::size_t>(pairs) * width);
    std::vector<float> out = normal(static_cast<std::size_t>(tokens) * width);
    float* d_out = dev(out);
    cuda::combine_experts(ctx(), dev(y), dev(position), dev(weights), tokens, top_k, width, d_out);
    for (int t = 0; t < tokens; ++t)
      for (int j = 0; j < width; ++j) {
        float acc = 0.0f;
        for (int k = 0; k < top_k; ++k)
          acc += weights[t * top_k + k] * y[static_cast<std::size_t>(position[t * top_k + k]) * width + j];
        out[static_cast<std::size_t>(t) * width + j] += acc;
      }
    expect_close(host(d_out, out.size()), out, 1e-5f, 1e-5f, "out");
  }
}

TEST_F(CudaMoeExperts, GatherRowsCopiesTheRowsInOrder) {
  const int T = 6, width = 300;
  const std::vector<bf16> x = normal_half<bf16>(static_cast<std::size_t>(T) * width, 1.0f);
  const std::vector<int> rows = {4, 1, 5, 1};
  bf16* gathered = poisoned<bf16>(rows.size() * width);
  cuda::gather_rows(ctx(), dev(x), dev(rows), static_cast<std::int64_t>(rows.size()), width, gathered);
  const std::vector<bf16> g = host(gathered, rows.size() * width);
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (int j = 0; j < width; ++j) ASSERT_EQ(to_float(g[i * width + j]), to_float(x[rows[i] * width + j]));
}

TEST_F(CudaMoeExperts, CombineOfZeroTokensWritesNothing) {
  float* out = poisoned<float>(4);
  cuda::combine_experts(ctx(), dev(normal(4)), dev(std::vector<int>{0}), dev(normal(1)), 0, 1, 4, out);
  for (float v : host(out, 4)) EXPECT_TRUE(std::isnan(v));
}

// Rows grouped by expert through each expert's own weights (kernels/cuda/gemv.h), against
// cpu::linear per expert: experts with no rows, one, and more than a pass of 8; slots past the
// active count; the rows read in place (x_rows null) and picked by index from a token matrix
// (x_rows, with repeats, as group_by_expert's token list has them).
TEST_F(CudaMoeExperts, GroupedGemvRunsEachExpertOverItsRows) {
  for_each_half([&]<HalfFloat W>() {
    const int experts = 6, in = 264, out = 40, ffn = 24, tokens = 9;
    const std::vector<int> rows_of = {0, 1, 3, 11, 0, 2};  // expert 3: two passes
    const GroupedRows g = grouped_rows(rows_of, tokens);
    const std::vector<int>& offsets = g.offsets;
    const std::vector<int>& x_rows = g.x_rows;
    const int rows = g.rows;
    const std::vector<W> x = normal_half<W>(static_cast<std::size_t>(rows) * in, 1.0f);
    const std::vector<W> token_x = normal_half<W>(static_cast<std::size_t>(tokens) * in, 1.0f);
    const std::vector<W> w = normal_half<W>(static_cast<std::size_t>(experts) * out * in, 2.0f / std::sqrt(in));
    const std::vector<W> w_glu = normal_half<W>(static_cast<std::size_t>(experts) * 2 * ffn * in, 2.0f / std::sqrt(in));
    float* y = poisoned<float>(static_cast<std::size_t>(rows) * out);
    W* act = poisoned<W>(static_cast<std::size_t>(rows) * ffn);
    const cuda::ExpertRows& grouped = g.on_device;
    cuda::grouped_gemv(ctx(), dev(x), static_cast<const int*>(nullptr), rows, in, dev(w), out, grouped, y);
    cuda::grouped_gemv_silu_mul(ctx(), dev(token_x), dev(x_rows), rows, in, dev(w_glu), ffn, grouped, act);
    const std::vector<float> got = host(y, static_cast<std::size_t>(rows) * out);
    const std::vector<W> got_act = host(act, static_cast<std::size_t>(rows) * ffn);
    const std::vector<float> xf = to_floats(x), token_xf = to_floats(token_x);
    std::vector<float> picked(static_cast<std::size_t>(rows) * in);
    for (int s = 0; s < rows; ++s)
      std::copy_n(token_xf.begin() + static_cast<std::size_t>(x_rows[s]) * in, in, picked.begin() + s * in);
    std::vector<float> want(got.size()), want_gate_up(static_cast<std::size_t>(rows) * 2 * ffn),
        want_act(got_act.size());
    for (int e = 0; e < experts; ++e) {
      const std::int64_t first = offsets[e], n = rows_of[e];
      cpu::linear(xf.data() + first * in, n, in, w.data() + static_cast<std::size_t>(e) * out * in, out, nullptr,
                  want.data() + first * out);
      cpu::linear(picked.data() + first * in, n, in, w_glu.data() + static_cast<std::size_t>(e) * 2 * ffn * in,
                  2 * ffn, nullptr, want_gate_up.data() + first * 2 * ffn);
    }
    for (float& v : want_gate_up) v = to_float(from_float<W>(v));  // gate and up rounded to W, as the kernel does
    cpu::silu_mul(want_gate_up.data(), rows, ffn, want_act.data());
    const float tol = 4e-4f * std::sqrt(static_cast<float>(in));
    expect_close(got, want, tol, 1e-5f, "grouped_gemv");
    expect_half_close(got_act, want_act, tol, "grouped_gemv_silu_mul");
    cuda::grouped_gemv(ctx(), dev(x), static_cast<const int*>(nullptr), 0, in, dev(w), out, grouped, y);  // no-op
    ctx().synchronize();
  });
}

// One (token, expert) pair a slot (ExpertRows::pairs, a one-token decode step's layout): row s
// through expert ids[s]; the gate|up reads token s / top_k's row, the down row s itself; then
// combine_experts with no positions sums each token's pairs in pair order. Against cpu::linear.
TEST_F(CudaMoeExperts, OnePairASlotRunsEachRowThroughItsExpert) {
  for_each_half([&]<HalfFloat W>() {
    const int experts = 5, in = 72, out = 24, ffn = 16, top_k = 3, tokens = 2, pairs = tokens * top_k;
    const std::vector<int> ids = {4, 0, 2, 1, 4, 3};  // expert 4 twice, by different tokens
    const std::vector<W> token_x = normal_half<W>(static_cast<std::size_t>(tokens) * in, 1.0f);
    const std::vector<W> w = normal_half<W>(static_cast<std::size_t>(experts) * out * ffn, 2.0f / std::sqrt(ffn));
    const std::vector<W> w_glu = normal_half<W>(static_cast<std::size_t>(experts) * 2 * ffn * in, 2.0f / std::sqrt(in));
    const std::vector<float> weights = normal(pairs), start = normal(static_cast<std::size_t>(tokens) * out);
    W* act = poisoned<W>(static_cast<std::size_t>(pairs) * ffn);
    float* y = poisoned<float>(static_cast<std::size_t>(pairs) * out);
    float* combined = dev(start);
    const int* d_ids = dev(ids);
    cuda::grouped_gemv_silu_mul(ctx(), dev(token_x), static_cast<const int*>(nullptr), pairs, in, dev(w_glu), ffn,
                                cuda::ExpertRows::pairs(d_ids, pairs, top_k), act);
    cuda::grouped_gemv(ctx(), act, static_cast<const int*>(nullptr), pairs, ffn, dev(w), out,
                       cuda::ExpertRows::pairs(d_ids, pairs, 1), y);
    cuda::combine_experts(ctx(), y, nullptr, dev(weights), tokens, top_k, out, combined);
    const std::vector<W> got_act = host(act, static_cast<std::size_t>(pairs) * ffn);
    const std::vector<float> got = host(y, static_cast<std::size_t>(pairs) * out);
    const std::vector<float> got_combined = host(combined, static_cast<std::size_t>(tokens) * out);

    const std::vector<float> token_xf = to_floats(token_x), act_f = to_floats(got_act);
    std::vector<float> gate_up(2 * ffn), want_act(got_act.size()), want(got.size()), want_combined = start;
    for (int p = 0; p < pairs; ++p) {
      const std::size_t e = static_cast<std::size_t>(ids[p]);
      cpu::linear(token_xf.data() + static_cast<std::size_t>(p / top_k) * in, 1, in, w_glu.data() + e * 2 * ffn * in,
                  2 * ffn, nullptr, gate_up.data());
      for (float& v : gate_up) v = to_float(from_float<W>(v));  // gate and up rounded to W, as the kernel does
      cpu::silu_mul(gate_up.data(), 1, ffn, want_act.data() + static_cast<std::size_t>(p) * ffn);
      // The down projection of what the GPU wrote, so its check does not compound the rounding above.
      cpu::linear(act_f.data() + static_cast<std::size_t>(p) * ffn, 1, ffn, w.data() + e * out * ffn, out, nullptr,
                  want.data() + static_cast<std::size_t>(p) * out);
    }
    for (int t = 0; t < tokens; ++t)
      for (int o = 0; o < out; ++o) {
        float acc = 0.0f;
        for (int k = 0; k < top_k; ++k)
          acc += weights[t * top_k + k] * got[static_cast<std::size_t>(t * top_k + k) * out + o];
        want_combined[static_cast<std::size_t>(t) * out + o] += acc;
      }
    const float tol = 4e-4f * std::sqrt(static_cast<float>(in));
    expect_half_close(got_act, want_act, tol, "grouped_gemv_silu_mul, one pair a slot");
    expect_close(got, want, tol, 1e-5f, "grouped_gemv, one pair a slot");
    expect_close(got_combined, want_combined, 1e-5f, 1e-6f, "combine_experts in pair order");
  });
}

}  // namespace
}  // namespace lockstep
