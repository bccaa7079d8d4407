// Config loading and validation. Every problem is collected rather than stopping at the first, so
// `tinyroute config check` can show them all at once, each as "FILE:LINE: key.path: what (what to do)".
#include "tinyroute/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>

#include "config/yaml-reader.h"
#include "core/sha256.h"
#include "tinyroute/error.h"

namespace tinyroute {

using namespace config_yaml; // Reader, Section, Report and the text helpers

namespace {

// ---- the schema --------------------------------------------------------------------------------

const std::vector<std::string> kTopKeys = {
    "internal_model", "categories", "models", "fallbacks", "default_category", "agents",
    "agent_routing",  "gateway",    "rules",  "bus",       "shared_state"};
const std::vector<std::string> kInternalKeys = {
    "model",      "name",       "aliases",      "threads",     "context",       "batch",
    "ubatch",     "repack",     "parallel",     "strategy",    "threshold",     "max_query_tokens",
    "state_dir",  "cache_size", "cache_ttl",    "deadline_ms", "conversations", "conversation_tokens",
    "flash_attn", "mmap",       "hidden_layer", "contexts"};
const std::vector<std::string> kCategoryKeys = {"name", "description", "examples"};
const std::vector<std::string> kModelKeys = {
    "name",           "provider", "base_url", "upstream_model", "api_key_env",    "categories",
    "context_window", "priority", "cost",     "capabilities",   "max_concurrency"};
const std::vector<std::string> kCapabilityKeys = {"tools", "vision", "reasoning", "embedding"};
const std::vector<std::string> kAgentKeys = {"name",     "description", "skills", "examples",
                                             "endpoint", "accepts",     "triage"};
const std::vector<std::string> kAgentRoutingKeys = {"threshold", "max_hops", "max_message_bytes", "strategy"};
const std::vector<std::string> kGatewayKeys = {"listen", "max_body_bytes", "api_keys", "availability_poll"};
const std::vector<std::string> kRuleKeys = {"keywords", "regex", "category", "agent"};
const std::vector<std::string> kApiKeyKeys = {"key_env", "models"};
const std::vector<std::string> kSharedStateKeys = {"redis",      "username_env",  "password_env",    "prefix",
                                                   "timeout_ms", "conversations", "conversation_ttl"};
const std::vector<std::string> kBusKeys = {"redis",
                                           "username_env",
                                           "password_env",
                                           "inbox",
                                           "group",
                                           "consumer",
                                           "agent_stream",
                                           "dead_letter",
                                           "delivered_key",
                                           "stats_key",
                                           "presence_key",
                                           "presence",
                                           "dead_agent",
                                           "mode",
                                           "maxlen",
                                           "batch",
                                           "block_ms",
                                           "claim_idle_ms",
                                           "claim_interval_ms",
                                           "dedup_ttl_s",
                                           "generate"};
const std::vector<std::string> kBusGenerateKeys = {"fields", "max_tokens", "agents"};
const std::vector<std::string> kBusGenerateAgentKeys = {"fields", "max_tokens"};

constexpr std::string_view kForbiddenWhy =
    "is the internal model; it only classifies and routes and can never answer users";

// Category names end up in classifier prompts, grammars and metrics labels: keep them identifiers.
bool valid_category_name(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
  });
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front())) != 0) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; });
}

std::string valid_base_url_problem(std::string_view url) {
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else {
    return "must start with http:// or https:// (e.g. http://127.0.0.1:11434)";
  }
  if (rest.empty() || rest.front() == '/')
    return "has no host after the scheme (e.g. http://127.0.0.1:11434)";
  if (std::any_of(url.begin(), url.end(),
                  [](char c) { return std::isspace(static_cast<unsigned char>(c)); })) {
    return "must not contain spaces";
  }
  return "";
}

