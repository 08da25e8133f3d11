// Nano-batched decode (kernels/nano_batch_streams.h) on a GPU: a decode step split into two
// halves that run side by side on their own streams must give the logits the whole step gives
// on one stream, step after step (the halves write the same KV cache and read each other's
// earlier positions through it). On the tiny fixtures (one with a q|k|v bias, one with q/k
// norms), with graphs on: steps of more sequences than a graph takes run eager, so split.
// Runs under mpirun -np 1 --backend=nccl on a GPU host; skips elsewhere (CI compiles it).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "comm/comm_groups.h"
#include "model/cuda_dense_transformer.h"
#include "model/safetensors_reader.h"
#include "tests/mpi_test_env.h"
#include "tests/stage_under_test.h"

namespace lockstep {
namespace {

constexpr int kSeqs = 96, kPrompt = 5, kDecodes = 4, kBlockSize = 4;
constexpr int kMaxBlocks = (kPrompt + kDecodes + kBlockSize - 1) / kBlockSize;

std::unique_ptr<CudaDenseTransformer> make_model(const ModelConfig& c, const WeightSource& w, CommGroups& groups,
                                                 const RankGrid& grid, const char* nano_tokens) {
  setenv("LOCKSTEP_NANO_BATCH_TOKENS", nano_tokens, 1);
  auto m = std::make_unique<CudaDenseTransformer>(c, w, groups.tp(), groups.pp(), LayerRange{0, c.num_hidden_layers},
                                                  grid.gpu(), kBlockSize, /*cuda_graphs=*/true);
  unsetenv("LOCKSTEP_NANO_BATCH_TOKENS");
  m->allocate_kv_cache(kSeqs * kMaxBlocks);
  return m;
}

void expect_nano_batches_match(const std::string& name) {
  SCOPED_TRACE(name);
  const std::string dir = std::string(LOCKSTEP_FIXTURES_DIR) + "/" + name;
  const ModelConfig config = ModelConfig::from_dir(dir);
  RankGrid grid(testing::mpi_env(), {1, 1});
  CommGroups groups(grid, testing::test_backend());
  SafetensorsCheckpoint ckpt(dir);
  CheckpointWeights weights(ckpt);
  auto whole = make_model(config, weights, groups, grid, "0");
  auto split = make_model(config, weights, groups, grid, "65");  // any eager decode step
  ASSERT_EQ(whole->nano_batched_steps(), 0);

  // Every sequence's blocks, interleaved as a block manager hands them out step by step.
  std::vector<int> tables(kSeqs * kMaxBlocks);
  for (int s = 0; s < kSeqs; ++s)
    for (int b = 0; b < kMaxBlocks; ++b) tables[s * kMaxBlocks + b] = b * kSeqs + s;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> token(0, config.vocab_size - 1);
  ForwardBatch prefill;
  prefill.block_tables = tables, prefill.max_blocks = kMaxBlocks;
  for (int s = 0; s < kSeqs; ++s) {
    for (int p = 0; p < kPrompt; ++p) {
      prefill.token_ids.push_back(token(rng));
      prefill.positions.push_back(p);
      prefill.seq_of_token.push_back(s);
    }
    prefill.logit_rows.push_back(s * kPrompt + kPrompt - 1);
  }
  std::vector<int> next = whole->forward_argmax(prefill);
  ASSERT_EQ(split->forward_argmax(prefill), next);

  for (int step = 0; step < kDecodes; ++step) {
    ForwardBatch decode;
    decode.block_tables = tables, decode.max_blocks = kMaxBlocks;
    decode.token_ids = next;
    for (int s = 0; s < kSeqs; ++s) {
      decode.positions.push_back(kPrompt + step);
      decode.seq_of_token.push_back(s);
      decode.logit_rows.push_back(s);
    }
    const std::span<const float> a = whole->forward(decode);
    const std::vector<float> want(a.begin(), a.end());
    const std::span<const float> got = split->forward(decode);
    ASSERT_EQ(got.size(), want.size());
    float worst = 0, scale = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      worst = std::max(worst, std::abs(got[i] - want[i]));
      scale = std::max(scale, std::abs(want[i]));
    }
    // The halves' GEMMs have half the rows, which may change cuBLASLt's algorithm and so the
    // fp32 sums' order: rounding-level differences only. A half reading the wrong rows, the
    // wrong cache positions or a buffer the other half has not written gives differences of
    // the logits' own size.
    EXPECT_LE(worst, 1e-3f * std::max(scale, 1.0f)) << "decode step " << step;
    EXPECT_GT(scale, 0.0f);
    next.assign(kSeqs, 0);
    for (int s = 0; s < kSeqs; ++s)
      next[s] = static_cast<int>(std::max_element(want.begin() + s * config.vocab_size,
                                                  want.begin() + (s + 1) * config.vocab_size) -
                                 want.begin() - s * config.vocab_size);
  }
  EXPECT_EQ(split->nano_batched_steps(), kDecodes) << "every decode step should have been split";
  EXPECT_EQ(whole->nano_batched_steps(), 0);
}

TEST(NanoBatch, Qwen2SplitDecodeStepsMatchTheWholeStep) {
  if (!testing::on_gpu()) GTEST_SKIP() << "needs a GPU (--backend=nccl)";
  expect_nano_batches_match("qwen2-tiny");
}

TEST(NanoBatch, Qwen3SplitDecodeStepsMatchTheWholeStep) {
  if (!testing::on_gpu()) GTEST_SKIP() << "needs a GPU (--backend=nccl)";
  expect_nano_batches_match("qwen3-tiny");
}

}  // namespace
}  // namespace lockstep
