// BatchProgress (see batch_progress.h).
#include "app/batch/batch_progress.h"

#include <algorithm>
#include <cstdio>

namespace lockstep {

void BatchProgress::on_token(double elapsed) {
  if (generated_++ == 0) first_token_at_ = elapsed;
  if (tokens_left_ > 0) --tokens_left_;
}

void BatchProgress::choice_finished(int max_tokens, std::size_t generated) {
  const std::uint64_t unused =
      max_tokens > static_cast<long long>(generated) ? static_cast<std::uint64_t>(max_tokens) - generated : 0;
  tokens_left_ -= std::min(tokens_left_, unused);
}

double BatchProgress::eta_seconds(double elapsed) const {
  if (finished_ >= requests_) return 0;
  constexpr double kMinSample = 1.0;  // seconds of tokens before their pace says anything
  const double since_first = elapsed - first_token_at_;
  const double by_tokens = generated_ > 1 && since_first >= kMinSample
                               ? static_cast<double>(tokens_left_) / (static_cast<double>(generated_ - 1) / since_first)
                               : -1;
  if (finished_ == 0 || !(elapsed > 0)) return by_tokens;
  const double by_requests = elapsed / static_cast<double>(finished_) * static_cast<double>(requests_ - finished_);
  return by_tokens < 0 ? by_requests : std::min(by_tokens, by_requests);
}

std::string BatchProgress::line(double elapsed) const {
  char buf[160];
  std::snprintf(buf, sizeof buf, "[batch] %zu/%zu requests, %.1f tok/s, ETA %s", finished_, requests_,
                elapsed > 0 ? static_cast<double>(generated_) / elapsed : 0.0, format_eta(eta_seconds(elapsed)).c_str());
  return buf;
}

std::string format_eta(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--:--";
  char buf[32];
  const long s = static_cast<long>(seconds + 0.5);
  std::snprintf(buf, sizeof buf, "%02ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

}  // namespace lockstep
