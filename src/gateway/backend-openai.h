// OpenAI-compatible backend (OpenAI, vLLM, llama-server, MLX): ChatRequest -> POST /v1/chat/completions
// with stream=true; SSE chunks -> ChatEvents.
#pragma once

#include "gateway/chat.h"

namespace tinyroute::gateway {
const BackendAdapter& openai_backend();
}
