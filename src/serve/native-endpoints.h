// serve's native JSON endpoints, registered on the gateway's endpoint table: POST /v1/classify,
// /v1/select, /v1/analyze, /v1/agents/route, /v1/agents/messages and /v1/metadata. Each waits for the
// internal model's warm-up and reads the router set in service when it starts.
#pragma once

#include <functional>
#include <memory>

#include "live-router.h"
#include "tinyroute/gateway.h"

namespace tinyroute::serve {

void add_native_endpoints(Gateway& gateway, std::shared_ptr<const LiveRouter> live,
                          std::function<Availability()> availability);

// The text of a /v1/classify or /v1/analyze body: {"text": "..."} or {"messages": [...]} (its last
// user turn). Error(invalid_argument) says what is wrong.
std::string text_input(const nlohmann::json& body);

} // namespace tinyroute::serve