void parse_internal(Reader& r, const Section& top, InternalModelConfig& im) {
  const auto node =
      r.value(top, "internal_model", true, "the small routing model, e.g. {model: tinyllama-1.1b-chat}");
  if (!node) return;
  const Section s = r.section(*node, "internal_model", top.line, kInternalKeys);
  if (!s.ok) return;
  if (auto v = r.text(s, "model", true, "a GGUF path or a name known to `tinyroute pull`")) im.model = *v;
  if (auto v = r.text(s, "name", false)) im.name = *v;
  if (auto v = r.text_list(s, "aliases", false)) {
    im.aliases.clear();
    for (const auto& item : *v) im.aliases.push_back(item.value);
  }
  r.positive(s, "threads", im.threads);
  r.positive(s, "context", im.context);
  r.positive(s, "batch", im.batch);
  r.positive(s, "ubatch", im.ubatch);
  if (auto v = r.boolean(s, "repack")) im.repack = *v;
  if (auto v = r.boolean(s, "mmap")) im.mmap = *v;
  if (auto v = r.boolean(s, "flash_attn")) im.flash_attn = *v;
  r.positive(s, "parallel", im.parallel);
  r.positive(s, "max_query_tokens", im.max_query_tokens);
  if (auto v = r.integer(s, "hidden_layer", false)) {
    if (*v < 0 || *v > 1024)
      r.report().add(line_of(s.fields.at("hidden_layer"), s.line), "internal_model.hidden_layer",
                     "must be 0 (the final layer) or a block number, got " + std::to_string(*v));
    else
      im.hidden_layer = static_cast<int>(*v);
  }
  if (auto v = r.text(s, "strategy", false)) {
    if (auto st = parse_strategy(*v)) {
      im.strategy = *st;
    } else {
      r.report().add(line_of(s.fields.at("strategy"), s.line), "internal_model.strategy",
                     quoted(*v) + " is not a strategy; use choice, score, centroid, head or fused");
    }
  }
  if (auto v = r.number(s, "threshold", false)) {
    if (*v < 0 || *v > 1) {
      std::ostringstream out;
      out << *v << " is out of range; use a confidence between 0 and 1";
      r.report().add(line_of(s.fields.at("threshold"), s.line), "internal_model.threshold", out.str());
    } else {
      im.threshold = *v;
    }
  }
  if (auto v = r.text(s, "state_dir", false, "", false)) im.state_dir = *v;
  if (auto v = r.integer(s, "cache_size", false)) {
    if (*v < 0 || *v > 10'000'000) {
      r.report().add(line_of(s.fields.at("cache_size"), s.line), "internal_model.cache_size",
                     std::to_string(*v) + " is out of range; use 0 (off) to 10000000 decisions");
    } else {
      im.cache_size = static_cast<int>(*v);
    }
  }
  if (auto v = r.number(s, "cache_ttl", false)) {
    if (*v <= 0) {
      r.report().add(line_of(s.fields.at("cache_ttl"), s.line), "internal_model.cache_ttl",
                     "must be a positive number of seconds");
    } else {
      im.cache_ttl_s = *v;
    }
  }
  if (auto v = r.integer(s, "deadline_ms", false)) {
    if (*v < 0 || *v > 3'600'000) {
      r.report().add(line_of(s.fields.at("deadline_ms"), s.line), "internal_model.deadline_ms",
                     std::to_string(*v) + " is out of range; use 0 (no deadline) to 3600000 ms");
    } else {
      im.deadline_ms = static_cast<int>(*v);
    }
  }
  if (auto v = r.integer(s, "contexts", false)) {
    if (*v < 1 || *v > 64)
      r.report().add(line_of(s.fields.at("contexts"), s.line), "internal_model.contexts",
                     std::to_string(*v) +
                         " is out of range; use 1 (one cache for everything) to 64 contexts");
    else
      im.contexts = static_cast<int>(*v);
  }
  // Each kept conversation holds an engine sequence id (at most 256 in all, shared with requests).
  if (auto v = r.integer(s, "conversations", false)) {
    if (*v < 0 || *v > 128) {
      r.report().add(line_of(s.fields.at("conversations"), s.line), "internal_model.conversations",
                     std::to_string(*v) + " is out of range; use 0 (none kept) to 128 conversations");
    } else {
      im.conversations = static_cast<int>(*v);
    }
  }
  if (auto v = r.integer(s, "conversation_tokens", false)) {
    if (*v < im.max_query_tokens || *v >= im.context) {
      r.report().add(line_of(s.fields.at("conversation_tokens"), s.line),
                     "internal_model.conversation_tokens",
                     std::to_string(*v) + " is out of range; use at least max_query_tokens (" +
                         std::to_string(im.max_query_tokens) + ") and less than context (" +
                         std::to_string(im.context) + ")");
    } else {
      im.conversation_tokens = static_cast<int>(*v);
    }
  }
}

// `defined` maps each accepted category name to where its name was written.
void parse_categories(Reader& r, const Section& top, Config& cfg, std::map<std::string, Item>& defined) {
  const auto node = r.value(top, "categories", true, "a list of {name, description, examples}");
  if (!node) return;
  if (!node->IsSequence()) {
    r.report().add(line_of(*node, top.line), "categories",
                   "expected a list of {name, description, examples}, got " + describe(*node));
    return;
  }
  if (node->size() == 0) {
    r.report().add(line_of(*node, top.line), "categories", "at least one category is required");
    return;
  }
  for (std::size_t i = 0; i < node->size(); ++i) {
    const std::string path = index_path("categories", i);
    const Section s = r.section((*node)[i], path, line_of(*node, top.line), kCategoryKeys);
    if (!s.ok) continue;
    CategoryConfig category;
    const auto name = r.text(s, "name", true, "a short identifier such as coding");
    if (auto v = r.text(s, "description", true, "one sentence the classifier reads"))
      category.description = *v;
    if (auto v = r.text_list(s, "examples", false)) {
      for (const auto& item : *v) category.examples.push_back(item.value);
    }
    if (!name) continue;
    const int name_line = line_of(s.fields.at("name"), s.line);
    if (!valid_category_name(*name)) {
      r.report().add(name_line, path + ".name",
                     quoted(*name) + " may only use letters, digits, '_', '-' and '.' (e.g. code_review)");
      continue;
    }
    if (const auto seen = defined.find(*name); seen != defined.end()) {
      r.report().add(name_line, path + ".name",
                     quoted(*name) + " is already defined at line " + std::to_string(seen->second.line) +
                         "; category names must be unique");
      continue;
    }
    defined.emplace(*name, Item{*name, path, name_line});
    category.name = *name;
    cfg.categories.push_back(std::move(category));
  }
}

std::vector<std::string> category_names(const Config& cfg) {
  std::vector<std::string> names;
  for (const auto& c : cfg.categories) names.push_back(c.name);
  return names;
}

std::vector<std::string> model_names(const Config& cfg) {
  std::vector<std::string> names;
  for (const auto& m : cfg.models) names.push_back(m.name);
  return names;
}

