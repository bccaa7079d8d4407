// Embed requests: a text's hidden state, mean-pooled and L2-normalised, read from the final layer
// (llama.cpp's embeddings output) or from a middle block's output (EngineParams::hidden_layer).
#pragma once

#include <llama.h>

#include <string>
#include <vector>

#include "engine/llama-handles.h"
#include "engine/task.h"

namespace tinyroute::engine {

// An embed from a middle block reads that block's output through llama.cpp's eval callback as the
// graph computes it, then stops the graph: what lies above it is never computed. Only an embed
// decodes while `active` (an embed decodes alone), so no other request's rows are cut short.
struct LayerCapture {
  std::string name; // the block's output tensor, "l_out-<index>"
  bool active = false;
  int n_embd = 0;
  size_t row = 0;       // the request's rows seen so far, ubatch after ubatch
  size_t pool_from = 0; // rows before this are not pooled
  std::vector<double> sum;
  std::vector<float> buf;
  bool failed = false; // the tensor had an unexpected type or shape

  static bool on_eval(ggml_tensor* t, bool ask, void* user);
};

// Runs embed tasks. The worker's; with a middle block, its capture's address is every context's
// eval-callback data (attach), so it must not move once the contexts exist.
class Embedder {
public:
  // `hidden_layer`: 0 for the final layer, else the block whose output is read (1-based).
  Embedder(int hidden_layer, int n_embd);
  Embedder(const Embedder&) = delete;
  Embedder& operator=(const Embedder&) = delete;

  // Sets the contexts' eval callback when a middle block is read.
  void attach(llama_context_params& cp);
  // Decodes the embed task `t` alone in its context, in batches of `batch` capped at the context's,
  // and sets its promise (or its error); it is done after.
  void run(Task& t, Batch& batch, DecodeCounts& counts);

private:
  std::vector<float> decode_final_layer(Task& t, Batch& batch, DecodeCounts& counts);
  std::vector<float> decode_to_block(Task& t, Batch& batch, DecodeCounts& counts);

  int hidden_layer_ = 0;
  int n_embd_ = 0;
  LayerCapture capture_;
};

} // namespace tinyroute::engine
