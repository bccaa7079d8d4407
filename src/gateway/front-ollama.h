// Ollama front: POST /api/chat and /api/generate <-> ChatRequest / ChatEvent (NDJSON lines with
// `done`; streaming is Ollama's default).
#pragma once

#include "gateway/chat.h"
