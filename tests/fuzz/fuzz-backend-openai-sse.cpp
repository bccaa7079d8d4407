// Fuzz target: the OpenAI backend's stream decoder (SSE), fed in pieces as the network
// delivers them (the first byte picks the piece size). It never throws: an unreadable upstream is an
// error event, and every event it yields renders into a client's stream.
#include <cstddef>
#include <cstdint>

#include "fuzz-backend.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tinyroute::fuzz::decode_stream(tinyroute::gateway::openai_backend(), data, size);
  return 0;
}
