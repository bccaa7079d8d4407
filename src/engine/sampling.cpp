#include "engine/sampling.h"

#include <cmath>

#include "tinyroute/error.h"

namespace tinyroute::engine {

SamplerPtr make_grammar_sampler(const Model& model, const std::string& grammar, const std::string& root) {
  if (grammar.empty()) return nullptr;
  LlamaLogCapture capture; // llama.cpp explains a parse failure only in its log
  SamplerPtr g(llama_sampler_init_grammar(model.vocab(), grammar.c_str(), root.c_str()));
  if (!g) {
    std::string why = capture.text();
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    throw Error(ErrorCode::grammar_invalid, "invalid GBNF grammar (root '" + root + "'): " + why);
  }
  return g;
}

SamplerPtr make_reference_sampler(const Model& model, const std::string& grammar, const std::string& root) {
  SamplerPtr chain(llama_sampler_chain_init(llama_sampler_chain_default_params()));
  if (SamplerPtr g = make_grammar_sampler(model, grammar, root))
    llama_sampler_chain_add(chain.get(), g.release());
  llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
  return chain;
}

namespace {

// The first index of the largest logit: llama.cpp's greedy sampler breaks ties the same way.
std::size_t first_max(const llama_token_data* data, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < n; ++i)
    if (data[i].logit > data[best].logit) best = i;
  return best;
}

} // namespace

Token sample_greedy(llama_sampler* grammar, const float* logits, int n_vocab,
                    std::vector<llama_token_data>& candidates, bool* full_pass) {
  Token best = 0;
  for (Token i = 1; i < n_vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  bool full = false;
  if (grammar != nullptr) {
    llama_token_data one{best, logits[best], 0.0f};
    llama_token_data_array single{&one, 1, -1, false};
    llama_sampler_apply(grammar, &single);
    if (std::isinf(one.logit) && one.logit < 0) { // rejected: the grammar over every candidate
      full = true;
      candidates.resize(static_cast<std::size_t>(n_vocab));
      for (Token i = 0; i < n_vocab; ++i) candidates[static_cast<std::size_t>(i)] = {i, logits[i], 0.0f};
      llama_token_data_array all{candidates.data(), candidates.size(), -1, false};
      llama_sampler_apply(grammar, &all);
      best = candidates[first_max(candidates.data(), candidates.size())].id;
    }
    llama_sampler_accept(grammar, best);
  }
  if (full_pass != nullptr) *full_pass = full;
  return best;
}

} // namespace tinyroute::engine
