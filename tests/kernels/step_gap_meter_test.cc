// StepGapMeter on a GPU: the idle time it counts is the host's pause between one step's end and
// the next step's launch (here a 20 ms sleep), within the step's whole time; a step that ended
// without a wait is not counted. Skips where no GPU is visible.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <chrono>
#include <thread>

#include "kernels/device_buffer.h"
#include "kernels/gpu_context.h"
#include "kernels/step_gap_meter.h"

namespace lockstep {
namespace {

TEST(StepGapMeter, CountsTheHostPauseBetweenSteps) {
  if (visible_gpu_count() == 0) GTEST_SKIP() << "no GPU visible";
  GpuContext ctx(0);
  DeviceBuffer buf(DeviceKind::Cuda, std::size_t{64} << 20);
  auto work = [&] { ASSERT_EQ(cudaMemsetAsync(buf.data(), 1, buf.bytes(), ctx.stream()), cudaSuccess); };
  StepGapMeter meter(ctx.stream());
  meter.launching();
  work();
  meter.finish_and_wait();
  EXPECT_EQ(meter.steps(), 0);  // no previous step to measure from
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  meter.launching();
  work();
  meter.finish_and_wait();
  ASSERT_EQ(meter.steps(), 1);
  EXPECT_GE(meter.idle_ms(), 19.0);
  EXPECT_LT(meter.idle_ms(), 1000.0);
  EXPECT_GT(meter.step_ms(), meter.idle_ms());  // the step also ran the memset after the pause
  // A step that ends without a wait (no logits) breaks the chain: the next one is not counted.
  meter.launching();
  work();
  meter.launching();
  work();
  meter.finish_and_wait();
  EXPECT_EQ(meter.steps(), 1);
  meter.launching();
  work();
  meter.finish_and_wait();
  EXPECT_EQ(meter.steps(), 2);
}

}  // namespace
}  // namespace lockstep
