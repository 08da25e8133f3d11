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
  p.on_token(4.0);  // the first token after 4 s of prefill
  p.on_token(4.4);
  EXPECT_LT(p.eta_seconds(4.5), 0) << "half a second of tokens is no pace yet";
  for (int i = 0; i < 99; ++i) p.on_token(4.5 + i * 0.1);
  // 100 tokens in the 10 s since the first: 10 tok/s (the 4 s before it do not count), and
  // 400 - 101 = 299 still allowed.
  EXPECT_DOUBLE_EQ(p.eta_seconds(14.0), 29.9);
  EXPECT_EQ(p.line(14.0), "[batch] 0/4 requests, 7.2 tok/s, ETA 00:00:30");
}

TEST(BatchProgress, ChoicesThatStopEarlyGiveBackTheirAllowance) {
  BatchProgress p(2);
  p.add_choice(1000);
  p.add_choice(1000);
  for (int i = 0; i <= 20; ++i) p.on_token(i * 0.5);  // 21 tokens, 20 of them in the 10 s after the first
  p.choice_finished(1000, 10);                         // stopped at 10 tokens: 990 fewer to go
  // by tokens: 2000 - 21 - 990 = 989 left at 2 tok/s = 494.5 s; by requests: 10 s for 1, 1 to go.
  EXPECT_DOUBLE_EQ(p.eta_seconds(10.0), 494.5);
  p.request_finished();
  EXPECT_DOUBLE_EQ(p.eta_seconds(10.0), 10.0);
  p.choice_finished(1000, 11);
  p.request_finished();
  EXPECT_EQ(p.eta_seconds(14.0), 0.0);
  EXPECT_EQ(p.line(14.0), "[batch] 2/2 requests, 1.5 tok/s, ETA 00:00:00");
}

TEST(BatchProgress, FinishedRequestsAloneGiveATimeBeforeTheTokensDo) {
  BatchProgress p(4);
  for (int i = 0; i < 4; ++i) p.add_choice(1);
  p.on_token(2.0);
  p.choice_finished(1, 1);
  p.request_finished();  // 1 of 4 in 2 s; the tokens' pace has no second of sample yet
  EXPECT_DOUBLE_EQ(p.eta_seconds(2.0), 6.0);
}

TEST(BatchProgress, FormatsHoursAndNonsense) {
  EXPECT_EQ(format_eta(3 * 3600 + 25 * 60 + 7), "03:25:07");
  EXPECT_EQ(format_eta(-1), "--:--:--");
  EXPECT_EQ(format_eta(1e9), "--:--:--");
}

}  // namespace
}  // namespace lockstep
