// Ollama backend: ChatRequest -> POST /api/chat (stream: true); NDJSON lines -> ChatEvents.
#pragma once

#include "gateway/chat.h"

namespace tinyroute::gateway {
const BackendAdapter& ollama_backend();
}
