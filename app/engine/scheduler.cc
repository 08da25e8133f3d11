// Scheduler (see scheduler.h).
#include "app/engine/scheduler.h"

#include <algorithm>

#include "kernels/fatal.h"

namespace lockstep {

Scheduler::Scheduler(SchedulerConfig config, BlockManager& blocks) : config_(std::move(config)), blocks_(blocks) {}

std::optional<std::string> Scheduler::add(std::unique_ptr<Sequence> seq) {
  const int len = static_cast<int>(seq->tokens.size());
  if (len == 0) return "the prompt is empty";
  if (len >= config_.max_model_len)
    return "the prompt has " + std::to_string(len) + " tokens, the maximum context length is " +
           std::to_string(config_.max_model_len) + " (--max-model-len); shorten the prompt";
  const int need = (std::min(len + seq->stop.max_tokens, config_.max_model_len) + blocks_.block_size() - 1) /
                   blocks_.block_size();
  if (need > blocks_.num_blocks())
    return "the request needs " + std::to_string(need) + " KV blocks but the cache holds " +
           std::to_string(blocks_.num_blocks()) + "; lower max_tokens or give the server more KV memory";
  if (owned_.count(seq->id)) return "duplicate request id " + std::to_string(seq->id);
  seq->prompt_len = seq->prompt_len ? seq->prompt_len : len;
  waiting_.push_back(seq.get());
  owned_[seq->id] = std::move(seq);
  return std::nullopt;
}

std::unique_ptr<Sequence> Scheduler::take(std::uint64_t id) {
  auto it = owned_.find(id);
  if (it == owned_.end()) return nullptr;
  std::unique_ptr<Sequence> s = std::move(it->second);
  owned_.erase(it);
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), s.get()), waiting_.end());
  running_.erase(std::remove(running_.begin(), running_.end(), s.get()), running_.end());
  blocks_.release(s->blocks);
  return s;
}

bool Scheduler::abort(std::uint64_t id) {
  auto it = owned_.find(id);
  if (it == owned_.end() || it->second->abort_requested) return false;
  if (it->second->in_flight) {  // its plan may still write its KV blocks: free them afterwards
    it->second->abort_requested = true;
    return true;
  }
  std::unique_ptr<Sequence> s = take(id);
  if (!s) return false;
  s->finish = FinishReason::Abort;
  return true;
}

void Scheduler::preempt(Sequence* victim) {
  running_.erase(std::remove(running_.begin(), running_.end(), victim), running_.end());
  blocks_.release(victim->blocks);
  victim->num_computed = 0;
  victim->registered = {};
  ++victim->preemptions;
  ++preemptions_;
  waiting_.push_front(victim);
}

Sequence* Scheduler::newest_preemptible() const {
  for (auto it = running_.rbegin(); it != running_.rend(); ++it)
    if (!(*it)->in_flight) return *it;
  return nullptr;
}

namespace {

// Logit rows of the chunk [s.num_computed, + n): its prompt rows and its sampled one.
int chunk_rows(const Sequence& s, int n) {
  return s.prompt_rows(s.num_computed, n) + (s.num_computed + n == static_cast<int>(s.tokens.size()) ? 1 : 0);
}

// The longest chunk of at most n tokens whose logit rows fit `rows`: a step returns at most
// max_num_seqs rows (what the GPU sized its logits for), and prompt-logprob chunks take a row a
// token. 0 when not even one token fits.
int fit_rows(const Sequence& s, int n, int rows) {
  if (chunk_rows(s, n) <= rows) return n;
  n = std::min(n, std::max(rows, 0) + 1);
  while (n > 0 && chunk_rows(s, n) > rows) --n;
  return n;
}

}  // namespace

