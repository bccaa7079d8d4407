// The circuit breaker's state machine, with time passed in.
#include <gtest/gtest.h>

#include "gateway/breaker.h"

namespace tinyroute::gateway {
namespace {

using Clock = Breakers::Clock;
using namespace std::chrono_literals;

TEST(Breaker, OpensAfterConsecutiveFailuresAndASuccessResetsTheCount) {
  Breakers b({3, 1000ms});
  const auto t0 = Clock::now();
  b.failure("a", t0);
  b.failure("a", t0);
  b.success("a");
  b.failure("a", t0);
  b.failure("a", t0);
  EXPECT_EQ(b.state("a"), BreakerState::closed);
  EXPECT_TRUE(b.allow("a", t0));
  b.failure("a", t0);
  EXPECT_EQ(b.state("a"), BreakerState::open);
  EXPECT_FALSE(b.allow("a", t0 + 999ms));
  EXPECT_TRUE(b.allow("b", t0)) << "breakers are per backend";
}

TEST(Breaker, HalfOpenLetsExactlyOneProbeThrough) {
  Breakers b({1, 100ms});
  const auto t0 = Clock::now();
  b.failure("a", t0);
  EXPECT_TRUE(b.allow("a", t0 + 100ms));
  EXPECT_EQ(b.state("a"), BreakerState::half_open);
  EXPECT_FALSE(b.allow("a", t0 + 101ms)) << "a second caller during the probe";
  b.success("a");
  EXPECT_EQ(b.state("a"), BreakerState::closed);
  EXPECT_TRUE(b.allow("a", t0 + 102ms));
}

TEST(Breaker, AFailedProbeOpensItAgainForAFullCoolDown) {
  Breakers b({5, 100ms});
  const auto t0 = Clock::now();
  for (int i = 0; i < 5; ++i) b.failure("a", t0);
  ASSERT_TRUE(b.allow("a", t0 + 150ms));
  b.failure("a", t0 + 150ms); // one failure is enough while half-open
  EXPECT_EQ(b.state("a"), BreakerState::open);
  EXPECT_FALSE(b.allow("a", t0 + 200ms));
  EXPECT_TRUE(b.allow("a", t0 + 250ms));
}

TEST(Breaker, AReleasedProbeDoesNotWedgeTheBreaker) {
  Breakers b({1, 10ms});
  const auto t0 = Clock::now();
  b.failure("a", t0);
  ASSERT_TRUE(b.allow("a", t0 + 10ms));
  b.release("a"); // the try never reached the server
  EXPECT_TRUE(b.allow("a", t0 + 11ms));
}

} // namespace
} // namespace tinyroute::gateway
