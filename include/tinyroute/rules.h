// The rule stage: ordered keyword / regex rules that map a request to a category or an agent before
// (and instead of) the internal model. A policy over text only: no engine, no llama.cpp.
//
// Matching is Unicode-aware and case-insensitive (PCRE2 with UTF, UCP and CASELESS): "Код", "КОД"
// and "код" are the same keyword. A keyword is a word *prefix*: it must start a word (no letter, digit
// or '_' right before it) but may be followed by more letters, so "код" matches "кода", "коду" and
// "кодом" (Russian inflects by suffix); write a `regex` with \b for a whole word. Spaces inside a
// keyword match any run of whitespace. The first rule that matches wins.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tinyroute/config.h"

namespace tinyroute {

struct RuleMatch {
  std::size_t index = 0; // position in config.rules
  int line = 0;          // where the rule was written
  std::string category;  // the rule's target category; empty when it only names an agent
  std::string agent;     // the rule's target agent; empty when it only names a category
  std::string matched;   // the text that matched, as written in the request
  std::string pattern;   // the keyword or regex that matched, as written in the config
};

// "" when `pattern` is a valid PCRE2 pattern, else the compiler's message and the offset it points at.
std::string regex_problem(std::string_view pattern);

class RuleSet {
public:
  RuleSet();
  // Compiles every rule. The config reader leaves patterns to this: a regex that does not compile is
  // Error(config_invalid) "SOURCE:LINE: rules[i].regex: ..." (`source`: the config's file name).
  explicit RuleSet(const std::vector<RuleConfig>& rules, const std::string& source = {});
  ~RuleSet();
  RuleSet(RuleSet&&) noexcept;
  RuleSet& operator=(RuleSet&&) noexcept;

  bool empty() const;
  // The first rule that matches `text` and has a category target (for task routing).
  std::optional<RuleMatch> match_category(std::string_view text) const;
  // The first rule that matches `text` and has an agent target (for agent routing).
  std::optional<RuleMatch> match_agent(std::string_view text) const;

private:
  struct Compiled;
  std::optional<RuleMatch> first(std::string_view text, bool want_category) const;
  std::vector<Compiled> rules_;
};

// "rules[2] keyword \"код\" (line 40)": how a rule match is named in reasons and logs.
std::string describe(const RuleMatch& match);

} // namespace tinyroute
