#include "tinyroute/engine.h"

#include <algorithm>

#include "engine/model.h"
#include "engine/reference.h"
#include "engine/sampling.h"
#include "engine/scheduler.h"

namespace tinyroute {

EngineParams engine_default_params() {
  return EngineParams{};
}

struct Engine::Impl {
  EngineParams params;
  engine::Model model;
  engine::Scheduler scheduler; // declared after model: stops (and frees its context) first

  explicit Impl(const EngineParams& p)
      : params(p), model(p.model_path, p.use_mmap, p.repack), scheduler(model, p) {}

  std::vector<Token> full_prompt(const std::string& prefix, const std::vector<Token>& rest) const {
    std::vector<Token> all = prefix.empty() ? std::vector<Token>{} : scheduler.prefix_tokens(prefix);
    all.insert(all.end(), rest.begin(), rest.end());
    return all;
  }
};

Engine::Engine(const EngineParams& params) : impl_(std::make_unique<Impl>(params)) {}
Engine::~Engine() = default;

const ModelInfo& Engine::info() const {
  return impl_->model.info();
}
const EngineParams& Engine::params() const {
  return impl_->params;
}

std::vector<Token> Engine::tokenize(std::string_view text, bool add_bos, bool parse_special) const {
  return impl_->model.tokenize(text, add_bos, parse_special);
}
std::vector<Token> Engine::tokenize_after(std::string_view context, std::string_view text) const {
  const std::vector<Token> head = impl_->model.tokenize(context, false, false);
  std::string joined(context);
  joined += text;
  std::vector<Token> all = impl_->model.tokenize(joined, false, false);
  if (all.size() < head.size() || !std::equal(head.begin(), head.end(), all.begin())) {
    throw Error(ErrorCode::invalid_argument, "the tokenizer joins '" + std::string(text) +
                                                 "' with the text before it ('" + std::string(context) +
                                                 "')");
  }
  all.erase(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(head.size()));
  return all;
}
std::string Engine::detokenize(std::span<const Token> tokens) const {
  return impl_->model.detokenize(tokens);
}
std::string Engine::token_text(Token token) const {
  return impl_->model.token_text(token);
}
std::string Engine::apply_chat_template(const std::vector<PromptMessage>& messages,
                                        bool add_assistant) const {
  return impl_->model.apply_chat_template(messages, add_assistant);
}

std::future<PrefixInfo> Engine::add_prefix(std::string name, std::string text) {
  // Special tokens are parsed so chat-template markers like </s> become the real tokens.
  auto tokens = impl_->model.tokenize(text, true, true);
  return impl_->scheduler.add_prefix(std::move(name), std::move(tokens));
}

std::vector<Token> Engine::prefix_tokens(const std::string& name) const {
  return impl_->scheduler.prefix_tokens(name);
}

std::future<ScoreResult> Engine::score(ScoreRequest request) {
  return impl_->scheduler.score(std::move(request));
}

std::future<GenerateResult> Engine::generate(GenerateRequest request) {
  auto grammar = engine::make_grammar_sampler(impl_->model, request.grammar, request.grammar_root);
  return impl_->scheduler.generate(std::move(request), std::move(grammar));
}

std::future<std::vector<float>> Engine::embed(std::string text) {
  auto f = embed_tokens(impl_->model.tokenize(text, false, false));
  return std::async(std::launch::deferred, [f = std::move(f)]() mutable { return f.get().embedding; });
}

std::future<HiddenState> Engine::embed_tokens(std::vector<Token> tokens) {
  std::vector<Token> all = impl_->model.tokenize("", true, false); // the BOS, where the model uses one
  const size_t n_bos = all.size();
  all.insert(all.end(), tokens.begin(), tokens.end());
  return impl_->scheduler.embed(std::move(all), n_bos);
}

ScoreResult Engine::score_reference(const ScoreRequest& request) const {
  const auto prompt = impl_->full_prompt(request.prefix, request.query);
  const int n = impl_->params.n_threads;
  ScoreResult r = request.continuations.empty()
                      ? ScoreResult{}
                      : engine::score_reference(impl_->model, n, prompt, request.continuations);
  // A branch is its own prompt: prefix + query + cue, decoded from scratch like everything here.
  for (const auto& b : request.branches) {
    auto with_cue = prompt;
    with_cue.insert(with_cue.end(), b.cue.begin(), b.cue.end());
    ScoreResult br = engine::score_reference(impl_->model, n, with_cue, b.continuations);
    r.branches.push_back(std::move(br.continuations));
    r.n_decoded += br.n_decoded;
    r.compute_ms += br.compute_ms;
  }
  return r;
}

GenerateResult Engine::generate_reference(const GenerateRequest& request) const {
  auto sampler = engine::make_reference_sampler(impl_->model, request.grammar, request.grammar_root);
  const auto prompt = impl_->full_prompt(request.prefix, request.prompt);
  return engine::generate_reference(impl_->model, impl_->params.n_threads, prompt, sampler.get(),
                                    request.max_tokens);
}

HiddenState Engine::embed_reference(std::vector<Token> tokens) const {
  std::vector<Token> all = impl_->model.tokenize("", true, false);
  const size_t n_bos = all.size();
  all.insert(all.end(), tokens.begin(), tokens.end());
  HiddenState out;
  out.embedding =
      engine::embed_reference(impl_->model, impl_->params.n_threads, all, impl_->params.hidden_layer, n_bos);
  out.n_decoded = static_cast<int>(all.size());
  return out;
}

EngineStats Engine::stats() const {
  return impl_->scheduler.stats();
}

void Engine::validate_grammar(const std::string& grammar, const std::string& root) const {
  (void)engine::make_grammar_sampler(impl_->model, grammar, root); // building the sampler is the parse
}

} // namespace tinyroute
