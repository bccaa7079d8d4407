// analyze(request): every internal decision about one request in one pass of the internal model.
//
// One cached prefix holds the instructions of all decisions (task category, the agent when the config
// has agents, and the enumerated metadata fields language, urgency, needs_tools, complexity). The
// request is decoded once after it; the engine then forks the sequence per decision (ScoreBranch),
// appends that decision's short cue ("Category:", "Agent:", ...) and reads every decision from its
// cue in one batched decode. Thresholds and defaults are the ones classify_task and route_agent apply.
//
// When the category's strategy (internal_model.strategy) or the agents' (agent_routing.strategy) reads
// hidden state (centroid | head), that decision leaves the shared prompt and is read as classify_task
// and route_agent read it: from the request text decoded alone, in its own engine request sent beside
// the prompt's. Every entry point (analyze, route, the bus) then answers as classify_task does. A
// conversation message's hidden-state decisions read that message alone: the heads are trained on
// single requests.
//
// A message of a conversation (AnalyzeOptions::conversation) is decided with the conversation's recent
// turns before it: the query is those turns, oldest first, joined by a separator, the message last. The
// engine keeps the conversation's sequence after each message, so the next one decodes only its own
// tokens; the ConversationStore keeps the text, so an evicted sequence is rebuilt transparently. Such
// messages are never answered from the decision cache (the same words mean other things in context).
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tinyroute/agent-router.h"
#include "tinyroute/classify.h"
#include "tinyroute/config.h"
#include "tinyroute/conversations.h"
#include "tinyroute/engine.h"
#include "tinyroute/rules.h"
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
  std::map<std::string, FieldDecision> fields; // language, urgency, needs_tools, complexity (and kind)
  Selection selection;                         // select_model over the category
  AnalyzeTiming timing;
  int query_tokens = 0;   // tokens after the shared prefix (the request and the common answer head)
  int tokens_decoded = 0; // what this call decoded (0 when answered from the cache)
  bool truncated = false; // the text was cut (head and tail kept)
  std::string source; // model | cache (classification.source / agent->source say rule when a rule decided)
  // A conversation message: its id, the turns the decisions saw (this one included), and how the
  // engine got the earlier ones: new (none), continued (kept sequence), rebuilt (decoded again),
  // replayed (a redelivery of a message the conversation already holds: not appended again).
  std::string conversation;
  int conversation_turns = 0;
  std::string conversation_source;
  int reused_tokens = 0; // query tokens the kept sequence already held
};

struct AnalyzeOptions {
  AnalyzeOptions() = default;
  explicit AnalyzeOptions(std::string conversation_id) : conversation(std::move(conversation_id)) {}
  std::string conversation; // non-empty: the text is the next message of this conversation
  // The message's id within the conversation (the bus's msg_id), or empty. A message delivered again
  // with the same id (a redelivery after a crash, a retry) is not appended to the conversation twice.
  std::string turn_id;
  RequestFacts facts;
  Availability availability;
  Priority priority = Priority::normal;
  CancelToken cancel; // cancel() ends the engine work with Error(cancelled) (the bus on shutdown)
  // Set: the result's get() waits for the engine until then at most, else throws
  // Error(deadline_exceeded); the engine still finishes the work (a conversation keeps the turn). What
  // route() does with internal_model.deadline_ms, and the bus with the same setting.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // Ask the message kind, where the analyzer was built with it (AnalyzerOptions::message_kind). The
  // bus asks it only for free text: a sender's verb already names the kind.
  bool kind = true;
};

// What an Analyzer decides beyond the request's routing and metadata.
struct AnalyzerOptions {
  // Also the envelope's kind (task, question, report, handoff, notification), as the last decision of
  // the shared prefix: the bus fills an envelope's enumerated fields from its one analyze pass.
  bool message_kind = false;
};

// Which category (and model) answers a request, and where that decision came from.
struct RoutedRequest {
  ClassifyResult classification; // source: rule | model | cache | default
  Selection selection;           // select_model over the category
  std::optional<RuleMatch> rule; // the rule that decided (source rule)
  std::string source;            // rule | model | cache | default
  bool deadline_missed = false;  // the model did not answer within internal_model.deadline_ms
  int tokens_decoded = 0;
  double total_ms = 0;
};

// The decisions analyze makes, in prompt order (kind only with AnalyzerOptions::message_kind).
enum class Decision { category, agent, language, urgency, needs_tools, complexity, kind };

class Analyzer {
public:
  // Builds the shared prefix and makes it resident (decoded once). `cache` (optional) answers repeated
  // requests without the model; it may be shared by several analyzers (keys include the config hash).
  // `conversations` (optional) keeps conversation text; without one the analyzer makes its own from the
  // config (internal_model.conversation_tokens).
  Analyzer(Engine& engine, const Config& config, std::shared_ptr<DecisionCache> cache = nullptr,
           std::shared_ptr<ConversationStore> conversations = nullptr, AnalyzerOptions options = {});
  ~Analyzer();
  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;

  // Throws Error(invalid_argument) for empty text or text over agent_routing.max_message_bytes.
  // The config's rules override the category (and the agent) they match: classification.source (and
  // agent->source) is then `rule`; the model still answers the other decisions.
  std::future<AnalyzeResult> analyze(std::string text, RequestFacts facts = {},
                                     Availability availability = {},
                                     Priority priority = Priority::normal) const;
  // The same, for a message of a conversation when options.conversation is set (the bus passes the
  // envelope's correlation id). Messages of one conversation are decided in the order of these calls.
  std::future<AnalyzeResult> analyze(std::string text, AnalyzeOptions options) const;
  // The routing decision for `text`: the config's rules first (source rule: the model is not asked),
  // then the model (source model, or cache for a repeated request), waited for at most
  // internal_model.deadline_ms when that is set; when the model cannot answer in time (a long queue,
  // a slow machine) default_category answers (source default). The engine still finishes the work it
  // was given; only the wait is cut. A conversation message (options.conversation) is routed with its
  // conversation's earlier turns. Blocking; call it from a worker thread.
  RoutedRequest route(std::string text, AnalyzeOptions options) const;
  RoutedRequest route(std::string text, RequestFacts facts = {}, Availability availability = {},
                      Priority priority = Priority::normal) const;
  const RuleSet& rules() const;

  // The brute-force twin: each decision's prompt (prefix + request + cue) decoded from scratch in a
  // fresh context. Tests only; never cached.
  AnalyzeResult analyze_reference(const std::string& text, RequestFacts facts = {},
                                  Availability availability = {}) const;
  // The twin of a conversation's last message: `turns` are every message sent so far (oldest first,
  // the one decided last), windowed as the store does and decoded from scratch. Tests only.
  AnalyzeResult analyze_conversation_reference(const std::vector<std::string>& turns) const;

  const std::vector<Decision>& decisions() const;
  const std::string& prefix_text() const;
  // The engine request analyze sends for `text` (prefix, request tokens, one branch per decision).
  ScoreRequest request_for(const std::string& text, bool* truncated = nullptr) const;
  // A conversation's window as one engine request (the turns joined, the head after the last).
  ScoreRequest request_for(const std::vector<ConversationTurn>& window, bool* truncated = nullptr) const;
  const std::shared_ptr<ConversationStore>& conversations() const;

private:
  struct Impl; // the prompt parts, the hidden-state scorers, the stores and the conversation lock
  std::unique_ptr<Impl> impl_;
};

std::string_view decision_name(Decision decision); // category | agent | language | ...

} // namespace tinyroute
