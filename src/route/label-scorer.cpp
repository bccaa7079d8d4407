#include <algorithm>
#include <cmath>

#include "core/sha256.h"
#include "route/await-score.h"
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
  return strategy == Strategy::centroid || strategy == Strategy::head || strategy == Strategy::fused;
}

bool reads_prompt(Strategy strategy) {
  return strategy == Strategy::score || strategy == Strategy::choice || strategy == Strategy::fused;
}

Strategy prompt_strategy(Strategy strategy, size_t n_labels) {
  if (strategy == Strategy::score || strategy == Strategy::choice) return strategy;
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
  if (labels_.size() < 2) throw Error(ErrorCode::invalid_argument, "a label set needs at least two labels");
  const Strategy strategy = options_.strategy;
  if (strategy == Strategy::head || strategy == Strategy::fused) {
    if (options_.head_kind.empty()) {
      throw Error(ErrorCode::invalid_argument,
                  "strategy '" + std::string(strategy_name(strategy)) + "': the label set has no head kind");
    }
    std::vector<std::string> names;
    for (const auto& l : labels_) names.push_back(l.name);
    head_ = load_head(head_dir(options_.head_dir), options_.head_kind, engine_.info().fingerprint, names,
                      engine_.params().hidden_layer);
  }
  if (reads_prompt(strategy)) make_prompt();
  if (strategy == Strategy::fused) {
    // The fusion's weight says how much this prompt's answers count: with another prompt it means nothing.
    const std::string why = !head_->fusion                                ? "has no fusion fitted"
                            : head_->fusion->prompt_hash != prompt_hash() ? "was fitted with another prompt"
                                                                          : "";
    if (!why.empty()) {
      throw Error(ErrorCode::invalid_argument,
                  "strategy 'fused': the " + options_.head_kind + " head " + why +
                      " (the labels' descriptions or examples changed since); run `tinyroute train` again");
    }
  }
  // Resident only where it is asked (not for a fusion that gives it no weight).
  if (asks_prompt()) engine_.add_prefix(prefix_id_, prefix_text_).get();
  if (strategy == Strategy::centroid) {
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
  }
}

void LabelScorer::make_prompt() {
  LabelScorerOptions as_prompt = options_;
  as_prompt.strategy = prompt_strategy(options_.strategy, labels_.size());
  prompt_ = label_prompt(engine_, labels_, as_prompt);
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
}

