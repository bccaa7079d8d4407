// serve's agent endpoints: POST /v1/agents/route, /v1/agents/messages and /v1/metadata over one
// engine (the TaskRouter's). Request bodies are checked here, so a malformed one is a 4xx that says
// what is wrong, before any model work.
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "tinyroute/agent-message.h"
#include "tinyroute/config.h"
#include "tinyroute/engine.h"
#include "tinyroute/metadata.h"
#include "tinyroute/rules.h"

namespace tinyroute::serve {

// What the agent endpoints use; built again on every reload (the engine is reused when it can be).
struct AgentServices {
  AgentServices(std::shared_ptr<Engine> engine, Config config);

  std::shared_ptr<Engine> engine; // first, so it outlives the policies below that refer to it
  Config config;
  std::unique_ptr<MessageFormatter> formatter; // its router() routes; null without an agents section
  std::unique_ptr<MetadataExtractor> metadata;
  RuleSet rules; // config.rules: a rule with an agent target answers /v1/agents/route without the model
};

// {"text"} -> agent, confidence, distribution, uncertain, source (rule | model | default), latency_ms.
// Each endpoint's engine work carries `cancel` (the gateway's shutdown): Error(cancelled) when it fires.
nlohmann::json agent_route_endpoint(const AgentServices& services, const nlohmann::json& body,
                                    Priority priority = Priority::normal, CancelToken cancel = {});
// {"text"} or the message's own JSON fields, plus optional from / to / reply_to / correlation_id /
// hop_count -> the agent-message.v1 envelope. Only the request's own "to" names a recipient; a "to"
// inside the text never does (an HTTP client must not address agents through the message text).
nlohmann::json agent_message_endpoint(const AgentServices& services, const nlohmann::json& body,
                                      Priority priority = Priority::normal, CancelToken cancel = {});
// {"text"} -> language, intent, urgency, topics, needs_tools, complexity, estimated_tokens.
nlohmann::json metadata_endpoint(const AgentServices& services, const nlohmann::json& body,
                                 Priority priority = Priority::normal, CancelToken cancel = {});

} // namespace tinyroute::serve