void parse_model(Reader& r, const Section& s, Config& cfg, std::map<std::string, int>& lines) {
  Report& report = r.report();
  ModelConfig m;
  m.line = s.line;
  const auto name = r.text(s, "name", true, "the name clients ask for, e.g. qwen2.5-coder:32b");
  int name_line = s.line;
  if (name) {
    name_line = line_of(s.fields.at("name"), s.line);
    m.name = *name;
    if (cfg.is_internal_model_name(*name)) {
      report.add(name_line, s.path + ".name",
                 quoted(*name) + " " + std::string(kForbiddenWhy) + " — remove it from models", true);
    }
  }
  if (auto v = r.text(s, "provider", true, "one of openai, ollama, anthropic")) {
    if (*v == "openai") {
      m.provider = Provider::openai;
    } else if (*v == "ollama") {
      m.provider = Provider::ollama;
    } else if (*v == "anthropic") {
      m.provider = Provider::anthropic;
    } else {
      report.add(line_of(s.fields.at("provider"), s.line), s.path + ".provider",
                 quoted(*v) + " is not a provider; use openai, ollama or anthropic" +
                     did_you_mean(*v, {"openai", "ollama", "anthropic"}));
    }
  }
  if (auto v = r.text(s, "base_url", true, "e.g. http://127.0.0.1:11434")) {
    if (const std::string problem = valid_base_url_problem(*v); !problem.empty()) {
      report.add(line_of(s.fields.at("base_url"), s.line), s.path + ".base_url", quoted(*v) + " " + problem);
    }
    m.base_url = *v;
  }
  if (auto v = r.text(s, "upstream_model", false)) {
    m.upstream_model = *v;
    if (cfg.is_internal_model_name(*v)) {
      report.add(line_of(s.fields.at("upstream_model"), s.line), s.path + ".upstream_model",
                 quoted(*v) + " " + std::string(kForbiddenWhy) + " — point this entry at a large model",
                 true);
    }
  } else {
    m.upstream_model = m.name;
  }
  if (auto v = r.text(s, "api_key_env", false, "", false)) {
    if (!v->empty() && !valid_env_name(*v)) {
      report.add(line_of(s.fields.at("api_key_env"), s.line), s.path + ".api_key_env",
                 "is not an environment variable name; put the key in a variable and name it here "
                 "(e.g. OPENAI_API_KEY), never the key itself");
    } else {
      m.api_key_env = *v;
    }
  }
  if (auto v = r.text_list(s, "categories", false)) {
    for (const auto& item : *v) {
      if (std::find(m.categories.begin(), m.categories.end(), item.value) != m.categories.end()) {
        report.add(item.line, item.path, quoted(item.value) + " is listed twice; keep one");
        continue;
      }
      // Without any valid category the categories section already failed: one root cause, one message.
      if (!cfg.categories.empty() && !cfg.find_category(item.value)) {
        report.add(item.line, item.path,
                   quoted(item.value) + " is not a defined category" +
                       did_you_mean(item.value, category_names(cfg)) +
                       " (defined: " + join(category_names(cfg)) + ")");
      }
      m.categories.push_back(item.value);
    }
  }
  r.positive(s, "context_window", m.context_window);
  if (auto v = r.integer(s, "priority", false)) m.priority = static_cast<int>(*v);
  if (auto v = r.number(s, "cost", false)) {
    if (*v < 0) {
      report.add(line_of(s.fields.at("cost"), s.line), s.path + ".cost", "must not be negative");
    } else {
      m.cost = *v;
    }
  }
  if (auto node = r.value(s, "capabilities", false)) {
    const Section caps = r.section(*node, s.path + ".capabilities", s.line, kCapabilityKeys);
    if (auto v = r.boolean(caps, "tools")) m.capabilities.tools = *v;
    if (auto v = r.boolean(caps, "vision")) m.capabilities.vision = *v;
    if (auto v = r.boolean(caps, "reasoning")) m.capabilities.reasoning = *v;
    if (auto v = r.boolean(caps, "embedding")) m.capabilities.embedding = *v;
  }
  r.positive(s, "max_concurrency", m.max_concurrency);
  if (!name) return;
  if (const auto seen = lines.find(*name); seen != lines.end()) {
    report.add(name_line, s.path + ".name",
               quoted(*name) + " is already defined at line " + std::to_string(seen->second) +
                   "; model names must be unique (give the second one another name and set upstream_model)");
    return;
  }
  lines.emplace(*name, name_line);
  // Kept even when it has problems, so later references to it do not report twice.
  cfg.models.push_back(std::move(m));
}

void parse_models(Reader& r, const Section& top, Config& cfg) {
  const auto node = r.value(top, "models", true, "a list of {name, provider, base_url, categories}");
  if (!node) return;
  if (!node->IsSequence()) {
    r.report().add(line_of(*node, top.line), "models",
                   "expected a list of {name, provider, base_url, categories}, got " + describe(*node));
    return;
  }
  if (node->size() == 0) {
    r.report().add(line_of(*node, top.line), "models", "at least one model is required");
    return;
  }
  std::map<std::string, int> lines;
  for (std::size_t i = 0; i < node->size(); ++i) {
    const Section s = r.section((*node)[i], index_path("models", i), line_of(*node, top.line), kModelKeys);
    if (s.ok) parse_model(r, s, cfg, lines);
  }
}

