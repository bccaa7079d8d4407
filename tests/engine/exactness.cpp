#include "exactness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <future>
#include <limits>

namespace tinyroute::test {

namespace {

void expect_same(const std::vector<ContinuationScore>& fast, const std::vector<ContinuationScore>& slow,
                 const std::string& what) {
  ASSERT_EQ(fast.size(), slow.size()) << what;
  for (size_t j = 0; j < fast.size(); ++j) {
    const auto& f = fast[j].token_logprobs;
    const auto& s = slow[j].token_logprobs;
    ASSERT_EQ(f.size(), s.size()) << what;
    for (size_t k = 0; k < f.size(); ++k)
      EXPECT_NEAR(f[k], s[k], kTol) << what << ": continuation " << j << " token " << k;
    EXPECT_NEAR(fast[j].total, slow[j].total, kTol * static_cast<double>(f.size())) << what;
  }
}

double max_difference(const std::vector<ContinuationScore>& fast, const std::vector<ContinuationScore>& slow,
                      const std::string& what) {
  double worst = 0;
  if (fast.size() != slow.size()) {
    ADD_FAILURE() << what << ": " << fast.size() << " continuations, the reference has " << slow.size();
    return std::numeric_limits<double>::infinity();
  }
  for (size_t j = 0; j < fast.size(); ++j) {
    const auto& f = fast[j].token_logprobs;
    const auto& s = slow[j].token_logprobs;
    if (f.size() != s.size()) {
      ADD_FAILURE() << what << ": continuation " << j << " has " << f.size() << " tokens, the reference "
                    << s.size();
      return std::numeric_limits<double>::infinity();
    }
    for (size_t k = 0; k < f.size(); ++k)
      worst = std::max(worst, std::abs(static_cast<double>(f[k]) - static_cast<double>(s[k])));
  }
  return worst;
}

} // namespace

double max_logprob_difference(const ScoreResult& fast, const ScoreResult& slow, const std::string& what) {
  double worst = max_difference(fast.continuations, slow.continuations, what);
  if (fast.branches.size() != slow.branches.size()) {
    ADD_FAILURE() << what << ": " << fast.branches.size() << " branches, the reference has "
                  << slow.branches.size();
    return std::numeric_limits<double>::infinity();
  }
  for (size_t b = 0; b < fast.branches.size(); ++b)
    worst = std::max(
        worst, max_difference(fast.branches[b], slow.branches[b], what + " branch " + std::to_string(b)));
  return worst;
}

void expect_bitwise_equal(const ScoreResult& a, const ScoreResult& b) {
  ASSERT_EQ(a.continuations.size(), b.continuations.size());
  for (size_t j = 0; j < a.continuations.size(); ++j)
    EXPECT_EQ(a.continuations[j].token_logprobs, b.continuations[j].token_logprobs) << "continuation " << j;
  ASSERT_EQ(a.branches.size(), b.branches.size());
  for (size_t g = 0; g < a.branches.size(); ++g)
    for (size_t j = 0; j < a.branches[g].size(); ++j)
      EXPECT_EQ(a.branches[g][j].token_logprobs, b.branches[g][j].token_logprobs) << "branch " << g;
}

EngineParams exact_params(const std::string& model, int n_batch) {
  EngineParams p = engine_default_params();
  p.model_path = model;
  p.n_ctx = 4096;
  p.n_batch = n_batch;
  p.n_threads = 1;
  return p;
}

void expect_same_scores(const ScoreResult& fast, const ScoreResult& slow, const std::string& what) {
  expect_same(fast.continuations, slow.continuations, what);
  ASSERT_EQ(fast.branches.size(), slow.branches.size()) << what;
  for (size_t b = 0; b < fast.branches.size(); ++b)
    expect_same(fast.branches[b], slow.branches[b], what + " branch " + std::to_string(b));
}

void expect_batched_generation_equals_reference(Engine& engine, const std::string& prefix,
                                                const std::vector<std::vector<Token>>& prompts,
                                                const std::string& grammar, int max_tokens) {
  std::vector<GenerateRequest> reqs;
  std::vector<std::future<GenerateResult>> futs;
  for (const auto& q : prompts) {
    GenerateRequest g;
    g.prefix = prefix;
    g.prompt = q;
    g.grammar = grammar;
    g.max_tokens = max_tokens;
    reqs.push_back(g);
    futs.push_back(engine.generate(g));
  }
  for (size_t i = 0; i < futs.size(); ++i) {
    const GenerateResult fast = futs[i].get();
    const GenerateResult slow = engine.generate_reference(reqs[i]);
    EXPECT_EQ(fast.tokens, slow.tokens)
        << "prompt " << i << "\n fast: " << fast.text << "\n slow: " << slow.text;
  }
}

} // namespace tinyroute::test
