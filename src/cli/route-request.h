// The one routing decision for a chat request: what auto-routed chat requests and POST /v1/route use in
// `tinyroute serve`, and what `tinyroute route` prints, so the command line and the server cannot
// answer the same text differently.
#pragma once

#include "tinyroute/analyze.h"
#include "tinyroute/gateway.h"

namespace tinyroute::cli {

// What the request needs from its answer model: tools, images, and its size in the internal model's
// tokens (plus max_tokens).
RequestFacts facts_for(const ChatRequest& request, const Engine& engine);

// The last user text decided by Analyzer::route (rules, then one analyze pass within
// internal_model.deadline_ms, a repeat from the decision cache, else the default category); no user
// text: the default category, said so. A conversation (request.conversation) routes with its turns.
RouteDecision route_request(const Analyzer& analyzer, const Engine& engine, const Config& config,
                            const ChatRequest& request, const Availability& availability);

} // namespace tinyroute::cli
