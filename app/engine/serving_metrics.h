// The numbers /metrics exposes in Prometheus text format: running and waiting requests, KV
// usage, prefix-cache hit rate, time-to-first-token, inter-token and end-to-end latency
// histograms, prompt and generated token counters, and each finished request's prompt and
// generation lengths. Names follow vLLM's (vllm: -> lockstep:).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace lockstep {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // Appends "# TYPE name histogram" and its _bucket/_sum/_count lines.
  // labels: `key="value",...` without braces (every line carries them, then le= on buckets).
  void render(const std::string& name, const std::string& help, const std::string& labels, std::string& out) const;
  std::uint64_t count() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<std::uint64_t> counts_;
  double sum_ = 0;
  std::uint64_t total_ = 0;
};

class ServingMetrics {
 public:
  ServingMetrics();
  Histogram ttft, inter_token, e2e;
  Histogram request_prompt_tokens, request_generation_tokens;  // per finished request
  std::atomic<std::uint64_t> prompt_tokens{0}, generation_tokens{0}, requests_aborted{0}, preemptions{0};
  // Finished requests by vLLM's finished_reason label: "stop" (EOS, a stop token or string) and "length".
  std::atomic<std::uint64_t> requests_stopped{0}, requests_at_length{0};

  struct Snapshot {
    std::size_t running = 0, waiting = 0;
    double kv_usage = 0, prefix_hit_rate = 0;
    std::uint64_t prefix_queries = 0, prefix_hits = 0;
  };
  std::string render(const Snapshot& s, const std::string& model_name) const;
};

}  // namespace lockstep