void parse_fallbacks(Reader& r, const Section& top, Config& cfg) {
  const auto node = r.value(top, "fallbacks", false);
  if (!node) return;
  // Any category name is allowed as a key here; unknown ones are reported below with a hint.
  if (!node->IsMap()) {
    r.report().add(line_of(*node, top.line), "fallbacks",
                   "expected a mapping of category: [model, ...], got " + describe(*node));
    return;
  }
  Report& report = r.report();
  for (auto it = node->begin(); it != node->end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const int key_line = line_of(key, top.line);
    if (!key.IsScalar()) {
      report.add(key_line, "fallbacks", "keys must be category names, got " + describe(key));
      continue;
    }
    const std::string category = key.Scalar();
    const std::string path = "fallbacks." + category;
    if (cfg.fallbacks.contains(category)) {
      report.add(key_line, path, "given twice; keep one list");
      continue;
    }
    if (!cfg.categories.empty() && !cfg.find_category(category)) {
      report.add(key_line, path,
                 quoted(category) + " is not a defined category" +
                     did_you_mean(category, category_names(cfg)) + " (defined: " + join(category_names(cfg)) +
                     ")");
    }
    const auto items = r.text_list(value, path, key_line);
    if (!items) continue;
    std::vector<std::string> list;
    for (const auto& item : *items) {
      if (cfg.is_internal_model_name(item.value)) {
        report.add(item.line, item.path,
                   quoted(item.value) + " " + std::string(kForbiddenWhy) +
                       " — remove it from this fallback list",
                   true);
        continue;
      }
      if (!cfg.models.empty() && !cfg.find_model(item.value)) {
        report.add(item.line, item.path,
                   quoted(item.value) + " is not a defined model" +
                       did_you_mean(item.value, model_names(cfg)) + "; fallbacks name entries of models");
        continue;
      }
      if (std::find(list.begin(), list.end(), item.value) != list.end()) {
        report.add(item.line, item.path, quoted(item.value) + " is listed twice; keep one");
        continue;
      }
      list.push_back(item.value);
    }
    cfg.fallbacks.emplace(category, std::move(list));
  }
}

void parse_agent(Reader& r, const Section& s, Config& cfg, std::map<std::string, int>& names,
                 int& triage_line) {
  Report& report = r.report();
  AgentConfig a;
  a.line = s.line;
  const auto name = r.text(s, "name", true, "a short identifier such as billing");
  if (auto v = r.text(s, "description", true, "one sentence the agent router reads")) a.description = *v;
  if (auto v = r.text_list(s, "skills", false)) {
    for (const auto& item : *v) a.skills.push_back(item.value);
  }
  if (auto v = r.text_list(s, "examples", false)) {
    for (const auto& item : *v) a.examples.push_back(item.value);
  }
  if (auto v = r.text(s, "endpoint", true, "where its messages go, e.g. http://127.0.0.1:9001/inbox")) {
    if (const std::string problem = valid_base_url_problem(*v); !problem.empty()) {
      report.add(line_of(s.fields.at("endpoint"), s.line), s.path + ".endpoint", quoted(*v) + " " + problem);
    }
    a.endpoint = *v;
  }
  if (auto v = r.text_list(s, "accepts", false)) {
    for (const auto& item : *v) {
      const auto& kinds = message_kinds();
      if (std::find(kinds.begin(), kinds.end(), item.value) == kinds.end()) {
        report.add(item.line, item.path,
                   quoted(item.value) + " is not a message kind" + did_you_mean(item.value, kinds) +
                       " (kinds: " + join(kinds) + ")");
        continue;
      }
      if (std::find(a.accepts.begin(), a.accepts.end(), item.value) != a.accepts.end()) {
        report.add(item.line, item.path, quoted(item.value) + " is listed twice; keep one");
        continue;
      }
      a.accepts.push_back(item.value);
    }
    if (v->empty()) {
      report.add(line_of(s.fields.at("accepts"), s.line), s.path + ".accepts",
                 "is empty; list the kinds it takes or remove the key (it then takes every kind)");
    }
  } else if (!s.fields.contains("accepts")) {
    a.accepts = message_kinds();
  }
  if (auto v = r.boolean(s, "triage"); v && *v) {
    const int line = line_of(s.fields.at("triage"), s.line);
    if (triage_line != 0) {
      report.add(line, s.path + ".triage",
                 "another agent is already the triage agent (line " + std::to_string(triage_line) +
                     "); exactly one agent may have triage: true");
    } else {
      triage_line = line;
      a.triage = true;
    }
  }
  if (!name) return;
  const int name_line = line_of(s.fields.at("name"), s.line);
  if (!valid_category_name(*name)) {
    report.add(name_line, s.path + ".name",
               quoted(*name) + " may only use letters, digits, '_', '-' and '.' (e.g. billing_support)");
    return;
  }
  if (const auto seen = names.find(*name); seen != names.end()) {
    report.add(name_line, s.path + ".name",
               quoted(*name) + " is already defined at line " + std::to_string(seen->second) +
                   "; agent names must be unique");
    return;
  }
  names.emplace(*name, name_line);
  a.name = *name;
  cfg.agents.push_back(std::move(a));
}

void parse_agents(Reader& r, const Section& top, Config& cfg) {
  const auto node = r.value(top, "agents", false, "a list of {name, description, endpoint, ...}");
  if (!node) return;
  const int line = line_of(*node, top.line);
  if (!node->IsSequence()) {
    r.report().add(
        line, "agents",
        "expected a list of {name, description, skills, examples, endpoint, accepts, triage}, got " +
            describe(*node));
    return;
  }
  if (node->size() < 2) {
    r.report().add(line, "agents",
                   "at least two agents are required (one of them with triage: true); remove the section "
                   "if there is nothing to route between");
    return;
  }
  std::map<std::string, int> names;
  int triage_line = 0;
  std::size_t entries = 0;
  for (std::size_t i = 0; i < node->size(); ++i) {
    const Section s = r.section((*node)[i], index_path("agents", i), line, kAgentKeys);
    if (!s.ok) continue;
    ++entries;
    parse_agent(r, s, cfg, names, triage_line);
  }
  // Only when every entry could be read: a broken entry may be the one meant as triage.
  if (triage_line == 0 && entries == node->size()) {
    r.report().add(line, "agents",
                   "no agent has triage: true; mark exactly one agent (it receives messages routing is "
                   "unsure about)");
  }
}

