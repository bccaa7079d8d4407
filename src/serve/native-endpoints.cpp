#include "native-endpoints.h"

#include <map>
#include <optional>
#include <string>

#include "decision-json.h"
#include "route-request.h"
#include "select-endpoint.h"
#include "tinyroute/error.h"

namespace tinyroute::serve {

namespace {

// The native endpoints' "priority" field (high | medium | low); the X-Request-Priority header's value
// when the body has none.
Priority request_priority(const json& body, const JsonRequestContext& context) {
  if (!body.is_object() || !body.contains("priority") || body["priority"].is_null()) return context.priority;
  const json& field = body["priority"];
  std::optional<Priority> p = field.is_string() ? parse_priority(field.get<std::string>()) : std::nullopt;
  if (!p) throw Error(ErrorCode::invalid_argument, "\"priority\" must be \"high\", \"medium\" or \"low\"");
  return *p;
}

// A string given in the body's `field`, else in the request header `header`, else empty.
std::string body_or_header(const json& body, const std::map<std::string, std::string>& headers,
                           const char* field, const char* header) {
  if (body.is_object() && body.contains(field)) {
    if (!body[field].is_string())
      throw Error(ErrorCode::invalid_argument, std::string("\"") + field + "\" must be a string");
    return body[field];
  }
  const auto it = headers.find(header);
  return it == headers.end() ? std::string() : it->second;
}

} // namespace

std::string text_input(const json& body) {
  auto bad = [](const std::string& what) { throw Error(ErrorCode::invalid_argument, what); };
  if (!body.is_object()) bad("send a JSON object with \"text\" or \"messages\"");
  if (body.contains("text")) {
    if (!body["text"].is_string()) bad("\"text\" must be a string");
    return body["text"];
  }
  if (!body.contains("messages")) bad("send a JSON object with \"text\" or \"messages\"");
  const json& messages = body["messages"];
  if (!messages.is_array()) bad("\"messages\" must be an array");
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (!it->is_object() || it->value("role", "") != "user" || !it->contains("content")) continue;
    const json& content = (*it)["content"];
    if (content.is_string()) return content;
    std::string text;
    if (content.is_array()) {
      for (const auto& part : content) {
        if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
            part["text"].is_string())
          text += (text.empty() ? "" : "\n") + part["text"].get<std::string>();
      }
    }
    return text;
  }
  bad("\"messages\" has no user message");
  return {};
}

void add_native_endpoints(Gateway& gateway, std::shared_ptr<const LiveRouter> live,
                          std::function<Availability()> availability) {
  // The category as /v1/route and auto-routed requests decide it (rules, cache, deadline).
  gateway.add_json_endpoint("POST", "/v1/classify", [live](const json& body, const JsonRequestContext& ctx) {
    std::string text = text_input(body);
    return classify_json(
        classify_request(*live->ready().analyzer, std::move(text), request_priority(body, ctx), ctx.cancel));
  });
  gateway.add_json_endpoint("POST", "/v1/select", [live, availability](const json& body) {
    return select_endpoint(*live->ready().tasks, body, availability());
  });
  gateway.add_json_endpoint("POST", "/v1/analyze", [live](const json& body, const JsonRequestContext& ctx) {
    // A conversation: the body's "conversation" field, else the x-tinyroute-conversation header.
    AnalyzeOptions options(body_or_header(body, ctx.headers, "conversation", "x-tinyroute-conversation"));
    // A client that retries a conversation message names it, so the retry is not a second turn.
    options.turn_id = body_or_header(body, ctx.headers, "message_id", "x-tinyroute-message-id");
    options.priority = request_priority(body, ctx);
    options.cancel = ctx.cancel;
    return analyze_json(live->ready().analyzer->analyze(text_input(body), std::move(options)).get());
  });
  gateway.add_json_endpoint(
      "POST", "/v1/agents/route", [live](const json& body, const JsonRequestContext& ctx) {
        return agent_route_endpoint(*live->ready().agents, body, request_priority(body, ctx), ctx.cancel);
      });
  // A message's own fields may include "priority" (the envelope has one): only the header counts here.
  gateway.add_json_endpoint(
      "POST", "/v1/agents/messages", [live](const json& body, const JsonRequestContext& ctx) {
        return agent_message_endpoint(*live->ready().agents, body, ctx.priority, ctx.cancel);
      });
  gateway.add_json_endpoint("POST", "/v1/metadata", [live](const json& body, const JsonRequestContext& ctx) {
    return metadata_endpoint(*live->ready().agents, body, request_priority(body, ctx), ctx.cancel);
  });
}

} // namespace tinyroute::serve
