// StepWatchdog: fires once for a step that overruns its timeout, never for steps that finish in
// time (each arming restarts the clock) or while nothing is armed; off at 0; and
// LOCKSTEP_STEP_TIMEOUT's parsing.
#include "app/engine/step_watchdog.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace lockstep {
namespace {

using namespace std::chrono_literals;

struct Fired {
  std::mutex mu;
  std::vector<std::pair<std::uint64_t, double>> calls;
  StepWatchdog::Expired record() {
    return [this](std::uint64_t step, double seconds) {
      std::lock_guard<std::mutex> lock(mu);
      calls.emplace_back(step, seconds);
    };
  }
  std::size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return calls.size();
  }
};

TEST(StepWatchdog, FiresOnceForAStepPastItsTimeout) {
  Fired fired;
  StepWatchdog w(0.2, fired.record());
  w.arm(5);
  std::this_thread::sleep_for(700ms);
  ASSERT_EQ(fired.count(), 1u);  // once, not every 0.2 s
  EXPECT_EQ(fired.calls[0].first, 5u);
  EXPECT_GE(fired.calls[0].second, 0.2);
  EXPECT_LT(fired.calls[0].second, 0.6);
  w.disarm();
}

TEST(StepWatchdog, QuietWhileStepsFinishInTime) {
  Fired fired;
  StepWatchdog w(0.3, fired.record());
  for (std::uint64_t step = 1; step <= 10; ++step) {  // 1 s of 0.1 s steps
    StepWatchdog::Armed armed(w, step);
    std::this_thread::sleep_for(100ms);
  }
  // Re-arming restarts the clock: 2 x 0.2 s, longer than the timeout together.
  w.arm(11);
  std::this_thread::sleep_for(200ms);
  w.arm(12);
  std::this_thread::sleep_for(200ms);
  w.disarm();
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(fired.count(), 0u);
}

TEST(StepWatchdog, IdleIsNotWatched) {
  Fired fired;
  StepWatchdog w(0.1, fired.record());
  std::this_thread::sleep_for(400ms);  // a server waiting for requests
  EXPECT_EQ(fired.count(), 0u);
  w.arm(1);  // wakes the idle watchdog
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(fired.count(), 1u);
}

TEST(StepWatchdog, OffAtZeroAndStopsPromptlyWhileArmed) {
  Fired fired;
  {
    StepWatchdog off(0, fired.record());
    EXPECT_FALSE(off.enabled());
    off.arm(1);
    std::this_thread::sleep_for(100ms);
  }
  const auto start = std::chrono::steady_clock::now();
  {
    StepWatchdog w(30, fired.record());
    w.arm(1);
  }  // destroyed armed: does not wait out the 30 s
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(fired.count(), 0u);
}

TEST(StepWatchdog, TimeoutFromTheEnvironment) {
  ::unsetenv("LOCKSTEP_STEP_TIMEOUT");
  EXPECT_EQ(StepWatchdog::timeout_from_env(true), 600.0);  // GPUs: on by default
  EXPECT_EQ(StepWatchdog::timeout_from_env(false), 0.0);   // CPUs: off
  ::setenv("LOCKSTEP_STEP_TIMEOUT", "2.5", 1);
  EXPECT_EQ(StepWatchdog::timeout_from_env(false), 2.5);
  ::setenv("LOCKSTEP_STEP_TIMEOUT", "0", 1);
  EXPECT_EQ(StepWatchdog::timeout_from_env(true), 0.0);
  for (const char* bad : {"abc", "-1", "5s", "nan", "inf", " "}) {
    ::setenv("LOCKSTEP_STEP_TIMEOUT", bad, 1);
    EXPECT_THROW(StepWatchdog::timeout_from_env(true), std::runtime_error) << bad;
  }
  ::unsetenv("LOCKSTEP_STEP_TIMEOUT");
}

}  // namespace
}  // namespace lockstep
