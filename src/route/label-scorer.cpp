#include <algorithm>
#include <cmath>

#include "tinyroute/classify.h"

namespace tinyroute {

namespace {

// Marks where the text goes when the chat template is rendered, so the prompt splits into the cached
// prefix (everything before) and the per-request tail (everything after).
constexpr const char* kSlot = "\x01TINYROUTE_SLOT\x01";

std::string code_of(size_t i) {
  return std::string(1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i]);
}
constexpr size_t kMaxCodes = 26;

std::vector<double> softmax(const std::vector<double>& x) {
  const double mx = *std::max_element(x.begin(), x.end());
  std::vector<double> p(x.size());
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) sum += p[i] = std::exp(x[i] - mx);
  for (double& v : p) v /= sum;
  return p;
}

} // namespace

bool reads_hidden_state(Strategy strategy) {
  return strategy == Strategy::centroid || strategy == Strategy::head;
}

Strategy prompt_strategy(Strategy strategy, size_t n_labels) {
  if (!reads_hidden_state(strategy)) return strategy;
  return n_labels > kMaxCodes ? Strategy::score : Strategy::choice;
}

LabelPrompt label_prompt(const Engine& engine, const std::vector<Label>& labels,
                         const LabelScorerOptions& options) {
  if (labels.size() < 2) throw Error(ErrorCode::invalid_argument, "a label set needs at least two labels");
  const bool choice = options.strategy == Strategy::choice;
  if (choice && labels.size() > kMaxCodes) {
    throw Error(ErrorCode::invalid_argument,
                "strategy 'choice' supports at most " + std::to_string(kMaxCodes) + " labels (" +
                    std::to_string(labels.size()) + " given); use strategy 'score'");
  }
  LabelPrompt p;
  // Each label's answer: a one-token letter code (choice) or the label's own name (score), as the tokens
  // that follow "<Noun>:" in the examples below ("Category: A"): the continuation the model would emit.
  for (size_t i = 0; i < labels.size(); ++i) {
    auto toks =
        engine.tokenize_after(options.answer_noun + ":", " " + (choice ? code_of(i) : labels[i].name));
    if (toks.empty())
      throw Error(ErrorCode::invalid_argument, "label '" + labels[i].name + "' tokenizes to nothing");
    if (choice && toks.size() != 1) {
      throw Error(ErrorCode::internal,
                  "code " + code_of(i) + " is not one token in this vocabulary; use strategy 'score'");
    }
    p.answers.push_back(std::move(toks));
  }
  std::string sys = options.task + "\n\n" + options.answer_noun + " options:\n";
  for (size_t i = 0; i < labels.size(); ++i) {
    sys += (choice ? code_of(i) + ". " : "- ") + labels[i].name;
    if (!labels[i].description.empty()) sys += ": " + labels[i].description;
    sys += "\n";
  }
  std::string examples;
  for (size_t i = 0; i < labels.size(); ++i) {
    for (const auto& ex : labels[i].examples) {
      examples += options.item_noun + ": " + ex + "\n" + options.answer_noun + ": " +
                  (choice ? code_of(i) : labels[i].name) + "\n\n";
    }
  }
  if (!examples.empty()) sys += "\nExamples:\n\n" + examples;
  sys += choice ? "Answer with the letter of the one " + options.answer_noun + " that fits best."
                : "Answer with the name of the one " + options.answer_noun + " that fits best.";
  p.instructions = std::move(sys);
  return p;
}

LabelDistribution label_distribution(const std::vector<Label>& labels,
                                     const std::vector<ContinuationScore>& answers) {
  // choice: the codes' log-probabilities renormalised among themselves; score: each label's mean
  // token log-probability (length-normalised, so long names are not penalised), then softmax.
  std::vector<double> lp;
  for (const auto& c : answers) lp.push_back(c.total / static_cast<double>(c.token_logprobs.size()));
  LabelDistribution d;
  for (const auto& l : labels) d.labels.push_back(l.name);
  d.probs = softmax(lp);
  d.best = static_cast<size_t>(std::max_element(d.probs.begin(), d.probs.end()) - d.probs.begin());
  d.confidence = d.probs[d.best];
  return d;
}

