// Anthropic backend: ChatRequest -> POST /v1/messages (stream: true, x-api-key); SSE -> ChatEvents.
#pragma once

#include "gateway/chat.h"

namespace tinyroute::gateway {
const BackendAdapter& anthropic_backend();
}
