// Fuzz target: the Responses front adapter (POST /v1/responses)'s request decoder, fed as the gateway feeds
// it (the strict body parser first). Bad input may only end as FrontError with a 4xx, and its error body
// always renders.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "fuzz-front.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto front = tinyroute::gateway::make_responses_front();
  tinyroute::fuzz::decode_request(*front, data, size);
  return 0;
}
