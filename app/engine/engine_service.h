// Rank 0's bridge between request threads (HTTP handlers, the batch reader) and the lock-step
// engine: a thread-safe submit/abort queue, one output stream per request, the engine loop
// that drains the queue and runs steps, and the figures /health and /metrics report.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "app/engine/lockstep_engine.h"
#include "app/engine/serving_metrics.h"

namespace lockstep {

struct GenerationRequest {
  std::vector<int> prompt;
  SamplingParams sampling;
  StopRules stop;
};

// One request's output, filled by the engine thread, read by the request's thread.
class RequestStream {
 public:
  explicit RequestStream(std::uint64_t id) : id_(id), arrival_(std::chrono::steady_clock::now()) {}
  std::uint64_t id() const { return id_; }
  // When the request was submitted: time to first token and end-to-end latency count from here.
  std::chrono::steady_clock::time_point arrival() const { return arrival_; }

  struct Update {
    std::vector<int> tokens;  // new since the previous take
    std::vector<TokenLogprobs> logprobs;  // one per token when the request asked for them
    std::vector<TokenLogprobs> prompt_logprobs;  // once, with the first token, when asked (TokenEvent's)
    bool done = false;
    FinishReason finish = FinishReason::None;
    std::string error;        // the request was refused or cut short (done is true)
    int error_status = 0;     // its HTTP status: 400 refused, 499 aborted, 503 shutting down
  };
  // Waits up to `timeout` for something new; returns what arrived (possibly nothing).
  Update take(std::chrono::milliseconds timeout);

  // Engine side.
  void push(int token, FinishReason finish, const std::optional<TokenLogprobs>& logprobs = std::nullopt,
            std::vector<TokenLogprobs> prompt_logprobs = {});
  void fail(int status, const std::string& error);

 private:
  std::uint64_t id_;
  std::chrono::steady_clock::time_point arrival_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> pending_;
  std::vector<TokenLogprobs> pending_logprobs_;
  std::vector<TokenLogprobs> pending_prompt_logprobs_;
  bool done_ = false;
  FinishReason finish_ = FinishReason::None;
  std::string error_;
  int error_status_ = 0;
};

class EngineService {
 public:
  EngineService(LockstepEngine& engine, Scheduler& scheduler, BlockManager& blocks);

  std::shared_ptr<RequestStream> submit(GenerationRequest request);  // any thread
  void abort(std::uint64_t id);                                        // any thread

  // Runs the engine loop on this thread until stop(); then tells the other ranks to exit.
  // With a grace period, running requests may finish first; the rest are aborted.
  void run();
  void stop(std::chrono::milliseconds grace);
  bool draining() const { return draining_.load(); }

  // Alive = the loop is running and its last step (which every rank took part in) ended
  // less than `stall` ago, or it is idle.
  bool healthy(std::chrono::seconds stall = std::chrono::seconds(60)) const;
  ServingMetrics::Snapshot metrics() const;
  const ServingMetrics& metrics_registry() const { return metrics_; }

 private:
  void deliver(StepOutput& out);
  void publish_state();  // engine thread, under mu_: the scheduler's and KV cache's figures

  LockstepEngine& engine_;
  Scheduler& scheduler_;
  BlockManager& blocks_;
  ServingMetrics metrics_;

  // mu_ guards the queues and the published figures, never a step: the scheduler and the KV
  // cache change only on the engine thread, which copies their figures to state_ between steps.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  ServingMetrics::Snapshot state_;
  std::deque<std::pair<std::unique_ptr<Sequence>, std::shared_ptr<RequestStream>>> incoming_;
  std::vector<std::uint64_t> aborts_;
  // An admitted request: its stream, and for the histograms its latest token's time and lengths.
  struct Running {
    std::shared_ptr<RequestStream> stream;
    std::chrono::steady_clock::time_point last;  // of the latest token
    bool first = true;
    std::size_t prompt = 0, generated = 0;  // tokens
  };
  std::map<std::uint64_t, Running> streams_;  // engine thread only
  std::uint64_t next_id_ = 1;
  std::atomic<bool> stop_{false}, draining_{false}, running_{false};
  std::atomic<std::int64_t> step_started_ns_{0};  // 0 when not inside a step
  std::chrono::steady_clock::time_point drain_deadline_{};
};

}  // namespace lockstep
