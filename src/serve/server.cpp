#include "tinyroute/server.h"

#include <atomic>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "core/prometheus.h"
#include "live-router.h"
#include "native-endpoints.h"
#include "route-request.h"
#include "tinyroute/bus.h"
#include "tinyroute/from-config.h"
#include "tinyroute/gateway.h"
#include "tinyroute/redis-shared-store.h"

namespace tinyroute {

namespace {

using serve::LiveRouter;
using serve::Served;

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
               "contexts {}, parallel {}; internal-only, never answers",
               i.path, i.description, static_cast<double>(i.n_params) / 1e6, i.n_layer,
               i.fingerprint.substr(0, 12), p.n_threads, p.n_ctx, p.n_contexts, p.n_parallel);
}

// The internal model's state for /health and /queue/stats.
nlohmann::json internal_status(const Engine& engine) {
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

std::string engine_metrics(const Engine& engine) {
  const EngineStats e = engine.stats();
  std::ostringstream text;
  prometheus::metric(text, "tinyroute_conversation_sequences", prometheus::Type::gauge,
                     "Conversation sequences the engine keeps decoded.", e.conversations);
  prometheus::metric(text, "tinyroute_engine_contexts", prometheus::Type::gauge,
                     "llama_contexts the engine has made (internal_model.contexts at most).", e.contexts);
  prometheus::metric(text, "tinyroute_engine_context_rebuilds_total", prometheus::Type::counter,
                     "Contexts remade larger for a request or prefix (prefixes copied, not decoded).",
                     e.context_rebuilds);
  return text.str();
}

bool same_shared_state(const SharedStateConfig& a, const SharedStateConfig& b) {
  return a.enabled == b.enabled && a.redis == b.redis && a.username_env == b.username_env &&
         a.password_env == b.password_env && a.prefix == b.prefix && a.timeout_ms == b.timeout_ms &&
         a.conversations == b.conversations && a.conversation_ttl_s == b.conversation_ttl_s;
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
  ~BusThread() { stop(); }
  BusThread(const BusThread&) = delete;
  BusThread& operator=(const BusThread&) = delete;
  void stop() {
    if (!thread_.joinable()) return;
    bus_->stop();
    thread_.join();
  }

private:
  std::shared_ptr<BusDispatcher> bus_;
  std::thread thread_;
};

// What routing needs before the analyzer is ready: the first config, its rules and the engine.
struct Warmup {
  Config config;
  RuleSet rules;
  std::shared_ptr<Engine> engine;
};

} // namespace

// Members in the order they are needed; destroyed in reverse: the gateway before the bus, the bus
// before the stores and the engine.
struct Server::Impl {
  Config config;
  ServerOptions options;
  std::shared_ptr<Engine> engine; // the one in service (a reload may replace it)
  std::shared_ptr<DecisionCache> cache;
  std::shared_ptr<ConversationStore> conversations;
  std::shared_ptr<LiveRouter> live = std::make_shared<LiveRouter>();
  std::shared_ptr<BusDispatcher> bus;
  std::unique_ptr<BusThread> bus_thread;
  GatewayOptions gateway_options;
  // The router reads the gateway's availability (polled model lists, breakers); set once it exists.
  std::shared_ptr<std::atomic<const Gateway*>> serving =
      std::make_shared<std::atomic<const Gateway*>>(nullptr);
  std::unique_ptr<Gateway> gateway;
  std::thread warming;
  bool stopped = false;

