// HostStepClock: per-phase averages over the steps, the caller's share from one step's end to
// the next one's start, and the summary line the engine logs.
#include "app/engine/host_step_clock.h"

#include <gtest/gtest.h>

namespace lockstep {
namespace {

using namespace std::chrono_literals;
using Clock = HostStepClock::Clock;

TEST(HostStepClock, AveragesEachPhaseOverTheSteps) {
  HostStepClock c;
  EXPECT_EQ(c.summary(), "");
  EXPECT_EQ(c.average_us(HostStepClock::kStage), 0.0);
  Clock::time_point t{};
  for (int step = 0; step < 4; ++step) {
    c.step_begins(t);  // the first start has no caller's share before it
    c.add(HostStepClock::kSchedule, 10us);
    c.add(HostStepClock::kPlan, 20us);
    c.add(HostStepClock::kStage, 1000us + step * 100us);  // 1000, 1100, 1200, 1300
    c.add(HostStepClock::kRetire, 5us);
    t += 1035us + step * 100us;
    c.step_done(t);
    t += 300us;  // the caller's work between steps
  }
  EXPECT_EQ(c.steps(), 4);
  EXPECT_DOUBLE_EQ(c.average_us(HostStepClock::kSchedule), 10.0);
  EXPECT_DOUBLE_EQ(c.average_us(HostStepClock::kStage), 1150.0);
  EXPECT_DOUBLE_EQ(c.average_us(HostStepClock::kCaller), 3 * 300.0 / 4);  // 3 gaps between 4 steps
  EXPECT_EQ(c.summary(),
            "host time a step, rank 0 (4 steps): between steps (the caller) 225.0 us, schedule 10.0 us, "
            "plan + broadcast 20.0 us, own stage (incl. the forward) 1150.0 us, retire 5.0 us");
}

}  // namespace
}  // namespace lockstep
