#include "engine/embed.h"

#include <algorithm>
#include <cmath>

#include "ggml-backend.h"

namespace tinyroute::engine {

namespace {

// Mean-pools then L2-normalises, so cosine similarity is a dot product.
std::vector<float> pooled(std::vector<double> sum, size_t rows) {
  double norm = 0;
  for (double& v : sum) {
    v /= static_cast<double>(std::max<size_t>(rows, 1));
    norm += v * v;
  }
  norm = std::sqrt(norm);
  std::vector<float> out(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) out[i] = static_cast<float>(norm > 0 ? sum[i] / norm : 0);
  return out;
}

} // namespace

bool LayerCapture::on_eval(ggml_tensor* t, bool ask, void* user) {
  auto* c = static_cast<LayerCapture*>(user);
  if (!c->active || c->name != ggml_get_name(t)) return false;
  if (ask) return true;
  if (t->type != GGML_TYPE_F32 || t->ne[0] != c->n_embd || !ggml_is_contiguous(t)) {
    c->failed = true;
    return false;
  }
  const auto rows = static_cast<size_t>(t->ne[1]);
  c->buf.resize(rows * static_cast<size_t>(c->n_embd));
  ggml_backend_tensor_get(t, c->buf.data(), 0, c->buf.size() * sizeof(float));
  for (size_t r = 0; r < rows; ++r, ++c->row) {
    if (c->row < c->pool_from) continue;
    const float* x = c->buf.data() + r * static_cast<size_t>(c->n_embd);
    for (size_t i = 0; i < c->sum.size(); ++i) c->sum[i] += x[i];
  }
  return false; // stop the graph: the blocks above and the output projection are not needed
}

Embedder::Embedder(int hidden_layer, int n_embd) : hidden_layer_(hidden_layer), n_embd_(n_embd) {
  if (hidden_layer > 0) {
    capture_.name = "l_out-" + std::to_string(hidden_layer - 1);
    capture_.n_embd = n_embd;
  }
}

void Embedder::attach(llama_context_params& cp) {
  if (hidden_layer_ <= 0) return;
  cp.cb_eval = &LayerCapture::on_eval;
  cp.cb_eval_user_data = &capture_;
}

void Embedder::run(Task& t, Batch& batch, DecodeCounts& counts) {
  try {
    HiddenState out;
    out.embedding =
        hidden_layer_ > 0 ? decode_to_block(t, batch, counts) : decode_final_layer(t, batch, counts);
    t.n_decoded = static_cast<int>(t.feed.size());
    out.n_decoded = t.n_decoded;
    const auto now = Clock::now();
    out.queue_ms = ms_between(t.enqueued, t.started == Clock::time_point{} ? now : t.started);
    out.compute_ms = t.started == Clock::time_point{} ? 0 : ms_between(t.started, now);
    t.embedded = std::move(out);
  } catch (...) {
    t.error = std::current_exception();
  }
  t.done = true;
}

// Embeddings switch the context's output mode, so an embed request decodes alone.
std::vector<float> Embedder::decode_final_layer(Task& t, Batch& batch, DecodeCounts& counts) {
  llama_context* ctx = t.pool->ctx.get();
  llama_set_embeddings(ctx, true);
  std::vector<double> sum(static_cast<size_t>(n_embd_), 0.0);
  const int cap = batch_cap(batch, *t.pool);
  try {
    while (t.feeding()) {
      batch.clear();
      const int rows = feed_rows(t, batch, cap, Outputs::all);
      if (llama_decode(ctx, batch.get()) != 0)
        throw Error(ErrorCode::internal, "llama_decode failed (embed)");
      counts.add(batch.size());
      for (int row = 0; row < rows; ++row) {
        const float* e = llama_get_embeddings_ith(ctx, row);
        if (e == nullptr) throw Error(ErrorCode::internal, "llama.cpp returned no embedding");
        for (size_t i = 0; i < sum.size(); ++i) sum[i] += e[i];
      }
    }
  } catch (...) {
    llama_set_embeddings(ctx, false);
    throw;
  }
  llama_set_embeddings(ctx, false);
  return pooled(std::move(sum), t.feed.size());
}

// No row asks for logits, so llama.cpp projects nothing onto the vocabulary; the capture reads the
// block's output for every row and ends each decode there. The cells above the block stay unwritten,
// which nothing reads: the sequence is dropped when the request finishes.
std::vector<float> Embedder::decode_to_block(Task& t, Batch& batch, DecodeCounts& counts) {
  LayerCapture& c = capture_;
  c.active = true;
  c.failed = false;
  c.row = 0;
  c.pool_from = std::min(t.pool_from, t.feed.size() - 1);
  c.sum.assign(static_cast<size_t>(c.n_embd), 0.0);
  const int cap = batch_cap(batch, *t.pool);
  try {
    while (t.feeding()) {
      batch.clear();
      feed_rows(t, batch, cap, Outputs::none);
      if (llama_decode(t.pool->ctx.get(), batch.get()) != 0)
        throw Error(ErrorCode::internal, "llama_decode failed (embed)");
      counts.add(batch.size());
    }
    if (c.failed || c.row != t.feed.size())
      throw Error(ErrorCode::internal, "llama.cpp did not give block " + std::to_string(hidden_layer_) +
                                           "'s output for every token (" + c.name + ")");
  } catch (...) {
    c.active = false;
    throw;
  }
  c.active = false;
  return pooled(std::move(c.sum), t.feed.size() - c.pool_from);
}

} // namespace tinyroute::engine
