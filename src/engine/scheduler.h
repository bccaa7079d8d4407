// The scheduler owns the llama_contexts. Callers on any thread submit work and get a future; one
// worker thread admits requests (by priority, with ageing), gives each its own sequence ids, and packs
// tokens from all active requests into shared llama_decode calls, one per context with work. Each named
// prefix lives in a reserved sequence of a context of its own while the KV budget allows (see
// EngineParams::n_contexts); a request starts from a metadata-only copy of its prefix's KV cells
// (unified KV cache in that context), so a prefix is decoded once, never per request, and a request
// attends only to the cells of its prefix's context.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/model.h"
#include "tinyroute/engine.h"

namespace tinyroute::engine {

class Scheduler {
public:
  Scheduler(const Model& model, const EngineParams& params);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  std::future<PrefixInfo> add_prefix(std::string name, std::vector<Token> tokens);
  std::vector<Token> prefix_tokens(const std::string& name) const;
  std::future<ScoreResult> score(ScoreRequest request);
  std::future<GenerateResult> generate(GenerateRequest request, SamplerPtr sampler);
  // `pool_from`: leading tokens (the BOS) left out of the pooling when a middle block is read.
  std::future<HiddenState> embed(std::vector<Token> tokens, size_t pool_from = 0);
  EngineStats stats() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

} // namespace tinyroute::engine
