// Forked scoring: prefix + query decoded once, then one sequence per branch (cue + continuations).
// Each branch must equal prefix + query + cue decoded from scratch in a fresh context.
#include <gtest/gtest.h>

#include <thread>

#include "exactness.h"
#include "test-support.h"
#include "tinyroute/engine.h"

namespace tinyroute {
namespace {

std::vector<std::vector<Token>> letters(const Engine& e, int n) {
  std::vector<std::vector<Token>> out;
  for (int i = 0; i < n; ++i) out.push_back(e.tokenize(std::string(1, static_cast<char>('A' + i)), false));
  return out;
}

// Decisions as a router asks them: letter choices after named cues, one branch scoring whole names.
ScoreRequest decisions(const Engine& e, const std::string& text) {
  ScoreRequest r;
  r.prefix = "all";
  r.query = e.tokenize(text, false);
  r.branches.push_back({e.tokenize("\nCategory:", false), letters(e, 6)});
  r.branches.push_back({e.tokenize("\nAgent:", false), letters(e, 3)});
  r.branches.push_back({e.tokenize("\nLanguage of the message:", false), letters(e, 7)});
  r.branches.push_back({e.tokenize("\nUrgency:", false),
                        {e.tokenize(" low", false), e.tokenize(" normal", false),
                         e.tokenize(" high priority", false), e.tokenize(" urgent, right now", false)}});
  r.branches.push_back({{}, {e.tokenize(" yes", false), e.tokenize(" no, not at all", false)}});
  return r;
}

const std::vector<std::string>& texts() {
  static const std::vector<std::string> t = {
      " What's the weather in Paris tomorrow?", " Напиши функцию на Python, которая сортирует список.",
      " transfer $200 from checking to savings", " hi",
      " Почему сервер отвечает 502 после деплоя? connection refused upstream"};
  return t;
}

void add_prefix(Engine& e) {
  e.add_prefix("all", "<|system|>\nDecide the category, the agent, the language and the urgency.</s>\n"
                      "<|user|>\nRequest:")
      .get();
}

TEST(ForkedScore, EachBranchEqualsItsPromptDecodedFromScratch) {
  Engine engine(test::exact_params(test::tiny_model()));
  add_prefix(engine);
  for (const auto& text : texts()) {
    const ScoreRequest r = decisions(engine, text);
    test::expect_same_scores(engine.score(r).get(), engine.score_reference(r), text);
  }
}

TEST(ForkedScore, TheQueryIsDecodedOnceAndEveryCueOnce) {
  Engine engine(test::exact_params(test::tiny_model()));
  add_prefix(engine);
  ScoreRequest r;
  r.prefix = "all";
  r.query = engine.tokenize(" refund my order please", false);
  size_t cues = 0;
  for (const char* cue : {"\nCategory:", "\nAgent:", "\nLanguage:", "\nUrgency:"}) {
    r.branches.push_back({engine.tokenize(cue, false), letters(engine, 4)});
    cues += r.branches.back().cue.size();
  }
  const ScoreResult fast = engine.score(r).get();
  EXPECT_EQ(fast.n_decoded, static_cast<int>(r.query.size() + cues));
  EXPECT_TRUE(fast.continuations.empty());
  test::expect_same_scores(fast, engine.score_reference(r), "one-token answers");
  EXPECT_LE(fast.query_ms, fast.compute_ms);
}

TEST(ForkedScore, OwnContinuationsAndBranchesTogether) {
  Engine engine(test::exact_params(test::tiny_model()));
  add_prefix(engine);
  ScoreRequest r = decisions(engine, " deploy the new build to staging");
  r.continuations = {engine.tokenize(" ok", false), engine.tokenize(" not ok at all", false)};
  test::expect_same_scores(engine.score(r).get(), engine.score_reference(r), "mixed");
}

TEST(ForkedScore, MoreLanesThanOneWaveStayExact) {
  Engine engine(test::exact_params(test::tiny_model()));
  add_prefix(engine);
  ScoreRequest r;
  r.prefix = "all";
  r.query = engine.tokenize(" the payment service times out", false);
  for (int b = 0; b < 5; ++b) {
    ScoreBranch br{engine.tokenize("\nDecision " + std::to_string(b) + ":", false), {}};
    for (int i = 0; i < 6; ++i)
      br.continuations.push_back(engine.tokenize(" label " + std::to_string(i), false));
    r.branches.push_back(std::move(br));
  }
  test::expect_same_scores(engine.score(r).get(), engine.score_reference(r), "30 lanes");
}

TEST(ForkedScore, BatchedWithOtherTrafficUnderSeveralThreadsStaysExact) {
  Engine engine(test::exact_params(test::tiny_model()));
  add_prefix(engine);
  engine.add_prefix("other", "Classify the request. Categories: weather, coding, banking.").get();
  std::vector<ScoreRequest> reqs;
  for (int i = 0; i < 24; ++i) {
    const std::string text = texts()[static_cast<size_t>(i) % texts().size()] + " #" + std::to_string(i);
    if (i % 3 == 2) { // plain scoring on another prefix, in the same decodes
      ScoreRequest plain;
      plain.prefix = "other";
      plain.query = engine.tokenize(text, false);
      plain.continuations = {engine.tokenize(" weather", false), engine.tokenize(" coding help", false)};
      reqs.push_back(std::move(plain));
    } else {
      reqs.push_back(decisions(engine, text));
    }
  }
  std::vector<ScoreResult> fast(reqs.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::pair<size_t, std::future<ScoreResult>>> mine;
      for (size_t i = t; i < reqs.size(); i += 4) mine.emplace_back(i, engine.score(reqs[i]));
      for (auto& [i, f] : mine) fast[i] = f.get();
    });
  }
  for (auto& th : threads) th.join();
  for (size_t i = 0; i < reqs.size(); ++i)
    test::expect_same_scores(fast[i], engine.score_reference(reqs[i]), "request " + std::to_string(i));
  EXPECT_GT(engine.stats().max_batch_requests, 1u);
}

TEST(ForkedScore, ABranchWithoutContinuationsIsRefused) {
  Engine engine(test::exact_params(test::tiny_model()));
  ScoreRequest r;
  r.query = engine.tokenize("hello", true);
  r.branches.push_back({engine.tokenize(" cue", false), {}});
  try {
    (void)engine.score(r);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
  }
}

} // namespace
} // namespace tinyroute