std::vector<ScheduledChunk> Scheduler::schedule() {
  std::vector<ScheduledChunk> out;
  int budget = config_.max_num_batched_tokens;
  int rows = config_.max_num_seqs;  // logit rows left this step
  // With several plans in flight each takes its share of the sequences.
  const std::size_t total = running_.size() + waiting_.size();
  const std::size_t depth = static_cast<std::size_t>(config_.pipeline_depth);
  const std::size_t cap = depth > 1 ? std::max<std::size_t>(1, (total + depth - 1) / depth) : total;
  bool preempted = false;
  for (std::size_t i = 0; i < running_.size() && budget > 0 && out.size() < cap;) {
    Sequence* s = running_[i];
    if (s->in_flight) {
      ++i;
      continue;
    }
    // Keep a row for each sequence after this one, so a long prompt-logprob prefill does not
    // stall the others' decoding.
    int my_rows = rows;
    if (s->sampling.prompt_logprobs >= 0) {
      int later = 0;
      for (std::size_t j = i + 1; j < running_.size(); ++j) later += !running_[j]->in_flight;
      my_rows = std::min(rows, std::max(1, rows - later));
    }
    const int n = fit_rows(*s, std::min(s->remaining(), budget), my_rows);
    if (n == 0) {
      ++i;
      continue;
    }
    bool self_preempted = false;
    while (!blocks_.ensure_capacity(s->blocks, s->num_computed + n)) {
      // From the back of running_: s at the latest (it is not in flight), never one before it.
      Sequence* victim = newest_preemptible();
      preempt(victim);
      preempted = true;
      if (victim == s) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) continue;  // running_[i] is now the next sequence (or past the end)
    out.push_back({s, s->num_computed, n, s->num_computed + n == static_cast<int>(s->tokens.size())});
    budget -= n;
    rows -= chunk_rows(*s, n);
    ++i;
  }
  // Admit new work only when nothing had to be preempted this step (it would thrash).
  while (!preempted && !waiting_.empty() && budget > 0 && out.size() < cap &&
         static_cast<int>(running_.size()) < config_.max_num_seqs) {
    Sequence* s = waiting_.front();
    // Prompt logprobs need every prompt position's logits: no cached prefix.
    if (s->blocks.empty() && s->sampling.prompt_logprobs < 0)
      s->num_computed = blocks_.acquire_cached_prefix(s->tokens, s->blocks);
    const int n = fit_rows(*s, std::min(s->remaining(), budget), rows);
    if (n == 0) break;
    if (!blocks_.ensure_capacity(s->blocks, s->num_computed + n)) {
      blocks_.release(s->blocks);  // do not hold cached blocks while waiting
      s->num_computed = 0;
      break;
    }
    waiting_.pop_front();
    running_.push_back(s);
    out.push_back({s, s->num_computed, n, s->num_computed + n == static_cast<int>(s->tokens.size())});
    budget -= n;
    rows -= chunk_rows(*s, n);
  }
  for (const ScheduledChunk& c : out) c.seq->in_flight = true;
  return out;
}

FinishReason Scheduler::check_stop(const Sequence& s, int token) const {
  const bool may_stop = s.generated() >= s.stop.min_tokens;
  if (may_stop && !s.stop.ignore_eos &&
      std::find(config_.eos_token_ids.begin(), config_.eos_token_ids.end(), token) != config_.eos_token_ids.end())
    return FinishReason::Stop;
  if (may_stop && std::find(s.stop.stop_token_ids.begin(), s.stop.stop_token_ids.end(), token) !=
                      s.stop.stop_token_ids.end())
    return FinishReason::Stop;
  if (s.generated() >= s.stop.max_tokens) return FinishReason::Length;
  if (static_cast<int>(s.tokens.size()) >= config_.max_model_len) return FinishReason::Length;
  return FinishReason::None;
}

std::vector<std::unique_ptr<Sequence>> Scheduler::complete(const std::vector<ScheduledChunk>& chunks,
                                                           const std::vector<int>& sampled) {
  LS_CHECK(sampled.size() == chunks.size(), "sampled tokens do not match the scheduled chunks");
  std::vector<std::unique_ptr<Sequence>> finished;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    Sequence* s = chunks[i].seq;
    s->in_flight = false;
    if (s->abort_requested) {
      take(s->id);
      continue;
    }
    s->num_computed = chunks[i].start + chunks[i].count;
    blocks_.register_full_blocks(s->tokens, s->num_computed, s->blocks, s->registered);
    if (!chunks[i].sample) continue;
    s->tokens.push_back(sampled[i]);
    s->finish = check_stop(*s, sampled[i]);
    if (s->finish != FinishReason::None) finished.push_back(take(s->id));
  }
  return finished;
}

}  // namespace lockstep
