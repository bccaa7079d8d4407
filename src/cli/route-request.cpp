#include "route-request.h"

#include <algorithm>
#include <chrono>

namespace tinyroute::cli {

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

} // namespace tinyroute::cli
