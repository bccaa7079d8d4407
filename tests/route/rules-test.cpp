// The rule stage: keyword and regex rules, Unicode and case-insensitive, first match wins; rule config
// errors with file:line; and the knowledge-os profile's rules routing its Russian requests (no model).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test-support.h"
#include "tinyroute/config.h"
#include "tinyroute/error.h"
#include "tinyroute/from-config.h"
#include "tinyroute/rules.h"
#include "tinyroute/select.h"

namespace tinyroute {
namespace {

RuleConfig keywords(std::vector<std::string> words, std::string category, std::string agent = "") {
  RuleConfig r;
  r.keywords = std::move(words);
  r.category = std::move(category);
  r.agent = std::move(agent);
  return r;
}

RuleConfig regex(std::string pattern, std::string category) {
  RuleConfig r;
  r.regex = std::move(pattern);
  r.category = std::move(category);
  return r;
}

std::string category_of(const RuleSet& rules, const std::string& text) {
  const auto m = rules.match_category(text);
  return m ? m->category : "";
}

TEST(Rules, KeywordsIgnoreCaseInCyrillicAndLatin) {
  const RuleSet rules({keywords({"код", "Code"}, "coding")});
  for (const char* text :
       {"Напиши код", "Код не работает", "КОД!", "кОд", "review my code", "CODE", "the Code base"}) {
    EXPECT_EQ(category_of(rules, text), "coding") << text;
  }
}

TEST(Rules, KeywordIsAWordPrefix) {
  const RuleSet rules({keywords({"код"}, "coding"), keywords({"plan"}, "reasoning")});
  // Russian inflects by suffix: every form of the word starts with the keyword.
  for (const char* text : {"ошибка в строке кода", "что с кодом?", "коду нужен рефакторинг", "КОДА нет"})
    EXPECT_EQ(category_of(rules, text), "coding") << text;
  // A keyword never matches inside a word.
  for (const char* text : {"антикод", "штрихкод", "decode", "без к-о-д-а"})
    EXPECT_EQ(category_of(rules, text), "") << text;
  EXPECT_EQ(category_of(rules, "planning the trip"), "reasoning");
  EXPECT_EQ(category_of(rules, "airplane"), "");
}

TEST(Rules, KeywordWithSpacesMatchesAnyWhitespaceAndPunctuationIsLiteral) {
  const RuleSet rules({keywords({"pull request"}, "coding"), keywords({"c++", "a.b"}, "reasoning")});
  EXPECT_EQ(category_of(rules, "see the Pull   Request"), "coding");
  EXPECT_EQ(category_of(rules, "see the pull\nrequest"), "coding");
  EXPECT_EQ(category_of(rules, "pullrequest"), "");
  EXPECT_EQ(category_of(rules, "in C++ please"), "reasoning");
  EXPECT_EQ(category_of(rules, "in c please"), "");
  EXPECT_EQ(category_of(rules, "aXb"), ""); // '.' is a literal dot in a keyword
}

TEST(Rules, RegexIsUnicodeAware) {
  const RuleSet rules({regex(R"(\bплан\b)", "reasoning"), regex(R"(^\s*привет\W*$)", "fast")});
  EXPECT_EQ(category_of(rules, "Нужен ПЛАН работ"), "reasoning");
  EXPECT_EQ(category_of(rules, "планета"), ""); // \b is a Unicode word boundary with UCP
  EXPECT_EQ(category_of(rules, "  Привет!!"), "fast");
  EXPECT_EQ(category_of(rules, "Привет, напиши сортировку"), "");
}

TEST(Rules, FirstMatchingRuleWinsAndReportsWhatMatched) {
  const RuleSet rules(
      {keywords({"изображени"}, "vision"), keywords({"код"}, "coding"), keywords({"подумай"}, "reasoning")});
  const auto m = rules.match_category("Подумай, что за код на изображении");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->category, "vision");
  EXPECT_EQ(m->index, 0u);
  EXPECT_EQ(m->matched, "изображени");
  EXPECT_EQ(m->pattern, "изображени");
  EXPECT_EQ(category_of(rules, "Подумай про код"), "coding");
  EXPECT_NE(describe(*m).find("rules[0]"), std::string::npos);
}

TEST(Rules, AgentAndCategoryTargetsAreSeparate) {
  const RuleSet rules({keywords({"вероника"}, "", "Veronica"), keywords({"код"}, "coding"),
                       keywords({"ревью"}, "coding", "Veronica")});
  EXPECT_EQ(category_of(rules, "Вероника, привет"), ""); // an agent-only rule says nothing about the task
  ASSERT_TRUE(rules.match_agent("Вероника, привет"));
  EXPECT_EQ(rules.match_agent("Вероника, привет")->agent, "Veronica");
  EXPECT_FALSE(rules.match_agent("посмотри код"));
  EXPECT_EQ(category_of(rules, "сделай ревью"), "coding");
  EXPECT_EQ(rules.match_agent("сделай ревью")->agent, "Veronica");
}

TEST(Rules, BadInputNeverMatchesNorCrashes) {
  const RuleSet rules({keywords({"код"}, "coding"), regex(".*", "fast")});
  // Invalid UTF-8 (a lone continuation byte, a truncated sequence): no rule vouches for it.
  EXPECT_FALSE(rules.match_category("\x80\xbf код"));
  EXPECT_FALSE(rules.match_category(std::string("\xd0", 1)));
  EXPECT_EQ(category_of(rules, ""), "fast");
  EXPECT_EQ(category_of(rules, std::string("код\0код", 7)), "coding");
  EXPECT_TRUE(RuleSet().empty());
  EXPECT_FALSE(RuleSet().match_category("код"));
}

TEST(Rules, BadRegexIsRefusedWithTheReason) {
  EXPECT_EQ(regex_problem(R"(\bкод\b)"), "");
  EXPECT_NE(regex_problem("(unclosed"), "");
  EXPECT_NE(regex_problem("(unclosed").find("offset"), std::string::npos);
  try {
    RuleSet rules({regex("[z-a]", "coding")});
    FAIL() << "compiled a bad range";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::config_invalid);
    EXPECT_EQ(std::string(e.what()).rfind("rules[0].regex: \"[z-a]\" is not a valid regular expression", 0),
              0)
        << e.what(); // built in code: no file or line to name
  }
}

