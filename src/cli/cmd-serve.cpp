// tinyroute serve: the gateway with the internal model as its router. Requests for "auto" and /v1/route
// are analyzed (Analyzer: every decision in one pass, repeated requests from the decision cache) and
// forwarded to the chosen large model; POST /v1/analyze answers with the analysis, POST /v1/classify
// with the classification alone; /v1/agents/route, /v1/agents/messages and /v1/metadata serve the agent
// policies on the same engine. SIGHUP reloads the config (a bad one is logged and ignored);
// SIGTERM / SIGINT stop accepting and drain in-flight requests. Signals are taken synchronously by
// the main thread (sigwait), so no handler and no global state are involved.
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <sstream>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "agent-endpoints.h"
#include "cli.h"
#include "core/prometheus.h"
#include "output.h"
#include "route-request.h"
#include "select-endpoint.h"
#include "tinyroute/bus.h"
#include "tinyroute/decision-cache.h"
#include "tinyroute/from-config.h"
#include "tinyroute/gateway.h"
#include "tinyroute/redis-shared-store.h"

namespace tinyroute::cli {

namespace {

struct ServeOptions {
  CommonOptions common;
  std::optional<std::string> host; // unset: the config's gateway.listen (default 127.0.0.1:8080)
  std::optional<int> port;
  int threads = 2;
  double drain_s = 10;
};

// Everything built from one config over one engine: the TaskRouter, the analyzer and the agent policies.
struct Served {
  std::shared_ptr<const TaskRouter> tasks;
  std::shared_ptr<const Analyzer> analyzer;
  std::shared_ptr<const AgentServices> agents;
};

Served make_served(std::shared_ptr<Engine> engine, const Config& config, std::shared_ptr<DecisionCache> cache,
                   std::shared_ptr<ConversationStore> conversations) {
  Served s;
  s.tasks = std::make_shared<const TaskRouter>(engine, config);
  s.analyzer = std::make_shared<const Analyzer>(*engine, config, std::move(cache), std::move(conversations));
  s.agents = std::make_shared<const AgentServices>(std::move(engine), config);
  return s;
}

// What is in use; SIGHUP swaps in a new set while requests keep reading the old one. Empty while the
// first set warms up in the background (internal_model.deadline_ms > 0).
class LiveRouter {
public:
  Served get() const {
    std::lock_guard lock(mutex_);
    return current_;
  }
  // get(), after waiting for the warm-up: the native endpoints need the model, so they wait for it.
  Served ready() const {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return current_.analyzer != nullptr || failed_; });
    if (!current_.analyzer)
      throw Error(ErrorCode::engine_stopped, "the internal model failed to warm up; the server is stopping");
    return current_;
  }
  void set(Served next) {
    {
      std::lock_guard lock(mutex_);
      current_ = std::move(next);
    }
    changed_.notify_all();
  }
  void fail() {
    {
      std::lock_guard lock(mutex_);
      failed_ = true;
    }
    changed_.notify_all();
  }
  bool failed() const {
    std::lock_guard lock(mutex_);
    return failed_;
  }

private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  Served current_;
  bool failed_ = false;
};

// What routing needs before the analyzer is ready: the first config, its rules and the engine.
struct Warmup {
  Config config;
  RuleSet rules;
  std::shared_ptr<Engine> engine;
};

// The internal model can be kept across a reload when nothing that shapes the engine changed.
bool same_engine(const InternalModelConfig& a, const InternalModelConfig& b) {
  return a.model == b.model && a.threads == b.threads && a.context == b.context && a.batch == b.batch &&
         a.ubatch == b.ubatch && a.repack == b.repack && a.mmap == b.mmap && a.flash_attn == b.flash_attn &&
         a.hidden_layer == b.hidden_layer && a.parallel == b.parallel && a.state_dir == b.state_dir &&
         a.conversations == b.conversations;
}

