// Agent routing: which configured agent should receive a message.
//
// A policy over the engine's score verb, built on LabelScorer exactly like task classification: the
// agents (name, description and skills, examples) become one cached instruction prefix, and one
// batched score call ranks them. Below agent_routing.threshold the message goes to the triage agent.
#pragma once

#include <future>
#include <string>
#include <utility>
#include <vector>

#include "tinyroute/classify.h"
#include "tinyroute/config.h"
#include "tinyroute/engine.h"

namespace tinyroute {

struct AgentRoute {
  std::string agent;     // the decision (the triage agent when uncertain)
  std::string top_agent; // what the model ranked first, even when uncertain
  double confidence = 0; // probability of top_agent
  std::vector<std::pair<std::string, double>> distribution; // every configured agent, config order
  bool uncertain = false;                                   // confidence below the threshold
  std::string source;                                       // model | default
  int query_tokens = 0;
  bool truncated = false; // the text was cut (head and tail kept) before scoring
  int tokens_decoded = 0;
  double latency_ms = 0;
};

class AgentRouter {
public:
  // Throws Error(invalid_argument) when the config has no agents section.
  AgentRouter(Engine& engine, const Config& config);

  // `cancel` ends the engine work with Error(cancelled) (a server shutting down).
  std::future<AgentRoute> route_agent(const std::string& text, Priority priority = Priority::normal,
                                      CancelToken cancel = {}) const;
  // The brute-force twin (LabelScorer::score_reference). Tests only.
  AgentRoute route_agent_reference(const std::string& text) const;

  const LabelScorer& scorer() const { return scorer_; }
  const std::string& triage_agent() const { return triage_; }
  double threshold() const { return threshold_; }

private:
  AgentRoute decide(const LabelDistribution& d, double ms) const;
  LabelScorer scorer_;
  double threshold_;
  std::string triage_;
};

// The labels an agent router scores: one per agent, the description followed by its skills.
std::vector<Label> agent_labels(const Config& config);
LabelScorerOptions agent_options(const Config& config);

// The routing decision from a distribution: below `threshold` the triage agent, flagged uncertain.
// Shared by AgentRouter and analyze.
AgentRoute agent_decision(const LabelDistribution& d, double threshold, const std::string& triage, double ms);

} // namespace tinyroute
