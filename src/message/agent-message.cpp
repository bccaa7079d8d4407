// format_agent_message: one envelope from free text or loose JSON. All model work for a message is
// issued at once (field scorers, router, the generate call) so the engine batches it together.
#include <chrono>
#include <ctime>

#include "core/utf8.h"
#include "message/field-generator.h"
#include "message/schema-validate.h"
#include "message/uuid.h"
#include "route/field-scorers.h"
#include "tinyroute/agent-message.h"

namespace tinyroute {

namespace {

using nlohmann::json;

constexpr std::size_t kMaxName = 128; // from/to/reply_to/correlation_id, as in the schema

bool contains(const std::vector<std::string>& set, const std::string& v) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
  return out;
}

// A name-like override: non-empty, at most kMaxName characters.
std::string checked_name(const std::string& what, const std::string& value) {
  const std::string v = sanitize_utf8(value);
  if (blank(v) || utf8_length(v) > kMaxName) {
    throw Error(ErrorCode::invalid_argument, what + " must be 1 to " + std::to_string(kMaxName) +
                                                 " characters, got " + std::to_string(utf8_length(v)));
  }
  return v;
}

// The known fields of a loose-JSON message, each only when valid; `text` is what the model reads.
struct LooseInput {
  std::string text;
  std::optional<std::string> from, to, kind, priority, language, reply_to, deadline, correlation_id;
  std::optional<int> hop_count;
};

LooseInput read_loose(const std::string& body, const Config& config) {
  LooseInput in;
  in.text = body;
  const auto start = body.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || body[start] != '{') return in;
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return in;
  const auto take = [&](const char* key) -> std::optional<std::string> {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    std::string v = it->get<std::string>();
    j.erase(it);
    if (blank(v) || utf8_length(v) > kMaxName) return std::nullopt;
    return v;
  };
  in.from = take("from");
  in.to = take("to");
  if (in.to && (config.agents.empty() ? false : config.find_agent(*in.to) == nullptr)) in.to.reset();
  in.kind = take("kind");
  if (in.kind && !contains(message_kinds(), *in.kind)) in.kind.reset();
  in.priority = take("priority");
  if (in.priority && !contains(message_priorities(), *in.priority)) in.priority.reset();
  in.language = take("language");
  if (in.language && !contains(message_languages(), *in.language)) in.language.reset();
  in.reply_to = take("reply_to");
  in.correlation_id = take("correlation_id");
  in.deadline = take("deadline");
  if (in.deadline && is_date_time(*in.deadline)) in.deadline = in.deadline->substr(0, 10);
  if (in.deadline && !is_date(*in.deadline)) in.deadline.reset();
  if (const auto it = j.find("hop_count"); it != j.end()) {
    if (it->is_number_integer() && it->get<long long>() >= 0 && it->get<long long>() <= 1000000)
      in.hop_count = it->get<int>();
    j.erase(it);
  }
  for (const char* key : {"body", "text", "message", "content"}) {
    if (const auto it = j.find(key); it != j.end() && it->is_string()) {
      in.text = it->get<std::string>();
      return in;
    }
  }
  in.text = j.empty() ? "" : j.dump(-1, ' ', false, json::error_handler_t::replace);
  return in;
}

json envelope_field_schema() {
  const json& full = agent_message_schema();
  json s = {{"type", "object"}, {"properties", json::object()}};
  for (const char* key : {"intent", "summary", "deadline", "entities"})
    s["properties"][key] = full["properties"][key];
  return s;
}

std::vector<std::string> strings_at(const json& fields, const char* key, const char* sub) {
  const auto obj = fields.find(key);
  if (obj == fields.end() || !obj->contains(sub)) return {};
  return (*obj)[sub].get<std::vector<std::string>>();
}

} // namespace

const std::vector<std::string>& message_priorities() {
  static const std::vector<std::string> v = {"low", "normal", "high", "urgent"};
  return v;
}

const std::vector<std::string>& message_languages() {
  static const std::vector<std::string> v = {"en", "ru", "de", "fr", "es", "zh", "und"};
  return v;
}

const std::string& agent_message_schema_text() {
  static const std::string text =
#include "agent-message-schema.inc"
      ;
  return text;
}

const nlohmann::json& agent_message_schema() {
  static const json schema = json::parse(agent_message_schema_text());
  return schema;
}