// While the internal model warms up (its instruction prefixes are being decoded) the model cannot
// decide in time: the rules, then the default category answer.
RouteDecision warming_decision(const Warmup& w, const ChatRequest& request,
                               const Availability& availability) {
  const auto started = std::chrono::steady_clock::now();
  const RequestFacts facts = facts_for(request, *w.engine);
  RouteDecision d;
  d.category = w.config.default_category;
  d.confidence = 0;
  d.source = "default";
  std::string why = "the internal model is still warming up: default category";
  if (auto m = w.rules.match_category(last_user_text(request))) {
    d.category = m->category;
    d.confidence = 1;
    d.source = "rule";
    why = describe(*m);
  }
  const Selection s = select_model(w.config, d.category, facts, availability);
  d.model = s.model;
  d.fallbacks = s.fallbacks;
  d.reason = why + "; " + s.reason;
  d.route_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return d;
}

RouteDecision decide(const Served& served, const Warmup& warmup, const ChatRequest& request,
                     const Availability& availability) {
  if (!served.analyzer) return warming_decision(warmup, request, availability);
  return route_request(*served.analyzer, served.tasks->engine(), served.tasks->config(), request,
                       availability);
}

// The text of a /v1/classify body: {"text": "..."} or {"messages": [...]} (its last user turn).
std::string classify_input(const json& body) {
  auto bad = [](const std::string& what) { throw Error(ErrorCode::invalid_argument, what); };
  if (!body.is_object()) bad("send a JSON object with \"text\" or \"messages\"");
  if (body.contains("text")) {
    if (!body["text"].is_string()) bad("\"text\" must be a string");
    return body["text"];
  }
  if (!body.contains("messages")) bad("send a JSON object with \"text\" or \"messages\"");
  const json& messages = body["messages"];
  if (!messages.is_array()) bad("\"messages\" must be an array");
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (!it->is_object() || it->value("role", "") != "user" || !it->contains("content")) continue;
    const json& content = (*it)["content"];
    if (content.is_string()) return content;
    std::string text;
    if (content.is_array()) {
      for (const auto& part : content) {
        if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
            part["text"].is_string())
          text += (text.empty() ? "" : "\n") + part["text"].get<std::string>();
      }
    }
    return text;
  }
  bad("\"messages\" has no user message");
  return {};
}

// The native endpoints' "priority" field (high | medium | low); the X-Request-Priority header's value
// when the body has none.
Priority request_priority(const json& body, const JsonRequestContext& context) {
  if (!body.is_object() || !body.contains("priority") || body["priority"].is_null()) return context.priority;
  const json& field = body["priority"];
  std::optional<Priority> p = field.is_string() ? parse_priority(field.get<std::string>()) : std::nullopt;
  if (!p) throw Error(ErrorCode::invalid_argument, "\"priority\" must be \"high\", \"medium\" or \"low\"");
  return *p;
}

// The internal model's state for /health and /queue/stats.
json internal_status(const Engine& engine) {
  const EngineStats s = engine.stats();
  return {{"loaded", true},
          {"path", engine.info().path},
          {"queued", s.queued},
          {"active", s.active},
          {"parallel", engine.params().n_parallel},
          {"requests", s.requests},
          {"decodes", s.decodes},
          {"contexts", s.contexts}};
}

// A string given in the body's `field`, else in the request header `header`, else empty.
std::string body_or_header(const json& body, const std::map<std::string, std::string>& headers,
                           const char* field, const char* header) {
  if (body.is_object() && body.contains(field)) {
    if (!body[field].is_string())
      throw Error(ErrorCode::invalid_argument, std::string("\"") + field + "\" must be a string");
    return body[field];
  }
  const auto it = headers.find(header);
  return it == headers.end() ? std::string() : it->second;
}

