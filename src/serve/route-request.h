// The one routing path. Every entry point that decides a request's category (auto-routed chat
// requests, POST /v1/route, POST /v1/classify, `tinyroute route` and `tinyroute classify`) goes through
// Analyzer::route here: the config's rules, then one analyze pass within internal_model.deadline_ms, a
// repeat from the decision cache, else the default category. The command line and the server cannot
// answer the same text differently. (The bus decides agents with the same pass, Analyzer::analyze with
// AnalyzeOptions::deadline from the same setting: the same rules, cache, deadline and strategy.)
#pragma once

#include <string>

#include "tinyroute/analyze.h"
#include "tinyroute/gateway.h"

namespace tinyroute::serve {

// What the request needs from its answer model: tools, images, and its size in the internal model's
// tokens (plus max_tokens).
RequestFacts facts_for(const ChatRequest& request, const Engine& engine);

// The last user text routed (see above); no user text: the default category, said so. A conversation
// (request.conversation) routes with its turns. The engine work carries request.cancel.
RouteDecision route_request(const Analyzer& analyzer, const Engine& engine, const Config& config,
                            const ChatRequest& request, const Availability& availability);

// The category alone, decided exactly as route_request decides it (source rule | model | cache |
// default); latency_ms is the whole decision's.
ClassifyResult classify_request(const Analyzer& analyzer, std::string text,
                                Priority priority = Priority::normal, CancelToken cancel = {});

// While the internal model warms up (its instruction prefixes are being decoded) it cannot decide in
// time: the rules, then the default category answer.
RouteDecision warming_decision(const Config& config, const RuleSet& rules, const Engine& engine,
                               const ChatRequest& request, const Availability& availability);

} // namespace tinyroute::serve
