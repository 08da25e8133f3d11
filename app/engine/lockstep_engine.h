// The lock-step loop every rank runs. Rank 0 schedules, broadcasts the step plan, and takes
// back the sampled tokens; every rank runs its stage of the forward pass for the same plan;
// the last stage samples (all its TP ranks hold the full logits and draw identically from
// per-token seeds) and its TP-0 rank sends the tokens to rank 0. A rank that sees a step id
// out of order ends the job.
// With PP > 1, up to PP plans are in flight: rank 0 (stage 0) broadcasts the next plan and
// runs its stage while later stages still compute earlier plans, and takes each plan's tokens
// back in order. Every stage executes plans in step order, so a KV block written by one plan
// is in place before any later plan reads it.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "app/engine/host_step_clock.h"
#include "app/engine/scheduler.h"
#include "app/engine/step_plan.h"
#include "app/engine/step_watchdog.h"
#include "comm/rank_grid.h"
#include "model/forward_model.h"

namespace lockstep {

// A token a step produced for a request, and whether the request ended with it.
struct TokenEvent {
  std::uint64_t id = 0;
  int token = 0;
  FinishReason finish = FinishReason::None;
  std::optional<TokenLogprobs> logprobs;  // when the request asked for them
  // With the first token of a request that asked for prompt logprobs: one entry per prompt
  // token, entry 0 (no context) unused.
  std::vector<TokenLogprobs> prompt_logprobs;
};

struct StepOutput {
  std::vector<TokenEvent> tokens;
  std::vector<std::unique_ptr<Sequence>> finished;
};

class LockstepEngine {
 public:
  // `scheduler` is rank 0's (nullptr elsewhere). A step that runs longer than step_timeout_s
  // seconds ends the job (StepWatchdog; 0: never).
  LockstepEngine(const RankGrid& grid, ForwardModel& model, Scheduler* scheduler, std::uint64_t seed = 0,
                 double step_timeout_s = 0);

  // Rank 0: issues plans until PP are in flight (or the scheduler has nothing more), then
  // completes the oldest: the tokens it produced and the sequences it finished. Empty when
  // there is no work.
  StepOutput step();
  // Rank 0: completes the plans in flight (their tokens are dropped), then tells every other
  // rank to leave run_follower().
  void shutdown();
  // Ranks other than 0: execute plans until the shutdown plan arrives.
  void run_follower();

  std::uint64_t steps() const { return step_id_; }
  int plans_in_flight() const { return static_cast<int>(in_flight_.size()); }
  int max_plans_in_flight() const { return max_in_flight_; }

 private:
  StepPlan build_plan(const std::vector<ScheduledChunk>& chunks);
  // What the last stage sends rank 0 for each sampled row.
  struct SampledRow {
    std::int32_t id = 0;
    TokenLogprobs logprobs;
  };
  // Every rank: its stage of the plan. The last stage samples; its TP-0 rank returns the rows
  // and, unless it is rank 0, sends them to rank 0 (tag kSampledTag).
  std::vector<SampledRow> run_stage(const StepPlan& plan);
  void send_sampled(const std::vector<SampledRow>& rows);  // the last stage's TP-0 rank, to rank 0
  // Rank 0: one plan on its way, and where its sampled rows arrive.
  struct InFlight {
    std::vector<ScheduledChunk> chunks;
    std::vector<SampledRow> rows;
    MPI_Request arrival = MPI_REQUEST_NULL;
  };
  void issue(std::vector<ScheduledChunk> chunks);
  StepOutput retire();
  HostStepClock host_clock_;  // rank 0's host time a step, logged at shutdown (debug)

  const RankGrid& grid_;
  ForwardModel& model_;
  Scheduler* scheduler_;
  std::uint64_t seed_;
  std::uint64_t step_id_ = 0;
  int depth_ = 1;  // plans in flight at most: PP
  int sampler_rank_ = 0;
  std::deque<InFlight> in_flight_;
  int max_in_flight_ = 0;
  StepWatchdog watchdog_;  // armed while a step runs; declared last, so its thread stops first
};

// The seed of the draw at `position` of a request: stateless, so preemption, recompute and
// any rank reproduce it.
std::uint64_t sample_seed(std::uint64_t request_seed, int position);

}  // namespace lockstep