// A request's conversation id: the body's "conversation" field, else the x-tinyroute-conversation header.
std::string conversation_input(const json& body, const std::map<std::string, std::string>& headers) {
  return body_or_header(body, headers, "conversation", "x-tinyroute-conversation");
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

void log_config(const Config& config) {
  std::vector<std::string> categories, models;
  for (const auto& c : config.categories) categories.push_back(c.name);
  for (const auto& m : config.models)
    models.push_back(m.name + " (" + std::string(provider_name(m.provider)) + " " + m.base_url + ")");
  spdlog::info("config {}: {} categories: {}; default {}", config.source_path, categories.size(),
               joined(categories), config.default_category);
  spdlog::info("answer models: {}", joined(models));
  std::vector<std::string> agents;
  for (const auto& a : config.agents) agents.push_back(a.name + (a.triage ? " (triage)" : ""));
  if (agents.empty()) {
    spdlog::info("no agents section: /v1/agents/* answer 400");
  } else {
    spdlog::info("{} agents: {}", agents.size(), joined(agents));
  }
}

void log_engine(const Engine& engine) {
  const ModelInfo& i = engine.info();
  const EngineParams& p = engine.params();
  spdlog::info("internal model {} ({}, {:.1f}M params, {} layers, fingerprint {}); threads {}, context {}, "
               "parallel {}; internal-only, never answers",
               i.path, i.description, static_cast<double>(i.n_params) / 1e6, i.n_layer,
               i.fingerprint.substr(0, 12), p.n_threads, p.n_ctx, p.n_parallel);
}

// Runs the bus dispatcher on its own thread; stops and joins it on the way out, whatever the way.
class BusThread {
public:
  explicit BusThread(std::shared_ptr<BusDispatcher> bus) : bus_(std::move(bus)) {
    if (!bus_) return;
    thread_ = std::thread([b = bus_] {
      try {
        b->run();
      } catch (const std::exception& e) {
        spdlog::error("bus dispatcher stopped: {}", e.what());
      }
    });
  }
  ~BusThread() {
    if (!bus_) return;
    bus_->stop();
    thread_.join();
  }
  BusThread(const BusThread&) = delete;
  BusThread& operator=(const BusThread&) = delete;

private:
  std::shared_ptr<BusDispatcher> bus_;
  std::thread thread_;
};

// Each proxied stream holds two sockets; the usual soft limit of 1024 descriptors would cap a gateway at
// ~500 concurrent streams, so take what the hard limit allows (as nginx's worker_rlimit_nofile does).
void raise_open_file_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  const rlim_t before = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) == 0)
    spdlog::debug("open file limit raised from {} to {}", before, lim.rlim_cur);
}

