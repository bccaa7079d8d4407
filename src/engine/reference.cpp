#include "engine/reference.h"

#include <chrono>
#include <cmath>
#include <string>

#include "ggml-backend.h"

#include "engine/logprob.h"

namespace tinyroute::engine {

namespace {

ContextPtr fresh_context(const Model& model, int n_threads, size_t n_tokens,
                         llama_context_params cp = llama_context_default_params()) {
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

// Every row of one named tensor, ubatch after ubatch; the graph runs on to its end.
struct RowCopy {
  std::string name;
  std::vector<float> rows;

  static bool on_eval(ggml_tensor* t, bool ask, void* user) {
    auto* c = static_cast<RowCopy*>(user);
    if (c->name != ggml_get_name(t)) return false;
    if (ask) return true;
    const size_t n = static_cast<size_t>(ggml_nelements(t));
    const size_t at = c->rows.size();
    c->rows.resize(at + n);
    ggml_backend_tensor_get(t, c->rows.data() + at, 0, n * sizeof(float));
    return true;
  }
};

} // namespace

std::vector<float> embed_reference(const Model& model, int n_threads, std::span<const Token> tokens,
                                   int hidden_layer, size_t pool_from) {
  if (tokens.empty()) throw Error(ErrorCode::invalid_argument, "reference: empty text");
  const auto n_embd = static_cast<size_t>(model.info().n_embd);
  llama_context_params cp = llama_context_default_params();
  RowCopy copy{"l_out-" + std::to_string(hidden_layer - 1), {}};
  if (hidden_layer > 0) {
    cp.cb_eval = &RowCopy::on_eval;
    cp.cb_eval_user_data = &copy;
    pool_from = std::min(pool_from, tokens.size() - 1); // a text of the BOS alone pools the BOS
  } else {
    cp.embeddings = true;
    cp.pooling_type = LLAMA_POOLING_TYPE_NONE;
    pool_from = 0;
  }
  auto ctx = fresh_context(model, n_threads, tokens.size(), cp);
  decode_all(ctx.get(), tokens, 0);
  std::vector<double> sum(n_embd, 0.0);
  for (size_t r = pool_from; r < tokens.size(); ++r) {
    const float* x = nullptr;
    if (hidden_layer > 0) {
      if (copy.rows.size() != tokens.size() * n_embd)
        throw Error(ErrorCode::internal, "reference: no output of " + copy.name + " for every token");
      x = copy.rows.data() + r * n_embd;
    } else {
      x = llama_get_embeddings_ith(ctx.get(), static_cast<int32_t>(r));
      if (x == nullptr) throw Error(ErrorCode::internal, "reference: no embedding");
    }
    for (size_t i = 0; i < n_embd; ++i) sum[i] += x[i];
  }
  double norm = 0;
  for (double v : sum) norm += v * v;
  norm = std::sqrt(norm);
  std::vector<float> out(n_embd);
  for (size_t i = 0; i < n_embd; ++i) out[i] = static_cast<float>(norm > 0 ? sum[i] / norm : 0);
  return out;
}

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
