// Picking the large model that answers a classified request. Pure: the same config, category, facts
// and availability always give the same selection. The internal model is never selected.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tinyroute/config.h"

namespace tinyroute {

// What a request needs from the model that answers it.
struct RequestFacts {
  int estimated_tokens = 0; // prompt + expected answer; the model's context_window must hold it
  bool needs_tools = false;
  bool needs_vision = false;
  bool needs_reasoning = false;
};

// Models that cannot take requests right now (breaker open, backend down, model not installed).
// ({} initializers keep -Wmissing-field-initializers quiet for designated initializers.)
struct Availability {
  std::set<std::string> unavailable_models{};
  std::map<std::string, std::string> why{}; // model -> short reason, shown in rejections
};

struct Rejection {
  std::string model;
  std::string why; // e.g. "context 8192 < 12000 tokens"
};

struct Selection {
  std::string model;                  // the model to ask first
  std::vector<std::string> fallbacks; // to try in order when it fails
  std::string reason;                 // one human sentence: what was picked and what was skipped
  std::vector<Rejection> rejected;    // every candidate that was filtered out, in candidate order
};

// Candidates are the category's models ranked by priority (desc), cost (asc), config order, then the
// category's `fallbacks` in their listed order. Those lacking a needed capability, too small a
// context_window or unavailable are rejected. Throws Error(invalid_argument) for an unknown category,
// Error(context_overflow) when the request is larger than every candidate's context window, and
// Error(no_candidate), listing every rejection, when nothing else is left.
Selection select_model(const Config& config, const std::string& category, const RequestFacts& facts,
                       const Availability& availability = {});

// select_model with what the internal model inferred about the request (analyze's needs_tools) on top
// of the caller's facts. An inference is a preference, not a requirement: a model that has the
// inferred capability is chosen when one can take the request; when none can, the selection is
// select_model over `facts` alone (a guess never rejects every model). The reason says which it was.
Selection select_model_inferred(const Config& config, const std::string& category, const RequestFacts& facts,
                                const RequestFacts& inferred, const Availability& availability = {});

} // namespace tinyroute
