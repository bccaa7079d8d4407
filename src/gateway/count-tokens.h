// POST /v1/messages/count_tokens (Anthropic's shape, {"input_tokens": N}): how many input tokens a
// Messages request is for the model that would answer it. An Anthropic backend counts it itself (its own
// /v1/messages/count_tokens: x-tinyroute-token-count: upstream); an OpenAI-compatible backend that can
// count (llama-server's /v1/chat/completions/input_tokens: the model's own chat template and tokenizer)
// counts it exactly (backend-tokenizer); for any other backend the gateway estimates it with the internal
// model's tokenizer (internal-estimate), or at four bytes a token when it has none (byte-estimate).
#pragma once

#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "gateway/forward.h"

namespace tinyroute::gateway {

struct TokenCount {
  int input_tokens = 0;
  std::string source; // upstream | backend-tokenizer | internal-estimate | byte-estimate
};

// A count_tokens body (a Messages request without max_tokens) through the Anthropic front.
ChatRequest parse_count_tokens(const FrontAdapter& anthropic, json body);

// The backend's own count. nullopt when it cannot give one (not an Anthropic or counting backend,
// unreachable, overloaded): the caller estimates. Throws FrontError when an Anthropic backend refuses
// the request itself (a 4xx other than 404, 405 and 429).
boost::asio::awaitable<std::optional<TokenCount>>
count_upstream(const ModelConfig& model, const ChatRequest& request, const ForwardOptions& options);

// Plain text standing for the request's prompt (roles, texts, tool calls and tool definitions) for a
// tokenizer that knows no chat template.
std::string estimate_text(const ChatRequest& request);

} // namespace tinyroute::gateway
