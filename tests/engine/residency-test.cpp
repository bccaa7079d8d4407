// A request pays for what it can see: each prefix lives in a llama_context of its own while the cell
// budget allows, so what else is resident (other prefixes, kept conversations, requests in flight on
// them) cannot change a request's result. Contexts too small for a request grow into the budget with
// their prefixes copied over, not decoded again.
#include <gtest/gtest.h>

#include <future>
#include <string>
#include <vector>

#include "exactness.h"
#include "test-support.h"
#include "tinyroute/engine.h"

namespace tinyroute {
namespace {

using test::expect_bitwise_equal;
using test::expect_same_scores;

std::string words(const std::string& word, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += " " + word + std::to_string(i % 7);
  return s;
}

ScoreRequest classify_request(const Engine& engine, const std::string& text) {
  ScoreRequest r;
  r.prefix = "classify";
  r.query = engine.tokenize(text, false);
  r.continuations = {engine.tokenize(" billing", false), engine.tokenize(" outage report", false)};
  r.branches = {{engine.tokenize(" Urgent:", false), {engine.tokenize(" yes", false)}}};
  return r;
}

const char* kClassify = "<|system|>\nClassify the request: billing or outage report.</s>\n<|user|>\n";

TEST(Residency, AScoreIsTheSameWhateverElseIsResident) {
  const std::string text = " the invoice was charged twice and nobody answers";
  ScoreResult alone;
  {
    Engine engine(test::exact_params(test::tiny_model()));
    engine.add_prefix("classify", kClassify).get();
    alone = engine.score(classify_request(engine, text)).get();
    EXPECT_EQ(engine.stats().contexts, 1);
  }
  Engine engine(test::exact_params(test::tiny_model()));
  // Two long prefixes before it, conversations kept on one, generation running on the other.
  engine.add_prefix("agents", "Pick an agent." + words("agent", 300)).get();
  engine.add_prefix("fields", "Extract the fields." + words("field", 200)).get();
  for (int k = 0; k < 4; ++k) {
    ScoreRequest r;
    r.prefix = "agents";
    r.conversation = "c" + std::to_string(k);
    r.query = engine.tokenize(words("turn", 40 + 10 * k), false);
    r.continuations = {engine.tokenize(" billing", false)};
    engine.score(r).get();
  }
  engine.add_prefix("classify", kClassify).get();
  EXPECT_EQ(engine.stats().contexts, 3) << "each prefix was to get a context of its own";
  EXPECT_EQ(engine.stats().conversations, 4);
  GenerateRequest g;
  g.prefix = "fields";
  g.prompt = engine.tokenize(" name:", false);
  g.max_tokens = 24;
  auto generating = engine.generate(g);
  const ScoreRequest request = classify_request(engine, text);
  const ScoreResult crowded = engine.score(request).get();
  generating.get();
  expect_bitwise_equal(crowded, alone);
  expect_same_scores(crowded, engine.score_reference(request), "crowded engine");
}

// One context for everything (n_contexts 1, the layout before contexts were split) stays within the
// tolerance of the twin, not bit for bit: the other cells change how llama.cpp tiles the attention.
TEST(Residency, OneSharedContextStaysExact) {
  EngineParams p = test::exact_params(test::tiny_model());
  p.n_contexts = 1;
  Engine engine(p);
  engine.add_prefix("agents", "Pick an agent." + words("agent", 300)).get();
  engine.add_prefix("classify", kClassify).get();
  const ScoreRequest request = classify_request(engine, " the site is down since noon");
  expect_same_scores(engine.score(request).get(), engine.score_reference(request), "one context");
  EXPECT_EQ(engine.stats().contexts, 1);
}

TEST(Residency, AContextTooSmallForARequestGrowsAndKeepsItsPrefix) {
  Engine engine(test::exact_params(test::tiny_model()));
  engine.add_prefix("classify", kClassify).get();
  const ScoreRequest short_request = classify_request(engine, " refund please");
  const ScoreResult before = engine.score(short_request).get();
  // Far more than the context made for a short prefix holds (its tokens, rounded up, plus a share).
  const ScoreRequest long_request = classify_request(engine, words("log line", 500));
  ASSERT_GT(long_request.query.size(), 1100u);
  const ScoreResult long_result = engine.score(long_request).get();
  EXPECT_GE(engine.stats().context_rebuilds, 1u);
  expect_same_scores(long_result, engine.score_reference(long_request), "after growing");
  // The prefix was copied into the larger context, not decoded again, and scores as before.
  const ScoreResult after = engine.score(short_request).get();
  EXPECT_EQ(after.n_decoded, before.n_decoded);
  expect_same_scores(after, before, "the copied prefix");
}

// Kept conversations that outgrow their prefix's context grow it into the budget no context uses,
// and the rebuild copies them with the prefix: the next turn of each continues its kept sequence
// (nothing evicted, nothing decoded again) and scores as the twin does.
TEST(Residency, KeptConversationsOutgrowingTheirContextGrowItAndStayKept) {
  Engine engine(test::exact_params(test::tiny_model()));
  engine.add_prefix("classify", kClassify).get();
  auto turn = [&](int k, int upto) {
    std::string text;
    for (int i = 0; i <= upto; ++i) text += words("c" + std::to_string(k) + "t" + std::to_string(i), 40);
    ScoreRequest r = classify_request(engine, text);
    r.conversation = "c" + std::to_string(k);
    return r;
  };
  // Turn 1 of four conversations: together more than the context made for a short prefix holds.
  size_t first_turns = 0;
  for (int k = 0; k < 4; ++k) {
    const ScoreRequest r = turn(k, 0);
    first_turns += r.query.size();
    engine.score(r).get();
  }
  ASSERT_GT(first_turns, 600u);
  EXPECT_GE(engine.stats().context_rebuilds, 1u);
  EXPECT_EQ(engine.stats().contexts, 1);
  EXPECT_EQ(engine.stats().conversations, 4);
  EXPECT_EQ(engine.stats().conversation_evictions, 0u);
  for (int k = 0; k < 4; ++k) {
    const ScoreRequest r = turn(k, 1);
    const ScoreResult second = engine.score(r).get();
    EXPECT_GE(static_cast<size_t>(second.n_reused), turn(k, 0).query.size() - 1) << "conversation " << k;
    expect_same_scores(second, engine.score_reference(r), "conversation " + std::to_string(k));
  }
  EXPECT_EQ(engine.stats().conversation_reuses, 4u);
  EXPECT_EQ(engine.stats().conversation_evictions, 0u);
}

// n_ctx bounds one context: a request that does not fit it with its prefix is a context overflow, and
// the engine goes on serving.
TEST(Residency, ARequestLargerThanOneContextIsAContextOverflow) {
  EngineParams p = test::exact_params(test::tiny_model());
  p.n_ctx = 1024;
  Engine engine(p);
  engine.add_prefix("a", "First." + words("a", 60)).get();
  engine.add_prefix("b", "Second." + words("b", 60)).get();
  EXPECT_EQ(engine.stats().contexts, 2);
  ScoreRequest r;
  r.prefix = "a";
  r.query = engine.tokenize(words("x", 500), false);
  ASSERT_GT(r.query.size() + engine.prefix_tokens("a").size(), 1024u);
  r.continuations = {engine.tokenize(" yes", false)};
  try {
    engine.score(r).get();
    FAIL() << "a request larger than n_ctx was scheduled";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::context_overflow) << e.what();
    EXPECT_NE(std::string(e.what()).find("raise n_ctx"), std::string::npos) << e.what();
  }
  // One that fits n_ctx but not the context made for the prefix grows it, past the contexts' sum.
  r.query = engine.tokenize(words("x", 250), false);
  ASSERT_GT(r.query.size() + engine.prefix_tokens("a").size(), 512u);
  expect_same_scores(engine.score(r).get(), engine.score_reference(r), "grown past the sum");
  EXPECT_GE(engine.stats().context_rebuilds, 1u);
  r.prefix = "b";
  r.query = engine.tokenize(" short", false);
  expect_same_scores(engine.score(r).get(), engine.score_reference(r), "the other prefix");
}

TEST(Residency, RejectsAContextCountOutOfRange) {
  EngineParams p = test::exact_params(test::tiny_model());
  p.n_contexts = 0;
  EXPECT_THROW(Engine{p}, Error);
}

} // namespace
} // namespace tinyroute
