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

void Histogram::render(const std::string& name, const std::string& help, std::string& out) const {
  std::lock_guard lock(mu_);
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  std::uint64_t cumulative = 0;
  char line[256];
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    std::snprintf(line, sizeof line, "%s_bucket{le=\"%g\"} %llu\n", name.c_str(), bounds_[i],
                  static_cast<unsigned long long>(cumulative));
    out += line;
  }
  std::snprintf(line, sizeof line, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name.c_str(),
                static_cast<unsigned long long>(total_), name.c_str(), sum_, name.c_str(),
                static_cast<unsigned long long>(total_));
  out += line;
}

ServingMetrics::ServingMetrics()
    : ttft({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0}),
      inter_token({0.001, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
                   1.0, 2.5}),
      e2e({0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0}) {}

std::string ServingMetrics::render(const Snapshot& s, const std::string& model) const {
  std::string out;
  char line[512];
  const std::string label = "{model_name=\"" + model + "\"}";
  auto gauge = [&](const char* name, const char* help, double v) {
    std::snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s gauge\n%s%s %g\n", name, help, name, name, label.c_str(), v);
    out += line;
  };
  auto counter = [&](const char* name, const char* help, std::uint64_t v) {
    std::snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s counter\n%s%s %llu\n", name, help, name, name,
                  label.c_str(), static_cast<unsigned long long>(v));
    out += line;
  };
  gauge("lockstep:num_requests_running", "Requests in the running batch.", static_cast<double>(s.running));
  gauge("lockstep:num_requests_waiting", "Requests waiting to be scheduled.", static_cast<double>(s.waiting));
  gauge("lockstep:kv_cache_usage_perc", "Fraction of KV-cache blocks in use (1 = full).", s.kv_usage);
  gauge("lockstep:prefix_cache_hit_rate", "Prompt tokens found in the prefix cache / tokens looked up.",
        s.prefix_hit_rate);
  counter("lockstep:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.", s.prefix_queries);
  counter("lockstep:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.", s.prefix_hits);
  counter("lockstep:prompt_tokens_total", "Prompt tokens of admitted requests.", prompt_tokens.load());
  counter("lockstep:generation_tokens_total", "Generated tokens.", generation_tokens.load());
  counter("lockstep:request_success_total", "Requests that finished (stop or length).", requests_finished.load());
  counter("lockstep:request_aborted_total", "Requests aborted (client gone, shutdown).", requests_aborted.load());
  counter("lockstep:num_preemptions_total", "Sequences preempted for KV space and recomputed.", preemptions.load());
  ttft.render("lockstep:time_to_first_token_seconds", "Time from arrival to the first generated token.", out);
  inter_token.render("lockstep:inter_token_latency_seconds", "Time between successive generated tokens.", out);
  e2e.render("lockstep:e2e_request_latency_seconds", "Time from arrival to the last token.", out);
  return out;
}

}  // namespace lockstep
