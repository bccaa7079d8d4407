// Analyzer::route: the rule stage answers without the model (source rule), the model answers otherwise
// (source model, or cache for a repeat), and when the model cannot decide within
// internal_model.deadline_ms the default category answers (source default). Generated model; the
// weights are random, so only what holds for any weights is asserted.
#include <gtest/gtest.h>

#include "busy-engine.h"
#include "test-support.h"
#include "tinyroute/analyze.h"
#include "tinyroute/decision-cache.h"

namespace tinyroute {
namespace {

Config config(int deadline_ms) {
  return parse_config("internal_model:\n  model: " + test::tiny_model() +
                          "\n  threads: 1\n  context: 4096\n  max_query_tokens: 48\n  threshold: 0\n"
                          "  deadline_ms: " +
                          std::to_string(deadline_ms) +
                          "\n"
                          "categories:\n"
                          "  - name: coding\n    description: Writing, fixing or explaining code.\n"
                          "  - name: reasoning\n    description: Step-by-step thinking.\n"
                          "  - name: chat\n    description: Small talk and everything else.\n"
                          "models:\n"
                          "  - name: coder\n    provider: ollama\n    base_url: http://127.0.0.1:11434\n"
                          "    categories: [coding]\n"
                          "  - name: thinker\n    provider: ollama\n    base_url: http://127.0.0.1:11434\n"
                          "    categories: [reasoning]\n"
                          "  - name: general\n    provider: ollama\n    base_url: http://127.0.0.1:11434\n"
                          "    categories: [chat, coding, reasoning]\n"
                          "default_category: chat\n"
                          "rules:\n"
                          "  - keywords: [код, code]\n    category: coding\n"
                          "  - keywords: [подумай]\n    category: reasoning\n",
                      "route.yaml");
}

EngineParams engine_params(int parallel = 4) {
  EngineParams p = engine_default_params();
  p.model_path = test::tiny_model();
  p.n_ctx = 4096;
  p.n_threads = 1;
  p.n_parallel = parallel;
  return p;
}

// Keeps a one-request engine decoding a forced 300-token answer: anything sent now queues behind it.
std::future<GenerateResult> keep_busy(Engine& engine) {
  return test::keep_engine_busy(engine, 300);
}

TEST(Route, ARuleDecidesWithoutTheModel) {
  Engine engine(engine_params());
  const Analyzer analyzer(engine, config(0));
  const auto before = engine.stats().requests;
  for (const char* text : {"Почему этот КОД падает?", "Посмотри мой code", "Подумай над планом"}) {
    const RoutedRequest r = analyzer.route(text);
    EXPECT_EQ(r.source, "rule") << text;
    EXPECT_EQ(r.classification.source, "rule") << text;
    ASSERT_TRUE(r.rule) << text;
    EXPECT_EQ(r.tokens_decoded, 0);
    EXPECT_FALSE(r.deadline_missed);
    EXPECT_NE(r.selection.reason.find("rules[" + std::to_string(r.rule->index) + "]"), std::string::npos)
        << r.selection.reason;
  }
  EXPECT_EQ(analyzer.route("Почему этот КОД падает?").selection.model, "coder");
  EXPECT_EQ(analyzer.route("Подумай над планом").selection.model, "thinker");
  EXPECT_EQ(engine.stats().requests, before); // the model did no work at all
}

TEST(Route, WithoutARuleTheModelDecidesAndARepeatComesFromTheCache) {
  Engine engine(engine_params());
  auto cache = std::make_shared<DecisionCache>(DecisionCacheOptions{64, 300});
  const Analyzer analyzer(engine, config(0), cache);
  const RoutedRequest first = analyzer.route("hey, how was your weekend");
  EXPECT_EQ(first.source, "model");
  EXPECT_FALSE(first.rule);
  EXPECT_GT(first.tokens_decoded, 0);
  // The same decision analyze makes.
  const AnalyzeResult a = Analyzer(engine, config(0)).analyze("hey, how was your weekend").get();
  EXPECT_EQ(first.classification.category, a.classification.category);
  const RoutedRequest again = analyzer.route("hey, how was your weekend");
  EXPECT_EQ(again.source, "cache");
  EXPECT_EQ(again.classification.category, first.classification.category);
  EXPECT_EQ(again.tokens_decoded, 0);
}

TEST(Route, AnalyzeReportsTheRuleForTheCategory) {
  Engine engine(engine_params());
  const Analyzer analyzer(engine, config(0));
  const AnalyzeResult r = analyzer.analyze("Почему этот код падает?").get();
  EXPECT_EQ(r.classification.category, "coding");
  EXPECT_EQ(r.classification.source, "rule");
  EXPECT_EQ(r.selection.model, "coder");
  EXPECT_EQ(r.fields.size(), 4u); // the model still answers the other decisions
}

TEST(Route, WhenTheModelMissesTheDeadlineTheDefaultCategoryAnswers) {
  // One request at a time, and a forced 300-token generation in front: the routing request queues
  // behind hundreds of decodes, far beyond a 1 ms deadline.
  Engine engine(engine_params(1));
  const Analyzer analyzer(engine, config(1));
  auto busy = keep_busy(engine);
  const RoutedRequest r = analyzer.route("hey, how was your weekend");
  EXPECT_EQ(r.source, "default");
  EXPECT_TRUE(r.deadline_missed);
  EXPECT_EQ(r.classification.category, "chat");
  EXPECT_EQ(r.selection.model, "general");
  EXPECT_NE(r.selection.reason.find("did not decide within 1 ms (internal_model.deadline_ms)"),
            std::string::npos)
      << r.selection.reason;
  // Rules still answer at once while the model is busy.
  EXPECT_EQ(analyzer.route("code review please").source, "rule");
  EXPECT_GE(busy.get().tokens.size(), 100u);
}

// A conversation message is routed by the same pass and the same deadline: decided by the model when it
// answers in time (its earlier turns included), the default category when it does not.
TEST(Route, AConversationMessageIsDecidedWithinTheDeadlineLikeAnyOther) {
  {
    Engine engine(engine_params());
    const Analyzer analyzer(engine, config(60000));
    for (const char* text : {"hey, how was your weekend", "and what did you cook?"}) {
      AnalyzeOptions options("c1");
      const RoutedRequest r = analyzer.route(text, std::move(options));
      EXPECT_EQ(r.source, "model") << text << ": " << r.selection.reason;
      EXPECT_FALSE(r.deadline_missed) << text;
      EXPECT_GT(r.tokens_decoded, 0) << text;
    }
  }
  Engine engine(engine_params(1));
  const Analyzer analyzer(engine, config(1));
  auto busy = keep_busy(engine);
  const RoutedRequest late = analyzer.route("hey, how was your weekend", AnalyzeOptions("c2"));
  EXPECT_EQ(late.source, "default");
  EXPECT_TRUE(late.deadline_missed);
  EXPECT_EQ(late.classification.category, "chat");
  EXPECT_GE(busy.get().tokens.size(), 100u);
}

// AnalyzeOptions::deadline bounds the wait, not the work: get() throws deadline_exceeded, the engine
// finishes the request, and the analyzer answers the next one.
TEST(Route, AnalyzeWithADeadlineEndsTheWaitNotTheWork) {
  Engine engine(engine_params(1));
  const Analyzer analyzer(engine, config(0));
  auto busy = keep_busy(engine);
  AnalyzeOptions options;
  options.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
  auto late = analyzer.analyze("hey, how was your weekend", std::move(options));
  try {
    late.get();
    FAIL() << "expected deadline_exceeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::deadline_exceeded) << e.what();
  }
  EXPECT_GE(busy.get().tokens.size(), 100u);
  const AnalyzeResult again = analyzer.analyze("hey, how was your weekend").get();
  EXPECT_EQ(again.classification.source, "model");
}

TEST(Route, EmptyOrOversizedTextIsRefused) {
  Engine engine(engine_params());
  const Analyzer analyzer(engine, config(0));
  EXPECT_THROW(analyzer.route("   "), Error);
  EXPECT_THROW(analyzer.route(std::string(70000, 'a')), Error);
}

} // namespace
} // namespace tinyroute
