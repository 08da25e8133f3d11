// Helpers shared by the forward-pass stages (see forward_model.h).
#include "model/forward_model.h"

#include <algorithm>

#include "kernels/dense_ops.h"
#include "kernels/fatal.h"
#include "model/sampler.h"

namespace lockstep {

std::vector<std::int64_t> kv_cache_slots(const ForwardBatch& b, int block_size, int num_blocks) {
  std::vector<std::int64_t> slots(b.token_ids.size());
  for (std::size_t t = 0; t < slots.size(); ++t) {
    const int p = b.positions[t];
    const int block = b.block_tables[static_cast<std::int64_t>(b.seq_of_token[t]) * b.max_blocks + p / block_size];
    LS_CHECK(block >= 0 && block < num_blocks, "token " << t << " maps to KV block " << block);
    slots[t] = static_cast<std::int64_t>(block) * block_size + p % block_size;
  }
  return slots;
}

void assemble_vocab_parallel_logits(const float* gathered, int tp, std::int64_t rows, std::int64_t vocab_rows,
                                    std::int64_t vocab, float* logits) {
  for (int r = 0; r < tp; ++r) {
    const std::int64_t cols = std::min(vocab_rows, vocab - r * vocab_rows);
    if (cols <= 0) continue;
    for (std::int64_t i = 0; i < rows; ++i)
      std::copy_n(gathered + (r * rows + i) * vocab_rows, cols, logits + i * vocab + r * vocab_rows);
  }
}

std::vector<int> ForwardModel::forward_sample(const ForwardBatch& batch, std::span<const RowSampling> rows) {
  const std::span<const float> logits = forward(batch);
  if (logits.empty()) return {};
  const int vocab = config().vocab_size;
  std::vector<int> ids(rows.size());
  for_rows_in_parallel(static_cast<int>(rows.size()), [&](int begin, int end) {
    for (int r = begin; r < end; ++r) {
      SamplingParams p;
      p.temperature = rows[r].temperature, p.top_k = rows[r].top_k, p.top_p = rows[r].top_p, p.min_p = rows[r].min_p;
      ids[r] = sample_token(&logits[static_cast<std::size_t>(r) * vocab], vocab, p, rows[r].u);
    }
  });
  return ids;
}

std::vector<int> ForwardModel::forward_argmax(const ForwardBatch& batch) {
  const std::span<const float> logits = forward(batch);
  if (logits.empty()) return {};  // not the last stage, or no rows
  std::vector<int> ids(batch.logit_rows.size());
  cpu::argmax(logits.data(), static_cast<std::int64_t>(ids.size()), config().vocab_size, ids.data());
  return ids;
}

}  // namespace lockstep
