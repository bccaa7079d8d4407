// The rule stage over PCRE2: every keyword becomes an escaped literal with a Unicode word-start
// boundary, every regex is compiled as written; both with UTF | UCP | CASELESS so case folding and
// \w, \b work for Cyrillic as for Latin.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tinyroute/rules.h"

#include <pcre2.h>

#include <cctype>

#include "tinyroute/error.h"

namespace tinyroute {

namespace {

constexpr uint32_t kOptions = PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS;

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};
using Code = std::unique_ptr<pcre2_code, CodeDeleter>;
using MatchData = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof(buffer)) < 0) return "error " + std::to_string(code);
  return reinterpret_cast<const char*>(buffer);
}

// Compiles `pattern`; on failure fills `problem` and returns null.
Code compile(std::string_view pattern, std::string& problem) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), kOptions,
                                   &error, &offset, nullptr);
  if (code == nullptr) {
    problem = pcre2_message(error) + " at offset " + std::to_string(offset);
    return nullptr;
  }
  // JIT is an optimisation only: when it is unavailable the interpreter gives the same answers.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return Code(code);
}

// A keyword as a pattern: ASCII punctuation escaped, whitespace runs as \s+, and a word start before
// it (no letter, digit or '_' just before) but no word end after it, so it matches word prefixes.
std::string keyword_pattern(std::string_view keyword) {
  std::string out = "(?<![\\w])";
  bool in_space = false;
  for (char c : keyword) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (!in_space) out += "\\s+";
      in_space = true;
      continue;
    }
    in_space = false;
    if (u < 0x80 && !std::isalnum(u)) out += '\\';
    out += c;
  }
  return out;
}

} // namespace

struct RuleSet::Compiled {
  std::size_t index = 0;
  int line = 0;
  std::string category;
  std::string agent;
  std::vector<std::pair<std::string, Code>> patterns; // as written in the config, compiled
};

std::string regex_problem(std::string_view pattern) {
  std::string problem;
  compile(pattern, problem);
  return problem;
}

RuleSet::RuleSet() = default;
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

RuleSet::RuleSet(const std::vector<RuleConfig>& rules, const std::string& source) {
  // "FILE:LINE: rules[i].key: ..." like every other config error (the config reader leaves patterns to
  // the rule set: it alone knows PCRE2).
  const auto refuse = [&](std::size_t i, int line, const std::string& key, const std::string& pattern,
                          const std::string& problem) {
    // Rules built in code have no line: then the message starts at rules[i].
    const std::string where =
        line > 0 ? (source.empty() ? std::string("config") : source) + ":" + std::to_string(line) + ": " : "";
    throw Error(ErrorCode::config_invalid, where + "rules[" + std::to_string(i) + "]." + key + ": \"" +
                                               pattern +
                                               "\" is not a valid regular expression (PCRE2): " + problem);
  };
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const RuleConfig& r = rules[i];
    Compiled c{i, r.line, r.category, r.agent, {}};
    std::string problem;
    for (const auto& keyword : r.keywords) {
      Code code = compile(keyword_pattern(keyword), problem);
      if (!code) refuse(i, r.line, "keywords", keyword, problem); // escaped: only a bug gets here
      c.patterns.emplace_back(keyword, std::move(code));
    }
    if (!r.regex.empty()) {
      Code code = compile(r.regex, problem);
      if (!code) refuse(i, r.regex_line > 0 ? r.regex_line : r.line, "regex", r.regex, problem);
      c.patterns.emplace_back(r.regex, std::move(code));
    }
    rules_.push_back(std::move(c));
  }
}

bool RuleSet::empty() const {
  return rules_.empty();
}

std::optional<RuleMatch> RuleSet::match_category(std::string_view text) const {
  return first(text, true);
}

std::optional<RuleMatch> RuleSet::match_agent(std::string_view text) const {
  return first(text, false);
}

std::optional<RuleMatch> RuleSet::first(std::string_view text, bool want_category) const {
  // Requests arrive from the network: PCRE2 checks the UTF-8 itself and refuses a broken sequence.
  for (const auto& rule : rules_) {
    if (want_category ? rule.category.empty() : rule.agent.empty()) continue;
    for (const auto& [pattern, code] : rule.patterns) {
      MatchData data(pcre2_match_data_create_from_pattern(code.get(), nullptr));
      if (!data) throw Error(ErrorCode::internal, "pcre2: out of memory for match data");
      const int rc = pcre2_match(code.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0,
                                 data.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) continue;
      if (rc < 0) {
        // Invalid UTF-8 (or a resource limit): no rule can vouch for this text; the model decides.
        if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21) return std::nullopt;
        continue;
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.get());
      RuleMatch m;
      m.index = rule.index;
      m.line = rule.line;
      m.category = rule.category;
      m.agent = rule.agent;
      m.matched = std::string(text.substr(ov[0], ov[1] - ov[0]));
      m.pattern = pattern;
      return m;
    }
  }
  return std::nullopt;
}

std::string describe(const RuleMatch& match) {
  return "rules[" + std::to_string(match.index) + "] \"" + match.pattern + "\" (line " +
         std::to_string(match.line) + ") matched \"" + match.matched + "\"";
}

} // namespace tinyroute
