// How the CLI prints: aligned tables and text for library results, the JSON of eval, and a progress
// line for terminals (the decisions' JSON is serve's, shared with its endpoints).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/decision-json.h"
#include "tinyroute/agent-message.h"
#include "tinyroute/agent-router.h"
#include "tinyroute/analyze.h"
#include "tinyroute/classify.h"
#include "tinyroute/eval-metrics.h"
#include "tinyroute/gateway.h"
#include "tinyroute/metadata.h"

namespace tinyroute::cli {

using nlohmann::json;

// The decisions' JSON is serve's (one shape for the endpoints and --json).
using serve::agent_route_json;
using serve::analyze_json;
using serve::classify_json;
using serve::metadata_json;
using serve::selection_json;
json metrics_json(const EvalMetrics& metrics);
json latency_json(const LatencySummary& latency);

// Human-readable forms of the same.
std::string classify_text(const ClassifyResult& result);
std::string selection_text(const Selection& selection);
std::string route_decision_text(const RouteDecision& decision);
std::string metrics_text(const EvalMetrics& metrics);
std::string agent_route_text(const AgentRoute& route);
std::string metadata_text(const MessageMetadata& metadata);
std::string analyze_text(const AnalyzeResult& result);
// bus_status() for `tinyroute bus --status`: the inbox, the group, the dead letters, the agents.
std::string bus_status_text(const json& status);

// Rows of cells, columns padded to the widest cell (UTF-8 aware); the first row is the header when
// `header` is set (a rule is drawn under it).
std::string format_table(const std::vector<std::vector<std::string>>& rows, bool header = true);
std::string fixed(double value, int decimals);

bool stderr_is_tty();
int terminal_width(); // of stderr; 80 when unknown

// "[=====>    ]  45/100" fitted to `width` columns.
std::string count_progress(std::uint64_t done, std::uint64_t total, int width);

} // namespace tinyroute::cli
