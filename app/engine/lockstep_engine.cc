// LockstepEngine (see lockstep_engine.h).
#include "app/engine/lockstep_engine.h"

#include <algorithm>
#include <span>

#include "comm/host_broadcast.h"
#include "comm/mpi_check.h"
#include "kernels/fatal.h"
#include "kernels/log.h"

namespace lockstep {

std::uint64_t sample_seed(std::uint64_t request_seed, int position) {
  std::uint64_t h = request_seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(position) + 1;
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}

LockstepEngine::LockstepEngine(const RankGrid& grid, ForwardModel& model, Scheduler* scheduler, std::uint64_t seed,
                               double step_timeout_s)
    : grid_(grid),
      model_(model),
      scheduler_(scheduler),
      seed_(seed),
      depth_(grid.layout().pp),
      sampler_rank_(world_rank_of(grid.layout(), 0, grid.layout().pp - 1)),
      watchdog_(step_timeout_s) {
  LS_CHECK((grid.world_rank() == 0) == (scheduler != nullptr), "rank 0, and only rank 0, owns the scheduler");
  if (scheduler_) scheduler_->set_pipeline_depth(depth_);
}

namespace {
constexpr int kSampledTag = 7;
}

StepPlan LockstepEngine::build_plan(const std::vector<ScheduledChunk>& chunks) {
  StepPlan p;
  p.step_id = ++step_id_;
  ForwardBatch& b = p.batch;
  std::size_t tokens = 0;
  for (const ScheduledChunk& c : chunks) {
    b.max_blocks = std::max<int>(b.max_blocks, c.seq->blocks.size());
    tokens += static_cast<std::size_t>(c.count);
  }
  // Sized once: at 1024 sequences the tables alone are ~0.5 MB a step.
  b.block_tables.reserve(chunks.size() * static_cast<std::size_t>(b.max_blocks));
  b.token_ids.reserve(tokens), b.positions.reserve(tokens), b.seq_of_token.reserve(tokens);
  p.sampling.reserve(chunks.size()), p.sample_seeds.reserve(chunks.size()), b.logit_rows.reserve(chunks.size());
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const ScheduledChunk& c = chunks[i];
    b.block_tables.insert(b.block_tables.end(), c.seq->blocks.begin(), c.seq->blocks.end());
    b.block_tables.resize(b.block_tables.size() + static_cast<std::size_t>(b.max_blocks) - c.seq->blocks.size(), 0);
    const int first_token = static_cast<int>(b.token_ids.size());
    for (int t = c.start; t < c.start + c.count; ++t) {
      b.token_ids.push_back(c.seq->tokens[t]);
      b.positions.push_back(t);
      b.seq_of_token.push_back(static_cast<int>(i));
    }
    // Prompt logprobs: position t's row scores prompt token t + 1 (no draw, no penalties).
    const int prompt_rows = c.seq->prompt_rows(c.start, c.count);
    for (int k = 0; k < prompt_rows; ++k) {
      if (p.forced_ids.empty()) p.forced_ids.assign(p.sampling.size(), -1);
      b.logit_rows.push_back(first_token + k);
      SamplingParams score = c.seq->sampling;
      score.logprobs = score.prompt_logprobs;
      score.logit_bias.clear();
      score.repetition_penalty = 1.0f, score.frequency_penalty = 0.0f, score.presence_penalty = 0.0f;
      p.sampling.push_back(std::move(score));
      p.forced_ids.push_back(c.seq->tokens[c.start + k + 1]);
      p.sample_seeds.push_back(0);
      if (!p.history_offsets.empty()) {
        p.history_prompt_len.push_back(0);
        p.history_offsets.push_back(static_cast<std::int64_t>(p.history.size()));
      }
    }
    if (c.sample) {
      b.logit_rows.push_back(static_cast<int>(b.token_ids.size()) - 1);
      p.sampling.push_back(c.seq->sampling);
      if (!p.forced_ids.empty()) p.forced_ids.push_back(-1);
      if (c.seq->sampling.has_penalties()) {
        if (p.history_offsets.empty()) p.history_offsets.assign(p.sampling.size(), 0);
        p.history_prompt_len.resize(p.sampling.size() - 1, 0);
        p.history.insert(p.history.end(), c.seq->tokens.begin(), c.seq->tokens.end());
        p.history_prompt_len.push_back(c.seq->prompt_len);
      } else if (!p.history_offsets.empty()) {
        p.history_prompt_len.push_back(0);
      }
      if (!p.history_offsets.empty()) p.history_offsets.push_back(static_cast<std::int64_t>(p.history.size()));
      const std::uint64_t request_seed = c.seq->sampling.seed ? *c.seq->sampling.seed : seed_ ^ (c.seq->id << 1);
      p.sample_seeds.push_back(sample_seed(request_seed, static_cast<int>(c.seq->tokens.size())));
    }
  }
  return p;
}

