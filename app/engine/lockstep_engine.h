// The lock-step loop every rank runs. Rank 0 schedules, broadcasts the step plan, and takes
// back the sampled tokens; every rank runs its stage of the forward pass for the same plan;
// the last stage samples (all its TP ranks hold the full logits and draw identically from
// per-token seeds) and its TP-0 rank sends the tokens to rank 0. A rank that sees a step id
// out of order ends the job.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "app/engine/scheduler.h"
#include "app/engine/step_plan.h"
#include "comm/rank_grid.h"
#include "model/dense_transformer.h"

namespace lockstep {

// A token a step produced for a request, and whether the request ended with it.
struct TokenEvent {
  std::uint64_t id = 0;
  int token = 0;
  FinishReason finish = FinishReason::None;
  std::optional<TokenLogprobs> logprobs;  // when the request asked for them
};

struct StepOutput {
  std::vector<TokenEvent> tokens;
  std::vector<std::unique_ptr<Sequence>> finished;
};

class LockstepEngine {
 public:
  // `scheduler` is rank 0's (nullptr elsewhere).
  LockstepEngine(const RankGrid& grid, DenseTransformer& model, Scheduler* scheduler, std::uint64_t seed = 0);

  // Rank 0: one step if there is work: the tokens it produced and the sequences it finished.
  StepOutput step();
  // Rank 0: tells every other rank to leave run_follower().
  void shutdown();
  // Ranks other than 0: execute plans until the shutdown plan arrives.
  void run_follower();

  std::uint64_t steps() const { return step_id_; }

 private:
  StepPlan build_plan(const std::vector<ScheduledChunk>& chunks);
  // What the last stage sends rank 0 for each sampled row.
  struct SampledRow {
    std::int32_t id = 0;
    TokenLogprobs logprobs;
  };
  std::vector<SampledRow> execute(const StepPlan& plan);  // every rank; rank 0 gets the sampled rows

  const RankGrid& grid_;
  DenseTransformer& model_;
  Scheduler* scheduler_;
  std::uint64_t seed_;
  std::uint64_t step_id_ = 0;
};

// The seed of the draw at `position` of a request: stateless, so preemption, recompute and
// any rank reproduce it.
std::uint64_t sample_seed(std::uint64_t request_seed, int position);

}  // namespace lockstep
