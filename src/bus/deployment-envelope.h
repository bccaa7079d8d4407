// The deployment's bus envelope (msg_id, from_agent, to_agent, verb, payload, correlation_id,
// requires_response, timestamp) and its mapping to and from agent-message.v1.
//
// Mapping: msg_id <-> id (a msg_id that is not a UUID maps to a stable name-based UUID), from_agent <->
// from, to_agent <-> to ("*" = broadcast), verb <-> kind (ASK question, TELL task, OBSERVE report, PING
// notification; handoff goes out as TELL), payload <-> body, correlation_id <-> trace.correlation_id
// (absent = msg_id), requires_response <-> reply_to (set = from_agent unless the envelope says
// otherwise), timestamp <-> created_at, hop_count <-> trace.hop_count. The fields agent-message.v1 has
// and the deployment's envelope lacks (intent, summary, entities, ...) travel with it as the extra field
// `agent_message` (the whole v1 envelope as JSON), which deployment agents may ignore. Both round trips
// are lossless: deployment -> v1 -> deployment for UUID ids and zoned timestamps, v1 -> deployment -> v1
// always.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tinyroute/agent-message.h"

namespace tinyroute {

struct DeploymentEnvelope {
  std::string msg_id;
  std::string from_agent;
  std::string to_agent; // an agent, "*" (broadcast), or empty = unaddressed (route it)
  std::string verb;     // PING | TELL | ASK | OBSERVE
  std::string payload;
  std::optional<std::string> correlation_id;
  bool requires_response = false;
  std::string timestamp;                       // ISO-8601 UTC
  int hop_count = 0;                           // tinyroute's extension: how often the message was forwarded
  std::optional<nlohmann::json> agent_message; // extension: the agent-message.v1 envelope
  bool operator==(const DeploymentEnvelope&) const = default;
};

const std::vector<std::string>& deployment_verbs(); // PING, TELL, ASK, OBSERVE
std::string kind_for_verb(const std::string& verb);
std::string verb_for_kind(const std::string& kind);

using StreamFields = std::vector<std::pair<std::string, std::string>>;

// Whether a stream entry is written in the deployment's envelope (it has msg_id, verb or payload).
bool is_deployment_entry(const std::map<std::string, std::string>& fields);
// Parses an entry's fields; throws Error(invalid_argument) naming the bad field.
DeploymentEnvelope parse_deployment_fields(const std::map<std::string, std::string>& fields);
// The same from a JSON object (requires_response a boolean, hop_count an integer).
DeploymentEnvelope parse_deployment_json(const nlohmann::json& object);
// The fields written to a stream (XADD), in envelope order; agent_message and hop_count included.
StreamFields deployment_fields(const DeploymentEnvelope& envelope);
nlohmann::json deployment_json(const DeploymentEnvelope& envelope);

AgentMessage agent_message_from(const DeploymentEnvelope& envelope);
DeploymentEnvelope deployment_from(const AgentMessage& message);
// An agent-message.v1 JSON object, schema-checked; throws Error(invalid_argument) with the problem.
AgentMessage parse_agent_message(const nlohmann::json& object);

// A UUID for an id that is not one (stable: the same text gives the same UUID).
std::string uuid_for(const std::string& text);
// ISO-8601 UTC with milliseconds for a Unix time in milliseconds.
std::string iso_utc_ms(long long unix_ms);

} // namespace tinyroute
