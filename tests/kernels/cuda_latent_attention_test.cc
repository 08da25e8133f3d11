// deepseek_v3's cuda:: ops (kernels/latent_attention.h) against their CPU reference on fresh
// random inputs, the outputs poisoned (NaN) before each call: RoPE pairs, the latent cache write,
// absorbed latent attention over the paged cache (R1's and Moonlight's head sizes, contexts cut
// into splits every way the kernel can). Skips where no GPU is visible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>
#include <string>
#include <vector>

#include "kernels/dense_ops.h"
#include "kernels/latent_attention.h"
#include "tests/kernels/cuda_ops_fixture.h"

namespace lockstep {
namespace {

class CudaLatentAttentionOps : public CudaOpsTest {};

TEST_F(CudaLatentAttentionOps, RopePairsMatchTheReference) {
  const int T = 5, heads = 3, rope = 8, nope = 4, stride = heads * (nope + rope);
  const std::vector<int> pos = {0, 3, 17, 250, 4095};
  const std::vector<float> inv_freq = {1.0f, 0.2f, 0.01f, 0.0005f};
  for (bool interleaved : {true, false}) {
    std::vector<float> x = normal(static_cast<std::size_t>(T) * stride);
    float* d = dev(x);
    cuda::rope_pairs(ctx(), d + nope, T, heads, stride, nope + rope, rope, dev(pos), dev(inv_freq), 1.1f, interleaved);
    cpu::rope_pairs(x.data() + nope, T, heads, stride, nope + rope, rope, pos.data(), inv_freq.data(), 1.1f, interleaved);
    const std::vector<float> got = host(d, x.size());
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(got[i], x[i], 2e-4f * (1 + std::fabs(x[i]))) << i;
  }
}

TEST_F(CudaLatentAttentionOps, MlaCacheWriteNormsTurnsAndRoundsLikeTheReference) {
  const int T = 4, kvr = 512, rope = 64, width = kvr + rope, slots = 16;
  const std::vector<int> pos = {0, 1, 9, 300};
  const std::vector<std::int64_t> slot = {5, 0, 11, 15};
  std::vector<float> inv_freq(rope / 2);
  for (int i = 0; i < rope / 2; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / rope);
  const std::vector<float> kv = normal(static_cast<std::size_t>(T) * width, 3.0f);
  const std::vector<bf16> norm = normal_half<bf16>(kvr, 1.0f);
  bf16* cache = poisoned<bf16>(static_cast<std::size_t>(slots) * width);
  cuda::mla_cache_write(ctx(), dev(kv), T, kvr, rope, dev(norm), 1e-6f, dev(pos), dev(inv_freq), 0.9f, true, dev(slot),
                        cache);
  const std::vector<bf16> got = host(cache, static_cast<std::size_t>(slots) * width);
  std::vector<float> want = kv;
  for (int t = 0; t < T; ++t) cpu::rms_norm(&want[t * width], 1, kvr, norm.data(), 1e-6f, &want[t * width]);
  cpu::rope_pairs(want.data() + kvr, T, 1, width, 0, rope, pos.data(), inv_freq.data(), 0.9f, true);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < width; ++i) {
      const float w = want[t * width + i], g = to_float(got[slot[t] * width + i]);
      EXPECT_NEAR(g, w, std::fabs(w) * 0x1p-7f + 1e-5f) << "token " << t << " column " << i;
    }
}

// Absorb, attend over the paged latent cache, expand: the GPU's cache holds W, the reference the
// same values as floats. Shapes: R1's head sizes, Moonlight's 16 heads (one full head group),
// 20 heads (a group of 16 and one of 4), a tiny one whose widths take the scalar loads (kv_lora
// 18 and width 22: not multiples of 8, nor of 4, so one split). The context is cut every way the kernel
// can: one split, a few, the most (64, most of them empty), and the automatic choice, with
// max_context the exact bound or the tables' capacity.
TEST_F(CudaLatentAttentionOps, LatentAttentionMatchesTheReference) {
  struct Shape { int heads, nope, rope, v, kvr; };
  for (const Shape sh : {Shape{2, 128, 64, 128, 512}, Shape{16, 128, 64, 128, 512}, Shape{20, 32, 16, 24, 64},
                         Shape{3, 16, 8, 12, 16}, Shape{3, 10, 4, 7, 18}}) {
    SCOPED_TRACE("heads " + std::to_string(sh.heads) + ", kv_lora " + std::to_string(sh.kvr));
    const int block = 16, max_blocks = 40, qk = sh.nope + sh.rope, width = sh.kvr + sh.rope;
    // Sequence 0 decodes at position 600; sequence 1 prefills 5 tokens at 0-4; sequence 2 decodes
    // at position 31 (one tile exactly), 3 at 32 (one past it).
    const std::vector<int> seq_of = {0, 1, 1, 1, 1, 1, 2, 3}, pos = {600, 0, 1, 2, 3, 4, 31, 32};
    const int seqs = 4;
    std::vector<int> tables(seqs * max_blocks);
    std::iota(tables.begin(), tables.end(), 0);
    std::shuffle(tables.begin(), tables.end(), rng_);
    const int T = static_cast<int>(pos.size()), slots = seqs * max_blocks * block;
    const std::vector<bf16> cache = normal_half<bf16>(static_cast<std::size_t>(slots) * width, 1.0f);
    std::vector<float> cache_f(cache.size());
    for (std::size_t i = 0; i < cache.size(); ++i) cache_f[i] = to_float(cache[i]);
    const std::vector<bf16> kv_b = normal_half<bf16>(static_cast<std::size_t>(sh.heads) * (sh.nope + sh.v) * sh.kvr, 0.1f);
    const std::vector<float> q = normal(static_cast<std::size_t>(T) * sh.heads * qk);
    const float scale = 0.07f;

    std::vector<float> q_latent(T * sh.heads * sh.kvr), o_latent(q_latent.size()), want(T * sh.heads * sh.v);
    cpu::mla_absorb_q(q.data(), T, sh.heads, sh.heads * qk, qk, kv_b.data(), sh.nope, sh.v, sh.kvr, q_latent.data());
    cpu::latent_attention(q_latent.data(), q.data() + sh.nope, sh.heads * qk, qk, cache_f.data(), T, sh.heads, sh.kvr,
                          sh.rope, block, seq_of.data(), pos.data(), tables.data(), max_blocks, scale, o_latent.data());
    cpu::mla_expand_v(o_latent.data(), T, sh.heads, kv_b.data(), sh.nope, sh.v, sh.kvr, want.data());

    const float* d_q = dev(q);
    const bf16* d_kv_b = dev(kv_b);
    float* d_q_latent = poisoned<float>(q_latent.size());
    cuda::mla_absorb_q(ctx(), d_q, T, sh.heads, sh.heads * qk, qk, d_kv_b, sh.nope, sh.v, sh.kvr, d_q_latent);
    const std::vector<float> got_latent = host(d_q_latent, q_latent.size());
    for (std::size_t i = 0; i < q_latent.size(); ++i)
      ASSERT_NEAR(got_latent[i], q_latent[i], 1e-3f * (1 + std::fabs(q_latent[i]))) << "q_latent " << i;
    // The expand alone, on the reference's o_latent.
    float* d_out = poisoned<float>(want.size());
    cuda::mla_expand_v(ctx(), dev(o_latent), T, sh.heads, d_kv_b, sh.nope, sh.v, sh.kvr, d_out);
    std::vector<float> got = host(d_out, want.size());
    for (std::size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-3f * (1 + std::fabs(want[i]))) << "expand " << i;
    const int exact = 601;  // the longest context: pos 600 + 1
    // The cuts; `tokens` 1: the first token alone (a batch-1 decode step, its head groups shrunk
    // to cover the SMs: groups of fewer heads than the block has warps).
    struct Cut { int splits; std::int64_t max_context; int tokens = 0; };
    for (const Cut cut : {Cut{1, exact}, Cut{3, exact}, Cut{64, exact}, Cut{0, exact}, Cut{0, 0}, Cut{5, 0},
                          Cut{0, exact, 1}}) {
      if (cut.splits > 1 && sh.kvr % 4 != 0) continue;
      const int tokens = cut.tokens ? cut.tokens : T;
      SCOPED_TRACE("splits " + std::to_string(cut.splits) + ", max_context " + std::to_string(cut.max_context) +
                   ", tokens " + std::to_string(tokens));
      const std::size_t n_latent = static_cast<std::size_t>(tokens) * sh.heads * sh.kvr;
      float* d_o_latent = poisoned<float>(o_latent.size());
      cuda::latent_attention(ctx(), d_q_latent, d_q + sh.nope, sh.heads * qk, qk, dev(cache), tokens, sh.heads, sh.kvr,
                             sh.rope, block, dev(seq_of), dev(pos), dev(tables), max_blocks, scale, d_o_latent,
                             cut.max_context, cut.splits);
      const std::vector<float> got_o = host(d_o_latent, o_latent.size());
      for (std::size_t i = 0; i < n_latent; ++i)
        ASSERT_NEAR(got_o[i], o_latent[i], 1e-3f * (1 + std::fabs(o_latent[i]))) << "o_latent " << i;
      for (std::size_t i = n_latent; i < o_latent.size(); ++i) ASSERT_TRUE(std::isnan(got_o[i])) << "written past the tokens: " << i;
      cuda::mla_expand_v(ctx(), d_o_latent, tokens, sh.heads, d_kv_b, sh.nope, sh.v, sh.kvr, d_out);
      got = host(d_out, want.size());
      for (std::size_t i = 0; i < static_cast<std::size_t>(tokens) * sh.heads * sh.v; ++i)
        EXPECT_NEAR(got[i], want[i], 1e-3f * (1 + std::fabs(want[i]))) << i;
    }
  }
}

// The grid's choice: a batch-1 decode step is spread over the SMs, none of its splits shorter
// than a tile of 32 positions, its head groups shrunk (evenly) until its blocks cover the SMs
// and no further; a batch that fills the GPU is neither split nor shrunk; kv_lora_rank not a
// multiple of 4 is never split (the merge reads 4 floats at a time).
TEST_F(CudaLatentAttentionOps, GridFillsTheGpuWithoutShortSplits) {
  const int sms = ctx().sm_count();
  ASSERT_GT(sms, 64) << "the exact figures below assume a GPU of more than 64 SMs";
  auto grid = [&](std::int64_t tokens, std::int64_t heads, std::int64_t kvr, std::int64_t max_context) {
    const cuda::LatentAttentionGrid g = cuda::latent_attention_grid(ctx(), tokens, heads, kvr, 64, max_context);
    return std::pair<std::int64_t, int>(g.group, g.splits);
  };
  EXPECT_EQ(grid(sms, 16, 512, 4096), std::make_pair(std::int64_t{16}, 1));
  EXPECT_EQ(grid(1, 128, 512, 4096), std::make_pair(std::int64_t{16}, (sms + 7) / 8));  // 8 head groups
  EXPECT_EQ(grid(1, 16, 512, 100), std::make_pair(std::int64_t{1}, 4));  // ceil(100 / 32) splits of single heads
  EXPECT_EQ(grid(1, 16, 18, 4096), std::make_pair(std::int64_t{1}, 1));
  EXPECT_EQ(grid(2, 20, 512, 1 << 20).first, 10);  // two groups of 10, not 16 and 4
  for (const std::int64_t tokens : {1, 2, 4, 8, 32})
    for (const std::int64_t heads : {16, 128})
      for (const std::int64_t context : {64, 256, 1024, 4096}) {
        SCOPED_TRACE(std::to_string(tokens) + " tokens, " + std::to_string(heads) + " heads, context " +
                     std::to_string(context));
        const auto [group, splits] = grid(tokens, heads, 512, context);
        const std::int64_t most = std::min<std::int64_t>(context / 32, 64), head_blocks = (heads + group - 1) / group;
        EXPECT_EQ(group, (heads + head_blocks - 1) / head_blocks);  // spread evenly
        EXPECT_TRUE(splits >= 1 && splits <= most);
        EXPECT_TRUE(tokens * head_blocks * splits >= sms || group == 1);
        if (head_blocks > (heads + 15) / 16) {  // the next larger groups would leave SMs idle
          const std::int64_t larger = (heads + head_blocks - 2) / (head_blocks - 1);
          const std::int64_t blocks = tokens * ((heads + larger - 1) / larger);
          EXPECT_LT(blocks * std::min<std::int64_t>((sms + blocks - 1) / blocks, most), sms);
        }
      }
  EXPECT_EQ(cuda::latent_head_group(128, 576, 76224), 16);  // exactly what 16 heads take
  EXPECT_EQ(cuda::latent_head_group(128, 576, 76223), 15);
  EXPECT_EQ(cuda::latent_head_group(3, 576, 1 << 20), 3);
  // 48 KB: the slots (256 bytes), 32 rows of 576 (36 KB) and the scores (2.2 KB) leave room
  // for the q rows of 4 heads (2304 bytes each).
  EXPECT_EQ(cuda::latent_head_group(128, 576, 48 * 1024), 4);
}

}  // namespace
}  // namespace lockstep