void parse_agent_routing(Reader& r, const Section& top, AgentRoutingConfig& ar) {
  const auto node = r.value(top, "agent_routing", false);
  if (!node) return;
  const Section s = r.section(*node, "agent_routing", top.line, kAgentRoutingKeys);
  if (!s.ok) return;
  if (auto v = r.number(s, "threshold", false)) {
    if (*v < 0 || *v > 1) {
      std::ostringstream out;
      out << *v << " is out of range; use a confidence between 0 and 1";
      r.report().add(line_of(s.fields.at("threshold"), s.line), "agent_routing.threshold", out.str());
    } else {
      ar.threshold = *v;
    }
  }
  r.positive(s, "max_hops", ar.max_hops);
  r.positive(s, "max_message_bytes", ar.max_message_bytes);
  if (auto v = r.text(s, "strategy", false)) {
    if (auto st = parse_strategy(*v)) {
      ar.strategy = *st;
    } else {
      r.report().add(line_of(s.fields.at("strategy"), s.line), "agent_routing.strategy",
                     quoted(*v) + " is not a strategy; use choice, score, centroid, head or fused");
    }
  }
}

// "HOST:PORT" or "[V6]:PORT"; an empty string when it parses, else what is wrong.
std::string parse_listen(const std::string& text, GatewayConfig& gw) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return "must be HOST:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"";
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) return "has an unclosed [ in the IPv6 address";
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return "writes an IPv6 address without brackets; use \"[" + host + "]:" + port + "\"";
  }
  int value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value < 0 || value > 65535)
    return "has port " + quoted(port) + "; use a number from 0 to 65535 (0 = any free port)";
  gw.host = host;
  gw.port = value;
  return "";
}

void parse_gateway(Reader& r, const Section& top, const Config& cfg, GatewayConfig& gw) {
  const auto node = r.value(top, "gateway", false);
  if (!node) return;
  const Section s = r.section(*node, "gateway", top.line, kGatewayKeys);
  if (!s.ok) return;
  Report& report = r.report();
  if (auto v = r.text(s, "listen", false, "HOST:PORT, e.g. \"127.0.0.1:8080\"")) {
    if (const std::string problem = parse_listen(*v, gw); !problem.empty())
      report.add(line_of(s.fields.at("listen"), s.line), "gateway.listen", quoted(*v) + " " + problem);
  }
  if (auto v = r.number(s, "availability_poll", false)) {
    if (*v < 0 || *v > 86400) {
      report.add(line_of(s.fields.at("availability_poll"), s.line), "gateway.availability_poll",
                 "is out of range; use 0 (off) to 86400 seconds");
    } else {
      gw.availability_poll_s = *v;
    }
  }
  int max_body = 0;
  r.positive(s, "max_body_bytes", max_body);
  if (max_body > 0) gw.max_body_bytes = static_cast<std::size_t>(max_body);
  const auto keys = r.value(s, "api_keys", false, "a list of {key_env: ENV_NAME, models: [...]}");
  if (!keys) return;
  const int keys_line = line_of(*keys, s.line);
  if (!keys->IsSequence()) {
    report.add(keys_line, "gateway.api_keys",
               "expected a list of {key_env: ENV_NAME, models: [...]}, got " + describe(*keys));
    return;
  }
  std::map<std::string, int> seen;
  for (std::size_t i = 0; i < keys->size(); ++i) {
    const Section k = r.section((*keys)[i], index_path("gateway.api_keys", i), keys_line, kApiKeyKeys);
    if (!k.ok) continue;
    GatewayApiKeyConfig key;
    key.line = k.line;
    if (auto v = r.text(k, "key_env", true,
                        "the environment variable that holds the key; keys never go in the file")) {
      const int line = line_of(k.fields.at("key_env"), k.line);
      if (!valid_env_name(*v)) {
        report.add(line, k.path + ".key_env",
                   quoted(*v) + " is not an environment variable name (letters, digits and '_', e.g. "
                                "TINYROUTE_KEY_TEAM_A); the key itself belongs in that variable, not here");
      } else if (const auto dup = seen.find(*v); dup != seen.end()) {
        report.add(line, k.path + ".key_env",
                   quoted(*v) + " is already used at line " + std::to_string(dup->second) +
                       "; keep one entry");
      } else {
        seen.emplace(*v, line);
        key.key_env = *v;
      }
    }
    if (auto items = r.text_list(k, "models", true)) {
      if (items->empty()) {
        report.add(line_of(k.fields.at("models"), k.line), k.path + ".models",
                   "is empty; list the models this key may use, or [\"*\"] for all");
      }
      for (const auto& item : *items) {
        if (item.value != "*" && cfg.is_internal_model_name(item.value)) {
          report.add(item.line, item.path,
                     quoted(item.value) + " " + std::string(kForbiddenWhy) +
                         " — remove it from this key's models",
                     true);
          continue;
        }
        if (item.value != "*" && !cfg.models.empty() && !cfg.find_model(item.value)) {
          report.add(item.line, item.path,
                     quoted(item.value) + " is not a defined model" +
                         did_you_mean(item.value, model_names(cfg)) + " (use \"*\" for every model)");
          continue;
        }
        key.models.push_back(item.value);
      }
    }
    if (!key.key_env.empty()) gw.api_keys.push_back(std::move(key));
  }
}

