// The decision cache on its own: keys, normalisation, TTL, LRU bound and counters (no model needed).
#include <gtest/gtest.h>

#include "tinyroute/decision-cache.h"

namespace tinyroute {
namespace {

AnalyzeResult decision(const std::string& category, double ms = 10) {
  AnalyzeResult r;
  r.classification.category = category;
  r.timing.total_ms = ms;
  r.source = "model";
  return r;
}

TEST(DecisionCache, NormalisationTrimsCollapsesWhitespaceAndFoldsCase) {
  EXPECT_EQ(normalize_request_text("  Hello \t\n  WORLD  "), "hello world");
  EXPECT_EQ(normalize_request_text("Привет  Мир"), "Привет Мир"); // non-ASCII bytes are kept as they are
  EXPECT_EQ(normalize_request_text(""), "");
  EXPECT_EQ(DecisionCache::key("A  b", "h1", "analyze"), DecisionCache::key(" a b ", "h1", "analyze"));
  EXPECT_NE(DecisionCache::key("a b", "h1", "analyze"), DecisionCache::key("a b", "h2", "analyze"));
  EXPECT_NE(DecisionCache::key("a b", "h1", "analyze"), DecisionCache::key("a b", "h1", "classify"));
}

TEST(DecisionCache, EntriesExpireAfterTheTtl) {
  auto now = DecisionCache::Clock::time_point{};
  DecisionCache cache({16, 60}, [&now] { return now; });
  cache.put("k", decision("coding"));
  now += std::chrono::seconds(59);
  ASSERT_NE(cache.find("k"), nullptr);
  EXPECT_EQ(cache.find("k")->classification.category, "coding");
  now += std::chrono::seconds(2);
  EXPECT_EQ(cache.find("k"), nullptr);
  const DecisionCacheStats s = cache.stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.expirations, 1u);
  EXPECT_EQ(s.entries, 0u);
  EXPECT_DOUBLE_EQ(s.saved_ms, 20);
}

TEST(DecisionCache, TheLeastRecentlyUsedEntryGoesFirst) {
  DecisionCache cache({2, 300});
  cache.put("a", decision("a"));
  cache.put("b", decision("b"));
  ASSERT_NE(cache.find("a"), nullptr); // a is now more recent than b
  cache.put("c", decision("c"));
  EXPECT_EQ(cache.find("b"), nullptr);
  EXPECT_NE(cache.find("a"), nullptr);
  EXPECT_NE(cache.find("c"), nullptr);
  EXPECT_EQ(cache.stats().entries, 2u);
  EXPECT_EQ(cache.stats().evictions, 1u);
}

TEST(DecisionCache, ClearEmptiesButKeepsTheCounters) {
  DecisionCache cache;
  cache.put("a", decision("a"));
  ASSERT_NE(cache.find("a"), nullptr);
  cache.clear();
  EXPECT_EQ(cache.find("a"), nullptr);
  EXPECT_EQ(cache.stats().hits, 1u);
  const std::string text = cache.metrics_text();
  EXPECT_NE(text.find("tinyroute_decision_cache_hits_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tinyroute_decision_cache_misses_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tinyroute_decision_cache_entries 0\n"), std::string::npos) << text;
}

TEST(DecisionCache, SizeZeroNeverStores) {
  DecisionCache cache({0, 300});
  cache.put("a", decision("a"));
  EXPECT_EQ(cache.find("a"), nullptr);
}

} // namespace
} // namespace tinyroute
