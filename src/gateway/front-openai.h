// OpenAI front: POST /v1/chat/completions <-> ChatRequest / ChatEvent (SSE `data: {...}` + `[DONE]`).
#pragma once

#include "gateway/chat.h"
