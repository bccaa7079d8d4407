// OpenAI-compatible backend (OpenAI, vLLM, llama-server, MLX): ChatRequest -> POST /v1/chat/completions
// with stream=true; SSE chunks -> ChatEvents.
#pragma once

#include "gateway/chat.h"

namespace tinyroute::gateway {
const BackendAdapter& openai_backend();
// The decoder with every chunk read through a JSON DOM: the slow, obviously complete twin of
// openai_backend().decoder(), which reads common chunks in one pass. For tests, never on a serving path.
std::unique_ptr<BackendDecoder> openai_reference_decoder();
// Whether the one-pass reader takes this chunk's data (false: it gives up and the DOM reads it).
bool openai_chunk_read_in_one_pass(const std::string& data);
} // namespace tinyroute::gateway