// ---- rules in the config ---------------------------------------------------------------------------

const std::string kBase = "internal_model:\n"
                          "  model: tinyllama-1.1b-chat\n"
                          "categories:\n"
                          "  - name: chat\n"
                          "    description: Small talk.\n"
                          "  - name: coding\n"
                          "    description: Code.\n"
                          "models:\n"
                          "  - name: llama3.1:8b\n"
                          "    provider: ollama\n"
                          "    base_url: http://127.0.0.1:11434\n"
                          "    categories: [chat, coding]\n"
                          "default_category: chat\n";

struct BadRule {
  std::string name;
  std::string rules; // appended after kBase; the offending line is marked "# <-"
  std::string message;
};

void PrintTo(const BadRule& c, std::ostream* os) {
  *os << c.name;
}

class BadRuleConfig : public ::testing::TestWithParam<BadRule> {};

TEST_P(BadRuleConfig, ReportsFileLineAndWhat) {
  const BadRule& c = GetParam();
  const std::string yaml = kBase + c.rules;
  const auto pos = yaml.find("# <-");
  ASSERT_NE(pos, std::string::npos);
  const int line =
      1 + static_cast<int>(std::count(yaml.begin(), yaml.begin() + static_cast<long>(pos), '\n'));
  try {
    // What load_checked_config does: the reader, then the rule set for the patterns.
    const Config config = parse_config(yaml, "rules.yaml");
    RuleSet rules(config.rules, config.source_path);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::config_invalid);
    const std::string what = e.what();
    EXPECT_NE(what.find("rules.yaml:" + std::to_string(line) + ": "), std::string::npos) << what;
    EXPECT_NE(what.find(c.message), std::string::npos) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadRuleConfig,
    ::testing::Values(
        BadRule{"bad_regex", "rules:\n  - category: coding\n    regex: '(код' # <-\n",
                "rules[0].regex: \"(код\" is not a valid regular expression (PCRE2): missing closing "
                "parenthesis"},
        BadRule{"unknown_category", "rules:\n  - keywords: [код]\n    category: coidng # <-\n",
                "rules[0].category: \"coidng\" is not a defined category; did you mean \"coding\"?"},
        BadRule{"unknown_agent", "rules:\n  - keywords: [код]\n    agent: Veronica # <-\n",
                "rules[0].agent: \"Veronica\" is not a defined agent (the config has no agents section)"},
        BadRule{"no_target", "rules:\n  - keywords: [код] # <-\n", "rules[0]: has no target"},
        BadRule{"nothing_to_match", "rules:\n  - category: coding # <-\n",
                "rules[0]: has neither keywords nor regex"},
        BadRule{"empty_keywords", "rules:\n  - keywords: [] # <-\n    category: coding\n",
                "rules[0].keywords: is empty"},
        BadRule{"keywords_not_a_list", "rules:\n  - keywords: код # <-\n    category: coding\n",
                "rules[0].keywords: expected a list"},
        BadRule{"unknown_key", "rules:\n  - keyword: [код] # <-\n    category: coding\n",
                "rules[0].keyword: unknown key; did you mean \"keywords\"?"},
        BadRule{"not_a_list", "rules: код # <-\n", "rules: expected a list"}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(RulesConfig, ABadRegexIsRefusedWithItsFileAndLineWhereCommandsLoadTheConfig) {
  const test::TempDir dir;
  const std::string path = dir.file("tinyroute.yaml");
  test::write_file(path, kBase + "rules:\n  - category: coding\n    regex: '(код'\n");
  const int line = 1 + static_cast<int>(std::count(kBase.begin(), kBase.end(), '\n')) + 2;
  EXPECT_NO_THROW(load_config(path)); // the reader leaves patterns to the rule set
  try {
    load_checked_config(path);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::config_invalid);
    EXPECT_NE(std::string(e.what()).find(path + ":" + std::to_string(line) + ": rules[0].regex: \"(код\""),
              std::string::npos)
        << e.what();
  }
}

TEST(RulesConfig, ReadsRulesInOrderAndTheDeadline) {
  const Config c = parse_config(kBase + "rules:\n"
                                        "  - keywords: [код, code]\n"
                                        "    category: coding\n"
                                        "  - regex: '^привет'\n"
                                        "    category: chat\n",
                                "ok.yaml");
  ASSERT_EQ(c.rules.size(), 2u);
  EXPECT_EQ(c.rules[0].keywords, (std::vector<std::string>{"код", "code"}));
  EXPECT_EQ(c.rules[0].category, "coding");
  EXPECT_EQ(c.rules[0].line, 15);
  EXPECT_EQ(c.rules[1].regex, "^привет");
  EXPECT_EQ(c.internal_model.deadline_ms, 0);
  EXPECT_EQ(c.gateway.availability_poll_s, 0);

  std::string with_deadline = kBase;
  with_deadline.replace(with_deadline.find("categories:"), 0, "  deadline_ms: 150\n");
  EXPECT_EQ(parse_config(with_deadline, "d.yaml").internal_model.deadline_ms, 150);
  std::string bad = kBase;
  bad.replace(bad.find("categories:"), 0, "  deadline_ms: -1\n");
  EXPECT_THROW(parse_config(bad, "d.yaml"), Error);
}

// ---- the knowledge-os profile ---------------------------------------------------------------------

const std::string kProfile = std::string(TINYROUTE_SOURCE_DIR) + "/config/knowledge-os.yaml";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(KnowledgeOsProfile, LoadsWithTinyLlamaOnlyAsTheInternalModel) {
  const Config c = load_config(kProfile);
  for (const char* name :
       {"fast", "general", "coding", "reasoning", "complex", "vision", "thinking", "vip", "fallback"})
    EXPECT_NE(c.find_category(name), nullptr) << name;
  EXPECT_TRUE(c.is_internal_model_name("tinyllama:1.1b-chat"));
  for (const auto& m : c.models) {
    EXPECT_FALSE(c.is_internal_model_name(m.name)) << m.name;
    EXPECT_EQ(m.provider, Provider::ollama) << m.name;
  }
  std::set<std::string> backends;
  for (const auto& m : c.models) backends.insert(m.base_url);
  EXPECT_EQ(backends, (std::set<std::string>{"http://127.0.0.1:11434", "http://127.0.0.1:11435",
                                             "http://127.0.0.1:11436"}));
  ASSERT_NE(c.find_agent("Victoria"), nullptr);
  EXPECT_TRUE(c.find_agent("Victoria")->triage);
  ASSERT_NE(c.find_agent("Veronica"), nullptr);
  EXPECT_GT(c.internal_model.deadline_ms, 0);
  EXPECT_GT(c.gateway.availability_poll_s, 0);
}

TEST(KnowledgeOsProfile, CategoriesKeepTheirModelOrder) {
  const Config c = load_config(kProfile);
  const auto order = [&](const std::string& category) {
    const Selection s = select_model(c, category, {});
    std::vector<std::string> out{s.model};
    out.insert(out.end(), s.fallbacks.begin(), s.fallbacks.end());
    return out;
  };
  const auto starts_with = [](const std::vector<std::string>& got, const std::vector<std::string>& want) {
    return got.size() >= want.size() && std::equal(want.begin(), want.end(), got.begin());
  };
  EXPECT_TRUE(starts_with(order("coding"), {"qwen3-coder:30b", "qwen2.5-coder:32b"}));
  EXPECT_TRUE(starts_with(order("reasoning"), {"deepseek-r1:32b", "qwq:32b"}));
  EXPECT_TRUE(starts_with(order("vision"), {"moondream", "minicpm-v"}));
  EXPECT_TRUE(starts_with(order("fast"), {"phi3.5:3.8b", "qwen2.5:3b"}));
  // "First installed model wins": without qwen3-coder on its server, the next coder answers.
  Availability a;
  a.unavailable_models = {"qwen3-coder:30b"};
  a.why["qwen3-coder:30b"] = "not installed on http://127.0.0.1:11434";
  const Selection s = select_model(c, "coding", {}, a);
  EXPECT_EQ(s.model, "qwen2.5-coder:32b");
  EXPECT_NE(s.reason.find("skipped qwen3-coder:30b: unavailable (not installed"), std::string::npos)
      << s.reason;
}

TEST(KnowledgeOsProfile, TinyLlamaUnderFastIsRefusedNamingTheEntry) {
  // The deployment's recurring mistake: the internal model listed as a fast answer model.
  std::string yaml = read_file(kProfile);
  const std::string anchor = "  - name: phi3.5:3.8b\n";
  const auto at = yaml.find(anchor);
  ASSERT_NE(at, std::string::npos);
  yaml.insert(at, "  - name: tinyllama:1.1b-chat\n"
                  "    provider: ollama\n"
                  "    base_url: http://127.0.0.1:11434\n"
                  "    categories: [fast]\n");
  const int line = 1 + static_cast<int>(std::count(yaml.begin(), yaml.begin() + static_cast<long>(at), '\n'));
  try {
    parse_config(yaml, "knowledge-os.yaml");
    FAIL() << "tinyllama:1.1b-chat was accepted as an answer model";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::internal_model_forbidden);
    const std::string what = e.what();
    EXPECT_NE(
        what.find("knowledge-os.yaml:" + std::to_string(line) + ": models[6].name: \"tinyllama:1.1b-chat\""),
        std::string::npos)
        << what;
  }
}

