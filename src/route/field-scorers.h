// The enumerated message fields (kind, priority, language, needs_tools, complexity) as LabelScorers:
// one label set and one cached instruction prefix each. Envelopes and metadata share the priority and
// language scorers' prefixes (same name, same text), so each prefix is decoded once per engine.
#pragma once

#include <string>
#include <vector>

#include "tinyroute/classify.h"
#include "tinyroute/config.h"
#include "tinyroute/engine.h"

namespace tinyroute {

enum class MessageField { kind, priority, language, needs_tools, complexity };

// A field's labels and scoring options (what make_field_scorer builds its scorer from; analyze puts
// the same instructions into its shared prefix).
struct FieldLabels {
  std::vector<Label> labels;
  LabelScorerOptions options;
};
FieldLabels field_labels(const Config& config, MessageField field);

LabelScorer make_field_scorer(Engine& engine, const Config& config, MessageField field);

} // namespace tinyroute