  Impl(Config c, ServerOptions o) : config(std::move(c)), options(std::move(o)) {
    engine = std::make_shared<Engine>(engine_params_from(config.internal_model));
    log_engine(*engine);
    make_stores();
    // With a routing deadline, serving starts at once and the instruction prefixes are decoded in the
    // background (start()): until then routing answers by the rules and the default category, and the
    // native endpoints wait. Without one, the model is ready before serving.
    if (!warms_in_background()) live->set(serve::make_served(engine, config, cache, conversations));
    log_config(config);

    // The config's gateway section (listen address, body limit, API keys); the options win for the address.
    gateway_options = gateway_options_from(config);
    if (options.host) gateway_options.host = *options.host;
    if (options.port) gateway_options.port = *options.port;
    gateway_options.threads = options.threads;
    // The bus section runs the dispatcher alongside; a reload passes it the new bus section (it keeps
    // the rest of the config it started with). Stopping it cancels its engine work (entries stay pending).
    if (config.bus.enabled) bus = std::make_shared<BusDispatcher>(config, engine);
    bus_thread = std::make_unique<BusThread>(bus);
    gateway_options.extra_metrics = [cache = cache, conversations = conversations, engine = engine,
                                     bus = bus] {
      return cache->metrics_text() + conversations->metrics_text() + (bus ? bus->metrics_text() : "") +
             engine_metrics(*engine);
    };
    // count_tokens estimates for backends that cannot count: the tokenizer of the internal model in
    // service (the first while it warms up).
    gateway_options.count_tokens = [live = live, engine = engine](const std::string& text) {
      const Served s = live->get();
      const Engine& e = s.tasks ? s.tasks->engine() : *engine;
      return static_cast<int>(e.tokenize(text, true).size());
    };
    gateway_options.internal_status = [live = live] {
      const Served s = live->get(); // empty while the internal model warms up
      return s.tasks ? internal_status(s.tasks->engine()) : nlohmann::json{{"loaded", false}};
    };
    const auto availability = [serving = serving] {
      const Gateway* g = serving->load();
      return g != nullptr ? g->availability() : Availability{};
    };
    auto warm = std::make_shared<const Warmup>(Warmup{config, RuleSet(config.rules), engine});
    gateway = std::make_unique<Gateway>(
        config,
        [live = live, availability, warm](const ChatRequest& request) {
          const Served s = live->get();
          if (!s.analyzer) {
            return serve::warming_decision(warm->config, warm->rules, *warm->engine, request, availability());
          }
          return serve::route_request(*s.analyzer, s.tasks->engine(), s.tasks->config(), request,
                                      availability());
        },
        gateway_options);
    serving->store(gateway.get());
    serve::add_native_endpoints(*gateway, live, availability);
  }

  ~Impl() {
    if (!stopped && gateway) gateway->stop(std::chrono::milliseconds(0));
    if (warming.joinable()) warming.join();
  }

  bool warms_in_background() const { return config.internal_model.deadline_ms > 0; }

  // With shared_state the decision cache and the conversations' turns live in Redis, so every serve
  // process on it decides alike; the in-process stores otherwise. Either way they outlive reloads.
  void make_stores() {
    const DecisionCacheOptions cache_options{static_cast<std::size_t>(config.internal_model.cache_size),
                                             config.internal_model.cache_ttl_s};
    const ConversationOptions conversation_options{ConversationOptions{}.max_conversations,
                                                   config.internal_model.conversation_tokens};
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
      conversations = std::make_shared<ConversationStore>(conversation_options);
    }
  }

  void start() {
    gateway->start();
    if (!warms_in_background()) return;
    spdlog::info("warming up the internal model; until it is ready, routing answers by the rules and {}",
                 config.default_category);
    warming = std::thread([this] {
      try {
        live->set(serve::make_served(engine, config, cache, conversations));
        spdlog::info("internal model ready");
      } catch (const std::exception& e) {
        spdlog::error("warming up the internal model failed: {}", e.what());
        live->fail();
        if (options.on_warmup_failed) options.on_warmup_failed();
      }
    });
  }

  void reload(Config next) {
    if (warming.joinable()) warming.join(); // the first set must be in place before it is replaced
    if (live->failed()) throw Error(ErrorCode::engine_stopped, "the internal model failed to warm up");
    const Served current = live->get();
    std::shared_ptr<Engine> next_engine = engine;
    if (!serve::same_engine(current.tasks->config().internal_model, next.internal_model)) {
      next_engine = std::make_shared<Engine>(engine_params_from(next.internal_model));
      log_engine(*next_engine);
    }
    Served next_served = serve::make_served(next_engine, next, cache, conversations);
    gateway->reload(next);
    live->set(std::move(next_served));
    if (bus && next.bus.enabled) {
      for (const auto& line : bus->reload(next)) spdlog::warn("{}", line);
    } else if (bus || next.bus.enabled) {
      spdlog::warn("the bus section was {}: that takes effect at the next start", bus ? "removed" : "added");
    }
    if (!same_shared_state(config.shared_state, next.shared_state))
      spdlog::warn("the shared_state section changed: that takes effect at the next start (the running "
                   "one is kept)");
    cache->clear(); // decisions made under the old config must not outlive it
    engine = std::move(next_engine);
    log_config(next);
  }

  bool stop(std::chrono::milliseconds drain) {
    // The bus first: its engine work is cancelled at once (its entries stay pending for the next start),
    // so the HTTP requests draining have the engine to themselves.
    bus_thread->stop();
    gateway->stop(drain);
    stopped = true;
    if (warming.joinable()) warming.join();
    return !live->failed();
  }
};

Server::Server(Config config, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {}
Server::~Server() = default;

void Server::start() {
  impl_->start();
}
int Server::port() const {
  return impl_->gateway->port();
}
const std::string& Server::host() const {
  return impl_->gateway_options.host;
}
void Server::reload(Config next) {
  impl_->reload(std::move(next));
}
bool Server::stop(std::chrono::milliseconds drain) {
  return impl_->stop(drain);
}

} // namespace tinyroute
