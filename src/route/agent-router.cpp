// AgentRouter: agents as LabelScorer labels, the triage agent as the uncertain default.
#include "tinyroute/agent-router.h"

namespace tinyroute {

LabelScorerOptions agent_options(const Config& config) {
  LabelScorerOptions o;
  o.prefix_name = "route_agent";
  o.task = "You deliver messages inside a team of AI agents and people. Read the message and decide which "
           "agent should receive it, judging by what each agent does and the skills it has. Messages may "
           "be in any language.";
  o.item_noun = "Message";
  o.answer_noun = "Agent";
  o.strategy = config.agent_routing.strategy.value_or(config.internal_model.strategy);
  // Letter codes only go up to Z; larger teams are ranked by name instead.
  if (o.strategy == Strategy::choice && config.agents.size() > 26) o.strategy = Strategy::score;
  o.head_dir = config.internal_model.state_dir;
  o.head_kind = "agents";
  o.max_query_tokens = config.internal_model.max_query_tokens;
  return o;
}

namespace {

const Config& require_agents(const Config& config) {
  if (config.agents.empty() || config.triage_agent() == nullptr) {
    throw Error(ErrorCode::invalid_argument,
                "agent routing needs an agents section with a triage agent in the config");
  }
  return config;
}

} // namespace

std::vector<Label> agent_labels(const Config& config) {
  std::vector<Label> labels;
  for (const auto& a : config.agents) {
    std::string description = a.description;
    if (!a.skills.empty()) {
      description += " Skills: ";
      for (size_t i = 0; i < a.skills.size(); ++i) description += (i ? ", " : "") + a.skills[i];
      description += ".";
    }
    labels.push_back({a.name, description, a.examples});
  }
  return labels;
}

AgentRouter::AgentRouter(Engine& engine, const Config& config)
    : scorer_(engine, agent_labels(require_agents(config)), agent_options(config)),
      threshold_(config.agent_routing.threshold), triage_(config.triage_agent()->name) {}

AgentRoute agent_decision(const LabelDistribution& d, double threshold, const std::string& triage,
                          double ms) {
  AgentRoute r;
  r.top_agent = d.labels[d.best];
  r.confidence = d.confidence;
  for (size_t i = 0; i < d.labels.size(); ++i) r.distribution.emplace_back(d.labels[i], d.probs[i]);
  r.uncertain = d.confidence < threshold;
  r.agent = r.uncertain ? triage : r.top_agent;
  r.source = r.uncertain ? "default" : "model";
  r.query_tokens = d.query_tokens;
  r.truncated = d.truncated;
  r.tokens_decoded = d.n_decoded;
  r.latency_ms = ms;
  return r;
}

AgentRoute AgentRouter::decide(const LabelDistribution& d, double ms) const {
  return agent_decision(d, threshold_, triage_, ms);
}

std::future<AgentRoute> AgentRouter::route_agent(const std::string& text, Priority priority,
                                                 CancelToken cancel) const {
  auto fut = scorer_.score(text, priority, std::move(cancel));
  return std::async(std::launch::deferred, [this, f = std::move(fut)]() mutable {
    const LabelDistribution d = f.get();
    return decide(d, d.queue_ms + d.compute_ms);
  });
}

AgentRoute AgentRouter::route_agent_reference(const std::string& text) const {
  const LabelDistribution d = scorer_.score_reference(text);
  return decide(d, d.compute_ms);
}

} // namespace tinyroute
