// OpenAI's POST /v1/embeddings: the request into an EmbedRequest (forwarded by forward_embed to an
// OpenAI-compatible backend's /v1/embeddings or an Ollama backend's /api/embed), the answer back as an
// embedding list: numbers, or with encoding_format "base64" each vector's little-endian float32 bytes
// in base64 (encoded here, so every backend serves both).
#pragma once

#include <string>

#include "gateway/embed.h"

namespace tinyroute::gateway {

struct OpenAIEmbeddings {
  std::string model; // as the client named it
  EmbedRequest request;
  bool base64 = false;
};

// Throws FrontError(400) naming the bad field: input as token ids, an unknown field, ...
OpenAIEmbeddings parse_openai_embeddings(const json& body);
json render_openai_embeddings(const EmbedResult& result, const std::string& model, bool base64);
// Little-endian float32 bytes of `vector` (an array of numbers), in base64.
std::string float32_base64(const json& vector);

} // namespace tinyroute::gateway
