// extract_metadata: what a request is, for routing and accounting.
//
// Enumerated fields (language, urgency, needs_tools, complexity) are LabelScorers; language and
// urgency share the envelope's language and priority prefixes. Intent and topics come from one
// grammar-constrained generate call (the same FieldGenerator as envelopes): topics are free, bounded
// phrases (at most 4, 32 characters each) rather than a pick among config categories, because
// categories already have classify_task and topics are meant to say what the message is about
// (billing, kubernetes), which no fixed list configured for model selection covers.
#include <chrono>

#include "core/utf8.h"
#include "message/field-generator.h"
#include "route/field-scorers.h"
#include "tinyroute/agent-message.h"
#include "tinyroute/metadata.h"

namespace tinyroute {

namespace {

nlohmann::json metadata_field_schema() {
  nlohmann::json s = {{"type", "object"}, {"properties", nlohmann::json::object()}};
  s["properties"]["intent"] = agent_message_schema()["properties"]["intent"];
  s["properties"]["topics"] = {{"type", "array"},
                               {"maxItems", 4},
                               {"items", {{"type", "string"}, {"minLength", 1}, {"maxLength", 32}}}};
  return s;
}

std::string best(const LabelDistribution& d) {
  return d.labels[d.best];
}

} // namespace

struct MetadataExtractor::Impl {
  Engine& engine;
  Config config;
  LabelScorer language;
  LabelScorer urgency;
  LabelScorer tools;
  LabelScorer complexity;
  FieldGenerator fields;

  Impl(Engine& e, const Config& c, MessageOptions o)
      : engine(e), config(c), language(make_field_scorer(e, c, MessageField::language)),
        urgency(make_field_scorer(e, c, MessageField::priority)),
        tools(make_field_scorer(e, c, MessageField::needs_tools)),
        complexity(make_field_scorer(e, c, MessageField::complexity)),
        fields(e, "extract_metadata",
               "You prepare requests for AI models. Read the request and write: intent, what the sender "
               "wants, as a short snake_case phrase in English (e.g. summarize_report); topics, up to four "
               "short English phrases naming what the request is about.",
               metadata_field_schema(), {"intent", "topics"}, c.internal_model.max_query_tokens,
               o.max_tokens) {}
};

MetadataExtractor::MetadataExtractor(Engine& engine, const Config& config, MessageOptions options)
    : impl_(std::make_unique<Impl>(engine, config, options)) {}

MetadataExtractor::~MetadataExtractor() = default;

const std::string& MetadataExtractor::grammar() const {
  return impl_->fields.grammar();
}

std::future<MessageMetadata> MetadataExtractor::extract_metadata(std::string raw, Priority prio,
                                                                 CancelToken cancel) const {
  const auto t0 = std::chrono::steady_clock::now();
  const int limit = impl_->config.agent_routing.max_message_bytes;
  if (raw.size() > static_cast<std::size_t>(limit)) {
    throw Error(ErrorCode::invalid_argument, "text is " + std::to_string(raw.size()) +
                                                 " bytes; the limit is " + std::to_string(limit) +
                                                 " (agent_routing.max_message_bytes)");
  }
  const std::string text = sanitize_utf8(raw);
  const bool empty = text.find_first_not_of(" \t\r\n") == std::string::npos;
  std::optional<std::future<LabelDistribution>> language_f;
  if (!empty) language_f = impl_->language.score(text, prio, cancel);
  auto urgency_f = impl_->urgency.score(text, prio, cancel);
  auto tools_f = impl_->tools.score(text, prio, cancel);
  auto complexity_f = impl_->complexity.score(text, prio, cancel);
  auto fields_f = impl_->fields.generate(text, prio, cancel);
  const int n_tokens = static_cast<int>(impl_->engine.tokenize(text, false, false).size());
  return std::async(std::launch::deferred, [t0, n_tokens, language_f = std::move(language_f),
                                            urgency_f = std::move(urgency_f), tools_f = std::move(tools_f),
                                            complexity_f = std::move(complexity_f),
                                            fields_f = std::move(fields_f)]() mutable {
    MessageMetadata m;
    m.language = language_f ? best(language_f->get()) : "und";
    m.urgency = best(urgency_f.get());
    m.needs_tools = best(tools_f.get()) == "tools";
    m.complexity = best(complexity_f.get());
    const GeneratedFields g = fields_f.get();
    const std::string intent = g.fields.value("intent", "");
    m.intent = intent.find_first_not_of(" \t\r\n") == std::string::npos ? "unspecified" : intent;
    if (g.fields.contains("topics")) m.topics = g.fields["topics"].get<std::vector<std::string>>();
    m.estimated_tokens = n_tokens;
    m.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return m;
  });
}

} // namespace tinyroute
