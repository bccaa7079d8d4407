#include "route/field-scorers.h"

#include "tinyroute/error.h"

namespace tinyroute {

namespace {

struct FieldSpec {
  const char* prefix;
  const char* task;
  const char* answer_noun;
  std::vector<Label> labels;
};

FieldSpec spec_for(MessageField field) {
  switch (field) {
  case MessageField::kind:
    return {"message_kind",
            "You file messages that people and AI agents send each other. Read the message and decide what "
            "kind of message it is. Messages may be in any language.",
            "Kind",
            {{"task", "asks the receiver to do something", {}},
             {"question", "asks for information or an answer", {}},
             {"report", "reports results, status or findings of work", {}},
             {"handoff", "passes ongoing work and its context on to another agent", {}},
             {"notification", "informs about an event; no reply is needed", {}}}};
  case MessageField::priority:
    return {"message_priority",
            "You triage messages that people and AI agents send each other. Read the message and decide how "
            "urgently it must be handled. Messages may be in any language.",
            "Priority",
            {{"low", "can wait; no time pressure", {}},
             {"normal", "ordinary work on the usual schedule", {}},
             {"high", "important; should be handled today", {}},
             {"urgent",
              "must be handled right now: an outage, a security incident, a deadline within hours",
              {}}}};
  case MessageField::language:
    return {"message_language",
            "You identify the language a message is written in.",
            "Language",
            {{"en", "English", {}},
             {"ru", "Russian", {}},
             {"de", "German", {}},
             {"fr", "French", {}},
             {"es", "Spanish", {}},
             {"zh", "Chinese", {}},
             {"und", "undetermined: no words, only code, numbers or symbols", {}}}};
  case MessageField::needs_tools:
    return {"message_tools",
            "You prepare requests for AI models. Read the request and decide whether answering it needs "
            "tools (running code, searching the web, reading files, calling APIs) or only knowledge and "
            "reasoning. Requests may be in any language.",
            "Needs",
            {{"knowledge", "can be answered from knowledge and reasoning alone", {}},
             {"tools", "needs tools: running code, searching the web, reading files or calling APIs", {}}}};
  case MessageField::complexity:
    return {"message_complexity",
            "You prepare requests for AI models. Read the request and decide how complex it is to answer. "
            "Requests may be in any language.",
            "Complexity",
            {{"simple", "a short, direct answer; one step", {}},
             {"complex", "several steps, careful reasoning, long or detailed output", {}}}};
  }
  throw Error(ErrorCode::internal, "unknown message field");
}

} // namespace

FieldLabels field_labels(const Config& config, MessageField field) {
  FieldSpec spec = spec_for(field);
  FieldLabels f{std::move(spec.labels), {}};
  f.options.prefix_name = spec.prefix;
  f.options.task = spec.task;
  f.options.item_noun = "Message";
  f.options.answer_noun = spec.answer_noun;
  // Fields have no examples and no trained head: always decided by prompt.
  f.options.strategy = prompt_strategy(config.internal_model.strategy, f.labels.size());
  f.options.max_query_tokens = config.internal_model.max_query_tokens;
  return f;
}

LabelScorer make_field_scorer(Engine& engine, const Config& config, MessageField field) {
  FieldLabels f = field_labels(config, field);
  return LabelScorer(engine, std::move(f.labels), std::move(f.options));
}

} // namespace tinyroute
