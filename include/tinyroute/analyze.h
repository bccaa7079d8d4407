// analyze(request): every internal decision about one request in one pass of the internal model.
//
// One cached prefix holds the instructions of all decisions (task category, the agent when the config
// has agents, and the enumerated metadata fields language, urgency, needs_tools, complexity). The
// request is decoded once after it; the engine then forks the sequence per decision (ScoreBranch),
// appends that decision's short cue ("Category:", "Agent:", ...) and reads every decision from its
// cue in one batched decode. Thresholds and defaults are the ones classify_task and route_agent apply.
#pragma once

#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tinyroute/agents.h"
#include "tinyroute/classify.h"
#include "tinyroute/config.h"
#include "tinyroute/engine.h"
#include "tinyroute/select.h"

namespace tinyroute {

class DecisionCache;

// One enumerated metadata field: the most probable label and the whole distribution.
struct FieldDecision {
  std::string value;
  double confidence = 0;
  std::vector<std::pair<std::string, double>> distribution; // every label, in label order
};

struct AnalyzeTiming {
  double queue_ms = 0;     // waiting for the engine
  double request_ms = 0;   // decoding the request (once, shared by every decision)
  double decisions_ms = 0; // every decision's cue and answers, decoded together
  double select_ms = 0;    // select_model
  double total_ms = 0;     // the whole call
};

struct AnalyzeResult {
  ClassifyResult classification;
  std::optional<AgentRoute> agent;             // when the config has agents
  std::map<std::string, FieldDecision> fields; // language, urgency, needs_tools, complexity
  Selection selection;                         // select_model over the category
  AnalyzeTiming timing;
  int query_tokens = 0;   // tokens after the shared prefix (the request and the common answer head)
  int tokens_decoded = 0; // what this call decoded (0 when answered from the cache)
  bool truncated = false; // the text was cut (head and tail kept)
  std::string source;     // model | cache
};

// The decisions analyze makes, in prompt order.
enum class Decision { category, agent, language, urgency, needs_tools, complexity };

class Analyzer {
public:
  // Builds the shared prefix and makes it resident (decoded once). `cache` (optional) answers repeated
  // requests without the model; it may be shared by several analyzers (keys include the config hash).
  Analyzer(Engine& engine, const Config& config, std::shared_ptr<DecisionCache> cache = nullptr);

  // Throws Error(invalid_argument) for empty text or text over agent_routing.max_message_bytes.
  std::future<AnalyzeResult> analyze(std::string text, RequestFacts facts = {},
                                     Availability availability = {},
                                     Priority priority = Priority::normal) const;
  // The brute-force twin: each decision's prompt (prefix + request + cue) decoded from scratch in a
  // fresh context. Tests only; never cached.
  AnalyzeResult analyze_reference(const std::string& text, RequestFacts facts = {},
                                  Availability availability = {}) const;

  const std::vector<Decision>& decisions() const { return decisions_; }
  const std::string& prefix_text() const { return prefix_text_; }
  // The engine request analyze sends for `text` (prefix, request tokens, one branch per decision).
  ScoreRequest request_for(const std::string& text, bool* truncated = nullptr) const;

private:
  struct Part {
    Decision decision;
    std::vector<Label> labels;
    std::vector<std::vector<Token>> answers;
    std::vector<Token> cue;
  };
  AnalyzeResult decide(const ScoreResult& r, int query_tokens, bool truncated, const RequestFacts& facts,
                       const Availability& availability, double started_ms_ago) const;
  void check_text(const std::string& text) const;

  Engine& engine_;
  Config config_;
  std::shared_ptr<DecisionCache> cache_;
  std::vector<Decision> decisions_;
  std::vector<Part> parts_;
  std::string prefix_text_;
  std::string prefix_id_;
  std::vector<Token> head_; // after the request, shared by every decision (end of turn, answer start)
};

std::string_view decision_name(Decision decision); // category | agent | language | ...

} // namespace tinyroute
