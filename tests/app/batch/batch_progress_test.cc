// lockstep batch's progress line: the time left from the tokens still allowed (requests that all
// finish at the end), capped by the pace of finished requests (requests that stop early).
#include "app/batch/batch_progress.h"

#include <gtest/gtest.h>

namespace lockstep {
namespace {

TEST(BatchProgress, TimeLeftFromTheTokensStillAllowed) {
  BatchProgress p(4);
  for (int i = 0; i < 4; ++i) p.add_choice(100);
  EXPECT_LT(p.eta_seconds(1.0), 0) << "nothing generated yet: nothing to go by";
  EXPECT_EQ(p.line(1.0), "[batch] 0/4 requests, 0.0 tok/s, ETA --:--:--");
  for (int i = 0; i < 100; ++i) p.on_token();  // 100 of 400 in 10 s: 300 left at 10 tok/s
  EXPECT_DOUBLE_EQ(p.eta_seconds(10.0), 30.0);
  EXPECT_EQ(p.line(10.0), "[batch] 0/4 requests, 10.0 tok/s, ETA 00:00:30");
}

TEST(BatchProgress, ChoicesThatStopEarlyGiveBackTheirAllowance) {
  BatchProgress p(2);
  p.add_choice(1000);
  p.add_choice(1000);
  for (int i = 0; i < 20; ++i) p.on_token();
  p.choice_finished(1000, 10);  // stopped at 10 tokens: 990 fewer to go
  // by tokens: 1000 - 20 + 10 = 990 left at 2 tok/s = 495 s; by requests: 10 s for 1, 1 to go.
  EXPECT_DOUBLE_EQ(p.eta_seconds(10.0), 495.0);
  p.request_finished();
  EXPECT_DOUBLE_EQ(p.eta_seconds(10.0), 10.0);
  p.choice_finished(1000, 10);
  p.request_finished();
  EXPECT_EQ(p.eta_seconds(12.0), 0.0);
  EXPECT_EQ(p.line(12.0), "[batch] 2/2 requests, 1.7 tok/s, ETA 00:00:00");
}

TEST(BatchProgress, FormatsHoursAndNonsense) {
  EXPECT_EQ(format_eta(3 * 3600 + 25 * 60 + 7), "03:25:07");
  EXPECT_EQ(format_eta(-1), "--:--:--");
  EXPECT_EQ(format_eta(1e9), "--:--:--");
}

}  // namespace
}  // namespace lockstep