// `rules:` after categories and agents, which they name.
void parse_rules(Reader& r, const Section& top, Config& cfg) {
  const auto node =
      r.value(top, "rules", false, "a list of {keywords: [...] or regex: ..., category or agent}");
  if (!node) return;
  Report& report = r.report();
  const int line = line_of(*node, top.line);
  if (!node->IsSequence()) {
    report.add(line, "rules",
               "expected a list of {keywords: [...] or regex: ..., category: ... or agent: ...}, got " +
                   describe(*node));
    return;
  }
  std::vector<std::string> agent_names;
  for (const auto& a : cfg.agents) agent_names.push_back(a.name);
  for (std::size_t i = 0; i < node->size(); ++i) {
    const Section s = r.section((*node)[i], index_path("rules", i), line, kRuleKeys);
    if (!s.ok) continue;
    RuleConfig rule;
    rule.line = s.line;
    bool ok = true;
    if (auto items = r.text_list(s, "keywords", false)) {
      for (const auto& item : *items) {
        rule.keywords.push_back(item.value);
      }
      if (items->empty()) {
        report.add(line_of(s.fields.at("keywords"), s.line), s.path + ".keywords",
                   "is empty; list words (e.g. [код, code]) or remove the key");
        ok = false;
      }
    } else if (s.fields.contains("keywords")) {
      ok = false;
    }
    if (auto v = r.text(s, "regex", false)) {
      rule.regex = *v; // compiled, and refused with this line, by RuleSet
      rule.regex_line = line_of(s.fields.at("regex"), s.line);
    } else if (s.fields.contains("regex")) {
      ok = false;
    }
    if (ok && rule.keywords.empty() && rule.regex.empty()) {
      report.add(s.line, s.path, "has neither keywords nor regex; give it what to match");
      ok = false;
    }
    if (auto v = r.text(s, "category", false)) {
      if (!cfg.categories.empty() && !cfg.find_category(*v)) {
        report.add(line_of(s.fields.at("category"), s.line), s.path + ".category",
                   quoted(*v) + " is not a defined category" + did_you_mean(*v, category_names(cfg)) +
                       " (defined: " + join(category_names(cfg)) + ")");
        ok = false;
      } else {
        rule.category = *v;
      }
    }
    if (auto v = r.text(s, "agent", false)) {
      if (!cfg.find_agent(*v)) {
        report.add(line_of(s.fields.at("agent"), s.line), s.path + ".agent",
                   quoted(*v) + " is not a defined agent" +
                       (agent_names.empty()
                            ? std::string(" (the config has no agents section)")
                            : did_you_mean(*v, agent_names) + " (defined: " + join(agent_names) + ")"));
        ok = false;
      } else {
        rule.agent = *v;
      }
    }
    if (!s.fields.contains("category") && !s.fields.contains("agent")) {
      report.add(s.line, s.path, "has no target; give it a category, an agent, or both");
      ok = false;
    }
    if (ok) cfg.rules.push_back(std::move(rule));
  }
}

// One `generate` mapping (the bus section's or an agent's): the fields the model writes, its budget.
void parse_generate_entry(Reader& r, const Section& s, BusGenerateConfig& out) {
  Report& report = r.report();
  if (auto items = r.text_list(s, "fields", false)) {
    std::vector<std::string> fields;
    for (const auto& item : *items) {
      if (item.value != "intent" && item.value != "summary") {
        report.add(item.line, item.path,
                   quoted(item.value) +
                       " is not a generated field; use intent or summary (the other envelope "
                       "fields come from the analyze pass and from rules)");
      } else if (std::find(fields.begin(), fields.end(), item.value) != fields.end()) {
        report.add(item.line, item.path, quoted(item.value) + " is given twice; keep one");
      } else {
        fields.push_back(item.value);
      }
    }
    std::sort(fields.begin(), fields.end()); // intent before summary: the schema's order
    out.fields = std::move(fields);
  }
  if (auto v = r.integer(s, "max_tokens", false)) {
    if (*v < 8 || *v > 512) {
      report.add(line_of(s.fields.at("max_tokens"), s.line), child_path(s.path, "max_tokens"),
                 "must be 8 to 512 tokens, got " + std::to_string(*v) +
                     " (the grammar bounds the fields; 64 fits an intent and a one-sentence summary)");
    } else {
      out.max_tokens = static_cast<int>(*v);
    }
  }
}

// bus.generate: the section-wide setting, then one entry per configured agent that replaces it.
void parse_generate(Reader& r, const Section& bus_section, const Config& cfg, BusConfig& bus) {
  const auto node = r.value(bus_section, "generate", false);
  if (!node) return;
  const Section s = r.section(*node, "bus.generate", bus_section.line, kBusGenerateKeys);
  if (!s.ok) return;
  parse_generate_entry(r, s, bus.generate);
  const auto agents = r.value(s, "agents", false);
  if (!agents) return;
  std::vector<std::string> names;
  for (const auto& a : cfg.agents) names.push_back(a.name);
  const Section per_agent = r.section(*agents, "bus.generate.agents", s.line, names);
  if (!per_agent.ok) return;
  for (const auto& [name, entry_node] : per_agent.fields) {
    const Section e =
        r.section(entry_node, child_path(per_agent.path, name), per_agent.line, kBusGenerateAgentKeys);
    if (!e.ok) continue;
    BusGenerateConfig g = bus.generate; // what the entry does not say, the section's setting says
    parse_generate_entry(r, e, g);
    bus.generate_agents[name] = std::move(g);
  }
}