TEST(KnowledgeOsProfile, RulesRouteRussianRequestsWithoutTheModel) {
  const Config c = load_config(kProfile);
  const RuleSet rules(c.rules);
  struct Case {
    const char* text;
    const char* category;
  };
  for (const Case& k : std::vector<Case>{
           {"Напиши код сортировки на Python", "coding"},
           {"КОД падает с ошибкой", "coding"},
           {"Почему в этом коде утечка памяти?", "coding"},
           {"Подумай, как лучше организовать релизы", "reasoning"},
           {"Нужна логика расчёта скидок", "reasoning"},
           {"Составь план переезда офиса", "reasoning"},
           {"Что на этом изображении?", "vision"},
           {"Опиши скриншот ошибки", "vision"},
           {"Привет!", "fast"},
           {"привет, как дела", "fast"},
           {"Hello", "fast"},
           // Precedence is the rules' order: an image about code is vision, code planning is coding.
           {"Изображение с кодом", "vision"},
           {"Подумай над кодом", "coding"},
       }) {
    const auto m = rules.match_category(k.text);
    ASSERT_TRUE(m) << k.text;
    EXPECT_EQ(m->category, k.category) << k.text;
  }
  // No rule: the internal model decides.
  EXPECT_FALSE(rules.match_category("Сколько стоит доставка в Казань?"));
  EXPECT_FALSE(rules.match_category("Антикодовая защита")); // a keyword only starts a word
  // Agent rules.
  ASSERT_TRUE(rules.match_agent("Вероника, глянь pull request"));
  EXPECT_EQ(rules.match_agent("Вероника, глянь pull request")->agent, "Veronica");
  EXPECT_EQ(rules.match_agent("Виктория, распредели задачи")->agent, "Victoria");
}

} // namespace
} // namespace tinyroute
