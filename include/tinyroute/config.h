// tinyroute configuration: the internal model, task categories, the large models that answer,
// fallbacks. Loaded from YAML; every error names the file, line and offending key.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tinyroute {

enum class Provider { openai, ollama, anthropic };
// How a label set is decided. score and choice read the model's answer after a cached instruction
// prefix; centroid and head read the request's own hidden state (Engine::embed_tokens): nearest
// centroid of the labels' config examples, or a head trained with `tinyroute train`.
enum class Strategy { score, choice, centroid, head, fused };

// The small in-process model. It only classifies, routes and formats; it never answers users.
struct InternalModelConfig {
  std::string model;                        // a GGUF path, or a name known to `tinyroute pull`
  std::string name = "tinyllama-1.1b-chat"; // what the internal model is called on the wire
  std::vector<std::string> aliases;         // extra names that also mean the internal model
  int threads = 2;
  int context = 4096; // KV cells: the most one context holds, and the contexts' budget together
  int contexts = 4;   // llama_contexts on the one model: a prefix's requests attend to its context only
  int batch = 512;
  bool repack = true; // llama.cpp weight repacking: faster decodes, more memory (BENCHMARKS.md §3)
  // Map the GGUF file (true) or read it into memory (false). Unset: read when repacking, map when not.
  // With repacking most weights are copied anyway, so a mapping would keep a second, unused copy
  // resident; without it the mapping is the only copy and is shared between processes.
  std::optional<bool> mmap;
  bool flash_attn = false; // llama.cpp flash attention: faster with many resident prefixes, not exact
  int ubatch = 128;        // llama.cpp n_ubatch: tokens per compute pass (memory of the attention scratch)
  int parallel = 16;
  Strategy strategy = Strategy::choice;
  double threshold = 0.35;    // below this confidence -> default_category, flagged uncertain
  int max_query_tokens = 256; // query truncation budget (head and tail kept)
  int hidden_layer = 0;       // centroid/head read this block's output (EngineParams); 0 = the final layer
  std::string state_dir;      // persisted prefix state; empty = off
  int cache_size = 4096;      // decisions kept by the decision cache (serve); 0 = off
  double cache_ttl_s = 300;   // `cache_ttl`: seconds a cached decision stays valid
  int deadline_ms = 0;    // routing waits this long for the model, then rules / default_category; 0 = none
  int conversations = 16; // conversation sequences the engine keeps decoded (LRU); 0 = none
  int conversation_tokens = 1024; // a conversation's recent turns kept for routing, in tokens
};

struct CategoryConfig {
  std::string name;
  std::string description;
  std::vector<std::string> examples; // few-shot requests, any language
};

struct Capabilities {
  bool tools = false;
  bool vision = false;
  bool reasoning = false;
  bool embedding = false; // answers /api/embed, /api/embeddings (and /v1/embeddings upstream)
};

struct ModelConfig {
  std::string name; // the name clients use
  Provider provider = Provider::openai;
  std::string base_url;       // e.g. http://127.0.0.1:11434
  std::string upstream_model; // the backend's name for it (defaults to name)
  std::string api_key_env;    // environment variable holding the API key; empty = none
  std::vector<std::string> categories;
  int context_window = 8192;
  int priority = 0; // higher wins
  double cost = 0;  // lower wins among equal priority
  Capabilities capabilities;
  // At most this many forwards to the model's backend (base_url) at once; more wait, by request
  // priority then arrival. 0 = unlimited. Models sharing a base_url share the smallest limit set.
  int max_concurrency = 0;
  int line = 0; // where it was defined (for messages)
};

// An agent that other agents and people can address (agent_routing picks one for a message).
struct AgentConfig {
  std::string name;                  // identifier, unique among agents
  std::string description;           // what the agent does, one sentence the router reads
  std::vector<std::string> skills;   // short skill phrases, shown to the router with the description
  std::vector<std::string> examples; // messages that belong to this agent, any language
  std::string endpoint;              // where messages for it are delivered (http:// or https://)
  std::vector<std::string> accepts;  // message kinds it takes; every kind when not configured
  bool triage = false;               // receives what routing is unsure about (exactly one agent)
  int line = 0;                      // where it was defined (for messages)
};

