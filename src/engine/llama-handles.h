// RAII owners for llama.cpp handles. Every llama.cpp object tinyroute creates lives in one of these.
#pragma once

#include <llama.h>

#include <memory>

namespace tinyroute::engine {

struct ModelDeleter {
  void operator()(llama_model* m) const noexcept { llama_model_free(m); }
};
struct ContextDeleter {
  void operator()(llama_context* c) const noexcept { llama_free(c); }
};
struct SamplerDeleter {
  void operator()(llama_sampler* s) const noexcept { llama_sampler_free(s); }
};

using ModelPtr = std::unique_ptr<llama_model, ModelDeleter>;
using ContextPtr = std::unique_ptr<llama_context, ContextDeleter>;
using SamplerPtr = std::unique_ptr<llama_sampler, SamplerDeleter>;

// A llama_batch sized once and refilled for every decode.
class Batch {
public:
  Batch(int capacity, int max_seq_per_token)
      : batch_(llama_batch_init(capacity, 0, max_seq_per_token)), capacity_(capacity) {}
  ~Batch() { llama_batch_free(batch_); }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  void clear() { batch_.n_tokens = 0; }
  int size() const { return batch_.n_tokens; }
  int capacity() const { return capacity_; }
  // Appends one token of one sequence; returns its row in the batch.
  int add(llama_token token, llama_pos pos, llama_seq_id seq, bool logits) {
    const int i = batch_.n_tokens++;
    batch_.token[i] = token;
    batch_.pos[i] = pos;
    batch_.n_seq_id[i] = 1;
    batch_.seq_id[i][0] = seq;
    batch_.logits[i] = logits ? 1 : 0;
    return i;
  }
  llama_batch& get() { return batch_; }

private:
  llama_batch batch_;
  int capacity_;
};

} // namespace tinyroute::engine