std::vector<LockstepEngine::SampledRow> LockstepEngine::run_stage(const StepPlan& plan) {
  const int rows = static_cast<int>(plan.batch.logit_rows.size());
  std::vector<SampledRow> out(rows);
  // Every rank decides the same from the plan. Rows that are only drawn (no penalties, logit
  // bias or logprobs) need no logits on the host: all greedy, each row's argmax; else the
  // model's forward_sample, which may draw them where the logits are.
  const auto only_drawn = [](const SamplingParams& sp) {
    return !sp.has_penalties() && sp.logprobs < 0 && sp.logit_bias.empty();
  };
  const bool scores_prompts = !plan.forced_ids.empty();  // prompt rows need their logits on the host
  const bool argmax_only = !scores_prompts && std::all_of(plan.sampling.begin(), plan.sampling.end(),
                                                          [&](const SamplingParams& sp) { return sp.greedy() && only_drawn(sp); });
  const bool draws_only = !scores_prompts && std::all_of(plan.sampling.begin(), plan.sampling.end(), only_drawn);
  if (argmax_only || draws_only) {
    std::vector<int> ids;
    if (argmax_only) {
      ids = model_.forward_argmax(plan.batch);
    } else {
      std::vector<RowSampling> draws(rows);
      for (int r = 0; r < rows; ++r) {  // the uniform sample_token would draw from the row's seed
        const SamplingParams& sp = plan.sampling[r];
        draws[r] = {sp.temperature, sp.top_k, sp.top_p, sp.min_p,
                    sp.greedy() ? 0.0 : SamplerRng(plan.sample_seeds[r]).uniform()};
      }
      ids = model_.forward_sample(plan.batch, draws);
    }
    if (grid_.last_stage()) {
      for (int r = 0; r < rows; ++r) out[r].id = ids[r];
      send_sampled(out);
    }
    return out;
  }
  const std::span<const float> logits = model_.forward(plan.batch);
  if (grid_.last_stage()) {
    const int V = model_.config().vocab_size;
    // Rows are independent (each has its own seed), so big batches sample on several threads.
    auto sample_rows = [&](int begin, int end) {
      std::vector<float> penalised;
      for (int r = begin; r < end; ++r) {
        const SamplingParams& sp = plan.sampling[r];
        const float* raw = &logits[static_cast<std::size_t>(r) * V];
        if (scores_prompts && plan.forced_ids[r] >= 0) {  // a prompt row: its next token's logprobs
          out[r].id = plan.forced_ids[r];
          out[r].logprobs = token_logprobs(raw, V, out[r].id, sp.logprobs);
          continue;
        }
        const float* row = raw;
        const bool penalties = sp.has_penalties() && !plan.history_offsets.empty();
        if (penalties || !sp.logit_bias.empty()) {
          penalised.assign(raw, raw + V);
          for (const auto& [id, bias] : sp.logit_bias) penalised[id] += bias;  // ids checked against the vocabulary
          if (penalties) {
            const int* h = plan.history.data() + plan.history_offsets[r];
            const auto n = static_cast<std::size_t>(plan.history_offsets[r + 1] - plan.history_offsets[r]);
            const auto prompt = static_cast<std::size_t>(plan.history_prompt_len[r]);
            apply_penalties(penalised.data(), V, sp, {h, prompt}, {h + prompt, n - prompt});
          }
          row = penalised.data();
        }
        SamplerRng rng(plan.sample_seeds[r]);
        out[r].id = sample_token(row, V, sp, rng);
        if (sp.logprobs >= 0) out[r].logprobs = token_logprobs(raw, V, out[r].id, sp.logprobs);
      }
    };
    for_rows_in_parallel(rows, sample_rows);
    send_sampled(out);
  }
  return out;
}

void LockstepEngine::send_sampled(const std::vector<SampledRow>& rows) {
  if (grid_.tp_rank() == 0 && sampler_rank_ != 0)
    LS_MPI_CHECK(MPI_Send(rows.data(), static_cast<int>(rows.size() * sizeof(SampledRow)), MPI_BYTE, 0, kSampledTag,
                          MPI_COMM_WORLD));
}

void LockstepEngine::issue(std::vector<ScheduledChunk> chunks) {
  const auto begin = HostStepClock::Clock::now();
  const StepPlan plan = build_plan(chunks);
  if (grid_.world_size() > 1) {  // alone, no rank follows: nothing to send
    std::vector<std::uint8_t> bytes = plan.serialize();
    broadcast_bytes(bytes, 0, MPI_COMM_WORLD);
  }
  const auto planned = HostStepClock::Clock::now();
  host_clock_.add(HostStepClock::kPlan, planned - begin);
  InFlight f;
  f.chunks = std::move(chunks);
  const int rows = static_cast<int>(plan.batch.logit_rows.size());
  if (sampler_rank_ != 0) {
    // Posted before this rank's own stage runs, so the last stage's send never waits on us.
    f.rows.resize(rows);
    LS_MPI_CHECK(MPI_Irecv(f.rows.data(), static_cast<int>(rows * sizeof(SampledRow)), MPI_BYTE, sampler_rank_,
                           kSampledTag, MPI_COMM_WORLD, &f.arrival));
    run_stage(plan);
  } else {
    f.rows = run_stage(plan);
  }
  host_clock_.add(HostStepClock::kStage, HostStepClock::Clock::now() - planned);
  in_flight_.push_back(std::move(f));
  max_in_flight_ = std::max(max_in_flight_, static_cast<int>(in_flight_.size()));
}