// The message kinds an envelope may carry, in schema order.
inline const std::vector<std::string>& message_kinds() {
  static const std::vector<std::string> kinds = {"task", "question", "report", "handoff", "notification"};
  return kinds;
}

// One entry of `rules:`: keywords (word prefixes) and/or a regex, Unicode and case-insensitive, mapping
// a request to a category and/or an agent before the internal model is asked (see tinyroute/rules.h).
struct RuleConfig {
  std::vector<std::string> keywords;
  std::string regex;    // PCRE2 syntax; empty = none
  std::string category; // target category; empty = none
  std::string agent;    // target agent; empty = none
  int line = 0;         // where it was defined (for messages)
  int regex_line = 0;   // where `regex` was written (RuleSet reports a bad pattern there)
};

struct AgentRoutingConfig {
  double threshold = 0.35;          // below this confidence a message goes to the triage agent
  int max_hops = 8;                 // a message forwarded more often than this is refused (loops)
  int max_message_bytes = 65536;    // larger messages are refused before any model work
  std::optional<Strategy> strategy; // unset: internal_model.strategy
};

// One gateway API key: the key itself lives in an environment variable, never in the file.
struct GatewayApiKeyConfig {
  std::string key_env;             // environment variable holding the key
  std::vector<std::string> models; // model names it may use; "*" = every model
  int line = 0;                    // where it was defined (for messages)
};

// The optional `gateway:` section (what `tinyroute serve` listens on and who may call it).
struct GatewayConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::size_t max_body_bytes = 8 << 20;
  std::vector<GatewayApiKeyConfig> api_keys; // empty = no authentication
  double availability_poll_s = 0; // `availability_poll`: seconds between backend model-list polls; 0 = off
};

// What the bus does with a message whose agent is not alive (presence on).
enum class DeadAgentPolicy { triage, wait };
// How the bus treats messages: `model` routes unaddressed ones and formats every one with the internal
// model; `forward` uses no model (unaddressed messages go to the triage agent).
enum class BusMode { model, forward };

// Which free-text envelope fields the bus has the internal model write (`bus.generate`), and the
// token budget of that generation. Everything else in an envelope comes from the analyze pass and
// deterministic rules, so a message that needs no generation is delivered without one.
struct BusGenerateConfig {
  std::vector<std::string> fields; // intent, summary (in that order); empty: no generation
  int max_tokens = 64;
};

// The optional `bus:` section: tinyroute as the dispatcher on a Redis Streams agent bus.
struct BusConfig {
  bool enabled = false;                                  // the config has a bus section
  std::string redis = "redis://127.0.0.1:6379";          // redis://HOST:PORT[/DB] or unix:///PATH[?db=N]
  std::string username_env = "TINYROUTE_REDIS_USERNAME"; // ACL user from this variable (unset: none)
  std::string password_env = "TINYROUTE_REDIS_PASSWORD"; // password from this variable (unset: none)
  std::string inbox = "stream:tinyroute:inbox";
  std::string group = "tinyroute";
  std::string consumer; // empty = HOSTNAME-PID
  std::string agent_stream = "stream:agent:messages:{agent}";
  std::string dead_letter = "stream:tinyroute:dead-letter";
  std::string delivered_key = "tinyroute:bus:delivered:{id}"; // idempotence marks
  std::string stats_key = "tinyroute:bus:stats";              // shared counters (a hash)
  std::string presence_key = "agent:alive:{agent}";
  bool presence = false; // take agents whose presence key is missing out of routing
  DeadAgentPolicy dead_agent = DeadAgentPolicy::triage;
  BusMode mode = BusMode::model;
  int maxlen = 100000;       // approximate cap of every target stream (XADD MAXLEN ~)
  int batch = 32;            // entries read per XREADGROUP
  int block_ms = 1000;       // XREADGROUP BLOCK (also bounds how long a stop takes)
  int claim_idle_ms = 30000; // pending entries idle this long are claimed (XAUTOCLAIM)
  int claim_interval_ms = 5000;
  int dedup_ttl_s = 86400;                                  // how long a delivered message id is remembered
  BusGenerateConfig generate;                               // for messages to any agent (default: none)
  std::map<std::string, BusGenerateConfig> generate_agents; // per recipient agent: replaces `generate`
  int line = 0;

