// Embeddings: POST /api/embed and /api/embeddings forwarded to a model with capabilities.embedding.
// An Ollama backend gets its own /api/embed, an OpenAI-compatible one /v1/embeddings; the answer is
// translated back into the shape the client asked for.
#pragma once

#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "gateway/forward.h"
#include "tinyroute/config.h"

namespace tinyroute::gateway {

using nlohmann::json;

struct EmbedRequest {
  std::vector<std::string> inputs;
  // Fields forwarded as they came: dimensions (every backend), user (OpenAI-compatible), truncate and
  // options (Ollama). One the model's backend does not take is a 400 naming it.
  json passthrough = json::object();
  // keep_alive and Ollama's runner options (see ChatRequest::hints): Ollama backends only, reported in
  // x-tinyroute-unapplied by the others.
  json hints = json::object();
  Priority priority = Priority::normal;
};

struct EmbedResult {
  std::vector<json> embeddings; // one array of numbers per input, in input order
  int prompt_tokens = 0;
};

// The embedding model a request names: "auto" (an auto alias) = the first model with the capability.
// Throws FrontError: 403 for the internal model, 404 for an unknown one, 400 for a model that does not
// embed (or when no model does).
const ModelConfig& embedding_model(const Config& config, const GatewayOptions& options,
                                   const std::string& name);

// One try (the backend's concurrency limit applies). Throws FrontError: 502/503/504 when the upstream
// fails or answers something that is not embeddings, 400 for a provider without an embeddings API.
boost::asio::awaitable<EmbedResult> forward_embed(const Config& config, const ModelConfig& model,
                                                  const EmbedRequest& request, const ForwardOptions& options);

} // namespace tinyroute::gateway
