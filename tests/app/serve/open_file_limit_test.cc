// The serve command's open-file limit: raised towards the connections it may hold, within the
// hard limit, and never lowered.
#include "app/serve/open_file_limit.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>

namespace lockstep {
namespace {

TEST(OpenFileLimit, RaisesTheSoftLimitWithinTheHardOne) {
  rlimit original{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &original), 0);
  if (original.rlim_max != RLIM_INFINITY && original.rlim_max < 128) GTEST_SKIP() << "hard limit below 128";
  rlimit low = original;
  low.rlim_cur = 64;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);

  const std::size_t wanted = 100;
  EXPECT_EQ(raise_open_file_limit(wanted), wanted);
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, wanted);
  EXPECT_EQ(raise_open_file_limit(80), wanted) << "never lowered";
  if (original.rlim_max != RLIM_INFINITY)  // asked past the hard limit: up to it
    EXPECT_EQ(raise_open_file_limit(static_cast<std::size_t>(original.rlim_max) + 1000),
              static_cast<std::size_t>(original.rlim_max));
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &original), 0);
}

}  // namespace
}  // namespace lockstep