json agent_message_json(const AgentMessage& m) {
  const auto opt = [](const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); };
  return json{{"schema", "agent-message.v1"},
              {"id", m.id},
              {"from", m.from},
              {"to", m.to},
              {"kind", m.kind},
              {"intent", m.intent},
              {"priority", m.priority},
              {"summary", m.summary},
              {"entities",
               {{"people", m.entities.people},
                {"dates", m.entities.dates},
                {"systems", m.entities.systems},
                {"files", m.entities.files}}},
              {"deadline", opt(m.deadline)},
              {"language", m.language},
              {"reply_to", opt(m.reply_to)},
              {"trace", {{"correlation_id", m.correlation_id}, {"hop_count", m.hop_count}}},
              {"created_at", m.created_at},
              {"body", m.body}};
}

std::string choose_recipient(const AgentRoute& route, const Config& config, const std::string& kind) {
  const AgentConfig* triage = config.triage_agent();
  const std::string fallback = triage ? triage->name : route.agent;
  if (route.uncertain) return fallback;
  const std::pair<std::string, double>* best = nullptr;
  for (const auto& entry : route.distribution) {
    const AgentConfig* a = config.find_agent(entry.first);
    if (a && contains(a->accepts, kind) && (!best || entry.second > best->second)) best = &entry;
  }
  if (!best || best->second < config.agent_routing.threshold) return fallback;
  return best->first;
}

struct MessageFormatter::Impl {
  Config config;
  MessageOptions options;
  LabelScorer kind;
  LabelScorer priority;
  LabelScorer language;
  FieldGenerator fields;

  Impl(Engine& engine, const Config& c, MessageOptions o)
      : config(c), options(o), kind(make_field_scorer(engine, c, MessageField::kind)),
        priority(make_field_scorer(engine, c, MessageField::priority)),
        language(make_field_scorer(engine, c, MessageField::language)),
        fields(engine, "format_agent_message",
               "You file messages that people and AI agents send each other. Read the message and write: "
               "intent, what the sender wants, as a short snake_case phrase in English (e.g. "
               "fix_login_bug); summary, one English sentence; deadline, the due date as YYYY-MM-DD, or "
               "null when the message states none; entities, the people, dates, systems and files the "
               "message names, copied as written.",
               envelope_field_schema(), {"intent", "summary", "deadline", "entities"},
               c.internal_model.max_query_tokens, o.max_tokens) {}
};

MessageFormatter::MessageFormatter(Engine& engine, const Config& config, MessageOptions options)
    : impl_(std::make_unique<Impl>(engine, config, options)) {
  if (!config.agents.empty()) router_ = std::make_unique<AgentRouter>(engine, config);
}

MessageFormatter::~MessageFormatter() = default;

const LabelScorer& MessageFormatter::scorer(const std::string& field) const {
  if (field == "kind") return impl_->kind;
  if (field == "priority") return impl_->priority;
  if (field == "language") return impl_->language;
  throw Error(ErrorCode::invalid_argument, "no scorer for field '" + field + "' (kind, priority, language)");
}

const std::string& MessageFormatter::grammar() const {
  return impl_->fields.grammar();
}

