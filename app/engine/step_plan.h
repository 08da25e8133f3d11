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
  std::vector<SamplingParams> sampling;     // one per batch.logit_rows entry
  std::vector<std::uint64_t> sample_seeds;  // one per row: the draw's seed (request seed + position)
  // Rows with penalties carry their sequence (prompt then output) so the last stage can count;
  // row r's tokens are history[history_offsets[r] .. history_offsets[r + 1]).
  std::vector<int> history;
  std::vector<std::int64_t> history_offsets;  // rows + 1 entries (empty when no row has penalties)
  std::vector<int> history_prompt_len;        // one per row
  // Rows' logit_bias entries travel flattened beside the fixed-size sampling fields: row r's are
  // [bias_offsets[r], bias_offsets[r + 1]) of bias_ids / bias_values (offsets empty: none).

  std::vector<std::uint8_t> serialize() const;
  // Throws std::runtime_error on a truncated or malformed buffer.
  static StepPlan deserialize(const std::vector<std::uint8_t>& bytes);
};

}  // namespace lockstep
