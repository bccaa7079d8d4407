// analyze: one shared prefix, the request decoded once, one forked branch per decision.
#include "tinyroute/analyze.h"

#include <algorithm>
#include <chrono>
#include <mutex>

#include "route/await-score.h"
#include "route/field-scorers.h"
#include "tinyroute/decision-cache.h"

namespace tinyroute {

namespace {

// What the request's own decisions say it needs (select_model_inferred prefers a model that has it).
RequestFacts inferred_facts(const std::map<std::string, FieldDecision>& fields) {
  RequestFacts f;
  const auto it = fields.find("needs_tools");
  f.needs_tools = it != fields.end() && it->second.value == "tools";
  return f;
}

using Clock = std::chrono::steady_clock;

// Marks where the request goes when the chat template is rendered (as LabelScorer does).
constexpr const char* kSlot = "\x01TINYROUTE_SLOT\x01";

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

FieldDecision field_decision(const LabelDistribution& d) {
  FieldDecision f;
  f.value = d.labels[d.best];
  f.confidence = d.confidence;
  for (size_t i = 0; i < d.labels.size(); ++i) f.distribution.emplace_back(d.labels[i], d.probs[i]);
  return f;
}

} // namespace

std::string_view decision_name(Decision decision) {
  switch (decision) {
  case Decision::category:
    return "category";
  case Decision::agent:
    return "agent";
  case Decision::language:
    return "language";
  case Decision::urgency:
    return "urgency";
  case Decision::needs_tools:
    return "needs_tools";
  case Decision::complexity:
    return "complexity";
  case Decision::kind:
    return "kind";
  }
  return "?";
}

struct Analyzer::Impl {
  Impl(Engine& engine, const Config& config, std::shared_ptr<DecisionCache> cache = nullptr,
       std::shared_ptr<ConversationStore> conversations = nullptr, AnalyzerOptions options = {});

  std::future<AnalyzeResult> analyze(std::string text, RequestFacts facts = {},
                                     Availability availability = {},
                                     Priority priority = Priority::normal) const;
  std::future<AnalyzeResult> analyze(std::string text, AnalyzeOptions options) const;
  RoutedRequest route(std::string text, AnalyzeOptions options) const;
  RoutedRequest route(std::string text, RequestFacts facts = {}, Availability availability = {},
                      Priority priority = Priority::normal) const;

  AnalyzeResult analyze_reference(const std::string& text, RequestFacts facts = {},
                                  Availability availability = {}) const;
  AnalyzeResult analyze_conversation_reference(const std::vector<std::string>& turns) const;

  ScoreRequest request_for(const std::string& text, bool* truncated = nullptr) const;
  ScoreRequest request_for(const std::vector<ConversationTurn>& window, bool* truncated = nullptr) const;

  struct Part {
    Decision decision;
    std::vector<Label> labels;
    std::vector<std::vector<Token>> answers;
    std::vector<Token> cue;
  };
  // The decisions read from the request's hidden state (strategy centroid | head | fused) rather than
  // the shared prompt: their own engine requests (fused: its own prompt too, the one its fusion was
  // fitted with), sent beside the shared prompt's.
  struct Hidden {
    std::optional<LabelScorer::Pending> category;
    std::optional<LabelScorer::Pending> agent;
  };
  struct HiddenResult {
    std::optional<LabelDistribution> category;
    std::optional<LabelDistribution> agent;
  };
  Hidden score_hidden(const std::string& text, Priority priority, const CancelToken& cancel) const;
  // Waits for the engine (until `deadline` when set: Error(deadline_exceeded) after it).
  HiddenResult hidden_result(Hidden& hidden, std::optional<Clock::time_point> deadline) const;
  HiddenResult reference_hidden(const std::string& text) const;
  AnalyzeResult decide(const ScoreResult& r, const HiddenResult& hidden, int query_tokens, bool truncated,
                       const RequestFacts& facts, const Availability& availability,
                       double started_ms_ago) const;
  void check_text(const std::string& text) const;
  // Drops the kind's branch from `r` unless `ask` (it is the last one); the cache key's kind of request.
  void ask_kind(ScoreRequest& r, bool ask) const;
  std::string cache_kind(bool ask) const;
  std::optional<AnalyzeResult> from_cache(const std::string& key, const RequestFacts& facts,
                                          const Availability& availability, double started_ms_ago) const;
  void apply_rules(const std::string& text, AnalyzeResult& r, const RequestFacts& facts,
                   const Availability& availability) const;
  ConversationTurn turn_for(std::string text) const;
  // Waits for the engine's answer (re-adding an evicted prefix once), decides, caches under
  // `cache_key` (when set) and applies the rules matched on `text`.
  std::future<AnalyzeResult> finish(std::future<ScoreResult> fut, Hidden hidden, ScoreRequest req,
                                    int n_query, bool truncated, RequestFacts facts,
                                    Availability availability, std::string cache_key, std::string text,
                                    std::chrono::steady_clock::time_point t0,
                                    std::optional<std::chrono::steady_clock::time_point> deadline,
                                    std::function<void(AnalyzeResult&)> annotate) const;