// The bus section: Redis address, stream and key names (patterns must keep their placeholder), limits.
void parse_bus(Reader& r, const Section& top, const Config& cfg, BusConfig& bus) {
  const auto node = r.value(top, "bus", false);
  if (!node) return;
  const Section s = r.section(*node, "bus", top.line, kBusKeys);
  if (!s.ok) return;
  Report& report = r.report();
  bus.enabled = true;
  bus.line = s.line;
  const auto at = [&](const char* key) { return line_of(s.fields.at(key), s.line); };
  if (auto v = r.text(s, "redis", false, "redis://HOST:PORT[/DB] or unix:///PATH")) {
    if (!v->starts_with("redis://") && !v->starts_with("unix://")) {
      report.add(at("redis"), "bus.redis",
                 quoted(*v) + " must start with redis:// or unix:// (e.g. redis://127.0.0.1:6379/0)");
    } else if (v->find('@') != std::string::npos) {
      report.add(at("redis"), "bus.redis",
                 "must not hold a user or password; name the environment variables in bus.username_env "
                 "and bus.password_env instead");
    } else {
      bus.redis = *v;
    }
  }
  for (const char* key : {"username_env", "password_env"}) {
    if (auto v = r.text(s, key, false)) {
      if (!valid_env_name(*v)) {
        report.add(at(key), std::string("bus.") + key,
                   quoted(*v) + " is not an environment variable name (letters, digits and '_')");
      } else {
        (std::string_view(key) == "username_env" ? bus.username_env : bus.password_env) = *v;
      }
    }
  }
  const auto name = [&](const char* key, std::string& out, std::string_view placeholder) {
    auto v = r.text(s, key, false);
    if (!v) return;
    if (!placeholder.empty() && v->find(placeholder) == std::string::npos) {
      report.add(at(key), std::string("bus.") + key,
                 quoted(*v) + " must contain " + std::string(placeholder) + " (e.g. " + quoted(out) + ")");
      return;
    }
    out = *v;
  };
  name("inbox", bus.inbox, "");
  name("group", bus.group, "");
  name("consumer", bus.consumer, "");
  name("agent_stream", bus.agent_stream, "{agent}");
  name("dead_letter", bus.dead_letter, "");
  name("delivered_key", bus.delivered_key, "{id}");
  name("stats_key", bus.stats_key, "");
  name("presence_key", bus.presence_key, "{agent}");
  if (auto v = r.boolean(s, "presence")) bus.presence = *v;
  if (auto v = r.text(s, "dead_agent", false)) {
    if (*v == "triage") {
      bus.dead_agent = DeadAgentPolicy::triage;
    } else if (*v == "wait") {
      bus.dead_agent = DeadAgentPolicy::wait;
    } else {
      report.add(at("dead_agent"), "bus.dead_agent",
                 quoted(*v) + " is not a policy; use triage (send to the triage agent) or wait (keep it "
                              "pending until the agent is alive)");
    }
  }
  if (auto v = r.text(s, "mode", false)) {
    if (*v == "model") {
      bus.mode = BusMode::model;
    } else if (*v == "forward") {
      bus.mode = BusMode::forward;
    } else {
      report.add(at("mode"), "bus.mode",
                 quoted(*v) + " is not a mode; use model (route and format with the internal model) or "
                              "forward (no model; unaddressed messages go to the triage agent)");
    }
  }
  r.positive(s, "maxlen", bus.maxlen);
  r.positive(s, "batch", bus.batch);
  r.positive(s, "block_ms", bus.block_ms);
  r.positive(s, "claim_idle_ms", bus.claim_idle_ms);
  r.positive(s, "claim_interval_ms", bus.claim_interval_ms);
  r.positive(s, "dedup_ttl_s", bus.dedup_ttl_s);
  parse_generate(r, s, cfg, bus);
  const bool generates =
      !bus.generate.fields.empty() || std::any_of(bus.generate_agents.begin(), bus.generate_agents.end(),
                                                  [](const auto& g) { return !g.second.fields.empty(); });
  if (bus.mode == BusMode::forward && generates) {
    report.add(at("generate"), "bus.generate",
               "generation needs the internal model; use mode: model or remove bus.generate");
  }
  if (bus.mode == BusMode::model && cfg.categories.size() == 1) {
    report.add(
        s.fields.contains("mode") ? at("mode") : s.line, "bus.mode",
        "model routes with analyze(), which needs at least two categories; add one or use mode: forward");
  }
  if (cfg.agents.empty()) {
    report.add(s.line, "bus",
               "needs an agents section: the bus delivers to agents' streams and routes between them");
  }
}

// The shared_state section: serve's conversations and decision cache in Redis. The connection is the
// bus's unless it names its own (the same URL rules and credential variables).
void parse_shared_state(Reader& r, const Section& top, const Config& cfg, SharedStateConfig& shared) {
  const auto node = r.value(top, "shared_state", false);
  if (!node) return;
  const Section s = r.section(*node, "shared_state", top.line, kSharedStateKeys);
  if (!s.ok) return;
  Report& report = r.report();
  shared.enabled = true;
  shared.line = s.line;
  const auto at = [&](const char* key) { return line_of(s.fields.at(key), s.line); };
  if (cfg.bus.enabled) {
    shared.redis = cfg.bus.redis;
    shared.username_env = cfg.bus.username_env;
    shared.password_env = cfg.bus.password_env;
  }
  if (auto v = r.text(s, "redis", false, "redis://HOST:PORT[/DB] or unix:///PATH")) {
    if (!v->starts_with("redis://") && !v->starts_with("unix://")) {
      report.add(at("redis"), "shared_state.redis",
                 quoted(*v) + " must start with redis:// or unix:// (e.g. redis://127.0.0.1:6379/0)");
    } else if (v->find('@') != std::string::npos) {
      report.add(at("redis"), "shared_state.redis",
                 "must not hold a user or password; name the environment variables in "
                 "shared_state.username_env and shared_state.password_env instead");
    } else {
      shared.redis = *v;
    }
  } else if (!s.fields.contains("redis") && !cfg.bus.enabled) {
    report.add(s.line, "shared_state.redis",
               "is missing: name the Redis server (redis://HOST:PORT[/DB] or unix:///PATH), or add a bus "
               "section whose connection it then shares");
  }
  for (const char* key : {"username_env", "password_env"}) {
    if (auto v = r.text(s, key, false)) {
      if (!valid_env_name(*v)) {
        report.add(at(key), std::string("shared_state.") + key,
                   quoted(*v) + " is not an environment variable name (letters, digits and '_')");
      } else {
        (std::string_view(key) == "username_env" ? shared.username_env : shared.password_env) = *v;
      }
    }
  }
  if (auto v = r.text(s, "prefix", false)) {
    if (v->empty() || v->find_first_of(" \t\r\n") != std::string::npos) {
      report.add(at("prefix"), "shared_state.prefix",
                 quoted(*v) + " must be a non-empty key prefix without whitespace (e.g. tinyroute:shared)");
    } else {
      shared.prefix = *v;
    }
  }
  r.positive(s, "timeout_ms", shared.timeout_ms);
  r.positive(s, "conversations", shared.conversations);
  r.positive(s, "conversation_ttl", shared.conversation_ttl_s);
}

