// Prometheus rendering of the serving metrics (see serving_metrics.h).
#include "app/engine/serving_metrics.h"

#include <cstdio>

namespace lockstep {

void Histogram::observe(double v) {
  std::lock_guard lock(mu_);
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++total_;
}

std::uint64_t Histogram::count() const {
  std::lock_guard lock(mu_);
  return total_;
}

void Histogram::render(const std::string& name, const std::string& help, const std::string& labels,
                       std::string& out) const {
  std::lock_guard lock(mu_);
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  std::uint64_t cumulative = 0;
  char number[64];
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    std::snprintf(number, sizeof number, "%g", bounds_[i]);
    out += name + "_bucket{" + labels + ",le=\"" + number + "\"} " + std::to_string(cumulative) + "\n";
  }
  std::snprintf(number, sizeof number, "%.6f", sum_);
  out += name + "_bucket{" + labels + ",le=\"+Inf\"} " + std::to_string(total_) + "\n";
  out += name + "_sum{" + labels + "} " + number + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(total_) + "\n";
}

namespace {

// vLLM's buckets for token counts: 1, 2, 5, 10, 20, 50, ... up to a bound (it uses the max model
// length; lockstep, the longest context the R1 family has, so that one set serves every model).
constexpr double kMaxLengthBucket = 200000;
std::vector<double> one_two_five(double max) {
  std::vector<double> b;
  for (double m = 1;; m *= 10)
    for (double f : {1.0, 2.0, 5.0}) {
      if (m * f > max) return b;
      b.push_back(m * f);
    }
}

}  // namespace

ServingMetrics::ServingMetrics()
    : ttft({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0}),
      inter_token({0.001, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
                   1.0, 2.5}),
      e2e({0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0}),
      request_prompt_tokens(one_two_five(kMaxLengthBucket)),
      request_generation_tokens(one_two_five(kMaxLengthBucket)) {}

// Every metric is `lockstep:<name>`; those vLLM also exports are written again as `vllm:<name>`
// (same meaning, labels and buckets), so Grafana dashboards and alerts made for vLLM work as
// they are. lockstep-only ones (prefix_cache_hit_rate, request_aborted_total) have no vllm: copy.
std::string ServingMetrics::render(const Snapshot& s, const std::string& model) const {
  std::string out;
  char value[64];
  std::string escaped;  // a label value escapes \, " and newlines (Prometheus' text format)
  for (const char c : model) escaped += c == '\\' ? "\\\\" : c == '"' ? "\\\"" : c == '\n' ? "\\n" : std::string(1, c);
  const std::string labels = "model_name=\"" + escaped + "\"", label = "{" + labels + "}";
  enum Prefixes { LockstepOnly, AlsoVllm };
  auto each_name = [](const char* name, Prefixes p, auto&& emit) {
    emit(std::string("lockstep:") + name);
    if (p == AlsoVllm) emit(std::string("vllm:") + name);
  };
  auto gauge = [&](const char* name, Prefixes p, const char* help, double v) {
    std::snprintf(value, sizeof value, "%g", v);
    each_name(name, p, [&](const std::string& n) {
      out += "# HELP " + n + " " + help + "\n# TYPE " + n + " gauge\n" + n + label + " " + value + "\n";
    });
  };
  auto counter = [&](const char* name, Prefixes p, const char* help, std::uint64_t v) {
    each_name(name, p, [&](const std::string& n) {
      out += "# HELP " + n + " " + help + "\n# TYPE " + n + " counter\n" + n + label + " " + std::to_string(v) + "\n";
    });
  };
  auto histogram = [&](const Histogram& h, const char* name, const char* help) {
    each_name(name, AlsoVllm, [&](const std::string& n) { h.render(n, help, labels, out); });
  };
  gauge("num_requests_running", AlsoVllm, "Requests in the running batch.", static_cast<double>(s.running));
  gauge("num_requests_waiting", AlsoVllm, "Requests waiting to be scheduled.", static_cast<double>(s.waiting));
  gauge("kv_cache_usage_perc", AlsoVllm, "Fraction of KV-cache blocks in use (1 = full).", s.kv_usage);
  gauge("prefix_cache_hit_rate", LockstepOnly, "Prompt tokens found in the prefix cache / tokens looked up.",
        s.prefix_hit_rate);
  counter("prefix_cache_queries_total", AlsoVllm, "Prompt tokens looked up in the prefix cache.", s.prefix_queries);
  counter("prefix_cache_hits_total", AlsoVllm, "Prompt tokens found in the prefix cache.", s.prefix_hits);
  counter("prompt_tokens_total", AlsoVllm, "Prompt tokens of admitted requests.", prompt_tokens.load());
  counter("generation_tokens_total", AlsoVllm, "Generated tokens.", generation_tokens.load());
  each_name("request_success_total", AlsoVllm, [&](const std::string& n) {
    out += "# HELP " + n + " Requests that finished, by finished_reason (stop or length).\n# TYPE " + n + " counter\n";
    out += n + "{" + labels + ",finished_reason=\"stop\"} " + std::to_string(requests_stopped.load()) + "\n";
    out += n + "{" + labels + ",finished_reason=\"length\"} " + std::to_string(requests_at_length.load()) + "\n";
  });
  counter("request_aborted_total", LockstepOnly, "Requests aborted (client gone, shutdown).", requests_aborted.load());
  counter("num_preemptions_total", AlsoVllm, "Sequences preempted for KV space and recomputed.", preemptions.load());
  histogram(ttft, "time_to_first_token_seconds", "Time from arrival to the first generated token.");
  histogram(inter_token, "inter_token_latency_seconds", "Time between successive generated tokens.");
  histogram(e2e, "e2e_request_latency_seconds", "Time from arrival to the last token.");
  histogram(request_prompt_tokens, "request_prompt_tokens", "Prompt length of finished requests, in tokens.");
  histogram(request_generation_tokens, "request_generation_tokens", "Tokens generated by finished requests.");
  return out;
}

}  // namespace lockstep
