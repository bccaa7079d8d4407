// Request bodies as JSON, strictly: what a client sends is parsed under explicit limits, and anything
// wrong with it becomes a 400 whose message is written for people (never a JSON library's text).
// Error messages that quote input go through quote_input, so rendering an error can never fail.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tinyroute::gateway {

// The deepest nesting a request body may have. Real requests (messages, tools, JSON schemas) stay far
// below it; a deeper body is refused before it costs memory or stack in the code that walks it.
inline constexpr std::size_t kMaxJsonDepth = 128;
// How much of a client's text an error message quotes.
inline constexpr std::size_t kMaxQuotedBytes = 120;
// The longest error message sent to a client (longer ones are cut; lists of models can be long).
inline constexpr std::size_t kMaxErrorMessageBytes = 4096;

struct JsonLimits {
  std::size_t max_depth = kMaxJsonDepth;
};

// Parses `body` as one JSON value. Refuses, with FrontError(400, "invalid_request_error"): an empty
// body, bytes that are not UTF-8, syntax errors (with line and column), numbers beyond the range of a
// double (1e400), a key given twice in one object, and nesting deeper than limits.max_depth.
nlohmann::json parse_request_json(std::string_view body, const JsonLimits& limits = {});

// `text` made safe to quote in an error: invalid UTF-8 replaced by U+FFFD, cut at a character
// boundary after `max_bytes` (with "..." appended).
std::string quote_input(std::string_view text, std::size_t max_bytes = kMaxQuotedBytes);

// `value` as JSON text for a client: bytes that are not UTF-8 (from an upstream, say) become U+FFFD
// instead of making the dump throw.
std::string dump_for_client(const nlohmann::json& value);

} // namespace tinyroute::gateway
