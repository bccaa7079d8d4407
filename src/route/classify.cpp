#include <chrono>

#include "tinyroute/classify.h"
#include "tinyroute/internal-model-guard.h"

namespace tinyroute {

std::vector<Label> category_labels(const Config& config) {
  std::vector<Label> labels;
  for (const auto& c : config.categories) labels.push_back({c.name, c.description, c.examples});
  return labels;
}

LabelScorerOptions classify_options(const Config& config) {
  LabelScorerOptions o;
  o.prefix_name = "classify_task";
  o.task =
      "You sort requests that people and agents send to a team of AI models. Read the request and decide "
      "which category of work it is. Requests may be in any language.";
  o.item_noun = "Request";
  o.answer_noun = "Category";
  o.strategy = config.internal_model.strategy;
  o.head_dir = config.internal_model.state_dir;
  o.head_kind = "categories";
  o.max_query_tokens = config.internal_model.max_query_tokens;
  return o;
}

Classifier::Classifier(Engine& engine, const Config& config)
    : scorer_(engine, category_labels(config), classify_options(config)),
      threshold_(config.internal_model.threshold), default_category_(config.default_category) {}

ClassifyResult classify_decision(const LabelDistribution& d, double threshold,
                                 const std::string& default_category, Strategy strategy, double ms) {
  ClassifyResult r;
  r.top_label = d.labels[d.best];
  r.confidence = d.confidence;
  for (size_t i = 0; i < d.labels.size(); ++i) r.distribution.emplace_back(d.labels[i], d.probs[i]);
  r.uncertain = d.confidence < threshold;
  r.category = r.uncertain && !default_category.empty() ? default_category : r.top_label;
  r.source = r.uncertain ? "default" : "model";
  r.strategy = strategy;
  r.query_tokens = d.query_tokens;
  r.truncated = d.truncated;
  r.tokens_decoded = d.n_decoded;
  r.latency_ms = ms;
  return r;
}

ClassifyResult Classifier::decide(const LabelDistribution& d, double ms) const {
  return classify_decision(d, threshold_, default_category_, scorer_.options().strategy, ms);
}

std::future<ClassifyResult> Classifier::classify_task(const std::string& text, Priority priority) const {
  auto fut = scorer_.score(text, priority);
  return std::async(std::launch::deferred, [this, f = std::move(fut)]() mutable {
    const LabelDistribution d = f.get();
    return decide(d, d.queue_ms + d.compute_ms); // engine time: queueing plus decoding
  });
}

ClassifyResult Classifier::classify_reference(const std::string& text) const {
  const LabelDistribution d = scorer_.score_reference(text);
  return decide(d, d.compute_ms);
}

TaskRouter::TaskRouter(std::shared_ptr<Engine> engine, Config config)
    : engine_(std::move(engine)), config_(std::move(config)) {
  check_internal_model_guard(config_);
  classifier_ = std::make_unique<Classifier>(*engine_, config_);
}

std::future<ClassifyResult> TaskRouter::classify_task(std::string text, Priority priority) const {
  return classifier_->classify_task(text, priority);
}

std::future<Selection> TaskRouter::select_model(std::string category, RequestFacts facts,
                                                Availability availability) const {
  std::promise<Selection> p;
  try {
    p.set_value(tinyroute::select_model(config_, category, facts, availability));
  } catch (...) {
    p.set_exception(std::current_exception());
  }
  return p.get_future();
}

std::future<RouteResult> TaskRouter::route(std::string text, RequestFacts facts, Availability availability,
                                           Priority priority) const {
  auto fut = classifier_->classify_task(text, priority);
  return std::async(std::launch::deferred, [this, f = std::move(fut), facts, availability]() mutable {
    RouteResult r;
    r.classification = f.get();
    const auto t0 = std::chrono::steady_clock::now();
    r.selection = tinyroute::select_model(config_, r.classification.category, facts, availability);
    r.route_ms = r.classification.latency_ms +
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return r;
  });
}

} // namespace tinyroute
