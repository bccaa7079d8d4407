#include "engine/reference.h"

#include <chrono>

#include "engine/logprob.h"

namespace tinyroute::engine {

namespace {

ContextPtr fresh_context(const Model& model, int n_threads, size_t n_tokens) {
  llama_context_params cp = llama_context_default_params();
  const auto n = static_cast<uint32_t>(std::max<size_t>(n_tokens + 16, 64));
  cp.n_ctx = n;
  cp.n_batch = n;
  cp.n_ubatch = n;
  cp.n_seq_max = 1;
  cp.n_threads = n_threads;
  cp.n_threads_batch = n_threads;
  cp.no_perf = true;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED; // same arithmetic as the scheduler's context
  ContextPtr ctx(llama_init_from_model(model.get(), cp));
  if (!ctx) throw Error(ErrorCode::internal, "reference: could not create a context");
  return ctx;
}

// Decodes all of `tokens` from position 0 in one batch; logits for rows >= first_logit.
void decode_all(llama_context* ctx, std::span<const Token> tokens, size_t first_logit) {
  Batch batch(static_cast<int>(tokens.size()), 1);
  for (size_t i = 0; i < tokens.size(); ++i)
    batch.add(tokens[i], static_cast<llama_pos>(i), 0, i >= first_logit);
  if (llama_decode(ctx, batch.get()) != 0) throw Error(ErrorCode::internal, "reference: llama_decode failed");
}

} // namespace

ScoreResult score_reference(const Model& model, int n_threads, std::span<const Token> prompt,
                            const std::vector<std::vector<Token>>& continuations) {
  if (prompt.empty()) throw Error(ErrorCode::invalid_argument, "reference: empty prompt");
  const auto t0 = std::chrono::steady_clock::now();
  const int n_vocab = model.info().n_vocab;
  ScoreResult result;
  for (const auto& cont : continuations) {
    // prompt + all but the last continuation token; the logits of row i predict token i + 1.
    std::vector<Token> tokens(prompt.begin(), prompt.end());
    tokens.insert(tokens.end(), cont.begin(), cont.end() - 1);
    auto ctx = fresh_context(model, n_threads, tokens.size());
    decode_all(ctx.get(), tokens, prompt.size() - 1);
    ContinuationScore s;
    for (size_t k = 0; k < cont.size(); ++k) {
      const float* logits = llama_get_logits_ith(ctx.get(), static_cast<int32_t>(prompt.size() - 1 + k));
      const double lp = logits[cont[k]] - log_sum_exp(logits, n_vocab);
      s.token_logprobs.push_back(static_cast<float>(lp));
    }
    s.total = sum_logprobs(s.token_logprobs);
    result.n_decoded += static_cast<int>(tokens.size());
    result.continuations.push_back(std::move(s));
  }
  result.compute_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

GenerateResult generate_reference(const Model& model, int n_threads, std::span<const Token> prompt,
                                  llama_sampler* sampler, int max_tokens) {
  if (prompt.empty()) throw Error(ErrorCode::invalid_argument, "reference: empty prompt");
  auto ctx = fresh_context(model, n_threads, prompt.size() + static_cast<size_t>(max_tokens));
  decode_all(ctx.get(), prompt, prompt.size() - 1);
  GenerateResult r;
  int32_t row = static_cast<int32_t>(prompt.size() - 1);
  llama_pos pos = static_cast<llama_pos>(prompt.size());
  for (;;) {
    const Token tok = llama_sampler_sample(sampler, ctx.get(), row);
    if (model.is_eog(tok)) break;
    r.tokens.push_back(tok);
    if (static_cast<int>(r.tokens.size()) >= max_tokens) {
      r.stopped_by_limit = true;
      break;
    }
    Batch one(1, 1);
    one.add(tok, pos++, 0, true);
    if (llama_decode(ctx.get(), one.get()) != 0)
      throw Error(ErrorCode::internal, "reference: llama_decode failed");
    row = 0;
  }
  r.text = model.detokenize(r.tokens);
  r.n_decoded = static_cast<int>(prompt.size() + r.tokens.size());
  return r;
}

} // namespace tinyroute::engine
