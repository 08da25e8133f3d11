// EngineService (see engine_service.h).
#include "app/engine/engine_service.h"

#include "kernels/log.h"

namespace lockstep {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

}  // namespace

RequestStream::Update RequestStream::take(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !pending_.empty() || done_; });
  Update u;
  u.tokens.swap(pending_);
  u.logprobs.swap(pending_logprobs_);
  u.prompt_logprobs.swap(pending_prompt_logprobs_);
  u.done = done_;
  u.finish = finish_;
  u.error = error_;
  u.error_status = error_status_;
  return u;
}

void RequestStream::push(int token, FinishReason finish, const std::optional<TokenLogprobs>& logprobs,
                         std::vector<TokenLogprobs> prompt_logprobs) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(token);
    if (logprobs) pending_logprobs_.push_back(*logprobs);
    if (!prompt_logprobs.empty()) pending_prompt_logprobs_ = std::move(prompt_logprobs);
    if (finish != FinishReason::None) {
      done_ = true;
      finish_ = finish;
    }
  }
  cv_.notify_all();
}

void RequestStream::fail(int status, const std::string& error) {
  {
    std::lock_guard lock(mu_);
    done_ = true;
    error_ = error;
    error_status_ = status;
    finish_ = FinishReason::Abort;
  }
  cv_.notify_all();
}

EngineService::EngineService(LockstepEngine& engine, Scheduler& scheduler, BlockManager& blocks)
    : engine_(engine), scheduler_(scheduler), blocks_(blocks) {}

std::shared_ptr<RequestStream> EngineService::submit(GenerationRequest r) {
  std::lock_guard lock(mu_);
  auto seq = std::make_unique<Sequence>();
  seq->id = next_id_++;
  seq->tokens = std::move(r.prompt);
  seq->sampling = r.sampling;
  seq->stop = r.stop;
  auto stream = std::make_shared<RequestStream>(seq->id);
  if (draining_) {
    stream->fail(503, "the server is shutting down");
  } else {
    incoming_.emplace_back(std::move(seq), stream);
    cv_.notify_all();
  }
  return stream;
}

void EngineService::abort(std::uint64_t id) {
  std::lock_guard lock(mu_);
  aborts_.push_back(id);
  cv_.notify_all();
}

bool EngineService::healthy(std::chrono::seconds stall) const {
  if (!running_) return false;
  const std::int64_t started = step_started_ns_.load();
  return started == 0 || now_ns() - started < std::chrono::duration_cast<std::chrono::nanoseconds>(stall).count();
}

ServingMetrics::Snapshot EngineService::metrics() const {
  std::lock_guard lock(mu_);
  ServingMetrics::Snapshot s = state_;
  s.waiting += incoming_.size();
  return s;
}

void EngineService::publish_state() {
  state_.running = scheduler_.num_running();
  state_.waiting = scheduler_.num_waiting();
  state_.kv_usage = blocks_.usage();
  state_.prefix_hit_rate = blocks_.prefix_hit_rate();
  state_.prefix_queries = blocks_.prefix_queries();
  state_.prefix_hits = blocks_.prefix_hits();
}

void EngineService::stop(std::chrono::milliseconds grace) {
  std::lock_guard lock(mu_);
  draining_ = true;
  drain_deadline_ = Clock::now() + grace;
  stop_ = true;
  cv_.notify_all();
}

void EngineService::deliver(StepOutput& out) {
  const auto now = Clock::now();
  for (TokenEvent& e : out.tokens) {
    auto it = streams_.find(e.id);
    if (it == streams_.end()) continue;
    Running& r = it->second;
    // Time to first token and end-to-end latency count from the request's arrival (queueing and
    // prefill included), as vLLM's do.
    const Clock::time_point arrival = r.stream->arrival();
    (r.first ? metrics_.ttft : metrics_.inter_token)
        .observe(std::chrono::duration<double>(now - (r.first ? arrival : r.last)).count());
    r.first = false;
    r.last = now;
    ++r.generated;
    ++metrics_.generation_tokens;
    r.stream->push(e.token, e.finish, e.logprobs, std::move(e.prompt_logprobs));
    if (e.finish != FinishReason::None) {
      metrics_.e2e.observe(std::chrono::duration<double>(now - arrival).count());
      metrics_.request_prompt_tokens.observe(static_cast<double>(r.prompt));
      metrics_.request_generation_tokens.observe(static_cast<double>(r.generated));
      ++(e.finish == FinishReason::Length  ? metrics_.requests_at_length
         : e.finish == FinishReason::Abort ? metrics_.requests_aborted
                                           : metrics_.requests_stopped);
      streams_.erase(it);
    }
  }
}

void EngineService::run() {
  running_ = true;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (scheduler_.idle() && incoming_.empty() && aborts_.empty() && !stop_)
        cv_.wait_for(lock, std::chrono::milliseconds(50));
      while (!incoming_.empty()) {
        auto [seq, stream] = std::move(incoming_.front());
        incoming_.pop_front();
        const std::uint64_t id = seq->id;
        const std::size_t prompt = seq->tokens.size();
        if (auto why = scheduler_.add(std::move(seq))) {
          stream->fail(400, *why);
        } else {
          streams_[id] = Running{stream, {}, true, prompt, 0};
          metrics_.prompt_tokens += prompt;
        }
      }
      for (std::uint64_t id : aborts_) {
        if (scheduler_.abort(id)) ++metrics_.requests_aborted;
        if (auto it = streams_.find(id); it != streams_.end()) {
          it->second.stream->fail(499, "aborted");
          streams_.erase(it);
        }
      }
      aborts_.clear();
      publish_state();
      if (stop_ && (scheduler_.idle() || Clock::now() >= drain_deadline_)) break;
    }
    if (scheduler_.idle()) continue;
    const std::uint64_t preempted_before = scheduler_.preemptions();
    step_started_ns_ = now_ns();
    // The step runs without mu_: request threads submit, abort and read the figures meanwhile
    // (holding it across steps starved them, the engine thread taking it back at once after
    // each step: seconds to submit a request under load).
    StepOutput out = engine_.step();
    step_started_ns_ = 0;
    metrics_.preemptions += scheduler_.preemptions() - preempted_before;
    deliver(out);
  }
  // Whatever is left when the grace period ends is aborted.
  {
    std::lock_guard lock(mu_);
    for (auto& [id, running] : streams_) {
      scheduler_.abort(id);
      running.stream->fail(503, "the server shut down before this request finished");
      ++metrics_.requests_aborted;
    }
    streams_.clear();
  }
  engine_.shutdown();
  running_ = false;
  LS_INFO("engine loop stopped after " << engine_.steps() << " steps");
}

}  // namespace lockstep
