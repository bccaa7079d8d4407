// Shared by the front adapters' fuzz targets: one request body through the path every endpoint takes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gateway/chat.h"
#include "gateway/request-json.h"

namespace tinyroute::fuzz {

inline void decode_request(const gateway::FrontAdapter& front, const std::uint8_t* data, std::size_t size) {
  using namespace gateway;
  try {
    const json body = parse_request_json({reinterpret_cast<const char*>(data), size});
    ChatRequest request = front.parse(body);
    // A request that decodes must be renderable again (it is forwarded as JSON).
    (void)dump_for_client(json{{"model", request.model}, {"n", request.messages.size()}});
  } catch (const FrontError& e) {
    if (e.status < 400 || e.status > 499) std::abort();
    const std::string message = e.what();
    // The library's own text must not show (unless the client sent those very words and is quoted).
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    if (message.empty() || (message.find("json.exception") != std::string::npos &&
                            input.find("json.exception") == std::string_view::npos))
      std::abort();
    // The error body is rendered as the gateway renders it: this must never throw.
    (void)dump_for_client(front.error(e.status, e.type, quote_input(message, kMaxErrorMessageBytes)));
  }
  // Anything else escapes: libFuzzer reports it as a crash, the replay test fails.
}

} // namespace tinyroute::fuzz