std::future<FormattedMessage> MessageFormatter::format_agent_message(MessageInput input, Priority prio,
                                                                     CancelToken cancel) const {
  const auto t0 = std::chrono::steady_clock::now();
  const Config& config = impl_->config;
  const auto& limits = config.agent_routing;
  if (input.text.size() > static_cast<std::size_t>(limits.max_message_bytes)) {
    throw Error(ErrorCode::invalid_argument,
                "message is " + std::to_string(input.text.size()) + " bytes; the limit is " +
                    std::to_string(limits.max_message_bytes) +
                    " (agent_routing.max_message_bytes): send a shorter message or a file reference");
  }
  AgentMessage m;
  m.body = sanitize_utf8(input.text);
  LooseInput loose = read_loose(m.body, config);
  const auto take_given = [](const char* what, const std::optional<std::string>& value,
                             const std::vector<std::string>& allowed, std::optional<std::string>& into) {
    if (!value) return;
    if (!contains(allowed, *value)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw Error(ErrorCode::invalid_argument,
                  std::string(what) + ": \"" + *value + "\" is not one of " + list);
    }
    into = *value;
  };
  take_given("kind", input.kind, message_kinds(), loose.kind);
  take_given("priority", input.priority, message_priorities(), loose.priority);
  take_given("language", input.language, message_languages(), loose.language);

  if (input.hop_count && *input.hop_count < 0)
    throw Error(ErrorCode::invalid_argument, "hop_count must not be negative");
  m.hop_count = input.hop_count.value_or(loose.hop_count.value_or(0));
  if (m.hop_count > limits.max_hops) {
    throw Error(ErrorCode::invalid_argument, "hop limit exceeded: hop_count " + std::to_string(m.hop_count) +
                                                 " is over agent_routing.max_hops " +
                                                 std::to_string(limits.max_hops) +
                                                 " (the message is probably looping between agents)");
  }
  m.from = input.from ? checked_name("from", *input.from) : loose.from.value_or("user");
  if (input.reply_to) {
    m.reply_to = checked_name("reply_to", *input.reply_to);
  } else {
    m.reply_to = loose.reply_to;
  }
  std::optional<std::string> correlation =
      input.correlation_id ? std::optional(checked_name("correlation_id", *input.correlation_id))
                           : loose.correlation_id;
  std::string to_source;
  if (input.to) {
    m.to = checked_name("to", *input.to);
    if (!config.agents.empty() && !config.find_agent(m.to))
      throw Error(ErrorCode::invalid_argument, "to: \"" + m.to + "\" is not a configured agent");
    to_source = "override";
  } else if (loose.to && input.recipient_from_text) {
    m.to = *loose.to;
    to_source = "input";
  } else if (!router_) {
    throw Error(ErrorCode::invalid_argument,
                "the config has no agents section, so the message must name its recipient (to)");
  } else {
    to_source = "routing";
  }

  // Issue every piece of model work before waiting on any, so the engine decodes them together.
  const std::string& text = loose.text;
  const bool empty = blank(text);
  std::optional<std::future<LabelDistribution>> kind_f, priority_f, language_f;
  if (!loose.kind) kind_f = impl_->kind.score(text, prio, cancel);
  if (!loose.priority) priority_f = impl_->priority.score(text, prio, cancel);
  if (!loose.language && !empty) language_f = impl_->language.score(text, prio, cancel);
  std::optional<std::future<AgentRoute>> route_f;
  if (to_source == "routing") route_f = router_->route_agent(text, prio, cancel);
  auto fields_f = impl_->fields.generate(text, prio, std::move(cancel));

  return std::async(std::launch::deferred, [this, m = std::move(m), loose, correlation, to_source, t0,
                                            kind_f = std::move(kind_f), priority_f = std::move(priority_f),
                                            language_f = std::move(language_f), route_f = std::move(route_f),
                                            fields_f = std::move(fields_f)]() mutable {
    const Config& cfg = impl_->config;
    const auto pick = [](std::optional<std::future<LabelDistribution>>& f,
                         const std::optional<std::string>& given, const std::string& otherwise) {
      if (given) return *given;
      if (!f) return otherwise;
      const LabelDistribution d = f->get();
      return d.labels[d.best];
    };
    FormattedMessage out;
    m.kind = pick(kind_f, loose.kind, "task");
    m.priority = pick(priority_f, loose.priority, "normal");
    m.language = pick(language_f, loose.language, "und");
    if (route_f) {
      out.route = route_f->get();
      m.to = choose_recipient(*out.route, cfg, m.kind);
    }
    const GeneratedFields g = fields_f.get();
    out.generation_cut = g.stopped_by_limit;
    const std::string intent = g.fields.value("intent", "");
    m.intent = blank(intent) ? "unspecified" : intent;
    m.summary = g.fields.value("summary", "");
    m.deadline = loose.deadline;
    if (!m.deadline && g.fields.contains("deadline") && g.fields["deadline"].is_string())
      m.deadline = g.fields["deadline"].get<std::string>();
    m.entities = {strings_at(g.fields, "entities", "people"), strings_at(g.fields, "entities", "dates"),
                  strings_at(g.fields, "entities", "systems"), strings_at(g.fields, "entities", "files")};
    m.id = random_uuid();
    m.correlation_id = correlation.value_or(m.id);
    m.created_at = utc_now();
    out.json = agent_message_json(m);
    // The last line of defence: an envelope that breaks the schema is a bug here, never sent on.
    if (const auto problems = validate_json(agent_message_schema(), out.json); !problems.empty())
      throw Error(ErrorCode::internal, "envelope does not match agent-message.v1: " + problems.front());
    out.message = std::move(m);
    out.to_source = to_source;
    out.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return out;
  });
}

} // namespace tinyroute