LabelScorer::LabelScorer(Engine& engine, std::vector<Label> labels, LabelScorerOptions options)
    : engine_(engine), labels_(std::move(labels)), options_(std::move(options)) {
  if (options_.prefix_name.empty())
    throw Error(ErrorCode::invalid_argument, "label set: prefix_name is empty");
  if (options_.max_query_tokens < 8)
    throw Error(ErrorCode::invalid_argument, "max_query_tokens must be >= 8");
  if (reads_hidden_state(options_.strategy)) {
    if (labels_.size() < 2) throw Error(ErrorCode::invalid_argument, "a label set needs at least two labels");
    std::vector<std::string> names;
    for (const auto& l : labels_) names.push_back(l.name);
    if (options_.strategy == Strategy::head) {
      if (options_.head_kind.empty())
        throw Error(ErrorCode::invalid_argument, "strategy 'head': the label set has no head kind");
      head_ = load_head(head_dir(options_.head_dir), options_.head_kind, engine_.info().fingerprint, names,
                        engine_.params().hidden_layer);
      return;
    }
    // All examples embedded in one submission; a label without examples stands for itself by name and
    // description, so a new label is still one config edit.
    std::vector<std::string> texts;
    std::vector<size_t> owner;
    for (size_t i = 0; i < labels_.size(); ++i) {
      const auto& l = labels_[i];
      if (l.examples.empty()) {
        texts.push_back(l.description.empty() ? l.name : l.name + ": " + l.description);
        owner.push_back(i);
      }
      for (const auto& ex : l.examples) texts.push_back(ex), owner.push_back(i);
    }
    const auto embedded = embed_texts(engine_, texts, options_.max_query_tokens);
    std::vector<std::vector<std::vector<float>>> per_label(labels_.size());
    for (size_t k = 0; k < embedded.size(); ++k) per_label[owner[k]].push_back(embedded[k]);
    centroids_ = make_centroids(per_label);
    return;
  }
  prompt_ = label_prompt(engine_, labels_, options_);
  const std::string rendered = engine_.apply_chat_template(
      {{"system", prompt_.instructions}, {"user", options_.item_noun + ":" + kSlot}}, true);
  const size_t at = rendered.find(kSlot);
  if (at == std::string::npos) throw Error(ErrorCode::internal, "chat template dropped the request slot");
  prefix_text_ = rendered.substr(0, at);
  // The engine prefix is named by its content: a reloaded config with new instructions gets a new
  // prefix, while requests still in flight keep scoring against the old one.
  prefix_id_ = options_.prefix_name + "@" + std::to_string(std::hash<std::string>{}(prefix_text_));
  const std::string tail_text = rendered.substr(at + std::string(kSlot).size()) + options_.answer_noun + ":";
  tail_ = engine_.tokenize(tail_text, false, true);
  engine_.add_prefix(prefix_id_, prefix_text_).get();
}

namespace {

// Over `max_tokens` the head (2/3) and the tail of `body` are kept around " [...]".
std::vector<Token> clip_tokens(const Engine& engine, std::vector<Token> body, int max_tokens,
                               bool* truncated) {
  const size_t budget = static_cast<size_t>(max_tokens);
  const bool cut = body.size() > budget;
  if (cut) {
    const std::vector<Token> ellipsis = engine.tokenize(" [...]", false, false);
    const size_t keep = budget - ellipsis.size();
    const size_t head = keep * 2 / 3, tail = keep - head;
    std::vector<Token> shortened(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(head));
    shortened.insert(shortened.end(), ellipsis.begin(), ellipsis.end());
    shortened.insert(shortened.end(), body.end() - static_cast<std::ptrdiff_t>(tail), body.end());
    body = std::move(shortened);
  }
  if (truncated) *truncated = cut;
  return body;
}

} // namespace

std::vector<Token> clip_text_tokens(const Engine& engine, const std::string& text, int max_tokens,
                                    bool* truncated) {
  // The text follows "<Noun>:" in the prompt, after one space whether or not the vocabulary implies it.
  return clip_tokens(engine, engine.tokenize_after(":", " " + text), max_tokens, truncated);
}

