// Config loading and validation: the shipped config, a table of bad configs (code, exact line, key),
// and the internal-model name matcher.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "test-support.h"
#include "tinyroute/config.h"
#include "tinyroute/error.h"
#include "tinyroute/select.h"

namespace tinyroute {
namespace {

const std::string kShipped = std::string(TINYROUTE_SOURCE_DIR) + "/config/tinyroute.yaml";

// Building blocks of a small valid config; each bad case changes one thing.
const std::string kInternal = "internal_model:\n"
                              "  model: tinyllama-1.1b-chat\n";
const std::string kCategories = "categories:\n"
                                "  - name: chat\n"
                                "    description: Small talk.\n"
                                "  - name: coding\n"
                                "    description: Code.\n";
const std::string kModels = "models:\n"
                            "  - name: llama3.1:8b\n"
                            "    provider: ollama\n"
                            "    base_url: http://127.0.0.1:11434\n"
                            "    categories: [chat, coding]\n";
const std::string kDefault = "default_category: chat\n";
const std::string kValid = kInternal + kCategories + kModels + kDefault;
// Two agents, the second one triage; bad agent cases append lines to the last agent.
const std::string kAgents = "agents:\n"
                            "  - name: billing\n"
                            "    description: Invoices and payments.\n"
                            "    endpoint: http://127.0.0.1:9001/inbox\n"
                            "  - name: triage\n"
                            "    description: Anything else.\n"
                            "    endpoint: http://127.0.0.1:9002/inbox\n"
                            "    triage: true\n";

// One model entry serving chat, with `extra` lines appended to it.
std::string model_entry(const std::string& name, const std::string& extra = "") {
  return "  - name: " + name + "\n    provider: ollama\n    base_url: http://127.0.0.1:11434\n" +
         "    categories: [chat]\n" + extra;
}

// 1-based line of the first line containing `marker`.
int line_of_marker(const std::string& text, const std::string& marker = "# <-") {
  const auto pos = text.find(marker);
  if (pos == std::string::npos) return 0;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n'));
}

struct BadCase {
  std::string name;
  std::string yaml;
  ErrorCode code;
  std::string key; // must appear in the message
  int line = 0;    // the expected line; 0 = the line marked "# <-"
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.name;
}

std::vector<BadCase> bad_cases() {
  const ErrorCode invalid = ErrorCode::config_invalid;
  const ErrorCode forbidden = ErrorCode::internal_model_forbidden;
  return {
      {"malformed_yaml", kInternal + kCategories + "models: [llama3.1:8b, \n" + kDefault, invalid,
       "not valid YAML", 10},
      {"empty_file", "# nothing here\n", invalid, "expected a mapping", 1},
      {"top_level_list", "- a\n- b\n", invalid, "expected a mapping", 1},
      {"unknown_top_key", kInternal + kCategories + kModels + "modles: [] # <-\n" + kDefault, invalid,
       "modles: unknown key; did you mean \"models\"?"},
      {"unknown_model_key", kInternal + kCategories + kModels + "    prority: 3 # <-\n" + kDefault, invalid,
       "models[0].prority: unknown key; did you mean \"priority\"?"},
      {"unknown_capability",
       kInternal + kCategories + kModels + "    capabilities: {tools: true, vison: true} # <-\n" + kDefault,
       invalid, "models[0].capabilities.vison: unknown key"},
      {"key_given_twice", kInternal + kCategories + kModels + "    provider: openai # <-\n" + kDefault,
       invalid, "models[0].provider: given twice (first at line 10)"},
      {"string_for_int", kInternal + kCategories + kModels + "    priority: high # <-\n" + kDefault, invalid,
       "models[0].priority: expected a whole number, got \"high\""},
      {"quoted_number", kInternal + "  threads: \"2\" # <-\n" + kCategories + kModels + kDefault, invalid,
       "internal_model.threads: expected a whole number"},
      {"fraction_for_int", kInternal + kCategories + kModels + "    context_window: 8192.5 # <-\n" + kDefault,
       invalid, "models[0].context_window: expected a whole number"},
      {"string_for_number", kInternal + "  threshold: high # <-\n" + kCategories + kModels + kDefault,
       invalid, "internal_model.threshold: expected a number"},
      {"string_for_bool",
       kInternal + kCategories + kModels + "    capabilities: {tools: maybe} # <-\n" + kDefault, invalid,
       "models[0].capabilities.tools: expected true or false"},
      {"zero_max_concurrency", kInternal + kCategories + kModels + "    max_concurrency: 0 # <-\n" + kDefault,
       invalid, "models[0].max_concurrency: must be a positive whole number"},
      {"string_for_list",
       kInternal + kCategories + kModels +
           "  - name: m\n    provider: ollama\n"
           "    base_url: http://127.0.0.1:11434\n    categories: chat # <-\n" +
           kDefault,
       invalid, "models[1].categories: expected a list"},
      {"zero_context_window", kInternal + kCategories + kModels + "    context_window: 0 # <-\n" + kDefault,
       invalid, "models[0].context_window: must be a positive whole number"},
      {"negative_threads", kInternal + "  threads: -1 # <-\n" + kCategories + kModels + kDefault, invalid,
       "internal_model.threads: must be a positive"},
      {"negative_cost", kInternal + kCategories + kModels + "    cost: -1 # <-\n" + kDefault, invalid,
       "models[0].cost: must not be negative"},
      {"threshold_above_one", kInternal + "  threshold: 1.5 # <-\n" + kCategories + kModels + kDefault,
       invalid, "internal_model.threshold: 1.5 is out of range"},
      {"threshold_below_zero", kInternal + "  threshold: -0.1 # <-\n" + kCategories + kModels + kDefault,
       invalid, "internal_model.threshold: -0.1 is out of range"},
      {"too_many_conversations", kInternal + "  conversations: 500 # <-\n" + kCategories + kModels + kDefault,
       invalid, "internal_model.conversations: 500 is out of range"},
      {"conversation_window_below_a_query",
       kInternal + "  max_query_tokens: 256\n  conversation_tokens: 100 # <-\n" + kCategories + kModels +
           kDefault,
       invalid,
       "internal_model.conversation_tokens: 100 is out of range; use at least max_query_tokens (256)"},
      {"conversation_window_past_the_context",
       kInternal + "  context: 2048\n  conversation_tokens: 4096 # <-\n" + kCategories + kModels + kDefault,
       invalid, "less than context (2048)"},
      {"bad_strategy", kInternal + "  strategy: vote # <-\n" + kCategories + kModels + kDefault, invalid,
       "internal_model.strategy: \"vote\" is not a strategy"},
      {"bad_provider",
       kInternal + kCategories +
           "models:\n  - name: m\n    provider: olama # <-\n"
           "    base_url: http://127.0.0.1:11434\n    categories: [chat, coding]\n" +
           kDefault,
       invalid,
       "models[0].provider: \"olama\" is not a provider; use openai, ollama or anthropic; did you "
       "mean \"ollama\"?"},
      {"url_without_scheme",
       kInternal + kCategories +
           "models:\n  - name: m\n    provider: ollama\n"
           "    base_url: 127.0.0.1:11434 # <-\n    categories: [chat, coding]\n" +
           kDefault,
       invalid, "models[0].base_url: \"127.0.0.1:11434\" must start with http:// or https://"},
      {"url_ftp",
       kInternal + kCategories +
           "models:\n  - name: m\n    provider: openai\n"
           "    base_url: ftp://host # <-\n    categories: [chat, coding]\n" +
           kDefault,
       invalid, "models[0].base_url"},
      {"api_key_instead_of_env_name",
       kInternal + kCategories + kModels + "    api_key_env: sk-abc123 # <-\n" + kDefault, invalid,
       "models[0].api_key_env: is not an environment variable name"},
      {"missing_base_url",
       kInternal + kCategories +
           "models:\n  - name: m # <-\n    provider: ollama\n"
           "    categories: [chat, coding]\n" +
           kDefault,
       invalid, "models[0].base_url: required key is missing"},
      {"missing_internal_model_file",
       "internal_model:\n  threads: 2 # <-\n" + kCategories + kModels + kDefault, invalid,
       "internal_model.model: required key is missing"},
      {"empty_model_name",
       kInternal + kCategories + kModels +
           "  - name: \"\" # <-\n    provider: ollama\n"
           "    base_url: http://127.0.0.1:11434\n" +
           kDefault,
       invalid, "models[1].name: must not be empty"},
      {"duplicate_category",
       kInternal + kCategories + "  - name: chat # <-\n    description: Again.\n" + kModels + kDefault,
       invalid, "categories[2].name: \"chat\" is already defined at line 4"},
      {"duplicate_model",
       kInternal + kCategories + kModels +
           "  - name: llama3.1:8b # <-\n    provider: openai\n"
           "    base_url: http://127.0.0.1:11435\n" +
           kDefault,
       invalid, "models[1].name: \"llama3.1:8b\" is already defined at line 9"},
      {"undefined_model_category",
       kInternal + kCategories +
           "models:\n  - name: m\n    provider: ollama\n"
           "    base_url: http://127.0.0.1:11434\n    categories: [chat, coding, codng] # <-\n" +
           kDefault,
       invalid, "models[0].categories[2]: \"codng\" is not a defined category; did you mean \"coding\"?"},
      {"undefined_fallback_model", kValid + "fallbacks:\n  chat: [llama3.1:8b, gpt-5] # <-\n", invalid,
       "fallbacks.chat[1]: \"gpt-5\" is not a defined model"},
      {"undefined_fallback_category", kValid + "fallbacks:\n  chats: [llama3.1:8b] # <-\n", invalid,
       "fallbacks.chats: \"chats\" is not a defined category; did you mean \"chat\"?"},
      {"missing_default_category", kInternal + kCategories + kModels, invalid,
       "default_category: required key is missing", 1},
      {"undefined_default_category", kInternal + kCategories + kModels + "default_category: talk # <-\n",
       invalid, "default_category: \"talk\" is not a defined category"},
      {"no_categories", kInternal + "categories: [] # <-\n" + kModels + kDefault, invalid,
       "categories: at least one category is required"},
      {"no_models", kInternal + kCategories + "models: [] # <-\n" + kDefault, invalid,
       "models: at least one model is required"},
      {"category_without_model",
       kInternal + kCategories + "  - name: math # <-\n    description: Sums.\n" + kModels + kDefault,
       invalid,
       "categories[2]: \"math\" has no model; add it to some model's categories or add fallbacks.math"},
      {"bad_category_name",
       kInternal + kCategories + "  - name: code review # <-\n    description: x\n" + kModels + kDefault,
       invalid, "categories[2].name: \"code review\" may only use"},
      // The internal model never answers users, under any of its names.
      {"internal_as_model",
       kInternal + kCategories + kModels + model_entry("tinyllama-1.1b-chat # <-") + kDefault, forbidden,
       "models[1].name: \"tinyllama-1.1b-chat\" is the internal model; it only classifies and routes and can "
       "never answer users — remove it from models"},
      {"internal_as_upstream_model",
       kInternal + kCategories + kModels + model_entry("small", "    upstream_model: tinyllama # <-\n") +
           kDefault,
       forbidden, "models[1].upstream_model: \"tinyllama\" is the internal model"},
      {"internal_in_fallbacks",
       kValid + "fallbacks:\n  coding:\n    - llama3.1:8b\n    - tinyllama:latest # <-\n", forbidden,
       "fallbacks.coding[1]: \"tinyllama:latest\" is the internal model"},
      {"internal_by_ollama_name",
       kInternal + kCategories + kModels + model_entry("TinyLlama:1.1B-Chat # <-") + kDefault, forbidden,
       "models[1].name: \"TinyLlama:1.1B-Chat\" is the internal model"},
      {"internal_by_family",
       kInternal + kCategories + kModels + model_entry("tinyllama:q4_K_M # <-") + kDefault, forbidden,
       "models[1].name: \"tinyllama:q4_K_M\" is the internal model"},
      {"internal_by_configured_alias",
       "internal_model:\n  model: /models/router.gguf\n  name: router\n  aliases: [classifier]\n" +
           kCategories + kModels + model_entry("classifier:7b # <-") + kDefault,
       forbidden, "models[1].name: \"classifier:7b\" is the internal model"},
      {"internal_by_file_stem",
       "internal_model:\n  model: /models/router-q4.gguf\n  name: router\n" + kCategories + kModels +
           model_entry("m", "    upstream_model: router-q4 # <-\n") + kDefault,
       forbidden, "models[1].upstream_model: \"router-q4\" is the internal model"},
      {"agents_not_a_list", kValid + "agents: {billing: x} # <-\n", invalid, "agents: expected a list"},
      {"agents_only_one",
       kValid + "agents:\n  - name: t # <-\n    description: d\n    endpoint: http://h:1\n    triage: true\n",
       invalid, "agents: at least two agents are required"},
      {"agents_without_triage",
       kValid + "agents:\n  - name: a # <-\n    description: d\n    endpoint: http://h:1\n"
                "  - name: b\n    description: d\n    endpoint: http://h:2\n",
       invalid, "agents: no agent has triage: true"},
      {"agents_two_triage",
       kValid + kAgents +
           "  - name: ops\n    description: d\n    endpoint: http://h:1\n    triage: true # <-\n",
       invalid, "agents[2].triage: another agent is already the triage agent (line 21)"},
      {"agent_unknown_key", kValid + kAgents + "    skils: [a] # <-\n", invalid,
       "agents[1].skils: unknown key; did you mean \"skills\"?"},
      {"agent_bad_kind", kValid + kAgents + "    accepts: [task, questoin] # <-\n", invalid,
       "agents[1].accepts[1]: \"questoin\" is not a message kind; did you mean \"question\"?"},
      {"agent_kind_twice", kValid + kAgents + "    accepts: [task, task] # <-\n", invalid,
       "agents[1].accepts[1]: \"task\" is listed twice"},
      {"agent_accepts_nothing", kValid + kAgents + "    accepts: [] # <-\n", invalid,
       "agents[1].accepts: is empty"},
      {"agent_string_for_skills", kValid + kAgents + "    skills: refunds # <-\n", invalid,
       "agents[1].skills: expected a list"},
      {"agent_triage_not_bool",
       kValid + "agents:\n  - name: a\n    description: d\n    endpoint: http://h:1\n    triage: maybe # <-\n"
                "  - name: b\n    description: d\n    endpoint: http://h:2\n    triage: true\n",
       invalid, "agents[0].triage: expected true or false"},
      {"agent_bad_endpoint",
       kValid + "agents:\n  - name: a\n    description: d\n    endpoint: h:1/inbox # <-\n"
                "  - name: b\n    description: d\n    endpoint: http://h:2\n    triage: true\n",
       invalid, "agents[0].endpoint: \"h:1/inbox\" must start with http:// or https://"},
      {"agent_missing_endpoint",
       kValid + "agents:\n  - name: a # <-\n    description: d\n"
                "  - name: b\n    description: d\n    endpoint: http://h:2\n    triage: true\n",
       invalid, "agents[0].endpoint: required key is missing"},
      {"agent_missing_description",
       kValid + "agents:\n  - name: a # <-\n    endpoint: http://h:1\n"
                "  - name: b\n    description: d\n    endpoint: http://h:2\n    triage: true\n",
       invalid, "agents[0].description: required key is missing"},
      {"agent_duplicate_name",
       kValid + kAgents + "  - name: billing # <-\n    description: d\n    endpoint: http://h:1\n", invalid,
       "agents[2].name: \"billing\" is already defined at line 15; agent names must be unique"},
      {"agent_bad_name",
       kValid + kAgents + "  - name: bill ing # <-\n    description: d\n    endpoint: http://h:1\n", invalid,
       "agents[2].name: \"bill ing\" may only use letters"},
      {"agent_routing_threshold", kValid + kAgents + "agent_routing: {threshold: 2} # <-\n", invalid,
       "agent_routing.threshold: 2 is out of range"},
      {"agent_routing_zero_hops", kValid + kAgents + "agent_routing:\n  max_hops: 0 # <-\n", invalid,
       "agent_routing.max_hops: must be a positive whole number"},
      {"agent_routing_bytes_not_int", kValid + kAgents + "agent_routing:\n  max_message_bytes: 64k # <-\n",
       invalid, "agent_routing.max_message_bytes: expected a whole number"},
      {"agent_routing_unknown_key", kValid + kAgents + "agent_routing:\n  max_hop: 3 # <-\n", invalid,
       "agent_routing.max_hop: unknown key; did you mean \"max_hops\"?"},
      {"gateway_not_a_mapping", kValid + "gateway: 8080 # <-\n", invalid, "gateway: expected a mapping"},
      {"gateway_unknown_key", kValid + "gateway:\n  listne: \"127.0.0.1:1\" # <-\n", invalid,
       "gateway.listne: unknown key; did you mean \"listen\"?"},
      {"gateway_listen_no_port", kValid + "gateway:\n  listen: 127.0.0.1 # <-\n", invalid,
       "gateway.listen: \"127.0.0.1\" must be HOST:PORT"},
      {"gateway_listen_bad_port", kValid + "gateway:\n  listen: \"127.0.0.1:99999\" # <-\n", invalid,
       "gateway.listen: \"127.0.0.1:99999\" has port \"99999\""},
      {"gateway_listen_bare_ipv6", kValid + "gateway:\n  listen: \"::1:8080\" # <-\n", invalid,
       "without brackets; use \"[::1]:8080\""},
      {"gateway_zero_body", kValid + "gateway:\n  max_body_bytes: 0 # <-\n", invalid,
       "gateway.max_body_bytes: must be a positive whole number"},
      {"gateway_keys_not_list", kValid + "gateway:\n  api_keys: {key_env: K} # <-\n", invalid,
       "gateway.api_keys: expected a list of {key_env"},
      {"gateway_key_in_file",
       kValid + "gateway:\n  api_keys:\n    - key: sk-123 # <-\n      key_env: K\n"
                "      models: [\"*\"]\n",
       invalid, "gateway.api_keys[0].key: unknown key"},
      {"gateway_key_env_missing", kValid + "gateway:\n  api_keys:\n    - models: [\"*\"] # <-\n", invalid,
       "gateway.api_keys[0].key_env: required key is missing"},
      {"gateway_key_env_not_a_name",
       kValid + "gateway:\n  api_keys:\n    - key_env: sk-live-123 # <-\n"
                "      models: [\"*\"]\n",
       invalid, "gateway.api_keys[0].key_env: \"sk-live-123\" is not an environment"},
      {"gateway_key_env_twice",
       kValid + "gateway:\n  api_keys:\n    - {key_env: K, models: [\"*\"]}\n"
                "    - {key_env: K, models: [llama3.1:8b]} # <-\n",
       invalid, "gateway.api_keys[1].key_env: \"K\" is already used at line"},
      {"gateway_key_models_missing", kValid + "gateway:\n  api_keys:\n    - key_env: K # <-\n", invalid,
       "gateway.api_keys[0].models: required key is missing"},
      {"gateway_key_models_empty",
       kValid + "gateway:\n  api_keys:\n    - key_env: K\n      models: [] # <-\n", invalid,
       "gateway.api_keys[0].models: is empty"},
      {"gateway_key_unknown_model",
       kValid + "gateway:\n  api_keys:\n    - key_env: K\n      models:\n"
                "        - llama3.1:9b # <-\n",
       invalid, "gateway.api_keys[0].models[0]: \"llama3.1:9b\" is not a defined model"},
      {"gateway_key_internal_model",
       kValid + "gateway:\n  api_keys:\n    - key_env: K\n      models:\n"
                "        - tinyllama # <-\n",
       forbidden, "gateway.api_keys[0].models[0]: \"tinyllama\" is the internal model"},
  };
}

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, ReportsCodeLineAndKey) {
  const BadCase& c = GetParam();
  const int line = c.line != 0 ? c.line : line_of_marker(c.yaml);
  ASSERT_GT(line, 0) << "case has neither a line nor a '# <-' marker";
  try {
    parse_config(c.yaml, "bad.yaml");
    FAIL() << "accepted:\n" << c.yaml;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(error_code_name(e.code()), error_code_name(c.code)) << message;
    EXPECT_EQ(message.rfind("bad.yaml:" + std::to_string(line) + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(c.key), std::string::npos) << message;
    // One mistake, one message: no knock-on errors.
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, BadConfig, ::testing::ValuesIn(bad_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(Config, ShippedConfigLoads) {
  const Config cfg = load_config(kShipped);
  EXPECT_EQ(cfg.source_path, kShipped);
  EXPECT_EQ(cfg.hash.size(), 64u);
  EXPECT_EQ(cfg.default_category, "chat");
  EXPECT_EQ(cfg.internal_model.model, "tinyllama-1.1b-chat");
  EXPECT_EQ(cfg.internal_model.strategy, Strategy::choice);

  const std::vector<std::string> expected = {"chat",        "coding",   "reasoning",
                                             "math",        "creative", "summarization",
                                             "translation", "analysis", "agentic"};
  ASSERT_EQ(cfg.categories.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const CategoryConfig& c = cfg.categories[i];
    EXPECT_EQ(c.name, expected[i]);
    EXPECT_FALSE(c.description.empty());
    // Few-shot examples in English and in Russian (Cyrillic is two bytes starting 0xD0/0xD1 in UTF-8).
    const auto russian = [](const std::string& s) {
      return s.find('\xD0') != std::string::npos || s.find('\xD1') != std::string::npos;
    };
    EXPECT_TRUE(std::any_of(c.examples.begin(), c.examples.end(), russian)) << c.name;
    EXPECT_TRUE(std::any_of(c.examples.begin(), c.examples.end(), [&](auto& s) { return !russian(s); }))
        << c.name;
  }

  for (const char* name : {"qwen2.5-coder:32b", "deepseek-r1:32b", "phi3.5:3.8b", "llama3.1:8b",
                           "qwen2.5:14b", "mistral-nemo:12b", "mlx-community/Qwen2.5-32B-Instruct-4bit"}) {
    const ModelConfig* m = cfg.find_model(name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_EQ(m->upstream_model, name);
    EXPECT_FALSE(cfg.is_internal_model_name(m->name)) << name;
    EXPECT_GT(m->line, 0);
  }
  EXPECT_EQ(cfg.find_model("qwen2.5-coder:32b")->provider, Provider::ollama);
  EXPECT_EQ(cfg.find_model("qwen2.5-coder:32b")->base_url, "http://127.0.0.1:11434");
  EXPECT_EQ(cfg.find_model("mlx-community/Qwen2.5-32B-Instruct-4bit")->provider, Provider::openai);
  EXPECT_EQ(cfg.find_model("mlx-community/Qwen2.5-32B-Instruct-4bit")->base_url, "http://127.0.0.1:11435");

  // Every category routes somewhere, and never to the internal model.
  for (const auto& c : cfg.categories) {
    const Selection s = select_model(cfg, c.name, {});
    EXPECT_FALSE(cfg.is_internal_model_name(s.model)) << c.name;
    for (const auto& f : s.fallbacks) EXPECT_FALSE(cfg.is_internal_model_name(f)) << c.name;
  }
  EXPECT_EQ(select_model(cfg, "coding", {}).model, "qwen2.5-coder:32b");
  EXPECT_EQ(select_model(cfg, "math", {.needs_reasoning = true}).model, "deepseek-r1:32b");
}

TEST(Config, DefaultsAndOptionalFields) {
  const Config cfg = parse_config(kValid, "mem.yaml");
  EXPECT_EQ(cfg.source_path, "mem.yaml");
  EXPECT_EQ(cfg.hash, "9e5dfe63e912636cf246d787e5a29aa6afb9c6f1cbbcb6214896dc7f1063201e"); // sha256 of kValid
  const InternalModelConfig defaults;
  EXPECT_EQ(cfg.internal_model.name, defaults.name);
  EXPECT_EQ(cfg.internal_model.threads, defaults.threads);
  EXPECT_EQ(cfg.internal_model.threshold, defaults.threshold);
  ASSERT_EQ(cfg.models.size(), 1u);
  const ModelConfig& m = cfg.models[0];
  EXPECT_EQ(m.upstream_model, "llama3.1:8b");
  EXPECT_EQ(m.provider, Provider::ollama);
  EXPECT_EQ(m.context_window, 8192);
  EXPECT_EQ(m.line, 9);
  EXPECT_TRUE(cfg.fallbacks.empty());
  EXPECT_EQ(cfg.find_category("coding")->description, "Code.");
  EXPECT_EQ(cfg.find_category("nope"), nullptr);
  EXPECT_EQ(cfg.find_model("nope"), nullptr);
}

TEST(Config, ReadsEveryField) {
  const std::string yaml = "internal_model:\n"
                           "  model: /models/tiny.gguf\n"
                           "  name: router\n"
                           "  aliases: [clf]\n"
                           "  threads: 4\n  context: 2048\n  batch: 256\n  parallel: 8\n"
                           "  strategy: score\n  threshold: 0.5\n  max_query_tokens: 128\n"
                           "  state_dir: /tmp/state\n  conversations: 4\n  conversation_tokens: 512\n"
                           "  repack: false\n  mmap: true\n  flash_attn: true\n" +
                           kCategories +
                           "models:\n"
                           "  - name: big\n"
                           "    provider: anthropic\n"
                           "    base_url: https://api.example.com\n"
                           "    upstream_model: claude-x\n"
                           "    api_key_env: EXAMPLE_KEY\n"
                           "    categories: [coding]\n"
                           "    context_window: 200000\n"
                           "    priority: -2\n"
                           "    cost: 2.5\n"
                           "    capabilities: {tools: true, vision: yes, reasoning: false}\n"
                           "  - name: small\n"
                           "    provider: openai\n"
                           "    base_url: http://127.0.0.1:11435\n" +
                           "fallbacks: {chat: [small, big], coding: [small]}\n" + kDefault;
  const Config cfg = parse_config(yaml, "full.yaml");
  const InternalModelConfig& im = cfg.internal_model;
  EXPECT_EQ(im.model, "/models/tiny.gguf");
  EXPECT_EQ(im.name, "router");
  EXPECT_EQ(im.aliases, std::vector<std::string>{"clf"});
  EXPECT_EQ(im.threads, 4);
  EXPECT_EQ(im.context, 2048);
  EXPECT_EQ(im.batch, 256);
  EXPECT_EQ(im.parallel, 8);
  EXPECT_EQ(im.strategy, Strategy::score);
  EXPECT_DOUBLE_EQ(im.threshold, 0.5);
  EXPECT_EQ(im.max_query_tokens, 128);
  EXPECT_EQ(im.state_dir, "/tmp/state");
  EXPECT_EQ(im.conversations, 4);
  EXPECT_EQ(im.conversation_tokens, 512);
  EXPECT_FALSE(im.repack);
  EXPECT_EQ(im.mmap, std::optional<bool>(true));
  EXPECT_TRUE(im.flash_attn);
  EXPECT_FALSE(InternalModelConfig{}.flash_attn) << "exact by default";
  const ModelConfig& big = cfg.models.at(0);
  EXPECT_EQ(big.provider, Provider::anthropic);
  EXPECT_EQ(big.upstream_model, "claude-x");
  EXPECT_EQ(big.api_key_env, "EXAMPLE_KEY");
  EXPECT_EQ(big.context_window, 200000);
  EXPECT_EQ(big.priority, -2);
  EXPECT_DOUBLE_EQ(big.cost, 2.5);
  EXPECT_TRUE(big.capabilities.tools);
  EXPECT_TRUE(big.capabilities.vision);
  EXPECT_FALSE(big.capabilities.reasoning);
  EXPECT_TRUE(cfg.models.at(1).categories.empty());
  EXPECT_EQ(cfg.fallbacks.at("chat"), (std::vector<std::string>{"small", "big"}));
  EXPECT_EQ(provider_name(Provider::anthropic), "anthropic");
  EXPECT_EQ(strategy_name(Strategy::score), "score");
}

TEST(Config, ReadsEmbeddingCapabilityAndMaxConcurrency) {
  const Config c =
      parse_config(kInternal + kCategories + kModels + "    max_concurrency: 2\n" +
                       "  - name: nomic-embed-text\n    provider: ollama\n"
                       "    base_url: http://127.0.0.1:11434\n    capabilities: {embedding: true}\n" +
                       kDefault,
                   "ok.yaml");
  ASSERT_EQ(c.models.size(), 2u);
  EXPECT_EQ(c.models[0].max_concurrency, 2);
  EXPECT_FALSE(c.models[0].capabilities.embedding);
  EXPECT_EQ(c.models[1].max_concurrency, 0) << "unlimited unless set";
  EXPECT_TRUE(c.models[1].capabilities.embedding);
  EXPECT_TRUE(c.models[1].categories.empty()) << "an embedding-only model needs no category";
}

TEST(Config, ReadsAgentsAndAgentRouting) {
  const std::string yaml = kValid + kAgents +
                           "    skills: [routing, \"разбор входящих\"]\n"
                           "    examples: [\"Куда это отправить?\", \"who handles this?\"]\n"
                           "    accepts: [question, handoff]\n"
                           "agent_routing:\n  threshold: 0.5\n  max_hops: 3\n  max_message_bytes: 1024\n";
  const Config cfg = parse_config(yaml, "agents.yaml");
  ASSERT_EQ(cfg.agents.size(), 2u);
  const AgentConfig& billing = cfg.agents[0];
  EXPECT_EQ(billing.name, "billing");
  EXPECT_EQ(billing.description, "Invoices and payments.");
  EXPECT_EQ(billing.endpoint, "http://127.0.0.1:9001/inbox");
  EXPECT_EQ(billing.accepts, message_kinds()); // every kind when not configured
  EXPECT_FALSE(billing.triage);
  EXPECT_EQ(billing.line, 15);
  const AgentConfig* triage = cfg.triage_agent();
  ASSERT_NE(triage, nullptr);
  EXPECT_EQ(triage->name, "triage");
  EXPECT_EQ(triage->skills, (std::vector<std::string>{"routing", "разбор входящих"}));
  EXPECT_EQ(triage->examples.size(), 2u);
  EXPECT_EQ(triage->accepts, (std::vector<std::string>{"question", "handoff"}));
  EXPECT_EQ(cfg.find_agent("billing"), &cfg.agents[0]);
  EXPECT_EQ(cfg.find_agent("nope"), nullptr);
  EXPECT_DOUBLE_EQ(cfg.agent_routing.threshold, 0.5);
  EXPECT_EQ(cfg.agent_routing.max_hops, 3);
  EXPECT_EQ(cfg.agent_routing.max_message_bytes, 1024);

  // Without the sections: no agents, default routing limits.
  const Config plain = parse_config(kValid, "plain.yaml");
  EXPECT_TRUE(plain.agents.empty());
  EXPECT_EQ(plain.triage_agent(), nullptr);
  const AgentRoutingConfig defaults;
  EXPECT_EQ(plain.agent_routing.max_hops, defaults.max_hops);
  EXPECT_EQ(plain.agent_routing.max_message_bytes, defaults.max_message_bytes);
}

TEST(Config, ShippedClinc150AgentsLoad) {
  const Config cfg = load_config(std::string(TINYROUTE_SOURCE_DIR) + "/config/agents-clinc150.yaml");
  ASSERT_EQ(cfg.agents.size(), 11u);
  ASSERT_NE(cfg.triage_agent(), nullptr);
  EXPECT_EQ(cfg.triage_agent()->name, "triage");
  for (const auto& a : cfg.agents) {
    EXPECT_FALSE(a.description.empty()) << a.name;
    EXPECT_EQ(a.examples.size(), 2u) << a.name;
    EXPECT_EQ(a.accepts, message_kinds()) << a.name;
    EXPECT_EQ(a.skills.size(), a.triage ? 0u : 15u) << a.name; // CLINC150: 15 intents per domain
  }
}

TEST(Config, ReportsEveryProblemInLineOrder) {
  const std::string yaml = kInternal + kCategories +
                           "models:\n"
                           "  - name: tinyllama\n" // line 9: forbidden
                           "    provider: olama\n" // line 10: bad provider
                           "    base_url: http://h:1\n"
                           "    categories: [chat]\n" +
                           "default_category: talk\n"; // line 13
  try {
    parse_config(yaml, "x.yaml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::internal_model_forbidden);
    const std::string m = e.what();
    const auto l7 = m.find("x.yaml:9: models[0].name");
    const auto l8 = m.find("\nx.yaml:10: models[0].provider");
    const auto l11 = m.find("\nx.yaml:13: default_category");
    ASSERT_NE(l7, std::string::npos) << m;
    ASSERT_NE(l8, std::string::npos) << m;
    ASSERT_NE(l11, std::string::npos) << m;
    EXPECT_LT(l7, l8);
    EXPECT_LT(l8, l11);
  }
}

TEST(Config, LoadConfigReadsAFile) {
  test::TempDir dir;
  const std::string path = dir.file("c.yaml");
  test::write_file(path, kValid);
  const Config cfg = load_config(path);
  EXPECT_EQ(cfg.source_path, path);
  EXPECT_EQ(cfg.hash, parse_config(kValid, "other").hash);

  test::write_file(path, kValid + "oops: 1\n");
  try {
    load_config(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::config_invalid);
    EXPECT_EQ(std::string(e.what()).rfind(path + ":14: oops: unknown key", 0), 0u) << e.what();
  }
}

TEST(Config, LoadConfigMissingFileIsIo) {
  try {
    load_config("/nonexistent/tinyroute.yaml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tinyroute.yaml"), std::string::npos);
  }
}

} // namespace
} // namespace tinyroute
