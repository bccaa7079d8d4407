#include "agent-endpoints.h"

#include <algorithm>
#include <climits>
#include <optional>
#include <string>

#include "decision-json.h"
#include "tinyroute/error.h"

namespace tinyroute::serve {

namespace {

[[noreturn]] void bad(const std::string& what) {
  throw Error(ErrorCode::invalid_argument, what);
}

// The request fields that steer an envelope rather than being part of the message.
constexpr const char* kControlFields[] = {"from", "to", "reply_to", "correlation_id", "hop_count"};

bool is_control_field(const std::string& key) {
  for (const char* f : kControlFields)
    if (key == f) return true;
  return false;
}

// Refused before any model work, as 413: the same limit the library applies, said the HTTP way.
void check_size(const std::string& text, const Config& config) {
  const int limit = config.agent_routing.max_message_bytes;
  if (text.size() > static_cast<std::size_t>(limit)) {
    throw Error(ErrorCode::context_overflow, "text is " + std::to_string(text.size()) +
                                                 " bytes; the limit is " + std::to_string(limit) +
                                                 " (agent_routing.max_message_bytes)");
  }
}

// The "text" of a {"text": "..."} body.
std::string text_field(const nlohmann::json& body, const Config& config) {
  if (!body.is_object()) bad("send a JSON object with \"text\"");
  const auto it = body.find("text");
  if (it == body.end()) bad("\"text\" is missing");
  if (!it->is_string()) bad("\"text\" must be a string");
  std::string text = it->get<std::string>();
  check_size(text, config);
  return text;
}

std::optional<std::string> string_field(const nlohmann::json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) bad(std::string("\"") + key + "\" must be a string");
  return it->get<std::string>();
}

const MessageFormatter& require_agents(const AgentServices& services) {
  if (!services.formatter) {
    bad("the config (" + services.config.source_path +
        ") has no agents section, so there are no agents to route to; add `agents:` to use /v1/agents/*");
  }
  return *services.formatter;
}

} // namespace

AgentServices::AgentServices(std::shared_ptr<Engine> e, Config c)
    : engine(std::move(e)), config(std::move(c)), rules(config.rules) {
  if (!config.agents.empty()) formatter = std::make_unique<MessageFormatter>(*engine, config);
  metadata = std::make_unique<MetadataExtractor>(*engine, config);
}

nlohmann::json agent_route_endpoint(const AgentServices& services, const nlohmann::json& body,
                                    Priority priority, CancelToken cancel) {
  const MessageFormatter& formatter = require_agents(services);
  const std::string text = text_field(body, services.config);
  if (auto m = services.rules.match_agent(text)) {
    AgentRoute r;
    r.agent = r.top_agent = m->agent;
    r.confidence = 1;
    r.source = "rule";
    nlohmann::json out = agent_route_json(r);
    out["rule"] = describe(*m);
    return out;
  }
  return agent_route_json(formatter.router()->route_agent(text, priority, std::move(cancel)).get());
}

nlohmann::json agent_message_endpoint(const AgentServices& services, const nlohmann::json& body,
                                      Priority priority, CancelToken cancel) {
  const MessageFormatter& formatter = require_agents(services);
  if (!body.is_object()) bad("send a JSON object: {\"text\": ...} or the message's own fields");
  MessageInput input;
  input.recipient_from_text = false;
  input.from = string_field(body, "from");
  input.to = string_field(body, "to");
  input.reply_to = string_field(body, "reply_to");
  input.correlation_id = string_field(body, "correlation_id");
  if (const auto it = body.find("hop_count"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) bad("\"hop_count\" must be an integer");
    if (it->is_number_unsigned()) {
      input.hop_count =
          static_cast<int>(std::min<unsigned long long>(it->get<unsigned long long>(), INT_MAX));
    } else {
      const long long v = it->get<long long>();
      if (v < 0) bad("\"hop_count\" must not be negative");
      input.hop_count = static_cast<int>(std::min<long long>(v, INT_MAX));
    }
  }
  if (body.contains("text")) {
    for (const auto& [key, value] : body.items()) {
      if (key != "text" && !is_control_field(key)) {
        bad("unknown field \"" + key +
            "\" next to \"text\": besides it only from, to, reply_to, correlation_id and hop_count are read "
            "(send the message's own fields without \"text\" to pass them as JSON)");
      }
    }
    input.text = text_field(body, services.config);
  } else {
    // Loose JSON: the message is the object without the steering fields, as the formatter reads it.
    nlohmann::json message = nlohmann::json::object();
    for (const auto& [key, value] : body.items())
      if (!is_control_field(key)) message[key] = value;
    if (message.empty())
      bad("send \"text\" or the message's own fields (e.g. {\"subject\": ..., \"body\": ...})");
    input.text = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    check_size(input.text, services.config);
  }
  return formatter.format_agent_message(std::move(input), priority, std::move(cancel)).get().json;
}

nlohmann::json metadata_endpoint(const AgentServices& services, const nlohmann::json& body, Priority priority,
                                 CancelToken cancel) {
  return metadata_json(
      services.metadata->extract_metadata(text_field(body, services.config), priority, std::move(cancel))
          .get());
}

} // namespace tinyroute::serve
