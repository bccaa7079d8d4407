// The slow, obviously-correct twins of the scheduler's score and generate: a fresh llama_context for
// every call, the full prompt decoded from scratch, one sequence, no batching with other requests.
#pragma once

#include "engine/model.h"

namespace tinyroute::engine {

ScoreResult score_reference(const Model& model, int n_threads, std::span<const Token> prompt,
                            const std::vector<std::vector<Token>>& continuations);
GenerateResult generate_reference(const Model& model, int n_threads, std::span<const Token> prompt,
                                  llama_sampler* sampler, int max_tokens);

// A request's hidden state (see HiddenState): a fresh context decodes `tokens` in one batch, every row
// an output and the whole graph computed; a middle block's rows are copied as the graph passes them.
std::vector<float> embed_reference(const Model& model, int n_threads, std::span<const Token> tokens,
                                   int hidden_layer, size_t pool_from);

} // namespace tinyroute::engine
