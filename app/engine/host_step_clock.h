// Where rank 0's host time goes, step by step: the engine's phases (scheduling, the plan and its
// broadcast, the rank's own stage, retiring) and what the engine's caller does between steps
// (detokenizing, streaming, writing results). Averaged and logged at debug level when the
// engine shuts down (LOCKSTEP_LOG_LEVEL=debug), beside the CUDA stage's "GPU idle between
// steps": together they say which host work a GPU waits for. The stage's share includes the
// forward pass itself (on a GPU: its wait for the step's results).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

namespace lockstep {

class HostStepClock {
 public:
  using Clock = std::chrono::steady_clock;
  enum Phase { kCaller, kSchedule, kPlan, kStage, kRetire, kPhases };

  void add(Phase phase, Clock::duration d) { total_[phase] += d; }
  // At the end of a step: counts it, and starts the caller's share until the next begins.
  void step_done(Clock::time_point now) {
    ++steps_;
    last_end_ = now;
  }
  // At the start of a step: the time since the last one ended is the caller's.
  void step_begins(Clock::time_point now) {
    if (steps_ > 0) total_[kCaller] += now - last_end_;
  }
  std::int64_t steps() const { return steps_; }
  // Microseconds a step, per phase (0 before any step).
  double average_us(Phase phase) const;
  // "host time a step (N steps): between steps (the caller) X us, schedule ..., ..." (empty
  // before any step).
  std::string summary() const;

 private:
  std::array<Clock::duration, kPhases> total_{};
  std::int64_t steps_ = 0;
  Clock::time_point last_end_{};
};

}  // namespace lockstep
