#include "decision-json.h"

#include <algorithm>

namespace tinyroute::serve {

namespace {

std::vector<std::pair<std::string, double>> by_probability(std::vector<std::pair<std::string, double>> d) {
  std::stable_sort(d.begin(), d.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return d;
}

json distribution_json(const std::vector<std::pair<std::string, double>>& distribution, const char* key) {
  json dist = json::array();
  for (const auto& [name, p] : by_probability(distribution)) dist.push_back({{key, name}, {"prob", p}});
  return dist;
}

} // namespace

json classify_json(const ClassifyResult& r) {
  const json dist = distribution_json(r.distribution, "label");
  return {{"category", r.category},     {"top_label", r.top_label},
          {"confidence", r.confidence}, {"uncertain", r.uncertain},
          {"source", r.source},         {"strategy", std::string(strategy_name(r.strategy))},
          {"distribution", dist},       {"query_tokens", r.query_tokens},
          {"truncated", r.truncated},   {"tokens_decoded", r.tokens_decoded},
          {"latency_ms", r.latency_ms}};
}

json selection_json(const Selection& s) {
  json rejected = json::array();
  for (const auto& r : s.rejected) rejected.push_back({{"model", r.model}, {"why", r.why}});
  return {{"model", s.model}, {"fallbacks", s.fallbacks}, {"reason", s.reason}, {"rejected", rejected}};
}

json analyze_json(const AnalyzeResult& r) {
  json fields = json::object();
  for (const auto& [name, f] : r.fields) {
    fields[name] = {{"value", f.value},
                    {"confidence", f.confidence},
                    {"distribution", distribution_json(f.distribution, "label")}};
  }
  const AnalyzeTiming& t = r.timing;
  json conversation = nullptr;
  if (!r.conversation.empty()) {
    conversation = {{"id", r.conversation},
                    {"turns", r.conversation_turns},
                    {"source", r.conversation_source},
                    {"reused_tokens", r.reused_tokens}};
  }
  return {{"category", classify_json(r.classification)},
          {"conversation", conversation},
          {"agent", r.agent ? agent_route_json(*r.agent) : json(nullptr)},
          {"fields", fields},
          {"selection", selection_json(r.selection)},
          {"source", r.source},
          {"decision_source", r.classification.source == "rule" ? "rule"
                              : r.source == "cache"             ? "cache"
                                                                : r.classification.source},
          {"query_tokens", r.query_tokens},
          {"truncated", r.truncated},
          {"tokens_decoded", r.tokens_decoded},
          {"latency_ms",
           {{"queue", t.queue_ms},
            {"request", t.request_ms},
            {"decisions", t.decisions_ms},
            {"select", t.select_ms},
            {"total", t.total_ms}}}};
}

json agent_route_json(const AgentRoute& r) {
  return {{"agent", r.agent},
          {"top_agent", r.top_agent},
          {"confidence", r.confidence},
          {"uncertain", r.uncertain},
          {"source", r.source},
          {"distribution", distribution_json(r.distribution, "agent")},
          {"query_tokens", r.query_tokens},
          {"truncated", r.truncated},
          {"tokens_decoded", r.tokens_decoded},
          {"latency_ms", r.latency_ms}};
}

json metadata_json(const MessageMetadata& m) {
  return {{"language", m.language},
          {"intent", m.intent},
          {"urgency", m.urgency},
          {"topics", m.topics},
          {"needs_tools", m.needs_tools},
          {"complexity", m.complexity},
          {"estimated_tokens", m.estimated_tokens},
          {"latency_ms", m.latency_ms}};
}

} // namespace tinyroute::serve
