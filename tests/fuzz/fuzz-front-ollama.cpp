// Fuzz target: the Ollama front adapters' request decoders (/api/chat and /api/generate), fed as the
// gateway feeds them (the strict body parser first). Bad input may only end as FrontError with a 4xx,
// and its error body always renders.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "fuzz-front.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto chat = tinyroute::gateway::make_ollama_chat_front();
  static const auto generate = tinyroute::gateway::make_ollama_generate_front();
  tinyroute::fuzz::decode_request(*chat, data, size);
  tinyroute::fuzz::decode_request(*generate, data, size);
  return 0;
}
