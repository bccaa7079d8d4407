#include "route-request.h"

#include <algorithm>
#include <chrono>

namespace tinyroute::serve {

RequestFacts facts_for(const ChatRequest& request, const Engine& engine) {
  RequestFacts f;
  f.needs_tools = !request.tools.empty();
  size_t tokens = 0;
  for (const auto& m : request.messages) {
    for (const auto& part : m.content) {
      if (part.kind == ContentPart::Kind::image) {
        f.needs_vision = true;
      } else {
        tokens += engine.tokenize(part.text, false).size() + 4;
      }
    }
  }
  tokens += static_cast<size_t>(
      std::max(0, request.sampling.max_tokens.value_or(0))); // a negative one is refused later
  f.estimated_tokens = static_cast<int>(tokens);
  return f;
}

RouteDecision route_request(const Analyzer& analyzer, const Engine& engine, const Config& config,
                            const ChatRequest& request, const Availability& availability) {
  const std::string text = last_user_text(request);
  const RequestFacts facts = facts_for(request, engine);
  RouteDecision d;
  if (text.empty()) {
    const auto started = std::chrono::steady_clock::now();
    const Selection s = select_model(config, config.default_category, facts, availability);
    d.category = config.default_category;
    d.confidence = 0;
    d.model = s.model;
    d.fallbacks = s.fallbacks;
    d.reason = "no user text; " + s.reason;
    d.source = "default";
    d.route_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    return d;
  }
  AnalyzeOptions options(request.conversation);
  options.facts = facts;
  options.availability = availability;
  options.priority = request.priority;
  options.cancel = request.cancel;
  const RoutedRequest r = analyzer.route(text, std::move(options));
  d.category = r.classification.category;
  d.confidence = r.classification.confidence;
  d.model = r.selection.model;
  d.fallbacks = r.selection.fallbacks;
  d.reason = r.selection.reason;
  d.source = r.source;
  d.route_ms = r.total_ms;
  return d;
}

ClassifyResult classify_request(const Analyzer& analyzer, std::string text, Priority priority,
                                CancelToken cancel) {
  AnalyzeOptions options;
  options.priority = priority;
  options.cancel = std::move(cancel);
  const RoutedRequest r = analyzer.route(std::move(text), std::move(options));
  ClassifyResult c = r.classification;
  c.source = r.source;
  c.tokens_decoded = r.tokens_decoded;
  c.latency_ms = r.total_ms;
  return c;
}

RouteDecision warming_decision(const Config& config, const RuleSet& rules, const Engine& engine,
                               const ChatRequest& request, const Availability& availability) {
  const auto started = std::chrono::steady_clock::now();
  const RequestFacts facts = facts_for(request, engine);
  RouteDecision d;
  d.category = config.default_category;
  d.confidence = 0;
  d.source = "default";
  std::string why = "the internal model is still warming up: default category";
  if (auto m = rules.match_category(last_user_text(request))) {
    d.category = m->category;
    d.confidence = 1;
    d.source = "rule";
    why = describe(*m);
  }
  const Selection s = select_model(config, d.category, facts, availability);
  d.model = s.model;
  d.fallbacks = s.fallbacks;
  d.reason = why + "; " + s.reason;
  d.route_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return d;
}

} // namespace tinyroute::serve
