// select_model: capability, context and availability filters, ordering, fallbacks, errors, and the
// internal-model guard.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tinyroute/config.h"
#include "tinyroute/error.h"
#include "tinyroute/select.h"

namespace tinyroute {
namespace {

ModelConfig model(const std::string& name, std::vector<std::string> categories, int priority, double cost,
                  int context_window, Capabilities caps = {}) {
  ModelConfig m;
  m.name = name;
  m.upstream_model = name;
  m.provider = Provider::ollama;
  m.base_url = "http://127.0.0.1:11434";
  m.categories = std::move(categories);
  m.priority = priority;
  m.cost = cost;
  m.context_window = context_window;
  m.capabilities = caps;
  return m;
}

// coding: deepseek and big-coder share priority 10 (deepseek cheaper); small-coder and cheap-coder
// share priority 5 and cost 0 (config order decides); general is coding's fallback.
Config fixture() {
  Config cfg;
  cfg.internal_model.model = "tinyllama-1.1b-chat";
  cfg.categories = {{"coding", "Code.", {}}, {"chat", "Talk.", {}}, {"vision", "Images.", {}}};
  cfg.models = {
      model("big-coder", {"coding"}, 10, 3, 32768, {.tools = true}),
      model("deepseek", {"coding"}, 10, 1, 8192, {.reasoning = true}),
      model("small-coder", {"coding"}, 5, 0, 16384, {.tools = true}),
      model("cheap-coder", {"coding"}, 5, 0, 16384, {.tools = true}),
      model("general", {"chat"}, 0, 0, 8192, {.tools = true}),
      model("eyes", {"vision"}, 0, 0, 8192, {.vision = true}),
  };
  cfg.fallbacks = {{"coding", {"general", "big-coder"}}, {"vision", {"general"}}};
  cfg.default_category = "chat";
  return cfg;
}

struct SelectCase {
  std::string name;
  std::string category;
  RequestFacts facts;
  Availability availability;
  std::string model;
  std::vector<std::string> fallbacks;
  std::vector<std::string> rejected; // model names, in order
  std::string reason;                // substring of the reason
};

void PrintTo(const SelectCase& c, std::ostream* os) {
  *os << c.name;
}

std::vector<SelectCase> select_cases() {
  return {
      {"priority_then_cost",
       "coding",
       {},
       {},
       "deepseek",
       {"big-coder", "small-coder", "cheap-coder", "general"},
       {},
       "coding: deepseek (priority 10, cost 1)"},
      {"tools_filter",
       "coding",
       {.needs_tools = true},
       {},
       "big-coder",
       {"small-coder", "cheap-coder", "general"},
       {"deepseek"},
       "skipped deepseek: no tool support"},
      {"reasoning_filter",
       "coding",
       {.needs_reasoning = true},
       {},
       "deepseek",
       {},
       {"big-coder", "small-coder", "cheap-coder", "general"},
       "skipped big-coder: no reasoning support"},
      {"context_filter",
       "coding",
       {.estimated_tokens = 12000},
       {},
       "big-coder",
       {"small-coder", "cheap-coder"},
       {"deepseek", "general"},
       "coding: big-coder (priority 10, cost 3); skipped deepseek: context 8192 < 12000 tokens"},
      {"context_exactly_fits",
       "coding",
       {.estimated_tokens = 16384},
       {},
       "big-coder",
       {"small-coder", "cheap-coder"},
       {"deepseek", "general"},
       "coding: big-coder"},
      {"context_and_tools_both_listed",
       "coding",
       {.estimated_tokens = 20000, .needs_tools = true},
       {},
       "big-coder",
       {},
       {"deepseek", "small-coder", "cheap-coder", "general"},
       "skipped deepseek: no tool support, context 8192 < 20000 tokens"},
      {"unavailable_with_why",
       "coding",
       {},
       {.unavailable_models = {"deepseek", "big-coder"}, .why = {{"deepseek", "breaker open"}}},
       "small-coder",
       {"cheap-coder", "general"},
       {"deepseek", "big-coder"},
       "skipped deepseek: unavailable (breaker open); skipped big-coder: unavailable"},
      {"config_order_breaks_ties",
       "coding",
       {},
       {.unavailable_models = {"deepseek", "big-coder"}},
       "small-coder",
       {"cheap-coder", "general"},
       {"deepseek", "big-coder"},
       "coding: small-coder (priority 5)"},
      {"fallback_serves_when_all_down",
       "coding",
       {},
       {.unavailable_models = {"deepseek", "big-coder", "small-coder", "cheap-coder"}},
       "general",
       {},
       {"deepseek", "big-coder", "small-coder", "cheap-coder"},
       "coding: general (fallback, priority 0)"},
      {"fallback_after_filter",
       "vision",
       {.needs_tools = true},
       {},
       "general",
       {},
       {"eyes"},
       "vision: general (fallback, priority 0); skipped eyes: no tool support"},
      {"fallbacks_appended_after_category_models", "vision", {}, {}, "eyes", {"general"}, {}, "vision: eyes"},
  };
}

class SelectTable : public ::testing::TestWithParam<SelectCase> {};

TEST_P(SelectTable, Selects) {
  const SelectCase& c = GetParam();
  const Config cfg = fixture();
  const Selection s = select_model(cfg, c.category, c.facts, c.availability);
  EXPECT_EQ(s.model, c.model);
  EXPECT_EQ(s.fallbacks, c.fallbacks);
  std::vector<std::string> rejected;
  for (const auto& r : s.rejected) rejected.push_back(r.model);
  EXPECT_EQ(rejected, c.rejected);
  EXPECT_NE(s.reason.find(c.reason), std::string::npos) << s.reason;
}

INSTANTIATE_TEST_SUITE_P(Table, SelectTable, ::testing::ValuesIn(select_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

// The answer depends on its arguments only: other selections in between (other categories, facts and
// unavailable models) change nothing, and the config is left as it was.
TEST(Select, IsPure) {
  const Config cfg = fixture();
  const RequestFacts facts{.estimated_tokens = 9000};
  const Selection first = select_model(cfg, "coding", facts);
  for (const auto& category : {"chat", "coding", "vision"}) {
    for (const int tokens : {10, 9000, 20000}) {
      try {
        select_model(cfg, category, {.estimated_tokens = tokens, .needs_tools = true});
        select_model(cfg, category, {.estimated_tokens = tokens}, {.unavailable_models = {first.model}});
      } catch (const Error&) { // some of these have no candidate: still no trace may be left
      }
    }
  }
  const Selection again = select_model(cfg, "coding", facts);
  EXPECT_EQ(again.model, first.model);
  EXPECT_EQ(again.fallbacks, first.fallbacks);
  EXPECT_EQ(again.reason, first.reason);
  const Config fresh = fixture();
  ASSERT_EQ(cfg.models.size(), fresh.models.size());
  for (std::size_t i = 0; i < cfg.models.size(); ++i) {
    EXPECT_EQ(cfg.models[i].name, fresh.models[i].name);
    EXPECT_EQ(cfg.models[i].categories, fresh.models[i].categories);
    EXPECT_EQ(cfg.models[i].priority, fresh.models[i].priority);
  }
  EXPECT_EQ(cfg.fallbacks, fresh.fallbacks);
  const Selection on_fresh = select_model(fresh, "coding", facts);
  EXPECT_EQ(on_fresh.model, first.model);
  EXPECT_EQ(on_fresh.reason, first.reason);
}

// Larger than every candidate's context window: the request's fault (context_overflow, which the gateway
// answers as 413 context_length_exceeded), not a lack of capacity; every rejection is still listed.
TEST(Select, TooLargeForEveryContextIsContextOverflowListingEveryRejection) {
  const Config cfg = fixture();
  try {
    select_model(cfg, "coding", {.estimated_tokens = 40000}, {.unavailable_models = {"general"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::context_overflow);
    const std::string m = e.what();
    for (const char* part :
         {"\"coding\"", "about 40000 tokens", "largest context window", "(32768 tokens)",
          "big-coder: context 32768 < 40000 tokens", "deepseek: context 8192 < 40000 tokens",
          "small-coder: context 16384 < 40000 tokens", "cheap-coder: context 16384 < 40000 tokens",
          "general: context 8192 < 40000 tokens, unavailable"}) {
      EXPECT_NE(m.find(part), std::string::npos) << part << " in: " << m;
    }
  }
}

// What the internal model inferred is a preference: honoured when a model has it, ignored (and said so)
// when none does; the caller's own facts stay requirements.
TEST(Select, InferredNeedsArePreferredNeverRequired) {
  const Config cfg = fixture();
  const Selection plain = select_model(cfg, "coding", {});
  EXPECT_EQ(select_model_inferred(cfg, "coding", {}, {}).reason, plain.reason);
  const Selection tools = select_model_inferred(cfg, "coding", {}, {.needs_tools = true});
  EXPECT_EQ(tools.model, "big-coder"); // deepseek has no tools
  EXPECT_EQ(tools.model, select_model(cfg, "coding", {.needs_tools = true}).model);
  EXPECT_NE(tools.reason.find("skipped deepseek: no tool support"), std::string::npos) << tools.reason;
  EXPECT_NE(tools.reason.find("inferred from the request: needs tools"), std::string::npos) << tools.reason;
  // No tool-capable model can serve vision while general is down: the inference is ignored.
  const Availability down{.unavailable_models = {"general"}};
  const Selection ignored = select_model_inferred(cfg, "vision", {}, {.needs_tools = true}, down);
  EXPECT_EQ(ignored.model, "eyes");
  EXPECT_NE(ignored.reason.find("which no available model has (ignored)"), std::string::npos)
      << ignored.reason;
  // The caller's own needs are still requirements.
  EXPECT_THROW(select_model_inferred(cfg, "chat", {.needs_vision = true}, {.needs_tools = true}), Error);
  // Already required by the caller: nothing is inferred on top.
  EXPECT_EQ(select_model_inferred(cfg, "coding", {.needs_tools = true}, {.needs_tools = true}).reason,
            select_model(cfg, "coding", {.needs_tools = true}).reason);
}

// Too small for some, down for the rest: capacity, not the request, so still no_candidate.
TEST(Select, TooSmallForSomeAndTheOthersDownIsNoCandidate) {
  const Config cfg = fixture();
  try {
    select_model(cfg, "coding", {.estimated_tokens = 20000}, {.unavailable_models = {"big-coder"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::no_candidate) << e.what();
  }
}

TEST(Select, VisionWithoutVisionModelsIsNoCandidate) {
  const Config cfg = fixture();
  try {
    select_model(cfg, "chat", {.needs_vision = true});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::no_candidate);
    EXPECT_NE(std::string(e.what()).find("general: no vision support"), std::string::npos) << e.what();
  }
}

TEST(Select, UnknownCategoryIsInvalidArgument) {
  const Config cfg = fixture();
  try {
    select_model(cfg, "cooking", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("\"cooking\""), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("coding, chat, vision"), std::string::npos);
  }
}

// A Config built by hand skips validation; select_model still never picks the internal model.
TEST(Select, NeverReturnsTheInternalModel) {
  Config cfg = fixture();
  cfg.models.insert(cfg.models.begin(), model("tinyllama:latest", {"chat"}, 100, 0, 32768, {.tools = true}));
  ModelConfig disguised = model("helper", {"chat"}, 99, 0, 32768);
  disguised.upstream_model = "TinyLlama-1.1B-Chat";
  cfg.models.insert(cfg.models.begin(), disguised);
  cfg.fallbacks["chat"] = {"tinyllama:latest"};

  const Selection s = select_model(cfg, "chat", {});
  EXPECT_EQ(s.model, "general");
  EXPECT_TRUE(s.fallbacks.empty());
  ASSERT_EQ(s.rejected.size(), 2u);
  EXPECT_EQ(s.rejected[0].model, "tinyllama:latest");
  EXPECT_EQ(s.rejected[0].why, "internal model, never an answer target");
  EXPECT_EQ(s.rejected[1].model, "helper");

  try {
    select_model(cfg, "chat", {}, {.unavailable_models = {"general"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::no_candidate);
    EXPECT_NE(std::string(e.what()).find("tinyllama:latest: internal model"), std::string::npos) << e.what();
  }
}

TEST(Select, FallbackNamingAnUndefinedModelIsRejected) {
  Config cfg = fixture();
  cfg.fallbacks["chat"] = {"ghost"};
  const Selection s = select_model(cfg, "chat", {});
  EXPECT_EQ(s.model, "general");
  ASSERT_EQ(s.rejected.size(), 1u);
  EXPECT_EQ(s.rejected[0].model, "ghost");
  EXPECT_EQ(s.rejected[0].why, "not defined in models");
}

} // namespace
} // namespace tinyroute