std::vector<Token> clip_request_tokens(const Engine& engine, const std::string& text, int max_tokens,
                                       bool* truncated) {
  // Decoded alone (after BOS): the text as written, with no cue before it to imply a space.
  return clip_tokens(engine, engine.tokenize(text, false, false), max_tokens, truncated);
}

std::vector<Token> LabelScorer::query_tokens(const std::string& text, bool* truncated) const {
  if (reads_hidden_state(options_.strategy)) // decoded alone: no prompt around it, no answer cue
    return clip_request_tokens(engine_, text, options_.max_query_tokens, truncated);
  std::vector<Token> body = clip_text_tokens(engine_, text, options_.max_query_tokens, truncated);
  body.insert(body.end(), tail_.begin(), tail_.end());
  return body;
}

ScoreRequest LabelScorer::request_for(const std::string& text, bool* truncated) const {
  ScoreRequest r;
  r.prefix = prefix_id_;
  r.query = query_tokens(text, truncated);
  r.continuations = prompt_.answers;
  return r;
}

LabelDistribution LabelScorer::distribution(const ScoreResult& result, int query_tokens,
                                            bool truncated) const {
  LabelDistribution d = label_distribution(labels_, result.continuations);
  d.query_tokens = query_tokens;
  d.truncated = truncated;
  d.n_decoded = result.n_decoded;
  d.queue_ms = result.queue_ms;
  d.compute_ms = result.compute_ms;
  return d;
}

LabelDistribution LabelScorer::hidden_distribution(const HiddenState& e, bool truncated) const {
  LabelDistribution d;
  for (const auto& l : labels_) d.labels.push_back(l.name);
  d.probs = head_ ? head_probs(*head_, e.embedding) : centroid_probs(*centroids_, e.embedding);
  d.best = static_cast<size_t>(std::max_element(d.probs.begin(), d.probs.end()) - d.probs.begin());
  d.confidence = d.probs[d.best];
  d.query_tokens = e.n_decoded;
  d.truncated = truncated;
  d.n_decoded = e.n_decoded;
  d.queue_ms = e.queue_ms;
  d.compute_ms = e.compute_ms;
  return d;
}

std::future<HiddenState> LabelScorer::embed(const std::string& text, bool* truncated) const {
  if (!reads_hidden_state(options_.strategy))
    throw Error(ErrorCode::internal, "embed() is for the hidden-state strategies");
  return engine_.embed_tokens(query_tokens(text, truncated));
}

std::future<LabelDistribution> LabelScorer::score(const std::string& text, Priority priority) const {
  if (reads_hidden_state(options_.strategy)) {
    bool truncated = false;
    auto fut = embed(text, &truncated);
    return std::async(std::launch::deferred, [this, f = std::move(fut), truncated]() mutable {
      return hidden_distribution(f.get(), truncated);
    });
  }
  bool truncated = false;
  ScoreRequest r = request_for(text, &truncated);
  r.priority = priority;
  const int n_query = static_cast<int>(r.query.size());
  auto fut = engine_.score(r);
  // Deferred: the engine's worker does the work; the small conversion runs in the caller's get().
  return std::async(std::launch::deferred,
                    [this, f = std::move(fut), r = std::move(r), n_query, truncated]() mutable {
                      try {
                        return distribution(f.get(), n_query, truncated);
                      } catch (const Error& e) {
                        if (e.code() != ErrorCode::unknown_prefix) throw;
                        // Evicted by other prefixes (the engine keeps a bounded number): make it resident
                        // again, once.
                        engine_.add_prefix(prefix_id_, prefix_text_).get();
                        return distribution(engine_.score(std::move(r)).get(), n_query, truncated);
                      }
                    });
}

LabelDistribution LabelScorer::score_reference(const std::string& text) const {
  if (reads_hidden_state(options_.strategy)) return score(text).get();
  bool truncated = false;
  const ScoreRequest r = request_for(text, &truncated);
  return distribution(engine_.score_reference(r), static_cast<int>(r.query.size()), truncated);
}

} // namespace tinyroute