  Engine& engine_;
  Config config_;
  std::shared_ptr<DecisionCache> cache_;
  RuleSet rules_;
  std::vector<Decision> decisions_;
  std::vector<Part> parts_;
  bool has_kind_ = false;                      // the last part is Decision::kind
  std::optional<LabelScorer> hidden_category_; // set when internal_model.strategy reads hidden state
  std::optional<LabelScorer> hidden_agent_;    // set when the agents' strategy reads hidden state
  std::string prefix_text_;
  std::string prefix_id_;
  std::vector<Token> head_; // after the request, shared by every decision (end of turn, answer start)
  std::vector<Token> turn_separator_; // between a conversation's turns
  std::shared_ptr<ConversationStore> conversations_;
  mutable std::mutex conversation_order_; // a message's window and its engine request go in together
};

Analyzer::Impl::Impl(Engine& engine, const Config& config, std::shared_ptr<DecisionCache> cache,
                     std::shared_ptr<ConversationStore> conversations, AnalyzerOptions analyzer_options)
    : engine_(engine), config_(config), cache_(std::move(cache)), rules_(config_.rules),
      conversations_(std::move(conversations)) {
  if (!conversations_) {
    conversations_ = std::make_shared<ConversationStore>(ConversationOptions{
        ConversationOptions{}.max_conversations, config_.internal_model.conversation_tokens});
  }
  struct Spec {
    Decision decision;
    std::vector<Label> labels;
    LabelScorerOptions options;
  };
  std::vector<Spec> specs;
  const LabelScorerOptions category = classify_options(config_);
  if (reads_hidden_state(category.strategy))
    hidden_category_.emplace(engine_, category_labels(config_), category);
  else
    specs.push_back({Decision::category, category_labels(config_), category});
  if (!config_.agents.empty() && config_.triage_agent() != nullptr) {
    const LabelScorerOptions agent = agent_options(config_);
    if (reads_hidden_state(agent.strategy))
      hidden_agent_.emplace(engine_, agent_labels(config_), agent);
    else
      specs.push_back({Decision::agent, agent_labels(config_), agent});
  }
  const std::pair<Decision, MessageField> fields[] = {{Decision::language, MessageField::language},
                                                      {Decision::urgency, MessageField::priority},
                                                      {Decision::needs_tools, MessageField::needs_tools},
                                                      {Decision::complexity, MessageField::complexity}};
  for (const auto& [decision, field] : fields) {
    FieldLabels f = field_labels(config_, field);
    specs.push_back({decision, std::move(f.labels), std::move(f.options)});
  }
  if (analyzer_options.message_kind) {
    FieldLabels f = field_labels(config_, MessageField::kind);
    specs.push_back({Decision::kind, std::move(f.labels), std::move(f.options)});
    has_kind_ = true;
  }

  // One system turn with every decision's instructions; each decision is asked by its answer noun.
  std::string sys = "You make several separate decisions about one request that people and AI agents send "
                    "to a team of AI models. Each decision below has its own options and examples; when "
                    "asked for one, answer only that one.\n";
  for (size_t i = 0; i < specs.size(); ++i) {
    // The metadata fields have no examples or heads: they are always asked by prompt.
    specs[i].options.strategy = prompt_strategy(specs[i].options.strategy, specs[i].labels.size());
    const LabelPrompt p = label_prompt(engine_, specs[i].labels, specs[i].options);
    sys += "\n## Decision " + std::to_string(i + 1) + ": " + specs[i].options.answer_noun + "\n\n" +
           p.instructions + "\n";
    parts_.push_back({specs[i].decision, specs[i].labels, p.answers, {}});
    decisions_.push_back(specs[i].decision);
  }
  const std::string rendered =
      engine_.apply_chat_template({{"system", sys}, {"user", std::string("Request:") + kSlot}}, true);
  const size_t at = rendered.find(kSlot);
  if (at == std::string::npos) throw Error(ErrorCode::internal, "chat template dropped the request slot");
  prefix_text_ = rendered.substr(0, at);
  prefix_id_ = "analyze@" + std::to_string(std::hash<std::string>{}(prefix_text_));

  // Each decision's tail (end of turn + "<Noun>:") tokenized whole, so tokens join as they would in
  // one prompt; the head all tails share is decoded once with the request, the rest is each cue.
  const std::string after = rendered.substr(at + std::string(kSlot).size());
  std::vector<std::vector<Token>> tails;
  for (const auto& s : specs)
    tails.push_back(engine_.tokenize(after + s.options.answer_noun + ":", false, true));
  size_t common = tails[0].size();
  for (const auto& t : tails) {
    size_t n = 0;
    while (n < std::min(common, t.size()) && t[n] == tails[0][n]) ++n;
    common = n;
  }
  for (const auto& t : tails) common = std::min(common, t.size() - 1); // every cue keeps a token
  head_.assign(tails[0].begin(), tails[0].begin() + static_cast<std::ptrdiff_t>(common));
  for (size_t i = 0; i < parts_.size(); ++i)
    parts_[i].cue.assign(tails[i].begin() + static_cast<std::ptrdiff_t>(common), tails[i].end());
  turn_separator_ = engine_.tokenize("\n\nNext message:", false, false);
  engine_.add_prefix(prefix_id_, prefix_text_).get();
}

void Analyzer::Impl::check_text(const std::string& text) const {
  const int limit = config_.agent_routing.max_message_bytes;
  if (text.size() > static_cast<std::size_t>(limit)) {
    throw Error(ErrorCode::invalid_argument, "text is " + std::to_string(text.size()) +
                                                 " bytes; the limit is " + std::to_string(limit) +
                                                 " (agent_routing.max_message_bytes)");
  }
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    throw Error(ErrorCode::invalid_argument, "nothing to analyze: the text is empty");
}

void Analyzer::Impl::ask_kind(ScoreRequest& r, bool ask) const {
  if (has_kind_ && !ask) r.branches.pop_back();
}

std::string Analyzer::Impl::cache_kind(bool ask) const {
  return has_kind_ && ask ? "analyze+kind" : "analyze";
}

ScoreRequest Analyzer::Impl::request_for(const std::string& text, bool* truncated) const {
  ScoreRequest r;
  r.prefix = prefix_id_;
  r.query = clip_text_tokens(engine_, text, config_.internal_model.max_query_tokens, truncated);
  r.query.insert(r.query.end(), head_.begin(), head_.end());
  for (const auto& p : parts_) r.branches.push_back({p.cue, p.answers});
  return r;
}

ConversationTurn Analyzer::Impl::turn_for(std::string text) const {
  const int n = static_cast<int>(
      clip_text_tokens(engine_, text, config_.internal_model.max_query_tokens, nullptr).size());
  return {std::move(text), n + static_cast<int>(turn_separator_.size())};
}

ScoreRequest Analyzer::Impl::request_for(const std::vector<ConversationTurn>& window, bool* truncated) const {
  ScoreRequest r;
  r.prefix = prefix_id_;
  // Each turn tokenized on its own and joined as tokens: the earlier turns' tokens never change when
  // a turn is added, so the kept sequence stays a prefix of the next request.
  for (size_t i = 0; i < window.size(); ++i) {
    if (i > 0) r.query.insert(r.query.end(), turn_separator_.begin(), turn_separator_.end());
    bool cut = false;
    const auto body =
        clip_text_tokens(engine_, window[i].text, config_.internal_model.max_query_tokens, &cut);
    r.query.insert(r.query.end(), body.begin(), body.end());
    if (truncated != nullptr && i + 1 == window.size()) *truncated = cut;
  }
  r.query.insert(r.query.end(), head_.begin(), head_.end());
  for (const auto& p : parts_) r.branches.push_back({p.cue, p.answers});
  return r;
}

Analyzer::Impl::Hidden Analyzer::Impl::score_hidden(const std::string& text, Priority priority,
                                                    const CancelToken& cancel) const {
  Hidden h;
  if (hidden_category_) h.category = hidden_category_->submit(text, priority, cancel);
  // One decode of the request serves both hidden-state decisions.
  if (hidden_agent_)
    h.agent = hidden_agent_->submit(text, priority, cancel, h.category ? &*h.category : nullptr);
  return h;
}

Analyzer::Impl::HiddenResult Analyzer::Impl::hidden_result(Hidden& hidden,
                                                           std::optional<Clock::time_point> deadline) const {
  HiddenResult h;
  if (hidden.category) h.category = hidden_category_->finish(*hidden.category, deadline);
  if (hidden.agent) h.agent = hidden_agent_->finish(*hidden.agent, deadline);
  return h;
}

Analyzer::Impl::HiddenResult Analyzer::Impl::reference_hidden(const std::string& text) const {
  HiddenResult h;
  if (hidden_category_) h.category = hidden_category_->score_reference(text);
  if (hidden_agent_) h.agent = hidden_agent_->score_reference(text);
  return h;
}

AnalyzeResult Analyzer::Impl::decide(const ScoreResult& s, const HiddenResult& hidden, int query_tokens,
                                     bool truncated, const RequestFacts& facts,
                                     const Availability& availability, double elapsed_ms) const {
  AnalyzeResult r;
  const double engine_ms = s.queue_ms + s.compute_ms;
  if (hidden.category) {
    const LabelDistribution& d = *hidden.category;
    r.classification = classify_decision(d, config_.internal_model.threshold, config_.default_category,
                                         hidden_category_->options().strategy, d.queue_ms + d.compute_ms);
  }
  if (hidden.agent) {
    const LabelDistribution& d = *hidden.agent;
    r.agent = agent_decision(d, config_.agent_routing.threshold, config_.triage_agent()->name,
                             d.queue_ms + d.compute_ms);
  }
  // Every part's branch, but the kind's when it was not asked (the last part).
  for (size_t i = 0; i < std::min(parts_.size(), s.branches.size()); ++i) {
    LabelDistribution d = label_distribution(parts_[i].labels, s.branches.at(i));
    d.query_tokens = query_tokens;
    d.truncated = truncated;
    d.n_decoded = s.n_decoded;
    switch (parts_[i].decision) {
    case Decision::category:
      r.classification = classify_decision(
          d, config_.internal_model.threshold, config_.default_category,
          prompt_strategy(config_.internal_model.strategy, config_.categories.size()), engine_ms);
      break;
    case Decision::agent:
      r.agent = agent_decision(d, config_.agent_routing.threshold, config_.triage_agent()->name, engine_ms);
      break;
    default:
      r.fields[std::string(decision_name(parts_[i].decision))] = field_decision(d);
      break;
    }
  }
  const auto t0 = Clock::now();
  r.selection = select_model_inferred(config_, r.classification.category, facts, inferred_facts(r.fields),
                                      availability);
  r.timing.queue_ms = s.queue_ms;
  r.timing.request_ms = s.query_ms;
  r.timing.decisions_ms = s.compute_ms - s.query_ms;
  r.timing.select_ms = ms_since(t0);
  r.timing.total_ms = elapsed_ms + r.timing.select_ms;
  r.query_tokens = query_tokens;
  r.tokens_decoded = s.n_decoded;
  r.truncated = truncated;
  r.source = "model";
  return r;
}

std::optional<AnalyzeResult> Analyzer::Impl::from_cache(const std::string& key, const RequestFacts& facts,
                                                        const Availability& availability,
                                                        double started_ms_ago) const {
  if (!cache_) return std::nullopt;
  auto hit = cache_->find(key, config_.hash);
  if (!hit) return std::nullopt;
  AnalyzeResult r = *hit;
  const auto s0 = Clock::now();
  r.selection = select_model_inferred(config_, r.classification.category, facts, inferred_facts(r.fields),
                                      availability);
  r.timing = {0, 0, 0, ms_since(s0), started_ms_ago + ms_since(s0)};
  r.tokens_decoded = 0;
  r.source = "cache";
  return r;
}

void Analyzer::Impl::apply_rules(const std::string& text, AnalyzeResult& r, const RequestFacts& facts,
                                 const Availability& availability) const {
  if (rules_.empty()) return;
  if (auto m = rules_.match_category(text)) {
    r.classification.category = m->category;
    r.classification.uncertain = false;
    r.classification.source = "rule";
    r.selection = select_model_inferred(config_, m->category, facts, inferred_facts(r.fields), availability);
    r.selection.reason = describe(*m) + "; " + r.selection.reason;
  }
  if (r.agent) {
    if (auto m = rules_.match_agent(text)) {
      r.agent->agent = m->agent;
      r.agent->uncertain = false;
      r.agent->source = "rule";
    }
  }
}

std::future<AnalyzeResult> Analyzer::Impl::analyze(std::string text, RequestFacts facts,
                                                   Availability availability, Priority priority) const {
  AnalyzeOptions options;
  options.facts = std::move(facts);
  options.availability = std::move(availability);
  options.priority = priority;
  return analyze(std::move(text), std::move(options));
}

std::future<AnalyzeResult> Analyzer::Impl::analyze(std::string text, AnalyzeOptions options) const {
  const auto t0 = Clock::now();
  check_text(text);
  if (!options.conversation.empty()) {
    if (options.conversation.size() > 256)
      throw Error(ErrorCode::invalid_argument, "conversation id is longer than 256 bytes");
    if (options.turn_id.size() > 256)
      throw Error(ErrorCode::invalid_argument, "message id is longer than 256 bytes");
    bool truncated = false;
    ScoreRequest req;
    std::future<ScoreResult> fut;
    ConversationWindow window;
    {
      // The window and the engine request go in together, so the engine sees this conversation's
      // messages in the order their windows were made (it runs one at a time per conversation).
      std::lock_guard lock(conversation_order_);
      ConversationTurn turn = turn_for(text);
      turn.id = options.turn_id;
      window = conversations_->append(options.conversation, std::move(turn));
      req = request_for(window.turns, &truncated);
      ask_kind(req, options.kind);
      req.priority = options.priority;
      req.cancel = options.cancel;
      req.conversation = "conversation:" + options.conversation;
      fut = engine_.score(req);
    }
    const int n_query = static_cast<int>(req.query.size());
    Hidden hidden = score_hidden(text, options.priority, options.cancel);
    auto store = conversations_;
    return finish(
        std::move(fut), std::move(hidden), std::move(req), n_query, truncated, std::move(options.facts),
        std::move(options.availability), {}, std::move(text), t0, options.deadline,
        [store, had_history = window.had_history, moved = window.moved, replayed = window.replayed,
         turns = static_cast<int>(window.turns.size()), id = options.conversation](AnalyzeResult& r) {
          r.conversation = id;
          r.conversation_turns = turns;
          // The window moved: the remaining turns sit at new positions, decoded again.
          r.conversation_source = replayed                        ? "replayed"
                                  : !had_history                  ? "new"
                                  : r.reused_tokens > 0 && !moved ? "continued"
                                                                  : "rebuilt";
          if (!replayed) store->record(had_history, moved, r.reused_tokens);
        });
  }
  std::string key;
  if (cache_) {
    key = DecisionCache::key(text, config_.hash, cache_kind(options.kind));
    std::promise<AnalyzeResult> p;
    try {
      if (auto r = from_cache(key, options.facts, options.availability, 0)) {
        apply_rules(text, *r, options.facts, options.availability);
        r->timing.total_ms = ms_since(t0);
        p.set_value(std::move(*r));
        return p.get_future();
      }
    } catch (...) {
      p.set_exception(std::current_exception());
      return p.get_future();
    }
  }
  bool truncated = false;
  ScoreRequest req = request_for(text, &truncated);
  ask_kind(req, options.kind);
  req.priority = options.priority;
  req.cancel = options.cancel;
  const int n_query = static_cast<int>(req.query.size());
  auto fut = engine_.score(req);
  Hidden hidden = score_hidden(text, options.priority, options.cancel);
  return finish(std::move(fut), std::move(hidden), std::move(req), n_query, truncated,
                std::move(options.facts), std::move(options.availability), std::move(key), std::move(text),
                t0, options.deadline, nullptr);
}

std::future<AnalyzeResult> Analyzer::Impl::finish(std::future<ScoreResult> fut, Hidden hidden,
                                                  ScoreRequest req, int n_query, bool truncated,
                                                  RequestFacts facts, Availability availability,
                                                  std::string key, std::string text, Clock::time_point t0,
                                                  std::optional<Clock::time_point> deadline,
                                                  std::function<void(AnalyzeResult&)> annotate) const {
  return std::async(std::launch::deferred,
                    [this, t0, deadline, f = std::move(fut), hidden = std::move(hidden), req = std::move(req),
                     n_query, truncated, facts = std::move(facts), availability = std::move(availability),
                     key = std::move(key), text = std::move(text), annotate = std::move(annotate)]() mutable {
                      const ScoreResult s = await_score(engine_, f, req, prefix_id_, prefix_text_, deadline);
                      // Every decision or none: a hidden-state decision past the deadline makes the whole one
                      // late.
                      const HiddenResult h = hidden_result(hidden, deadline);
                      AnalyzeResult r = decide(s, h, n_query, truncated, facts, availability, ms_since(t0));
                      r.reused_tokens = s.n_reused;
                      if (annotate) annotate(r);
                      if (cache_ && !key.empty()) cache_->put(key, r, config_.hash);
                      apply_rules(text, r, facts, availability);
                      return r;
                    });
}

RoutedRequest Analyzer::Impl::route(std::string text, RequestFacts facts, Availability availability,
                                    Priority priority) const {
  AnalyzeOptions options;
  options.facts = std::move(facts);
  options.availability = std::move(availability);
  options.priority = priority;
  return route(std::move(text), std::move(options));
}

RoutedRequest Analyzer::Impl::route(std::string text, AnalyzeOptions options) const {
  const auto t0 = Clock::now();
  check_text(text);
  const RequestFacts& facts = options.facts;
  const Availability& availability = options.availability;
  RoutedRequest out;
  if (auto m = rules_.match_category(text)) {
    ClassifyResult& c = out.classification;
    c.category = c.top_label = m->category;
    c.confidence = 1;
    c.source = "rule";
    c.strategy = config_.internal_model.strategy;
    out.selection = select_model(config_, m->category, facts, availability);
    out.selection.reason = describe(*m) + "; " + out.selection.reason;
    out.rule = std::move(m);
    out.source = "rule";
    out.total_ms = c.latency_ms = ms_since(t0);
    return out;
  }
  const auto from = [&](AnalyzeResult r) {
    out.classification = std::move(r.classification);
    out.classification.query_tokens = r.query_tokens;
    out.classification.truncated = r.truncated;
    out.classification.tokens_decoded = r.tokens_decoded;
    out.selection = std::move(r.selection);
    out.source = r.source == "cache" ? "cache" : out.classification.source; // model | default (uncertain)
    out.tokens_decoded = r.tokens_decoded;
    out.total_ms = ms_since(t0);
    return out;
  };
  // The one decision pass (a conversation message with its earlier turns, a repeat from the cache),
  // waited for within internal_model.deadline_ms.
  const int deadline_ms = config_.internal_model.deadline_ms;
  if (deadline_ms > 0) options.deadline = t0 + std::chrono::milliseconds(deadline_ms);
  std::optional<AnalyzeResult> decided;
  try {
    decided = analyze(text, options).get();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::deadline_exceeded) throw;
  }
  if (decided) return from(std::move(*decided));
  // The model could not decide in time; no rule matched either (checked first): the default category.
  ClassifyResult& c = out.classification;
  c.category = c.top_label = config_.default_category;
  c.confidence = 0;
  c.uncertain = true;
  c.source = "default";
  c.strategy = config_.internal_model.strategy;
  out.selection = select_model(config_, c.category, facts, availability);
  out.selection.reason = "the internal model did not decide within " + std::to_string(deadline_ms) +
                         " ms (internal_model.deadline_ms) and no rule matched: default category; " +
                         out.selection.reason;
  out.source = "default";
  out.deadline_missed = true;
  out.total_ms = c.latency_ms = ms_since(t0);
  return out;
}

