// Continuous batching with chunked prefill (vLLM's policy): every step first advances the
// running sequences — decodes take one token, unfinished prefills take the next chunk — then
// admits waiting ones while the token budget (--max-num-batched-tokens), the sequence limit
// (--max-num-seqs) and free KV blocks allow. When a running sequence needs a block and none
// is free, the newest running sequence is preempted: its blocks are freed and it goes back to
// the front of the queue to be recomputed (its prefix may still be cached).
// With pipeline parallelism several plans are in flight at once (one per stage): a sequence in
// an unfinished plan is skipped by schedule(), never preempted, and an abort of it takes effect
// when its plan completes. Each plan then takes at most 1/depth of the sequences, so the next
// plan has work for stage 0 while the later stages compute the earlier ones.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/engine/block_manager.h"
#include "app/engine/sequence.h"

namespace lockstep {

struct SchedulerConfig {
  int max_num_seqs = 256;
  int max_num_batched_tokens = 8192;
  int max_model_len = 4096;
  std::vector<int> eos_token_ids;
  int pipeline_depth = 1;  // plans in flight at once (the engine sets it to PP)
};

// This step's work for one sequence: tokens [start, start + count); sample afterwards when
// the chunk reaches the end of what the sequence holds.
struct ScheduledChunk {
  Sequence* seq = nullptr;
  int start = 0;
  int count = 0;
  bool sample = false;
};

class Scheduler {
 public:
  Scheduler(SchedulerConfig config, BlockManager& blocks);

  // Rejects with a reason (the caller answers 400) when it can never run.
  std::optional<std::string> add(std::unique_ptr<Sequence> seq);
  // Removes a request wherever it is; its blocks are freed (once its plan completes, when one is
  // in flight). False if unknown, finished or already aborted.
  bool abort(std::uint64_t id);

  // The next plan's work; its sequences are in flight until complete() takes the plan back.
  std::vector<ScheduledChunk> schedule();
  // After the step: `sampled[i]` is the token drawn for chunks[i] (ignored unless sample).
  // Returns the sequences that finished, which the caller owns from now on (sequences aborted
  // while in flight are dropped, with no token).
  std::vector<std::unique_ptr<Sequence>> complete(const std::vector<ScheduledChunk>& chunks,
                                                  const std::vector<int>& sampled);

  std::size_t num_running() const { return running_.size(); }
  std::size_t num_waiting() const { return waiting_.size(); }
  bool idle() const { return running_.empty() && waiting_.empty(); }
  std::uint64_t preemptions() const { return preemptions_; }
  const SchedulerConfig& config() const { return config_; }
  void set_pipeline_depth(int depth) { config_.pipeline_depth = depth < 1 ? 1 : depth; }

 private:
  void preempt(Sequence* victim);
  Sequence* newest_preemptible() const;
  std::unique_ptr<Sequence> take(std::uint64_t id);
  FinishReason check_stop(const Sequence& s, int token) const;

  SchedulerConfig config_;
  BlockManager& blocks_;
  std::map<std::uint64_t, std::unique_ptr<Sequence>> owned_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;  // admission order: preemption takes from the back
  std::uint64_t preemptions_ = 0;
};

}  // namespace lockstep
