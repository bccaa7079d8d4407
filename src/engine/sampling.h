// Greedy sampling under an optional GBNF grammar, the way the scheduler and its reference twin do it.
#pragma once

#include <string>
#include <vector>

#include "engine/llama-handles.h"
#include "engine/model.h"

namespace tinyroute::engine {

// The grammar's sampler, or null for an empty grammar. Throws Error(grammar_invalid) with llama.cpp's
// explanation; built on the caller's thread so a bad grammar fails at once, not in the worker.
SamplerPtr make_grammar_sampler(const Model& model, const std::string& grammar, const std::string& root);

// The obviously-correct chain (grammar over the whole vocabulary, then greedy) for the reference twin.
SamplerPtr make_reference_sampler(const Model& model, const std::string& grammar, const std::string& root);

// Greedy choice from `logits` (n_vocab of them) under `grammar` (may be null), and the grammar advanced
// past it. The argmax is checked against the grammar first: when the grammar allows it, it is exactly
// what grammar-then-greedy would pick (every earlier token has a smaller logit), so only a rejected
// argmax pays for the grammar over the whole vocabulary (a pass over 32,000 candidates costs about a
// millisecond per token, more than the decode of a tiny model). `candidates` is reusable scratch;
// `full_pass` says which way the token was found.
Token sample_greedy(llama_sampler* grammar, const float* logits, int n_vocab,
                    std::vector<llama_token_data>& candidates, bool* full_pass = nullptr);

} // namespace tinyroute::engine