AnalyzeResult Analyzer::Impl::analyze_reference(const std::string& text, RequestFacts facts,
                                                Availability availability) const {
  const auto t0 = Clock::now();
  check_text(text);
  bool truncated = false;
  const ScoreRequest req = request_for(text, &truncated);
  const ScoreResult s = engine_.score_reference(req);
  return decide(s, reference_hidden(text), static_cast<int>(req.query.size()), truncated, facts, availability,
                ms_since(t0));
}

AnalyzeResult Analyzer::Impl::analyze_conversation_reference(const std::vector<std::string>& turns) const {
  const auto t0 = Clock::now();
  if (turns.empty()) throw Error(ErrorCode::invalid_argument, "a conversation needs at least one message");
  std::vector<ConversationTurn> window;
  for (const auto& text : turns) {
    check_text(text);
    push_turn(window, turn_for(text), conversations_->options().window_tokens);
  }
  bool truncated = false;
  const ScoreRequest req = request_for(window, &truncated);
  const ScoreResult s = engine_.score_reference(req);
  AnalyzeResult r = decide(s, reference_hidden(turns.back()), static_cast<int>(req.query.size()), truncated,
                           {}, {}, ms_since(t0));
  r.conversation_turns = static_cast<int>(window.size());
  return r;
}

Analyzer::Analyzer(Engine& engine, const Config& config, std::shared_ptr<DecisionCache> cache,
                   std::shared_ptr<ConversationStore> conversations, AnalyzerOptions options)
    : impl_(std::make_unique<Impl>(engine, config, std::move(cache), std::move(conversations), options)) {}
