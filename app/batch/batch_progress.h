// `lockstep batch`'s progress line on stderr: requests done, output tokens a second, and the time
// left. Requests of an offline run often all finish together at the end (1k-in / 1k-out: every
// one after its last step), so the time left also comes from the tokens still allowed: each
// choice's max_tokens less what it has generated (an upper bound: a request may stop sooner),
// capped, once requests have finished, by their pace. The tokens' pace counts from the first
// token (prefill before it produced none, and would make the rest look slower than it is), once
// a second of it has passed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lockstep {

class BatchProgress {
 public:
  explicit BatchProgress(std::size_t requests) : requests_(requests) {}

  void add_choice(int max_tokens) { tokens_left_ += static_cast<std::uint64_t>(max_tokens > 0 ? max_tokens : 0); }
  // A token generated, `elapsed` seconds into the run.
  void on_token(double elapsed);
  // A choice ended after `generated` of its max_tokens: the rest of its allowance goes.
  void choice_finished(int max_tokens, std::size_t generated);
  void request_finished() { ++finished_; }

  std::uint64_t generated() const { return generated_; }
  std::size_t finished() const { return finished_; }
  // Seconds left at `elapsed` seconds in; negative while there is nothing to go by.
  double eta_seconds(double elapsed) const;
  // "[batch] 3/256 requests, 10461.2 tok/s, ETA 00:02:17"
  std::string line(double elapsed) const;

 private:
  std::size_t requests_, finished_ = 0;
  std::uint64_t generated_ = 0, tokens_left_ = 0;
  double first_token_at_ = 0;  // seconds into the run
};

// hh:mm:ss, or --:--:-- for a negative or absurd figure.
std::string format_eta(double seconds);

}  // namespace lockstep