StepOutput LockstepEngine::retire() {
  InFlight f = std::move(in_flight_.front());
  in_flight_.pop_front();
  if (f.arrival != MPI_REQUEST_NULL) LS_MPI_CHECK(MPI_Wait(&f.arrival, MPI_STATUS_IGNORE));
  const std::vector<ScheduledChunk>& chunks = f.chunks;
  std::vector<int> sampled(chunks.size(), -1);
  StepOutput out;
  for (std::size_t i = 0, row = 0; i < chunks.size(); ++i) {
    Sequence& seq = *chunks[i].seq;
    const int prompt_rows = seq.prompt_rows(chunks[i].start, chunks[i].count);
    if (prompt_rows > 0 && seq.prompt_logprobs.empty()) seq.prompt_logprobs.resize(seq.prompt_len);
    for (int k = 0; k < prompt_rows; ++k) seq.prompt_logprobs[chunks[i].start + k + 1] = f.rows[row++].logprobs;
    if (chunks[i].sample) {
      const SampledRow& s = f.rows[row++];
      sampled[i] = s.id;
      if (seq.abort_requested) continue;  // aborted while in flight: no token
      TokenEvent e{seq.id, s.id, FinishReason::None, std::nullopt, {}};
      if (seq.sampling.logprobs >= 0) e.logprobs = s.logprobs;
      if (seq.sampling.prompt_logprobs >= 0 && !seq.prompt_logprobs_sent) {
        seq.prompt_logprobs.resize(seq.prompt_len);  // a one-token prompt has no row
        e.prompt_logprobs = seq.prompt_logprobs;
        seq.prompt_logprobs_sent = true;
      }
      out.tokens.push_back(std::move(e));
    }
  }
  out.finished = scheduler_->complete(chunks, sampled);
  for (const auto& fin : out.finished)
    for (TokenEvent& e : out.tokens)
      if (e.id == fin->id) e.finish = fin->finish;
  return out;
}



StepOutput LockstepEngine::step() {
  LS_CHECK(scheduler_, "step() runs on rank 0");
  StepWatchdog::Armed armed(watchdog_, step_id_ + 1);  // scheduling, this rank's stages, the tokens' return
  using Clock = HostStepClock::Clock;
  auto t = Clock::now();
  host_clock_.step_begins(t);
  auto lap = [&](HostStepClock::Phase phase) {
    const auto now = Clock::now();
    host_clock_.add(phase, now - t);
    t = now;
  };
  while (static_cast<int>(in_flight_.size()) < depth_) {
    std::vector<ScheduledChunk> chunks = scheduler_->schedule();
    lap(HostStepClock::kSchedule);
    if (chunks.empty()) break;
    issue(std::move(chunks));  // adds its plan and stage laps itself
    t = Clock::now();
  }
  if (in_flight_.empty()) return {};
  StepOutput out = retire();
  lap(HostStepClock::kRetire);
  host_clock_.step_done(t);
  return out;
}

void LockstepEngine::shutdown() {
  if (host_clock_.steps() > 0) LS_DEBUG(host_clock_.summary());
  {
    StepWatchdog::Armed armed(watchdog_, step_id_);
    while (!in_flight_.empty()) retire();
  }
  StepPlan p;
  p.step_id = ++step_id_;
  p.flags = StepPlan::kShutdown;
  std::vector<std::uint8_t> bytes = p.serialize();
  broadcast_bytes(bytes, 0, MPI_COMM_WORLD);
}

void LockstepEngine::run_follower() {
  for (;;) {
    std::vector<std::uint8_t> bytes;
    broadcast_bytes(bytes, 0, MPI_COMM_WORLD);
    StepPlan plan;
    try {
      plan = StepPlan::deserialize(bytes);
    } catch (const std::exception& e) {
      LS_FATAL("step plan " << step_id_ + 1 << " from rank 0 is malformed: " << e.what());
    }
    LS_CHECK(plan.step_id == step_id_ + 1, "step plan " << plan.step_id << " arrived, expected " << step_id_ + 1);
    step_id_ = plan.step_id;
    if (plan.flags & StepPlan::kShutdown) return;
    StepWatchdog::Armed armed(watchdog_, plan.step_id);  // not while waiting for a plan: the server may idle
    run_stage(plan);
  }
}

}  // namespace lockstep
