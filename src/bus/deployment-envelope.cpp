#include "bus/deployment-envelope.h"

#include <algorithm>
#include <charconv>
#include <ctime>

#include "core/utf8.h"
#include "message/schema-validate.h"
#include "message/uuid.h"
#include "tinyroute/error.h"

namespace tinyroute {

namespace {

using nlohmann::json;

constexpr std::size_t kMaxName = 128; // as agent-message.v1 bounds from/to/correlation_id

[[noreturn]] void bad(const std::string& what) {
  throw Error(ErrorCode::invalid_argument, what);
}

std::string name_field(const std::string& field, const std::string& value, bool required) {
  if (value.empty()) {
    if (required) bad(field + " is missing or empty");
    return value;
  }
  if (sanitize_utf8(value) != value) bad(field + " is not valid UTF-8");
  if (utf8_length(value) > kMaxName)
    bad(field + " is longer than " + std::to_string(kMaxName) + " characters");
  return value;
}

// ISO-8601 UTC: an RFC 3339 date-time is kept as written; one without a zone is UTC and gets "Z".
std::string checked_timestamp(const std::string& value) {
  if (is_date_time(value)) return value;
  if (is_date_time(value + "Z")) return value + "Z";
  bad("timestamp \"" + value + "\" is not ISO-8601 (e.g. 2026-03-01T12:00:00Z)");
}

bool parse_bool(const std::string& field, const std::string& v) {
  if (v == "true" || v == "True" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "False" || v == "0" || v == "no" || v.empty()) return false;
  bad(field + " must be true or false, got \"" + v + "\"");
}

int parse_hops(const std::string& v) {
  int out = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || end != v.data() + v.size() || out < 0)
    bad("hop_count must be a whole number >= 0, got \"" + v + "\"");
  return out;
}

// Shared checks once the raw values are read.
DeploymentEnvelope finish(DeploymentEnvelope e) {
  e.msg_id = name_field("msg_id", e.msg_id, true);
  e.from_agent = name_field("from_agent", e.from_agent, true);
  e.to_agent = name_field("to_agent", e.to_agent == "auto" ? "" : e.to_agent, false);
  const auto& verbs = deployment_verbs();
  if (std::find(verbs.begin(), verbs.end(), e.verb) == verbs.end())
    bad("verb \"" + e.verb + "\" is not one of PING, TELL, ASK, OBSERVE");
  if (e.correlation_id) e.correlation_id = name_field("correlation_id", *e.correlation_id, true);
  if (e.timestamp.empty()) bad("timestamp is missing (ISO-8601 UTC, e.g. 2026-03-01T12:00:00Z)");
  e.timestamp = checked_timestamp(e.timestamp);
  e.payload = sanitize_utf8(e.payload);
  return e;
}

std::string json_string(const json& o, const char* key, bool required) {
  const auto it = o.find(key);
  if (it == o.end() || it->is_null()) {
    if (required) bad(std::string(key) + " is missing");
    return "";
  }
  if (!it->is_string()) bad(std::string(key) + " must be a string");
  return it->get<std::string>();
}

std::vector<std::string> string_list(const json& j) {
  std::vector<std::string> out;
  for (const auto& s : j) out.push_back(s.get<std::string>());
  return out;
}

} // namespace

const std::vector<std::string>& deployment_verbs() {
  static const std::vector<std::string> v = {"PING", "TELL", "ASK", "OBSERVE"};
  return v;
}

std::string kind_for_verb(const std::string& verb) {
  if (verb == "ASK") return "question";
  if (verb == "OBSERVE") return "report";
  if (verb == "PING") return "notification";
  return "task";
}

std::string verb_for_kind(const std::string& kind) {
  if (kind == "question") return "ASK";
  if (kind == "report") return "OBSERVE";
  if (kind == "notification") return "PING";
  return "TELL"; // task, handoff
}

bool is_deployment_entry(const std::map<std::string, std::string>& fields) {
  return fields.contains("msg_id") || fields.contains("verb") || fields.contains("payload");
}

DeploymentEnvelope parse_deployment_fields(const std::map<std::string, std::string>& fields) {
  const auto get = [&](const char* key) {
    const auto it = fields.find(key);
    return it == fields.end() ? std::string() : it->second;
  };
  DeploymentEnvelope e;
  e.msg_id = get("msg_id");
  e.from_agent = get("from_agent");
  e.to_agent = get("to_agent");
  e.verb = get("verb");
  if (!fields.contains("payload")) bad("payload is missing");
  e.payload = get("payload");
  if (fields.contains("correlation_id") && !get("correlation_id").empty())
    e.correlation_id = get("correlation_id");
  e.requires_response = parse_bool("requires_response", get("requires_response"));
  e.timestamp = get("timestamp");
  if (fields.contains("hop_count")) e.hop_count = parse_hops(get("hop_count"));
  if (fields.contains("agent_message")) {
    json j = json::parse(get("agent_message"), nullptr, false);
    if (j.is_discarded() || !j.is_object()) bad("agent_message is not a JSON object");
    e.agent_message = std::move(j);
  }
  return finish(std::move(e));
}

