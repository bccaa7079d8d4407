// The JSON of every internal decision, one shape wherever it is shown: serve's native endpoints and the
// command line's --json print the same objects.
#pragma once

#include <nlohmann/json.hpp>

#include "tinyroute/agent-message.h"
#include "tinyroute/agent-router.h"
#include "tinyroute/analyze.h"
#include "tinyroute/classify.h"
#include "tinyroute/metadata.h"

namespace tinyroute::serve {

using nlohmann::json;

// Distributions are sorted by probability, highest first.
json classify_json(const ClassifyResult& result);
json selection_json(const Selection& selection);
json agent_route_json(const AgentRoute& route);
json metadata_json(const MessageMetadata& metadata);
json analyze_json(const AnalyzeResult& result);

} // namespace tinyroute::serve