std::string LabelScorer::prompt_hash() const {
  std::string all = prefix_text_ + "\n";
  for (Token t : tail_) all += std::to_string(t) + ",";
  for (const auto& answer : prompt_.answers) {
    all += "\n";
    for (Token t : answer) all += std::to_string(t) + ",";
  }
  return sha256_hex(all);
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
  if (!reads_prompt(options_.strategy)) // decoded alone: no prompt around it, no answer cue
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

LabelDistribution LabelScorer::hidden_distribution(const HiddenState& e, const LabelDistribution* prompt,
                                                   bool truncated) const {
  LabelDistribution d;
  for (const auto& l : labels_) d.labels.push_back(l.name);
  if (options_.strategy == Strategy::fused) {
    // Without the prompt's answer (its weight is 0, so it was not asked) any distribution gives the same.
    const std::vector<double> uniform(labels_.size(), 1.0 / static_cast<double>(labels_.size()));
    d.probs = fused_probs(*head_, e.embedding, prompt ? prompt->probs : uniform);
  } else {
    d.probs = head_ ? head_probs(*head_, e.embedding) : centroid_probs(*centroids_, e.embedding);
  }
  d.best = static_cast<size_t>(std::max_element(d.probs.begin(), d.probs.end()) - d.probs.begin());
  d.confidence = d.probs[d.best];
  d.query_tokens = e.n_decoded;
  d.truncated = truncated;
  d.n_decoded = e.n_decoded;
  d.queue_ms = e.queue_ms;
  d.compute_ms = e.compute_ms;
  if (prompt) { // both requests ran side by side: the tokens add up, the wait is the longer one's
    d.query_tokens += prompt->query_tokens;
    d.n_decoded += prompt->n_decoded;
    d.queue_ms = std::max(d.queue_ms, prompt->queue_ms);
    d.compute_ms += prompt->compute_ms;
  }
  return d;
}

LabelScorer::Pending LabelScorer::submit(const std::string& text, Priority priority, CancelToken cancel,
                                         const Pending* share) const {
  Pending p;
  if (reads_hidden_state(options_.strategy)) {
    p.hidden_tokens = clip_request_tokens(engine_, text, options_.max_query_tokens, &p.truncated);
    if (share && share->hidden && share->hidden_tokens == p.hidden_tokens)
      p.hidden = share->hidden;
    else
      p.hidden = engine_.embed_tokens(p.hidden_tokens).share();
  }
  if (asks_prompt()) {
    bool truncated = false;
    p.request = request_for(text, &truncated);
    p.request.priority = priority;
    p.request.cancel = std::move(cancel);
    p.truncated = p.truncated || truncated;
    p.prompt = engine_.score(p.request);
  }
  return p;
}

LabelDistribution LabelScorer::finish(Pending& p, Deadline deadline) const {
  std::optional<LabelDistribution> prompt;
  if (p.prompt) {
    prompt = distribution(await_score(engine_, *p.prompt, p.request, prefix_id_, prefix_text_, deadline),
                          static_cast<int>(p.request.query.size()), p.truncated);
  }
  if (!p.hidden) return *prompt;
  wait_in_time(*p.hidden, deadline);
  return hidden_distribution(p.hidden->get(), prompt ? &*prompt : nullptr, p.truncated);
}

std::future<LabelDistribution> LabelScorer::score(const std::string& text, Priority priority,
                                                  CancelToken cancel) const {
  // Deferred: the engine's worker does the work; the small conversion runs in the caller's get().
  return std::async(std::launch::deferred,
                    [this, p = submit(text, priority, std::move(cancel))]() mutable { return finish(p); });
}

bool LabelScorer::asks_prompt() const {
  // A fusion that gives the prompt no weight does not need its answer: fused then costs what head costs.
  return reads_prompt(options_.strategy) &&
         (options_.strategy != Strategy::fused || head_->fusion->weight > 0);
}

LabelDistribution LabelScorer::score_reference(const std::string& text) const {
  if (!asks_prompt()) return score(text).get();
  bool truncated = false;
  const ScoreRequest r = request_for(text, &truncated);
  const LabelDistribution prompt =
      distribution(engine_.score_reference(r), static_cast<int>(r.query.size()), truncated);
  if (!reads_hidden_state(options_.strategy)) return prompt;
  // The hidden state has no prefix to share, so its twin is the one decode score() runs.
  const HiddenState e =
      engine_.embed_tokens(clip_request_tokens(engine_, text, options_.max_query_tokens, &truncated)).get();
  return hidden_distribution(e, &prompt, truncated);
}

Fusion fit_fusion(const LabelScorer& prompt, const Head& head, const std::vector<std::string>& texts,
                  const std::vector<std::vector<float>>& x, const std::vector<int>& y, int heldout_every,
                  double precision) {
  if (!reads_prompt(prompt.options().strategy) || reads_hidden_state(prompt.options().strategy))
    throw Error(ErrorCode::invalid_argument, "fit_fusion: the prompt scorer must use choice or score");
  if (texts.size() != x.size() || x.size() != y.size())
    throw Error(ErrorCode::invalid_argument, "fit_fusion: texts, hidden states and labels do not agree");
  const std::vector<size_t> heldout = heldout_indices(y, heldout_every);
  std::vector<std::future<LabelDistribution>> pending;
  pending.reserve(heldout.size());
  for (size_t i : heldout) pending.push_back(prompt.score(texts[i]));
  std::vector<std::vector<double>> head_part, prompt_part;
  std::vector<int> yh;
  for (size_t k = 0; k < heldout.size(); ++k) {
    head_part.push_back(head_logits(head, x[heldout[k]]));
    prompt_part.push_back(pending[k].get().probs);
    yh.push_back(y[heldout[k]]);
  }
  Fusion f = fit_fusion(head_part, prompt_part, yh, precision);
  f.prompt_hash = prompt.prompt_hash();
  return f;
}

} // namespace tinyroute
