#include "tinyroute/select.h"

#include <algorithm>
#include <cassert>
#include <sstream>

#include "tinyroute/error.h"

namespace tinyroute {

namespace {

struct Candidate {
  const ModelConfig* model = nullptr;
  bool fallback = false; // came from the category's fallbacks list
};

// Why `m` cannot serve this request; empty when it can.
std::string unfit(const Config& config, const ModelConfig& m, const RequestFacts& facts,
                  const Availability& availability) {
  // Config validation already rejects this; checked again because a Config can be built by hand.
  if (config.is_internal_model_name(m.name) || config.is_internal_model_name(m.upstream_model)) {
    return "internal model, never an answer target";
  }
  std::vector<std::string> why;
  if (facts.needs_tools && !m.capabilities.tools) why.push_back("no tool support");
  if (facts.needs_vision && !m.capabilities.vision) why.push_back("no vision support");
  if (facts.needs_reasoning && !m.capabilities.reasoning) why.push_back("no reasoning support");
  if (m.context_window < facts.estimated_tokens) {
    why.push_back("context " + std::to_string(m.context_window) + " < " +
                  std::to_string(facts.estimated_tokens) + " tokens");
  }
  if (availability.unavailable_models.contains(m.name)) {
    const auto it = availability.why.find(m.name);
    why.push_back(it == availability.why.end() || it->second.empty() ? "unavailable"
                                                                     : "unavailable (" + it->second + ")");
  }
  std::string out;
  for (const auto& w : why) out += (out.empty() ? "" : ", ") + w;
  return out;
}

std::string describe_choice(const Candidate& c) {
  std::ostringstream out;
  out << c.model->name << " (" << (c.fallback ? "fallback, " : "") << "priority " << c.model->priority;
  if (c.model->cost != 0) out << ", cost " << c.model->cost;
  out << ")";
  return out.str();
}

} // namespace

Selection select_model(const Config& config, const std::string& category, const RequestFacts& facts,
                       const Availability& availability) {
  if (!config.find_category(category)) {
    std::string known;
    for (const auto& c : config.categories) known += (known.empty() ? "" : ", ") + c.name;
    throw Error(ErrorCode::invalid_argument,
                "unknown category \"" + category + "\"; configured categories: " + known);
  }

  std::vector<Candidate> candidates;
  for (const auto& m : config.models) {
    if (std::find(m.categories.begin(), m.categories.end(), category) != m.categories.end()) {
      candidates.push_back({&m, false});
    }
  }
  // stable_sort keeps config order among equals.
  std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.model->priority != b.model->priority) return a.model->priority > b.model->priority;
    return a.model->cost < b.model->cost;
  });

  Selection selection;
  if (const auto fb = config.fallbacks.find(category); fb != config.fallbacks.end()) {
    for (const auto& name : fb->second) {
      const ModelConfig* m = config.find_model(name);
      if (!m) {
        selection.rejected.push_back({name, "not defined in models"});
        continue;
      }
      const bool listed =
          std::any_of(candidates.begin(), candidates.end(), [&](const Candidate& c) { return c.model == m; });
      if (!listed) candidates.push_back({m, true});
    }
  }

  std::vector<Candidate> usable;
  for (const auto& c : candidates) {
    if (std::string why = unfit(config, *c.model, facts, availability); !why.empty()) {
      selection.rejected.push_back({c.model->name, std::move(why)});
    } else {
      usable.push_back(c);
    }
  }

  if (usable.empty()) {
    // Too long for every candidate is the request's fault, not a lack of capacity: a different error,
    // so that the gateway can answer it as a client error naming the limit.
    int largest = 0;
    bool all_too_small = false;
    for (const auto& c : candidates) {
      largest = std::max(largest, c.model->context_window);
      all_too_small = true;
    }
    for (const auto& c : candidates) {
      if (c.model->context_window >= facts.estimated_tokens) all_too_small = false;
    }
    std::string list;
    for (const auto& r : selection.rejected) list += (list.empty() ? "" : "; ") + r.model + ": " + r.why;
    if (all_too_small) {
      throw Error(ErrorCode::context_overflow,
                  "the request needs about " + std::to_string(facts.estimated_tokens) +
                      " tokens (prompt and answer), more than the largest context window of the models for "
                      "category \"" +
                      category + "\" (" + std::to_string(largest) + " tokens): " + list +
                      "; shorten the conversation or lower max_tokens");
    }
    throw Error(ErrorCode::no_candidate, "no model can serve category \"" + category +
                                             "\": " + (list.empty() ? "no models configured for it" : list) +
                                             " (add a model to the category or to fallbacks." + category +
                                             ")");
  }

  selection.model = usable.front().model->name;
  for (std::size_t i = 1; i < usable.size(); ++i) selection.fallbacks.push_back(usable[i].model->name);
  selection.reason = category + ": " + describe_choice(usable.front());
  for (const auto& r : selection.rejected) selection.reason += "; skipped " + r.model + ": " + r.why;

  assert(!config.is_internal_model_name(selection.model));
  return selection;
}

Selection select_model_inferred(const Config& config, const std::string& category, const RequestFacts& facts,
                                const RequestFacts& inferred, const Availability& availability) {
  RequestFacts wanted = facts;
  std::vector<std::string> added;
  const auto add = [&](bool& need, bool inferred_need, const char* what) {
    if (inferred_need && !need) {
      need = true;
      added.emplace_back(what);
    }
  };
  add(wanted.needs_tools, inferred.needs_tools, "tools");
  add(wanted.needs_vision, inferred.needs_vision, "vision");
  add(wanted.needs_reasoning, inferred.needs_reasoning, "reasoning");
  if (inferred.estimated_tokens > facts.estimated_tokens) {
    wanted.estimated_tokens = inferred.estimated_tokens;
    added.push_back(std::to_string(inferred.estimated_tokens) + " tokens");
  }
  if (added.empty()) return select_model(config, category, facts, availability);
  std::string needs;
  for (const auto& a : added) needs += (needs.empty() ? "" : ", ") + a;
  try {
    Selection s = select_model(config, category, wanted, availability);
    s.reason += "; inferred from the request: needs " + needs;
    return s;
  } catch (const Error& e) {
    if (e.code() != ErrorCode::no_candidate && e.code() != ErrorCode::context_overflow) throw;
  }
  Selection s = select_model(config, category, facts, availability);
  s.reason += "; inferred from the request: needs " + needs + ", which no available model has (ignored)";
  return s;
}

} // namespace tinyroute