Analyzer::~Analyzer() = default;

std::future<AnalyzeResult> Analyzer::analyze(std::string text, RequestFacts facts, Availability availability,
                                             Priority priority) const {
  return impl_->analyze(std::move(text), std::move(facts), std::move(availability), priority);
}
std::future<AnalyzeResult> Analyzer::analyze(std::string text, AnalyzeOptions options) const {
  return impl_->analyze(std::move(text), std::move(options));
}
RoutedRequest Analyzer::route(std::string text, AnalyzeOptions options) const {
  return impl_->route(std::move(text), std::move(options));
}
RoutedRequest Analyzer::route(std::string text, RequestFacts facts, Availability availability,
                              Priority priority) const {
  return impl_->route(std::move(text), std::move(facts), std::move(availability), priority);
}
AnalyzeResult Analyzer::analyze_reference(const std::string& text, RequestFacts facts,
                                          Availability availability) const {
  return impl_->analyze_reference(text, std::move(facts), std::move(availability));
}
AnalyzeResult Analyzer::analyze_conversation_reference(const std::vector<std::string>& turns) const {
  return impl_->analyze_conversation_reference(turns);
}
ScoreRequest Analyzer::request_for(const std::string& text, bool* truncated) const {
  return impl_->request_for(text, truncated);
}
ScoreRequest Analyzer::request_for(const std::vector<ConversationTurn>& window, bool* truncated) const {
  return impl_->request_for(window, truncated);
}
const RuleSet& Analyzer::rules() const {
  return impl_->rules_;
}
const std::vector<Decision>& Analyzer::decisions() const {
  return impl_->decisions_;
}
const std::string& Analyzer::prefix_text() const {
  return impl_->prefix_text_;
}
const std::shared_ptr<ConversationStore>& Analyzer::conversations() const {
  return impl_->conversations_;
}

} // namespace tinyroute
