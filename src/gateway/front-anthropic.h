// Anthropic front: POST /v1/messages <-> ChatRequest / ChatEvent (SSE message_start,
// content_block_start/delta/stop, message_delta, message_stop).
#pragma once

#include "gateway/chat.h"