// Every category must reach a model, or requests classified into it could never be answered.
void check_served(Report& report, const Config& cfg, const std::map<std::string, Item>& defined) {
  for (const auto& category : cfg.categories) {
    const bool served = std::any_of(cfg.models.begin(), cfg.models.end(), [&](const ModelConfig& m) {
      return std::find(m.categories.begin(), m.categories.end(), category.name) != m.categories.end();
    });
    const auto fb = cfg.fallbacks.find(category.name);
    if (served || (fb != cfg.fallbacks.end() && !fb->second.empty())) continue;
    const Item& where = defined.at(category.name);
    report.add(where.line, where.path,
               quoted(category.name) + " has no model; add it to some model's categories or add fallbacks." +
                   category.name);
  }
}

} // namespace

std::string_view provider_name(Provider provider) {
  switch (provider) {
  case Provider::openai:
    return "openai";
  case Provider::ollama:
    return "ollama";
  case Provider::anthropic:
    return "anthropic";
  }
  return "unknown";
}

std::string_view strategy_name(Strategy strategy) {
  switch (strategy) {
  case Strategy::score:
    return "score";
  case Strategy::choice:
    return "choice";
  case Strategy::centroid:
    return "centroid";
  case Strategy::head:
    return "head";
  case Strategy::fused:
    return "fused";
  }
  return "unknown";
}

std::optional<Strategy> parse_strategy(std::string_view name) {
  for (Strategy s : {Strategy::choice, Strategy::score, Strategy::centroid, Strategy::head, Strategy::fused})
    if (name == strategy_name(s)) return s;
  return std::nullopt;
}

const CategoryConfig* Config::find_category(const std::string& name) const {
  for (const auto& c : categories) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const ModelConfig* Config::find_model(const std::string& name) const {
  for (const auto& m : models) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

const AgentConfig* Config::find_agent(const std::string& name) const {
  for (const auto& a : agents) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

const BusGenerateConfig& BusConfig::generation_for(const std::string& agent) const {
  const auto it = generate_agents.find(agent);
  return it == generate_agents.end() ? generate : it->second;
}

const AgentConfig* Config::triage_agent() const {
  for (const auto& a : agents) {
    if (a.triage) return &a;
  }
  return nullptr;
}

Config parse_config(const std::string& yaml_text, const std::string& source_name) {
  Config cfg;
  cfg.source_path = source_name;
  cfg.hash = sha256_hex(yaml_text);
  Report report;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    report.add(e.mark.is_null() ? 1 : e.mark.line + 1, "",
               "not valid YAML: " + e.msg + " (check indentation, quotes and brackets)");
    report.raise(source_name);
  }
  if (!root.IsMap()) {
    report.add(1, "",
               "expected a mapping with internal_model, categories, models and default_category, got " +
                   describe(root));
    report.raise(source_name);
  }
  try {
    Reader reader(report);
    const Section top = reader.section(root, "", 1, kTopKeys);
    // Fixed order whatever the file's order: the internal model first (the guard needs its names),
    // categories before the models and fallbacks that refer to them.
    parse_internal(reader, top, cfg.internal_model);
    std::map<std::string, Item> category_defs;
    parse_categories(reader, top, cfg, category_defs);
    parse_models(reader, top, cfg);
    parse_fallbacks(reader, top, cfg);
    if (auto v =
            reader.text(top, "default_category", true, "the category used when classification is unsure")) {
      if (!cfg.categories.empty() && !cfg.find_category(*v)) {
        report.add(line_of(top.fields.at("default_category"), 1), "default_category",
                   quoted(*v) + " is not a defined category" + did_you_mean(*v, category_names(cfg)) +
                       " (defined: " + join(category_names(cfg)) + ")");
      } else {
        cfg.default_category = *v;
      }
    }
    if (!cfg.models.empty()) check_served(report, cfg, category_defs);
    parse_agents(reader, top, cfg);
    parse_agent_routing(reader, top, cfg.agent_routing);
    parse_gateway(reader, top, cfg, cfg.gateway);
    parse_rules(reader, top, cfg);
    parse_bus(reader, top, cfg, cfg.bus);
    parse_shared_state(reader, top, cfg, cfg.shared_state);
  } catch (const YAML::Exception& e) {
    // yaml-cpp throwing here is a bug in the checks above; still say where.
    report.add(e.mark.is_null() ? 1 : e.mark.line + 1, "", "unexpected YAML error: " + e.msg);
  }
  if (!report.empty()) report.raise(source_name);
  return cfg;
}

Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ErrorCode::io, path + ": cannot read the config file: " + std::strerror(errno) +
                                   " (pass an existing file, e.g. config/tinyroute.yaml)");
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw Error(ErrorCode::io, path + ": reading the config file failed");
  return parse_config(bytes.str(), path);
}

} // namespace tinyroute