  // What to generate for a message delivered to `agent` ("*": a broadcast, the section-wide setting).
  const BusGenerateConfig& generation_for(const std::string& agent) const;
};

// The optional `shared_state:` section: serve's conversation turns and decision cache in Redis, so
// several serve processes behind a load balancer decide alike. Without it each process keeps its own.
struct SharedStateConfig {
  bool enabled = false;                                  // the config has a shared_state section
  std::string redis;                                     // as bus.redis; empty in the file: the bus's
  std::string username_env = "TINYROUTE_REDIS_USERNAME"; // as bus.username_env (the bus's when unset)
  std::string password_env = "TINYROUTE_REDIS_PASSWORD";
  std::string prefix = "tinyroute:shared"; // every key starts with it
  int timeout_ms = 50;                     // a Redis call slower than this is given up (decided without)
  int conversations = 10000;               // conversations kept in Redis (least recently used goes)
  int conversation_ttl_s = 86400;          // a conversation idle this long is forgotten
  int line = 0;
};

struct Config {
  std::string source_path; // the file it came from
  std::string hash;        // sha256 of the file's bytes (hex), for caches keyed by config
  InternalModelConfig internal_model;
  std::vector<CategoryConfig> categories;
  std::vector<ModelConfig> models;
  std::map<std::string, std::vector<std::string>> fallbacks; // category -> model names, in order
  std::string default_category;
  std::vector<RuleConfig> rules;   // in order; the first match wins
  std::vector<AgentConfig> agents; // empty when the config has no agents section
  AgentRoutingConfig agent_routing;
  GatewayConfig gateway;          // defaults when the config has no gateway section
  BusConfig bus;                  // bus.enabled = false when the config has no bus section
  SharedStateConfig shared_state; // shared_state.enabled = false when the config has none

  const CategoryConfig* find_category(const std::string& name) const;
  const ModelConfig* find_model(const std::string& name) const;
  const AgentConfig* find_agent(const std::string& name) const;
  const AgentConfig* triage_agent() const; // nullptr when there are no agents
  // True if `name` means the internal model (its name, an alias, the file stem, or an Ollama-style
  // "family:tag" whose family is one of those). Defined with the rest of the guard
  // (tinyroute/internal-model-guard.h).
  bool is_internal_model_name(const std::string& name) const;
};

std::string_view provider_name(Provider provider); // "openai" | "ollama" | "anthropic"
std::string_view strategy_name(Strategy strategy); // "score" | "choice" | "centroid" | "head" | "fused"
// "score" | "choice" | "centroid" | "head" | "fused" -> the strategy; nullopt for anything else.
std::optional<Strategy> parse_strategy(std::string_view name);

// Parses and validates; throws Error(config_invalid) with "FILE:LINE: key: what is wrong", or
// Error(internal_model_forbidden) when the internal model is used as an answer model anywhere.
// Every problem found is reported, one "FILE:LINE: ..." line each, ordered by line (lines are
// 1-based, list indexes 0-based); the code is internal_model_forbidden if any line is about that.
// load_config throws Error(io) when the file cannot be read.
Config load_config(const std::string& path);
Config parse_config(const std::string& yaml_text, const std::string& source_name);

} // namespace tinyroute
