// Fuzz target: the HTTP/1.1 request parser the gateway reads every request with (Beast's parser under
// the server's limits, then the conversion to HttpRequest). Whatever the bytes, it returns a request or
// a 4xx reason; a malformed one always has a status and a message that renders as JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/http-server.h"
#include "gateway/request-json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tinyroute::gateway;
  ServerLimits limits;
  limits.max_body_bytes = 4096; // small limits: the fuzzer reaches the limit paths too
  limits.max_header_bytes = 1024;
  const HttpRequest req = parse_http_request({reinterpret_cast<const char*>(data), size}, limits);
  if (req.malformed_status != 0 && (req.malformed_status < 400 || req.malformed_status > 499)) std::abort();
  if (req.malformed_status != 0 && req.malformed.empty()) std::abort();
  if (req.body.size() > limits.max_body_bytes) std::abort();
  // What the gateway may quote back: the method and path, made safe.
  (void)dump_for_client({{"error", quote_input(req.method) + " " + quote_input(req.target)}});
  return 0;
}
