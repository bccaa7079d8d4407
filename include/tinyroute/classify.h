// Task classification and model selection over the engine: classify_task (a LabelScorer over the
// config's categories, with its threshold and default category) and TaskRouter (classify, then
// select_model).
#pragma once

#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tinyroute/config.h"
#include "tinyroute/engine.h"
#include "tinyroute/label-scorer.h"
#include "tinyroute/select.h"

namespace tinyroute {

struct ClassifyResult {
  std::string category;  // the decision (default_category when uncertain)
  std::string top_label; // what the model ranked first, even when uncertain
  double confidence = 0;
  std::vector<std::pair<std::string, double>> distribution; // every configured category
  bool uncertain = false;                                   // confidence below the threshold
  std::string source; // model | default; through the routing path (serve) also rule | cache
  Strategy strategy = Strategy::choice;
  int query_tokens = 0;
  bool truncated = false;
  int tokens_decoded = 0;
  double latency_ms = 0;
};

// The classification decision from a distribution: below `threshold` the default category (when one is
// configured), flagged uncertain. Shared by Classifier and analyze.
ClassifyResult classify_decision(const LabelDistribution& d, double threshold,
                                 const std::string& default_category, Strategy strategy, double ms);

// The labels and options classify_task scores with (prefix_name "classify_task").
std::vector<Label> category_labels(const Config& config);
LabelScorerOptions classify_options(const Config& config);

// classify_task over the config's categories, with its threshold and default category.
class Classifier {
public:
  Classifier(Engine& engine, const Config& config);
  std::future<ClassifyResult> classify_task(const std::string& text,
                                            Priority priority = Priority::normal) const;
  ClassifyResult classify_reference(const std::string& text) const;
  const LabelScorer& scorer() const { return scorer_; }

private:
  ClassifyResult decide(const LabelDistribution& d, double ms) const;
  LabelScorer scorer_;
  double threshold_;
  std::string default_category_;
};

struct RouteResult {
  ClassifyResult classification;
  Selection selection;
  double route_ms = 0;
};

// The library's front door: classify_task, select_model and route over one engine and config.
// Every call may be made from many threads at once.
class TaskRouter {
public:
  // `engine` runs config.internal_model (open_engine() in tinyroute/from-config.h builds it).
  TaskRouter(std::shared_ptr<Engine> engine, Config config);

  std::future<ClassifyResult> classify_task(std::string text, Priority priority = Priority::normal) const;
  std::future<Selection> select_model(std::string category, RequestFacts facts = {},
                                      Availability availability = {}) const;
  std::future<RouteResult> route(std::string text, RequestFacts facts = {}, Availability availability = {},
                                 Priority priority = Priority::normal) const;

  Engine& engine() const { return *engine_; }
  const Config& config() const { return config_; }
  const Classifier& classifier() const { return *classifier_; }

private:
  std::shared_ptr<Engine> engine_;
  Config config_;
  std::unique_ptr<Classifier> classifier_;
};

} // namespace tinyroute
