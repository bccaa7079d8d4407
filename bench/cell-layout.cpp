// tinyroute-cell-layout: does a request's result depend on which KV cells its tokens occupy? llama.cpp
// alone, the engine's exact settings (unified cache, full-size sliding-window cache, no flash attention,
// no weight repacking): a prefix on sequence 0, a request forked from it on sequence 2, the request's
// last logits against a fresh context that decodes prefix and request in one go, for three layouts.
//   tinyroute-cell-layout --model PATH [--threads N]
// Prints a markdown table: the largest absolute logit difference over the vocabulary per layout.
#include <llama.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/llama-handles.h" // the engine's RAII handles

namespace {

using tinyroute::engine::ContextPtr;
using tinyroute::engine::ModelPtr;

constexpr int kPrefix = 60, kOther = 50, kRequest = 100;

ContextPtr make_context(llama_model* model, int threads, int n_seq) {
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 4096;
  cp.n_batch = 512;
  cp.n_ubatch = 512;
  cp.n_seq_max = static_cast<uint32_t>(n_seq);
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.kv_unified = true;
  cp.swa_full = true;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.no_perf = true;
  ContextPtr ctx(llama_init_from_model(model, cp));
  if (!ctx) throw std::runtime_error("llama.cpp could not create a context");
  return ctx;
}

void decode(llama_context* ctx, const std::vector<llama_token>& tokens, int pos0, llama_seq_id seq,
            bool logits_last) {
  llama_batch b = llama_batch_init(static_cast<int32_t>(tokens.size()), 0, 1);
  for (size_t i = 0; i < tokens.size(); ++i) {
    b.token[i] = tokens[i];
    b.pos[i] = pos0 + static_cast<llama_pos>(i);
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = seq;
    b.logits[i] = static_cast<int8_t>(logits_last && i + 1 == tokens.size());
  }
  b.n_tokens = static_cast<int32_t>(tokens.size());
  const int rc = llama_decode(ctx, b);
  llama_batch_free(b);
  if (rc != 0) throw std::runtime_error("llama_decode failed: " + std::to_string(rc));
}

// Deterministic token ids in the common part of any vocabulary.
std::vector<llama_token> tokens(int n, int base, int step) {
  std::vector<llama_token> t;
  for (int i = 0; i < n; ++i) t.push_back(base + (i * step) % 5000);
  return t;
}

enum class Layout { fresh, kept_after_prefix, removed_before_prefix };

double max_difference(llama_model* model, int threads, Layout layout, const std::vector<float>& reference) {
  const auto prefix = tokens(kPrefix, 1000, 37), other = tokens(kOther, 2000, 53),
             request = tokens(kRequest, 3000, 71);
  ContextPtr ctx = make_context(model, threads, 4);
  llama_memory_t mem = llama_get_memory(ctx.get());
  if (layout == Layout::removed_before_prefix) decode(ctx.get(), other, 0, 1, false);
  decode(ctx.get(), prefix, 0, 0, false);
  if (layout == Layout::removed_before_prefix) llama_memory_seq_rm(mem, 1, -1, -1);
  if (layout == Layout::kept_after_prefix) {
    llama_memory_seq_cp(mem, 0, 1, -1, -1);
    decode(ctx.get(), other, kPrefix, 1, false);
  }
  llama_memory_seq_cp(mem, 0, 2, -1, -1);
  decode(ctx.get(), request, kPrefix, 2, true);
  const float* logits = llama_get_logits_ith(ctx.get(), -1);
  double worst = 0;
  for (size_t i = 0; i < reference.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(logits[i]) - reference[i]));
  return worst;
}

} // namespace

int main(int argc, char** argv) {
  std::string path;
  int threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--model") path = argv[i + 1];
    if (k == "--threads") threads = std::atoi(argv[i + 1]);
  }
  if (path.empty()) {
    std::fprintf(stderr, "usage: tinyroute-cell-layout --model PATH [--threads N]\n");
    return 2;
  }
  try {
    llama_backend_init();
    llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
    llama_model_params mp = llama_model_default_params();
    mp.use_extra_bufts = false; // no repacked weights, as the engine's exact default
    ModelPtr model(llama_model_load_from_file(path.c_str(), mp));
    if (!model) throw std::runtime_error("could not load " + path);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model.get()));
    std::vector<llama_token> whole = tokens(kPrefix, 1000, 37);
    const auto request = tokens(kRequest, 3000, 71);
    whole.insert(whole.end(), request.begin(), request.end());
    ContextPtr fresh = make_context(model.get(), threads, 1);
    decode(fresh.get(), whole, 0, 0, true);
    const float* l = llama_get_logits_ith(fresh.get(), -1);
    const std::vector<float> reference(l, l + n_vocab);
    std::printf("| layout of the request's context (prefix %d tokens, request %d) | max abs logit difference "
                "against a fresh decode |\n|---|---|\n",
                kPrefix, kRequest);
    std::printf("| nothing else: cells where a fresh decode puts them | %.6f |\n",
                max_difference(model.get(), threads, Layout::fresh, reference));
    std::printf("| another sequence's %d tokens kept after the shared prefix | %.6f |\n", kOther,
                max_difference(model.get(), threads, Layout::kept_after_prefix, reference));
    std::printf("| %d tokens decoded before the prefix and removed again | %.6f |\n", kOther,
                max_difference(model.get(), threads, Layout::removed_before_prefix, reference));
    llama_backend_free();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tinyroute-cell-layout: %s\n", e.what());
    return 1;
  }
  return 0;
}
