// StepWorker: steps handled in order on its thread, post() returning while a step is handled
// (one more may wait, a third post waits), finish() draining, and the handler's error rethrown
// with no step handled after it; not threaded, each step handled inside post().
#include "app/engine/step_worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <vector>

namespace lockstep {
namespace {

using namespace std::chrono_literals;

StepOutput step_with(std::uint64_t id) {
  StepOutput s;
  s.tokens.push_back(TokenEvent{.id = id});
  return s;
}

TEST(StepWorker, HandlesEveryStepInOrderOnItsOwnThread) {
  std::vector<std::uint64_t> seen;
  std::thread::id handler_thread;
  StepWorker w([&](StepOutput& s) {
    handler_thread = std::this_thread::get_id();
    for (const TokenEvent& e : s.tokens) seen.push_back(e.id);
  });
  for (std::uint64_t i = 0; i < 200; ++i) w.post(step_with(i));
  w.finish();
  ASSERT_EQ(seen.size(), 200u);
  for (std::uint64_t i = 0; i < 200; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_NE(handler_thread, std::this_thread::get_id());
  w.finish();  // a second finish is harmless
}

TEST(StepWorker, PostReturnsWhileAStepIsHandledAndWaitsPastOneQueued) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> handled{0};
  StepWorker w([&](StepOutput&) {
    released.wait();
    ++handled;
  });
  w.post(step_with(0));  // taken by the handler, which blocks
  // The handler takes step 0 off the queue before it blocks: then step 1 queues at once.
  auto second = std::async(std::launch::async, [&] { w.post(step_with(1)); });
  ASSERT_EQ(second.wait_for(5s), std::future_status::ready) << "post() waited while only one step was handled";
  auto third = std::async(std::launch::async, [&] { w.post(step_with(2)); });
  EXPECT_EQ(third.wait_for(200ms), std::future_status::timeout) << "post() queued a second waiting step";
  EXPECT_EQ(handled.load(), 0);
  release.set_value();
  ASSERT_EQ(third.wait_for(5s), std::future_status::ready);
  w.finish();
  EXPECT_EQ(handled.load(), 3);
}

TEST(StepWorker, RethrowsTheHandlersErrorAndHandlesNothingAfterIt) {
  std::vector<std::uint64_t> seen;
  StepWorker w([&](StepOutput& s) {
    if (s.tokens[0].id == 1) throw std::runtime_error("cannot write the output");
    seen.push_back(s.tokens[0].id);
  });
  bool thrown = false;
  for (std::uint64_t i = 0; i < 50 && !thrown; ++i) {
    try {
      w.post(step_with(i));
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "cannot write the output");
      thrown = true;
    }
  }
  try {
    w.finish();
    ADD_FAILURE() << "finish() did not rethrow the handler's error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "cannot write the output");
  }
  EXPECT_EQ(seen, std::vector<std::uint64_t>{0});
}

TEST(StepWorker, NotThreadedHandlesEachStepInsidePost) {
  std::vector<std::uint64_t> seen;
  std::thread::id handler_thread;
  StepWorker w(
      [&](StepOutput& s) {
        handler_thread = std::this_thread::get_id();
        if (s.tokens[0].id == 3) throw std::runtime_error("cannot write the output");
        seen.push_back(s.tokens[0].id);
      },
      /*threaded=*/false);
  for (std::uint64_t i = 0; i < 3; ++i) {
    w.post(step_with(i));
    EXPECT_EQ(seen.size(), i + 1) << "post() returned before its step was handled";
  }
  EXPECT_EQ(handler_thread, std::this_thread::get_id());
  EXPECT_THROW(w.post(step_with(3)), std::runtime_error);  // straight out of post()
  w.finish();
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{0, 1, 2}));
}

}  // namespace
}  // namespace lockstep
