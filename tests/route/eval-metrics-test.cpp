// compute_metrics and the latency summary against tables worked out by hand.
#include <cmath>

#include <gtest/gtest.h>

#include "core/percentile.h"
#include "tinyroute/error.h"
#include "tinyroute/eval-metrics.h"

namespace {

using namespace tinyroute;

// Gold / predicted over labels a, b, c (10 examples):
//            pred a  pred b  pred c
//   gold a      3       1       0      support 4
//   gold b      0       2       1      support 3
//   gold c      1       0       2      support 3
// a: P 3/4, R 3/4, F1 0.75;  b: P 2/3, R 2/3, F1 2/3;  c: P 2/3, R 2/3, F1 2/3
// accuracy 7/10, macro-F1 (0.75 + 2/3 + 2/3) / 3 = 0.694444...
TEST(EvalMetrics, ThreeClassTable) {
  std::vector<std::string> gold = {"a", "a", "a", "a", "b", "b", "b", "c", "c", "c"};
  std::vector<std::string> pred = {"a", "a", "a", "b", "b", "b", "c", "a", "c", "c"};
  EvalMetrics m = compute_metrics({"a", "b", "c"}, gold, pred);
  ASSERT_EQ(m.labels, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(m.confusion, (std::vector<std::vector<int>>{{3, 1, 0}, {0, 2, 1}, {1, 0, 2}}));
  EXPECT_EQ(m.total, 10);
  EXPECT_EQ(m.correct, 7);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.7);
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 0.75);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 0.75);
  EXPECT_DOUBLE_EQ(m.per_class[0].f1, 0.75);
  EXPECT_NEAR(m.per_class[1].precision, 2.0 / 3, 1e-12);
  EXPECT_NEAR(m.per_class[2].recall, 2.0 / 3, 1e-12);
  EXPECT_EQ(m.per_class[0].support, 4);
  EXPECT_EQ(m.per_class[0].predicted, 4);
  EXPECT_NEAR(m.macro_f1, (0.75 + 2.0 / 3 + 2.0 / 3) / 3, 1e-12);
}

// Precision and recall differ; a label nobody predicts; a label that never occurs.
//            pred x  pred y  pred z(unused)
//   gold x      2       0
//   gold y      2       0
// x: P 2/4 = 0.5, R 2/2 = 1, F1 2*0.5*1/1.5 = 2/3;  y: P 0 (none predicted), R 0, F1 0
// z: no gold, no predictions -> left out of macro-F1.  macro-F1 = (2/3 + 0) / 2 = 1/3
TEST(EvalMetrics, UnpredictedAndAbsentLabels) {
  EvalMetrics m = compute_metrics({"x", "y", "z"}, {"x", "x", "y", "y"}, {"x", "x", "x", "x"});
  EXPECT_DOUBLE_EQ(m.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 1.0);
  EXPECT_NEAR(m.per_class[0].f1, 2.0 / 3, 1e-12);
  EXPECT_EQ(m.per_class[1].predicted, 0);
  EXPECT_DOUBLE_EQ(m.per_class[1].precision, 0);
  EXPECT_DOUBLE_EQ(m.per_class[1].f1, 0);
  EXPECT_EQ(m.per_class[2].support, 0);
  EXPECT_NEAR(m.macro_f1, 1.0 / 3, 1e-12);
}

TEST(EvalMetrics, UnknownLabelsAreAppendedNotLost) {
  EvalMetrics m = compute_metrics({"a"}, {"a", "q"}, {"r", "a"});
  // Appended in order of first appearance, reading each (gold, predicted) pair in turn.
  EXPECT_EQ(m.labels, (std::vector<std::string>{"a", "r", "q"}));
  int sum = 0;
  for (const auto& row : m.confusion) {
    for (int v : row) sum += v;
  }
  EXPECT_EQ(sum, 2);
  EXPECT_EQ(m.confusion[2][0], 1); // gold q, predicted a
  EXPECT_EQ(m.confusion[0][1], 1); // gold a, predicted r
  EXPECT_EQ(m.correct, 0);
}

TEST(EvalMetrics, EmptyAndMismatched) {
  EvalMetrics m = compute_metrics({"a", "b"}, {}, {});
  EXPECT_EQ(m.total, 0);
  EXPECT_DOUBLE_EQ(m.accuracy, 0);
  EXPECT_DOUBLE_EQ(m.macro_f1, 0);
  EXPECT_THROW(compute_metrics({"a"}, {"a"}, {}), Error);
}

// Nearest rank over 1..20: p50 -> rank 10 -> 10; p95 -> rank 19 -> 19; p99 -> rank ceil(19.8) = 20.
TEST(EvalMetrics, LatencyPercentilesNearestRank) {
  std::vector<double> ms;
  for (int i = 20; i >= 1; --i) ms.push_back(i); // unsorted on purpose
  LatencySummary s = summarize_latency(ms);
  EXPECT_EQ(s.count, 20);
  EXPECT_DOUBLE_EQ(s.mean, 10.5);
  EXPECT_DOUBLE_EQ(s.p50, 10);
  EXPECT_DOUBLE_EQ(s.p95, 19);
  EXPECT_DOUBLE_EQ(s.p99, 20);
  EXPECT_DOUBLE_EQ(s.max, 20);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2}, 0), 1);
  EXPECT_TRUE(std::isnan(percentile({}, 50))); // no sample is not 0 ms
  EXPECT_EQ(summarize_latency({}).count, 0);
}

} // namespace
