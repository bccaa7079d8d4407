#include "gateway/count-tokens.h"

#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include "gateway/backend-anthropic.h"
#include "gateway/backend-openai.h"
#include "tinyroute/error.h"

namespace tinyroute::gateway {

namespace asio = boost::asio;
using asio::awaitable;

namespace {

// The backend's chat request turned into its counting request: the same messages, tools and tool
// choice (so the count is of what a real forward would send), none of the generation fields.
ClientRequest counting_request(const ModelConfig& model, const ChatRequest& request) {
  const bool anthropic = model.provider == Provider::anthropic;
  ClientRequest req = (anthropic ? anthropic_backend() : openai_backend()).request(model, request);
  json body = json::parse(req.body);
  for (const char* key : {"stream", "stream_options", "max_tokens", "temperature", "top_p", "top_k", "stop",
                          "stop_sequences", "seed", "metadata", "service_tier", "user"})
    body.erase(key);
  req.body = body.dump();
  req.url += anthropic ? "/count_tokens" : "/input_tokens"; // .../v1/messages, .../v1/chat/completions
  std::erase_if(req.headers, [](const auto& h) { return h.first == "accept"; });
  req.headers.emplace_back("accept", "application/json");
  return req;
}

} // namespace

ChatRequest parse_count_tokens(const FrontAdapter& anthropic, json body) {
  // count_tokens has no max_tokens, which the Messages front requires: any value parses, none is sent.
  if (body.is_object() && !body.contains("max_tokens")) body["max_tokens"] = 1;
  ChatRequest request = anthropic.parse(body);
  request.stream = false;
  return request;
}

awaitable<std::optional<TokenCount>> count_upstream(const ModelConfig& model, const ChatRequest& request,
                                                    const ForwardOptions& options) {
  if (model.provider == Provider::ollama) co_return std::nullopt; // Ollama has no counting API
  const bool anthropic = model.provider == Provider::anthropic;
  ClientRequest req;
  try {
    req = counting_request(model, request);
  } catch (const Error& e) { // e.g. the API key's variable is not set
    spdlog::info("count_tokens: {}: {}", model.name, e.what());
    co_return std::nullopt;
  }
  HttpClientCall call(co_await asio::this_coro::executor, options.timeouts, options.tls, options.pool);
  int status = 0;
  std::string body;
  std::string failure;
  try {
    status = co_await call.open(req);
    body = co_await call.read_rest(1 << 20);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    spdlog::info("count_tokens: {} did not answer ({}); estimating", model.name, failure);
    co_return std::nullopt;
  }
  if (status >= 200 && status < 300) {
    const json j = json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("input_tokens") && j["input_tokens"].is_number_integer() &&
        j["input_tokens"].get<long long>() >= 0) {
      co_return TokenCount{static_cast<int>(j["input_tokens"].get<long long>()),
                           anthropic ? "upstream" : "backend-tokenizer"};
    }
  } else if (anthropic && status >= 400 && status < 500 && status != 404 && status != 405 && status != 429) {
    throw FrontError(status, "upstream_rejected",
                     "model '" + model.name + "' refused to count the request: HTTP " +
                         std::to_string(status) + ": " + anthropic_backend().error_message(body));
  }
  co_return std::nullopt;
}

std::string estimate_text(const ChatRequest& request) {
  std::string text;
  for (const auto& m : request.messages) {
    text += m.role + "\n" + text_of(m) + "\n";
    for (const auto& c : m.tool_calls) text += c.name + " " + c.arguments + "\n";
  }
  for (const auto& t : request.tools) text += t.name + " " + t.description + " " + t.parameters.dump() + "\n";
  return text;
}

} // namespace tinyroute::gateway