DeploymentEnvelope parse_deployment_json(const json& o) {
  if (!o.is_object()) bad("the envelope must be a JSON object");
  DeploymentEnvelope e;
  e.msg_id = json_string(o, "msg_id", true);
  e.from_agent = json_string(o, "from_agent", true);
  e.to_agent = json_string(o, "to_agent", false);
  e.verb = json_string(o, "verb", true);
  const auto payload = o.find("payload");
  if (payload == o.end() || payload->is_null()) bad("payload is missing");
  // A structured payload is kept as its JSON text: the body is always the original content.
  e.payload = payload->is_string() ? payload->get<std::string>()
                                   : payload->dump(-1, ' ', false, json::error_handler_t::replace);
  if (const std::string c = json_string(o, "correlation_id", false); !c.empty()) e.correlation_id = c;
  if (const auto it = o.find("requires_response"); it != o.end() && !it->is_null()) {
    if (!it->is_boolean()) bad("requires_response must be true or false");
    e.requires_response = it->get<bool>();
  }
  e.timestamp = json_string(o, "timestamp", true);
  if (const auto it = o.find("hop_count"); it != o.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<long long>() < 0 || it->get<long long>() > 1000000)
      bad("hop_count must be a whole number >= 0");
    e.hop_count = it->get<int>();
  }
  if (const auto it = o.find("agent_message"); it != o.end() && !it->is_null()) {
    if (!it->is_object()) bad("agent_message must be a JSON object");
    e.agent_message = *it;
  }
  return finish(std::move(e));
}

StreamFields deployment_fields(const DeploymentEnvelope& e) {
  StreamFields f = {{"msg_id", e.msg_id},
                    {"from_agent", e.from_agent},
                    {"to_agent", e.to_agent},
                    {"verb", e.verb},
                    {"payload", e.payload}};
  if (e.correlation_id) f.emplace_back("correlation_id", *e.correlation_id);
  f.emplace_back("requires_response", e.requires_response ? "true" : "false");
  f.emplace_back("timestamp", e.timestamp);
  f.emplace_back("hop_count", std::to_string(e.hop_count));
  if (e.agent_message)
    f.emplace_back("agent_message", e.agent_message->dump(-1, ' ', false, json::error_handler_t::replace));
  return f;
}

json deployment_json(const DeploymentEnvelope& e) {
  json j = {{"msg_id", e.msg_id},
            {"from_agent", e.from_agent},
            {"to_agent", e.to_agent},
            {"verb", e.verb},
            {"payload", e.payload},
            {"correlation_id", e.correlation_id ? json(*e.correlation_id) : json(nullptr)},
            {"requires_response", e.requires_response},
            {"timestamp", e.timestamp},
            {"hop_count", e.hop_count}};
  if (e.agent_message) j["agent_message"] = *e.agent_message;
  return j;
}

AgentMessage parse_agent_message(const json& o) {
  if (const auto problems = validate_json(agent_message_schema(), o); !problems.empty())
    bad("not a valid agent-message.v1 envelope: " + problems.front());
  AgentMessage m;
  m.id = o["id"];
  m.from = o["from"];
  m.to = o["to"];
  m.kind = o["kind"];
  m.intent = o["intent"];
  m.priority = o["priority"];
  m.summary = o["summary"];
  const json& ent = o["entities"];
  m.entities = {string_list(ent["people"]), string_list(ent["dates"]), string_list(ent["systems"]),
                string_list(ent["files"])};
  if (o["deadline"].is_string()) m.deadline = o["deadline"].get<std::string>();
  m.language = o["language"];
  if (o["reply_to"].is_string()) m.reply_to = o["reply_to"].get<std::string>();
  m.correlation_id = o["trace"]["correlation_id"];
  m.hop_count = o["trace"]["hop_count"];
  m.created_at = o["created_at"];
  m.body = o["body"];
  return m;
}

AgentMessage agent_message_from(const DeploymentEnvelope& e) {
  AgentMessage m;
  if (e.agent_message) {
    // The v1 fields the deployment's envelope cannot hold come from the extension; the envelope's own
    // fields are the truth for everything it does hold.
    m = parse_agent_message(*e.agent_message);
  } else {
    m.intent = "unspecified";
    m.priority = "normal";
    m.language = "und";
  }
  m.id = is_uuid(e.msg_id) ? e.msg_id : uuid_for(e.msg_id);
  m.from = e.from_agent;
  m.to = e.to_agent.empty() ? "auto" : e.to_agent;
  if (!e.agent_message || verb_for_kind(m.kind) != e.verb) m.kind = kind_for_verb(e.verb);
  m.body = e.payload;
  m.correlation_id = e.correlation_id.value_or(e.msg_id);
  if (!e.requires_response) {
    m.reply_to.reset();
  } else if (!m.reply_to) {
    m.reply_to = e.from_agent;
  }
  m.created_at = e.timestamp;
  m.hop_count = e.hop_count;
  return m;
}

DeploymentEnvelope deployment_from(const AgentMessage& m) {
  DeploymentEnvelope e;
  e.msg_id = m.id;
  e.from_agent = m.from;
  e.to_agent = m.to == "auto" ? "" : m.to;
  e.verb = verb_for_kind(m.kind);
  e.payload = m.body;
  e.correlation_id = m.correlation_id;
  e.requires_response = m.reply_to.has_value();
  e.timestamp = m.created_at;
  e.hop_count = m.hop_count;
  e.agent_message = agent_message_json(m);
  return e;
}

std::string uuid_for(const std::string& text) {
  // Two FNV-1a passes with different offsets: 128 stable bits; version 8 (custom), RFC 4122 variant.
  const auto fnv = [&](std::uint64_t h) {
    for (unsigned char c : text) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
    return h;
  };
  const std::uint64_t a = fnv(0xcbf29ce484222325ULL), b = fnv(0x84222325cbf29ce4ULL ^ text.size());
  unsigned char bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(a >> (8 * i));
    bytes[8 + i] = static_cast<unsigned char>(b >> (8 * i));
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0F) | 0x80);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3F) | 0x80);
  return format_uuid(bytes);
}

std::string iso_utc_ms(long long unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(unix_ms % 1000));
  return out;
}

} // namespace tinyroute
