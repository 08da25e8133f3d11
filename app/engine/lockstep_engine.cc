// LockstepEngine (see lockstep_engine.h).
#include "app/engine/lockstep_engine.h"

#include <algorithm>

#include "comm/host_broadcast.h"
#include "comm/mpi_check.h"
#include "kernels/fatal.h"

namespace lockstep {

std::uint64_t sample_seed(std::uint64_t request_seed, int position) {
  std::uint64_t h = request_seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(position) + 1;
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}

LockstepEngine::LockstepEngine(const RankGrid& grid, DenseTransformer& model, Scheduler* scheduler, std::uint64_t seed)
    : grid_(grid), model_(model), scheduler_(scheduler), seed_(seed) {
  LS_CHECK((grid.world_rank() == 0) == (scheduler != nullptr), "rank 0, and only rank 0, owns the scheduler");
}

StepPlan LockstepEngine::build_plan(const std::vector<ScheduledChunk>& chunks) {
  StepPlan p;
  p.step_id = ++step_id_;
  ForwardBatch& b = p.batch;
  for (const ScheduledChunk& c : chunks) b.max_blocks = std::max<int>(b.max_blocks, c.seq->blocks.size());
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const ScheduledChunk& c = chunks[i];
    std::vector<int> table = c.seq->blocks;
    table.resize(b.max_blocks, 0);
    b.block_tables.insert(b.block_tables.end(), table.begin(), table.end());
    for (int t = c.start; t < c.start + c.count; ++t) {
      b.token_ids.push_back(c.seq->tokens[t]);
      b.positions.push_back(t);
      b.seq_of_token.push_back(static_cast<int>(i));
    }
    if (c.sample) {
      b.logit_rows.push_back(static_cast<int>(b.token_ids.size()) - 1);
      p.sampling.push_back(c.seq->sampling);
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

std::vector<LockstepEngine::SampledRow> LockstepEngine::execute(const StepPlan& plan) {
  const std::vector<float> logits = model_.forward(plan.batch);
  const int rows = static_cast<int>(plan.batch.logit_rows.size());
  std::vector<SampledRow> out(rows);
  const int sampler_rank = world_rank_of(grid_.layout(), 0, grid_.layout().pp - 1);
  if (grid_.last_stage()) {
    const int V = model_.config().vocab_size;
    std::vector<float> penalised;
    for (int r = 0; r < rows; ++r) {
      const SamplingParams& sp = plan.sampling[r];
      const float* raw = &logits[static_cast<std::size_t>(r) * V];
      const float* row = raw;
      if (sp.has_penalties() && !plan.history_offsets.empty()) {
        const int* h = plan.history.data() + plan.history_offsets[r];
        const auto n = static_cast<std::size_t>(plan.history_offsets[r + 1] - plan.history_offsets[r]);
        const auto prompt = static_cast<std::size_t>(plan.history_prompt_len[r]);
        penalised.assign(raw, raw + V);
        apply_penalties(penalised.data(), V, sp, {h, prompt}, {h + prompt, n - prompt});
        row = penalised.data();
      }
      SamplerRng rng(plan.sample_seeds[r]);
      out[r].id = sample_token(row, V, sp, rng).id;
      if (sp.logprobs >= 0) out[r].logprobs = token_logprobs(raw, V, out[r].id, sp.logprobs);
    }
    if (grid_.tp_rank() == 0 && sampler_rank != 0)
      LS_MPI_CHECK(MPI_Send(out.data(), static_cast<int>(rows * sizeof(SampledRow)), MPI_BYTE, 0, 7, MPI_COMM_WORLD));
  }
  if (grid_.world_rank() == 0 && sampler_rank != 0)
    LS_MPI_CHECK(MPI_Recv(out.data(), static_cast<int>(rows * sizeof(SampledRow)), MPI_BYTE, sampler_rank, 7,
                          MPI_COMM_WORLD, MPI_STATUS_IGNORE));
  return out;
}

StepOutput LockstepEngine::step() {
  LS_CHECK(scheduler_, "step() runs on rank 0");
  const std::vector<ScheduledChunk> chunks = scheduler_->schedule();
  if (chunks.empty()) return {};
  const StepPlan plan = build_plan(chunks);
  std::vector<std::uint8_t> bytes = plan.serialize();
  broadcast_bytes(bytes, 0, MPI_COMM_WORLD);
  const std::vector<SampledRow> sampled_rows = execute(plan);
  std::vector<int> sampled(chunks.size(), -1);
  StepOutput out;
  for (std::size_t i = 0, row = 0; i < chunks.size(); ++i)
    if (chunks[i].sample) {
      const SampledRow& s = sampled_rows[row++];
      sampled[i] = s.id;
      TokenEvent e{chunks[i].seq->id, s.id, FinishReason::None, std::nullopt};
      if (chunks[i].seq->sampling.logprobs >= 0) e.logprobs = s.logprobs;
      out.tokens.push_back(std::move(e));
    }
  out.finished = scheduler_->complete(chunks, sampled);
  for (const auto& f : out.finished)
    for (TokenEvent& e : out.tokens)
      if (e.id == f->id) e.finish = f->finish;
  return out;
}

void LockstepEngine::shutdown() {
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
    execute(plan);
  }
}

}  // namespace lockstep
