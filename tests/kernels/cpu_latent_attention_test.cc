// deepseek_v3's CPU ops against their definitions: MLA's absorbed form (q taken into the latent
// space, the output back out of it) equals attention over k and v expanded per head as
// transformers computes them, over a paged cache and with causal masks; RoPE pairs as
// transformers' apply_rotary_pos_emb(_interleave) turns them; the MoE router's grouped choice.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/latent_attention.h"
#include "kernels/moe_routing.h"
#include "tests/kernels/random_values.h"

namespace lockstep {
namespace {

using testing::normal;

TEST(LatentAttention, AbsorbedFormEqualsExpandedKeysAndValues) {
  std::mt19937 rng(7);
  const int heads = 3, nope = 5, rope = 4, v = 6, kvr = 7, block = 4, max_blocks = 4;
  // Two sequences: one prefilled 9 tokens at once, one decoding its 6th token (5 cached).
  const std::vector<int> seq_of = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const std::vector<int> pos = {0, 1, 2, 3, 4, 5, 6, 7, 8, 5};
  const std::vector<int> tables = {3, 0, 5, 7, 1, 6, 2, 4};  // scattered blocks
  const int T = static_cast<int>(pos.size()), width = kvr + rope, slots = 8 * block;
  std::vector<bf16> kv_b(static_cast<std::size_t>(heads) * (nope + v) * kvr);
  for (bf16& w : kv_b) w = from_float<bf16>(normal(1, rng)[0] * 0.5f);
  const std::vector<float> cache = normal(static_cast<std::size_t>(slots) * width, rng);
  const std::vector<float> q = normal(static_cast<std::size_t>(T) * heads * (nope + rope), rng);
  const float scale = 0.37f;

  std::vector<float> q_latent(T * heads * kvr), o_latent(T * heads * kvr), out(T * heads * v);
  cpu::mla_absorb_q(q.data(), T, heads, heads * (nope + rope), nope + rope, kv_b.data(), nope, v, kvr, q_latent.data());
  cpu::latent_attention(q_latent.data(), q.data() + nope, heads * (nope + rope), nope + rope, cache.data(), T, heads,
                        kvr, rope, block, seq_of.data(), pos.data(), tables.data(), max_blocks, scale, o_latent.data());
  cpu::mla_expand_v(o_latent.data(), T, heads, kv_b.data(), nope, v, kvr, out.data());

  // The expanded form: per head k = [W_UK c ; k_rope], v = W_UV c, softmax(scale q.k) v.
  auto w_at = [&](int h, int row, int k) { return static_cast<double>(to_float(kv_b[(h * (nope + v) + row) * kvr + k])); };
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < heads; ++h) {
      std::vector<double> scores, values;
      for (int p = 0; p <= pos[t]; ++p) {
        const float* c = &cache[(tables[seq_of[t] * max_blocks + p / block] * block + p % block) * width];
        double s = 0;
        for (int i = 0; i < nope; ++i) {
          double k = 0;
          for (int j = 0; j < kvr; ++j) k += w_at(h, i, j) * c[j];
          s += q[(t * heads + h) * (nope + rope) + i] * k;
        }
        for (int i = 0; i < rope; ++i) s += q[(t * heads + h) * (nope + rope) + nope + i] * c[kvr + i];
        scores.push_back(s * scale);
        for (int i = 0; i < v; ++i) {
          double val = 0;
          for (int j = 0; j < kvr; ++j) val += w_at(h, nope + i, j) * c[j];
          values.push_back(val);
        }
      }
      const double top = *std::max_element(scores.begin(), scores.end());
      double denom = 0;
      for (double& s : scores) denom += (s = std::exp(s - top));
      for (int i = 0; i < v; ++i) {
        double want = 0;
        for (std::size_t p = 0; p < scores.size(); ++p) want += scores[p] / denom * values[p * v + i];
        EXPECT_NEAR(out[(t * heads + h) * v + i], want, 1e-4) << "token " << t << " head " << h << " dim " << i;
      }
    }
}

// transformers' interleaved form: (x0, x1, x2, x3, ...) is first reordered to (x0, x2, ..., x1,
// x3, ...), then rotate_half with cos/sin of frequency i at i and i + d/2; the plain form skips
// the reorder. Both times attention_factor.
TEST(LatentAttention, RopePairsAsTransformersTurnThem) {
  const int d = 8, pos[2] = {3, 70};
  const std::vector<float> inv_freq = {1.0f, 0.3f, 0.05f, 0.001f};
  const float factor = 1.25f;
  for (bool interleaved : {true, false}) {
    std::vector<float> x(2 * d);
    for (int i = 0; i < 2 * d; ++i) x[i] = 0.1f * static_cast<float>(i + 1) * (i % 3 == 0 ? -1.0f : 1.0f);
    const std::vector<float> before = x;
    cpu::rope_pairs(x.data(), 2, 1, d, 0, d, pos, inv_freq.data(), factor, interleaved);
    for (int t = 0; t < 2; ++t) {
      std::vector<float> in(d);
      for (int i = 0; i < d; ++i) in[i] = interleaved ? before[t * d + (i < d / 2 ? 2 * i : 2 * (i - d / 2) + 1)]
                                                      : before[t * d + i];
      for (int i = 0; i < d; ++i) {
        const float angle = static_cast<float>(pos[t]) * inv_freq[i % (d / 2)];
        const float rotated = i < d / 2 ? -in[i + d / 2] : in[i - d / 2];
        const float want = in[i] * std::cos(angle) * factor + rotated * std::sin(angle) * factor;
        EXPECT_NEAR(x[t * d + i], want, 1e-6) << (interleaved ? "interleaved" : "plain") << " token " << t << " dim " << i;
      }
    }
  }
}

TEST(MoeRouting, ChoosesWithTheBiasWithinTheBestGroupsAndWeighsWithout) {
  // 8 experts in 4 groups of 2; keep 2 groups, choose 2 experts.
  const cpu::ExpertRouting r{8, 4, 2, 2, true, 2.5f};
  auto logit = [](float p) { return std::log(p / (1.0f - p)); };  // sigmoid(logit(p)) = p
  // Scores:        g0: 0.9 0.1 | g1: 0.6 0.6 | g2: 0.5 0.5 | g3: 0.95 0.05
  const float p[8] = {0.9f, 0.1f, 0.6f, 0.6f, 0.5f, 0.5f, 0.95f, 0.05f};
  std::vector<float> logits(8);
  for (int e = 0; e < 8; ++e) logits[e] = logit(p[e]);
  std::vector<float> bias(8, 0.0f);
  int ids[2];
  float w[2];
  // Group sums of the two best biased scores, with +0.3 on expert 4: g0 1.0, g1 1.2, g2 1.3, g3
  // 1.0, so g1 and g2 are kept.
  bias[4] = 0.3f;
  cpu::route_experts(logits.data(), 1, bias.data(), r, ids, w);
  // Chosen by biased score among experts 2..5: expert 4 (0.8), then 2 (0.6, the lower index of a tie).
  EXPECT_EQ(ids[0], 4);
  EXPECT_EQ(ids[1], 2);
  // Weighed by the unbiased scores, normalized, times 2.5.
  EXPECT_NEAR(w[0], 0.5f / 1.1f * 2.5f, 1e-5);
  EXPECT_NEAR(w[1], 0.6f / 1.1f * 2.5f, 1e-5);
  // Expert 6 (0.95) is best alone, but its group (0.95 + 0.05) loses to g1 and g2.
  EXPECT_NE(ids[0], 6);
  EXPECT_NE(ids[1], 6);
  // Without normalization the weights are the scores times the scaling.
  const cpu::ExpertRouting raw{8, 4, 2, 2, false, 2.5f};
  cpu::route_experts(logits.data(), 1, bias.data(), raw, ids, w);
  EXPECT_NEAR(w[0], 0.5f * 2.5f, 1e-5);
  // Negative biased scores: the kept groups' experts still win over the masked ones (masked to -inf).
  std::vector<float> negative(8, -2.0f);
  const cpu::ExpertRouting one{8, 4, 1, 2, true, 1.0f};
  cpu::route_experts(logits.data(), 1, negative.data(), one, ids, w);
  EXPECT_EQ(ids[0] / 2, ids[1] / 2);  // both from the one kept group
}

}  // namespace
}  // namespace lockstep
