// What the exactness tests share: engine parameters and the comparisons of a fast path with its
// from-scratch twin (a fresh context, the whole prompt decoded at once), within kTol per token.
#pragma once

#include <string>
#include <vector>

#include "tinyroute/engine.h"

namespace tinyroute::test {

inline constexpr double kTol = 1e-3;

// One thread (ctest runs suites in parallel on 2 cores; ggml threads spin when oversubscribed) and a
// 4096-cell context.
EngineParams exact_params(const std::string& model, int n_batch = 512);

// Every continuation's log-probabilities (and total) and every branch's, within kTol per token.
void expect_same_scores(const ScoreResult& fast, const ScoreResult& slow, const std::string& what);

// The same log-probabilities to the bit, every continuation's and every branch's (the same cells
// attended in the same layout, whatever else the engine holds).
void expect_bitwise_equal(const ScoreResult& a, const ScoreResult& b);

// The largest difference of one token's log-probability between two results of the same request
// (continuations and branches); a failure, and infinity, when their shapes differ.
double max_logprob_difference(const ScoreResult& fast, const ScoreResult& slow, const std::string& what);

// Every prompt generated at once under `grammar` after `prefix` (batched), each compared token for
// token with the reference (a fresh context, the grammar over every candidate at every step).
void expect_batched_generation_equals_reference(Engine& engine, const std::string& prefix,
                                                const std::vector<std::vector<Token>>& prompts,
                                                const std::string& grammar, int max_tokens);

} // namespace tinyroute::test
