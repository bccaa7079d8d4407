// Agent messages: envelopes (agent-message.v1), made by the internal model (metadata.h: request metadata).
//
// Who fills what: enumerated fields (kind, priority, language, needs_tools, complexity, the recipient)
// come from label scoring (one LabelScorer per field, each with its own cached prefix); free-text fields
// (intent, summary, entities, topics) from ONE grammar-constrained generate call whose grammar is
// derived from the schema; identifiers, timestamps, trace and body are filled by code, never by the
// model. The original text is always kept verbatim in `body` (invalid UTF-8 bytes become U+FFFD).
#pragma once

#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tinyroute/agent-router.h"
#include "tinyroute/classify.h"
#include "tinyroute/config.h"
#include "tinyroute/engine.h"

namespace tinyroute {

// The enumerations of agent-message.v1 (message_kinds() is in config.h), in schema order.
const std::vector<std::string>& message_priorities(); // low, normal, high, urgent
const std::vector<std::string>& message_languages();  // en, ru, de, fr, es, zh, und

// The shipped schemas/agent-message.v1.json (compiled into the library), as text and parsed.
const std::string& agent_message_schema_text();
const nlohmann::json& agent_message_schema();

struct MessageInput {
  // Free text, or a JSON object (as text) from an employee or agent. From JSON, the known fields
  // (from, to, kind, priority, language, reply_to, deadline, correlation_id, hop_count) are taken
  // when valid; the text is its "body"/"text"/"message"/"content" string, else the remaining fields.
  std::string text;
  // Overrides: they win over the JSON and the model. Invalid ones throw Error(invalid_argument).
  std::optional<std::string> from = std::nullopt; // default "user"
  std::optional<std::string> to = std::nullopt;   // a configured agent; default: chosen by AgentRouter
  std::optional<std::string> reply_to = std::nullopt;
  std::optional<std::string> correlation_id = std::nullopt; // default: the new message's id
  std::optional<int> hop_count = std::nullopt;              // hops taken so far; default 0
  // Decided elsewhere (the bus: kind from the sender's verb, priority and language from the analyze
  // pass that routed the message): the formatter does not score them again.
  std::optional<std::string> kind = std::nullopt;     // message_kinds()
  std::optional<std::string> priority = std::nullopt; // message_priorities()
  std::optional<std::string> language = std::nullopt; // message_languages()
  // Whether a "to" field inside `text` (loose JSON) may pick the recipient. Off where the text comes
  // from someone who must not address agents directly (serve's HTTP endpoint): then only `to` does.
  bool recipient_from_text = true;
};

struct MessageEntities {
  std::vector<std::string> people, dates, systems, files;
};

struct AgentMessage {
  std::string id; // random UUIDv4
  std::string from;
  std::string to;
  std::string kind;
  std::string intent;
  std::string priority;
  std::string summary;
  MessageEntities entities;
  std::optional<std::string> deadline; // YYYY-MM-DD
  std::string language;
  std::optional<std::string> reply_to = std::nullopt;
  std::string correlation_id;
  int hop_count = 0;
  std::string created_at; // RFC 3339 UTC with milliseconds
  std::string body;
};

// The envelope as agent-message.v1 JSON.
nlohmann::json agent_message_json(const AgentMessage& message);

struct FormattedMessage {
  AgentMessage message;
  nlohmann::json json;             // agent_message_json(message), validated against the schema
  std::optional<AgentRoute> route; // how `to` was chosen, when routing chose it
  std::string to_source;           // override | input (a JSON field) | routing
  bool generation_cut = false;     // the token budget ended the free-text fields early
  double latency_ms = 0;           // wall time of the whole call
};

struct MessageOptions {
  int max_tokens = 96; // generation budget for the free-text fields (the grammar bounds their length)
};

// Routing rule for an envelope: the most probable agent that accepts `kind`, or the triage agent when
// that agent's probability is below the threshold (or routing was uncertain).
std::string choose_recipient(const AgentRoute& route, const Config& config, const std::string& kind);

class MessageFormatter {
public:
  // Builds every scorer and the generation prefix (each decoded once). Routing needs an agents
  // section; without one, every message must name `to`.
  MessageFormatter(Engine& engine, const Config& config, MessageOptions options = {});
  ~MessageFormatter();

  // Throws Error(invalid_argument) right away for a message over agent_routing.max_message_bytes, a
  // hop_count over agent_routing.max_hops ("hop limit exceeded") or an invalid override.
  // `cancel` ends the engine work (the scorers and the free-text generation) with Error(cancelled).
  std::future<FormattedMessage> format_agent_message(MessageInput input, Priority priority = Priority::normal,
                                                     CancelToken cancel = {}) const;

  const AgentRouter* router() const { return router_.get(); }
  const LabelScorer& scorer(const std::string& field) const; // kind | priority | language
  const std::string& grammar() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<AgentRouter> router_;
};

} // namespace tinyroute