int run_serve(const ServeOptions& o) {
  // Block the signals before any thread exists so every thread inherits the mask and only the
  // sigwait below ever sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  spdlog::set_level(spdlog::level::info);
  raise_open_file_limit();

  Config config = load_cli_config(o.common);
  auto engine = std::make_shared<Engine>(engine_params_from(config.internal_model));
  log_engine(*engine);
  // With shared_state, the decision cache and the conversations' turns live in Redis, so every serve
  // process on it decides alike; the in-process stores otherwise. Either way they outlive reloads.
  const DecisionCacheOptions cache_options{static_cast<std::size_t>(config.internal_model.cache_size),
                                           config.internal_model.cache_ttl_s};
  const ConversationOptions conversation_options{ConversationOptions{}.max_conversations,
                                                 config.internal_model.conversation_tokens};
  std::shared_ptr<DecisionCache> cache;
  std::shared_ptr<ConversationStore> conversations;
  if (config.shared_state.enabled) {
    auto shared = make_redis_shared_store(config.shared_state);
    spdlog::info("shared state: decisions and conversation turns in redis {}; timeout {} ms",
                 shared->describe(), config.shared_state.timeout_ms);
    cache = std::make_shared<DecisionCache>(cache_options, shared);
    // Conversations are shared by processes with the same tokenizer (the turns' token counts).
    conversations = std::make_shared<ConversationStore>(conversation_options, std::move(shared),
                                                        engine->info().fingerprint);
  } else {
    cache = std::make_shared<DecisionCache>(cache_options);
    // Conversation text outlives reloads (a new prefix only means the next message rebuilds).
    conversations = std::make_shared<ConversationStore>(conversation_options);
  }
  auto live = std::make_shared<LiveRouter>();
  auto warmup = std::make_shared<const Warmup>(Warmup{config, RuleSet(config.rules), engine});
  // With a routing deadline, serving starts at once and the instruction prefixes are decoded in the
  // background: until then routing answers by the rules and the default category (the model cannot
  // decide in time), and the native endpoints wait. Without one, the model is ready before serving.
  const bool warm_in_background = config.internal_model.deadline_ms > 0;
  if (!warm_in_background) live->set(make_served(engine, config, cache, conversations));
  log_config(config);

  // The config's gateway section (listen address, body limit, API keys from the environment); the
  // command line wins for the address.
  GatewayOptions gopts = gateway_options_from(config);
  if (o.host) gopts.host = *o.host;
  if (o.port) gopts.port = *o.port;
  gopts.threads = o.threads;
  // The config's bus section runs the bus dispatcher alongside; SIGHUP reloads its bus section (the
  // dispatcher keeps the rest of the config it started with). On the way out, after the gateway's
  // drain, stopping it cancels its engine work (the entries stay pending).
  std::shared_ptr<BusDispatcher> bus;
  if (config.bus.enabled) bus = std::make_shared<BusDispatcher>(config, engine);
  const BusThread bus_thread(bus);
  gopts.extra_metrics = [cache, conversations, engine, bus] {
    const EngineStats e = engine->stats();
    std::ostringstream text;
    prometheus::metric(text, "tinyroute_conversation_sequences", prometheus::Type::gauge,
                       "Conversation sequences the engine keeps decoded.", e.conversations);
    prometheus::metric(text, "tinyroute_engine_contexts", prometheus::Type::gauge,
                       "llama_contexts the engine has made (internal_model.contexts at most).", e.contexts);
    prometheus::metric(text, "tinyroute_engine_context_rebuilds_total", prometheus::Type::counter,
                       "Contexts remade larger for a request or prefix (prefixes copied, not decoded).",
                       e.context_rebuilds);
    return cache->metrics_text() + conversations->metrics_text() + (bus ? bus->metrics_text() : "") +
           text.str();
  };
  // The router reads the gateway's availability (polled model lists, breakers); the gateway only calls
  // it while serving, after `serving` points at it.
  auto serving = std::make_shared<std::atomic<const Gateway*>>(nullptr);
  const auto availability = [serving] {
    const Gateway* g = serving->load();
    return g != nullptr ? g->availability() : Availability{};
  };
  // count_tokens estimates for backends that cannot count: the internal model's tokenizer (the one in
  // service after a reload that changed it; the first while it warms up).
  gopts.count_tokens = [live, engine](const std::string& text) {
    const Served s = live->get();
    const Engine& e = s.tasks ? s.tasks->engine() : *engine;
    return static_cast<int>(e.tokenize(text, true).size());
  };
  gopts.internal_status = [live] {
    const Served s = live->get(); // empty while the internal model warms up
    return s.tasks ? internal_status(s.tasks->engine()) : json{{"loaded", false}};
  };
  Gateway gateway(
      config,
      [live, availability, warmup](const ChatRequest& request) {
        return decide(live->get(), *warmup, request, availability());
      },
      gopts);
  serving->store(&gateway);
  gateway.add_json_endpoint("POST", "/v1/classify", [live](const json& body, const JsonRequestContext& ctx) {
    const std::string text = classify_input(body);
    return classify_json(live->ready().tasks->classify_task(text, request_priority(body, ctx)).get());
  });
  gateway.add_json_endpoint("POST", "/v1/select", [live, availability](const json& body) {
    return select_endpoint(*live->ready().tasks, body, availability());
  });
  gateway.add_json_endpoint("POST", "/v1/analyze", [live](const json& body, const JsonRequestContext& ctx) {
    AnalyzeOptions options(conversation_input(body, ctx.headers));
    // A client that retries a conversation message names it, so the retry is not a second turn.
    options.turn_id = body_or_header(body, ctx.headers, "message_id", "x-tinyroute-message-id");
    options.priority = request_priority(body, ctx);
    return analyze_json(live->ready().analyzer->analyze(classify_input(body), std::move(options)).get());
  });
  gateway.add_json_endpoint(
      "POST", "/v1/agents/route", [live](const json& body, const JsonRequestContext& ctx) {
        return agent_route_endpoint(*live->ready().agents, body, request_priority(body, ctx));
      });
  // A message's own fields may include "priority" (the envelope has one): only the header counts here.
  gateway.add_json_endpoint("POST", "/v1/agents/messages",
                            [live](const json& body, const JsonRequestContext& ctx) {
                              return agent_message_endpoint(*live->ready().agents, body, ctx.priority);
                            });
  gateway.add_json_endpoint("POST", "/v1/metadata", [live](const json& body, const JsonRequestContext& ctx) {
    return metadata_endpoint(*live->ready().agents, body, request_priority(body, ctx));
  });
  gateway.start();
  spdlog::info(
      "tinyroute {} serving on http://{}:{} (OpenAI /v1/chat/completions, /v1/responses, /v1/embeddings, "
      "Anthropic /v1/messages, /v1/messages/count_tokens, Ollama /api/chat; /v1/analyze, /v1/classify, "
      "/v1/route, /v1/agents/route, /v1/agents/messages, "
      "/v1/metadata, /health, /metrics)",
      TINYROUTE_VERSION, gopts.host, gateway.port());
  std::thread warming;
  if (warm_in_background) {
    spdlog::info("warming up the internal model; until it is ready, routing answers by the rules and {}",
                 config.default_category);
    warming = std::thread([live, engine, config, cache, conversations] {
      try {
        live->set(make_served(engine, config, cache, conversations));
        spdlog::info("internal model ready");
      } catch (const std::exception& e) {
        spdlog::error("warming up the internal model failed: {}", e.what());
        live->fail();
        ::kill(::getpid(), SIGTERM); // the main thread's sigwait stops the server
      }
    });
  }

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading {}", config_path(o.common));
      if (warming.joinable()) warming.join(); // the first set must be in place before it is replaced
      if (live->failed()) continue;
      try {
        Config next = load_cli_config(o.common);
        auto current = live->get();
        std::shared_ptr<Engine> next_engine = engine;
        if (!same_engine(current.tasks->config().internal_model, next.internal_model)) {
          next_engine = std::make_shared<Engine>(engine_params_from(next.internal_model));
          log_engine(*next_engine);
        }
        Served next_served = make_served(next_engine, next, cache, conversations);
        gateway.reload(next);
        live->set(std::move(next_served));
        if (bus && next.bus.enabled) {
          for (const auto& line : bus->reload(next)) spdlog::warn("{}", line);
        } else if (bus || next.bus.enabled) {
          spdlog::warn("the bus section was {}: that takes effect at the next start",
                       bus ? "removed" : "added");
        }
        const SharedStateConfig &was = config.shared_state, &now = next.shared_state;
        if (was.enabled != now.enabled || was.redis != now.redis || was.username_env != now.username_env ||
            was.password_env != now.password_env || was.prefix != now.prefix ||
            was.timeout_ms != now.timeout_ms || was.conversations != now.conversations ||
            was.conversation_ttl_s != now.conversation_ttl_s)
          spdlog::warn("the shared_state section changed: that takes effect at the next start (the running "
                       "one is kept)");
        cache->clear(); // decisions made under the old config must not outlive it
        engine = std::move(next_engine);
        log_config(next);
        spdlog::info("reloaded");
      } catch (const std::exception& e) {
        spdlog::error("reload failed; still serving the previous config: {}", e.what());
      }
      continue;
    }
    spdlog::info("{}: stopping; draining in-flight requests for up to {:.0f} s",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", o.drain_s);
    gateway.stop(std::chrono::milliseconds(static_cast<long>(o.drain_s * 1000)));
    if (warming.joinable()) warming.join();
    spdlog::info("stopped");
    return live->failed() ? 1 : 0;
  }
}

} // namespace

void register_serve_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Run the routing gateway (OpenAI, Anthropic and Ollama APIs)");
  add_config_option(cmd, o->common);
  add_model_option(cmd, o->common);
  cmd->add_option("--host", o->host,
                  "Address to listen on (default: the config's gateway.listen, else 127.0.0.1)");
  cmd->add_option("--port,-p", o->port,
                  "Port to listen on, 0 = any free port (default: gateway.listen, else 8080)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--threads", o->threads, "Network threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--drain-seconds", o->drain_s, "On SIGTERM, how long in-flight requests may finish")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->callback([&action, o] { action = [o] { return run_serve(*o); }; });
}

} // namespace tinyroute::cli
