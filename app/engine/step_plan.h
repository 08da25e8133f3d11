// What every rank executes in one lock-step engine step, as rank 0's scheduler decided it:
// the forward batch (tokens, positions, block tables, rows to sample) and how to sample each
// row. Serialised to one flat byte buffer and broadcast over MPI every step.
#pragma once

#include <cstdint>
#include <vector>

#include "model/dense_transformer.h"
#include "model/sampler.h"

namespace lockstep {

struct StepPlan {
  static constexpr std::uint32_t kShutdown = 1;  // every rank leaves its loop after this plan

  std::uint64_t step_id = 0;
  std::uint32_t flags = 0;
  ForwardBatch batch;
  // One per batch.logit_rows entry. On the wire the fixed fields go as one record per row and the
  // rows' logit_bias entries flattened after the histories (offsets, ids, values; none when no
  // row has a bias).
  std::vector<SamplingParams> sampling;
  std::vector<std::uint64_t> sample_seeds;  // one per row: the draw's seed (request seed + position)
  // One per row, or empty when no row is forced: >= 0, a prompt row's next token, whose
  // log-probability the row reports instead of drawing (prompt logprobs); -1, a drawn row.
  std::vector<int> forced_ids;
  // Rows with penalties carry their sequence (prompt then output) so the last stage can count;
  // row r's tokens are history[history_offsets[r] .. history_offsets[r + 1]).
  std::vector<int> history;
  std::vector<std::int64_t> history_offsets;  // rows + 1 entries (empty when no row has penalties)
  std::vector<int> history_prompt_len;        // one per row

  std::vector<std::uint8_t> serialize() const;
  // Throws std::runtime_error on a truncated or malformed buffer.
  static StepPlan deserialize(const std::vector<std::uint8_t>& bytes);
};

}  // namespace lockstep
