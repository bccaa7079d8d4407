// The Gateway: owns the io_context, the transport and the metrics; dispatches each HTTP request to
// its endpoint, resolves the model (Router for "auto", the internal-model guard) and streams the
// forwarded answer back through the request's front adapter.
#include "tinyroute/gateway.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "gateway/auth.h"
#include "gateway/availability.h"
#include "gateway/backend-queue.h"
#include "gateway/chat.h"
#include "gateway/connection-pool.h"
#include "gateway/count-tokens.h"
#include "gateway/embed.h"
#include "gateway/forward.h"
#include "gateway/front-embeddings.h"
#include "gateway/http-server.h"
#include "gateway/metrics.h"
#include "gateway/ollama-surface.h"
#include "gateway/params.h"
#include "gateway/request-json.h"
#include "gateway/routing.h"
#include "tinyroute/error.h"
#include "tinyroute/select.h"

namespace tinyroute {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using namespace gateway;

namespace {

// Upstream keep-alive reuse, in Prometheus text.
std::string pool_metrics(const ConnectionPool::Stats& s) {
  std::ostringstream o;
  prometheus::metric(o, "tinyroute_upstream_connections_reused_total", prometheus::Type::counter,
                     "Forwards sent on a kept-alive upstream connection.", s.reused);
  prometheus::metric(o, "tinyroute_upstream_connections_idle", prometheus::Type::gauge,
                     "Idle keep-alive connections to upstreams.", s.idle);
  return o.str();
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string fmt_double(double v, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", precision, v);
  return buf;
}

// Each endpoint: path, method, handler. Wrong method on a known path is 405, unknown path 404.
struct Endpoint {
  const char* path;
  const char* method;
};
constexpr Endpoint endpoints[] = {{"/v1/chat/completions", "POST"},
                                  {"/v1/responses", "POST"},
                                  {"/v1/messages", "POST"},
                                  {"/v1/messages/count_tokens", "POST"},
                                  {"/v1/embeddings", "POST"},
                                  {"/api/chat", "POST"},
                                  {"/api/generate", "POST"},
                                  {"/v1/route", "POST"},
                                  {"/v1/models", "GET"},
                                  {"/api/tags", "GET"},
                                  {"/api/show", "POST"},
                                  {"/api/ps", "GET"},
                                  {"/api/version", "GET"},
                                  {"/api/embed", "POST"},
                                  {"/api/embeddings", "POST"},
                                  {"/", "GET"},
                                  {"/queue/stats", "GET"},
                                  {"/health", "GET"},
                                  {"/metrics", "GET"}};

// Outside the coroutines: GCC 12 miscompiles range-for over arrays inside them.
const Endpoint* find_endpoint(const std::string& path) {
  for (const auto& e : endpoints) {
    if (path == e.path) return &e;
  }
  return nullptr;
}

// Where a library Error lands on the HTTP status scale (for added JSON endpoints).
int http_status_for(ErrorCode code) {
  switch (code) {
  case ErrorCode::invalid_argument:
  case ErrorCode::config_invalid:
  case ErrorCode::grammar_invalid:
    return 400;
  case ErrorCode::internal_model_forbidden:
    return 403;
  case ErrorCode::model_not_found:
  case ErrorCode::unknown_prefix:
    return 404;
  case ErrorCode::context_overflow:
    return 413;
  case ErrorCode::no_candidate:
  case ErrorCode::engine_stopped:
    return 503;
  default:
    return 500;
  }
}

// A routing failure as the client sees it: its own fault (an unknown category, a text longer than
// every candidate's context) is a 4xx naming the problem; only no capacity is a 503.
FrontError routing_error(const Error& e) {
  switch (e.code()) {
  case ErrorCode::context_overflow:
    return FrontError(413, "context_length_exceeded", e.what());
  case ErrorCode::no_candidate:
  case ErrorCode::engine_stopped:
    return FrontError(503, "routing_failed", std::string("routing failed: ") + e.what());
  default:
    break;
  }
  const int status = http_status_for(e.code());
  if (status >= 500) {
    spdlog::error("gateway: routing failed: {}", e.what());
    return FrontError(status, "routing_failed",
                      "routing failed inside tinyroute; the server log has the details");
  }
  return FrontError(status, "invalid_request_error", e.what());
}

struct ExtraEndpoint {
  std::string method;
  std::string path;
  JsonContextHandler handler;
};

} // namespace

struct Gateway::Impl {
  Impl(Config c, Router r, GatewayOptions o)
      : config(std::make_shared<const Config>(std::move(c))), router(std::move(r)), options(std::move(o)) {}
  ~Impl() {
    // The listener and the connection list live on one context, connections on the others, and a
    // suspended coroutine that holds them is only destroyed when its context shuts down. Shutting
    // every context down before any is destroyed (the members below go after this body) means no
    // socket outlives the services of its context.
    for (auto& context : contexts) context->shut_down();
  }

  std::shared_ptr<const Config> current_config() const {
    std::lock_guard lock(config_mutex);
    return config;
  }
  std::string config_loaded_at() const {
    std::lock_guard lock(config_mutex);
    return loaded_at;
  }

  mutable std::mutex config_mutex;
  std::shared_ptr<const Config> config;
  std::string loaded_at = iso_time(); // Ollama's modified_at: stable until the config changes
  Router router;
  GatewayOptions options;
  std::vector<ExtraEndpoint> extra; // fixed once start() ran: read without a lock
  ApiKeys api_keys{options.api_keys};
  std::shared_ptr<asio::ssl::context> tls = make_client_tls(options.ca_file); // shared by https calls
  Metrics metrics;
  Breakers breakers{BreakerOptions{options.breaker_failures, std::chrono::milliseconds(static_cast<long long>(
                                                                 options.breaker_open_s * 1000))}};
  ModelLists model_lists; // each backend's model list, polled every options.availability_poll_s
  std::unique_ptr<FrontAdapter> openai = make_openai_front();
  std::unique_ptr<FrontAdapter> anthropic = make_anthropic_front();
  std::unique_ptr<FrontAdapter> ollama_chat = make_ollama_chat_front();
  std::unique_ptr<FrontAdapter> ollama_generate = make_ollama_generate_front();
  std::unique_ptr<FrontAdapter> responses = make_responses_front();

  // One io_context per network thread, each run by that thread alone (see HttpServer).
  struct NetworkContext final : asio::io_context {
    NetworkContext() : asio::io_context(1) {} // 1: run by one thread
    void shut_down() { shutdown(); }          // destroys pending handlers; the services stay
  };
  std::vector<std::unique_ptr<NetworkContext>> contexts;
  ConnectionPool pool{
      static_cast<std::size_t>(std::max(0, options.upstream_keepalive))}; // after contexts: closes first
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  asio::thread_pool router_pool{2}; // the Router may run a model: keep it off the network threads
  std::unique_ptr<HttpServer> server;
  std::vector<std::thread> threads;
  bool running = false;
  int bound_port = 0; // kept: the acceptor is closed after stop()
  // After contexts and server: waiting forwards (suspended coroutines) are dropped while both still exist.
  BackendQueues queues;

  awaitable<void> handle(HttpRequest& req, ResponseWriter& out);
  awaitable<void> poll_models();
  awaitable<int> chat(HttpRequest& req, ResponseWriter& out, const FrontAdapter& front, const Grant* grant,
                      Priority priority, std::string& category_label, std::string& model_label);
  awaitable<RouteDecision> resolve(const Config& cfg, const ChatRequest& request, const Grant* grant,
                                   std::string& category_label, std::string& model_label);
  awaitable<int> count_tokens(HttpRequest& req, ResponseWriter& out, const Grant* grant, Priority priority,
                              std::string& category_label, std::string& model_label);
  awaitable<int> route(HttpRequest& req, ResponseWriter& out, const JsonRequestContext& context);
  awaitable<RouteDecision> call_router(const ChatRequest& request);
  awaitable<int> call_extra(HttpRequest& req, ResponseWriter& out, const ExtraEndpoint& endpoint,
                            const JsonRequestContext& context);
  awaitable<int> show(HttpRequest& req, ResponseWriter& out, const Grant* grant);
  awaitable<int> embed(HttpRequest& req, ResponseWriter& out, const Grant* grant, Priority priority,
                       std::string& model_label);
  json backends_json(const Config& cfg) const;
  json internal_json() const { return options.internal_status ? options.internal_status() : json(nullptr); }
  const ExtraEndpoint* find_extra(const std::string& path) const {
    for (const auto& e : extra) {
      if (e.path == path) return &e;
    }
    return nullptr;
  }
  std::string served_paths() const { // from the table: a route added there is listed here too
    std::string served;
    for (const auto& e : endpoints) served += (served.empty() ? "" : ", ") + std::string(e.path);
    for (const auto& e : extra) served += ", " + e.path;
    return served;
  }

  static awaitable<int> send_json(ResponseWriter& out, int status, const json& body, Headers headers = {}) {
    headers.emplace_back("content-type", "application/json");
    co_await out.send(status, headers, dump_for_client(body));
    co_return status;
  }
  static awaitable<int> send_error(ResponseWriter& out, const FrontAdapter& front, int status,
                                   const std::string& type, const std::string& message,
                                   Headers headers = {}) {
    // Whatever the message quotes (a path, a model name, an upstream's words) is made valid UTF-8 and
    // bounded here, so rendering an error can never fail.
    co_return co_await send_json(out, status,
                                 front.error(status, type, quote_input(message, kMaxErrorMessageBytes)),
                                 std::move(headers));
  }
};

awaitable<RouteDecision> Gateway::Impl::call_router(const ChatRequest& request) {
  if (!router)
    throw FrontError(503, "no_router",
                     "this gateway has no router, so \"auto\" cannot be resolved; name a model");
  auto started = std::chrono::steady_clock::now();
  RouteDecision d;
  try {
    d = co_await asio::co_spawn(
        router_pool, [this, &request]() -> awaitable<RouteDecision> { co_return router(request); },
        use_awaitable);
  } catch (const Error& e) {
    throw routing_error(e);
  } catch (const std::exception& e) {
    // A bug, not the client's fault: the details go to the log, never to the client.
    spdlog::error("gateway: routing failed: {}", e.what());
    throw FrontError(500, "routing_failed",
                     "routing failed inside tinyroute; the server log has the details");
  }
  if (d.route_ms == 0) {
    d.route_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  }
  if (d.source.empty()) d.source = "model";
  metrics.routing_latency(d.source, d.route_ms / 1000);
  co_return d;
}

awaitable<void> Gateway::Impl::handle(HttpRequest& req, ResponseWriter& out) {
  const auto started = std::chrono::steady_clock::now();
  metrics.request_started();
  const std::string& path = req.target;
  const FrontAdapter& front = path.rfind("/api/", 0) == 0 || path == "/"                      ? *ollama_chat
                              : path == "/v1/messages" || path == "/v1/messages/count_tokens" ? *anthropic
                              : path == "/v1/responses"                                       ? *responses
                                                                                              : *openai;
  std::string model_label = "-";
  std::string category_label = "-";
  // Labels only take values from a fixed set (served paths, configured models and categories): a
  // client must not be able to grow the metrics without bound by inventing paths or model names.
  const bool served =
      req.malformed_status == 0 && (find_endpoint(path) != nullptr || find_extra(path) != nullptr);
  const std::string endpoint_label = served ? path : "other";
  int status = 500;
  std::optional<std::string> failure; // co_await is not allowed inside a catch block
  try {
    const Endpoint* ep = find_endpoint(path);
    const ExtraEndpoint* added = ep == nullptr ? find_extra(path) : nullptr;
    const Grant* grant = nullptr;
    // Liveness probes need no key (they say nothing about models or answers).
    const bool open_path = (path == "/health" || path == "/" || path == "/api/version") &&
                           (req.method == "GET" || req.method == "HEAD");
    JsonRequestContext context; // its headers are filled only for the handlers that read them
    std::string priority_error;
    if (auto it = req.headers.find("x-request-priority"); it != req.headers.end()) {
      if (auto p = parse_priority(it->second)) {
        context.priority = *p;
        context.priority_given = true;
      } else {
        priority_error =
            "X-Request-Priority must be high, medium or low (got \"" + quote_input(it->second, 40) + "\")";
      }
    }
    if (req.malformed_status != 0) {
      status = co_await send_error(out, front, req.malformed_status, "invalid_request_error", req.malformed);
    } else if (api_keys.enabled() && !open_path && (grant = api_keys.find(req.headers)) == nullptr) {
      // The message never repeats what was sent: keys must not end up in logs or error trackers.
      Headers challenge = {{"www-authenticate", "Bearer"}};
      const bool presented = req.headers.contains("authorization") || req.headers.contains("x-api-key");
      status = co_await send_error(
          out, front, 401, "authentication_error",
          presented
              ? "the API key is not valid for this gateway"
              : "this gateway needs an API key: send \"Authorization: Bearer KEY\" (or \"x-api-key: KEY\")",
          challenge);
    } else if (req.body_too_large) {
      status = co_await send_error(out, front, 413, "request_too_large",
                                   "the request body is larger than the limit of " +
                                       std::to_string(options.max_body_bytes) + " bytes");
    } else if (!priority_error.empty()) {
      status = co_await send_error(out, front, 400, "invalid_request_error", priority_error);
    } else if (added != nullptr) {
      if (req.method != added->method && !(req.method == "HEAD" && added->method == "GET")) {
        Headers allow = {{"allow", added->method}};
        status = co_await send_error(
            out, front, 405, "method_not_allowed",
            path + " accepts " + added->method + ", not " + quote_input(req.method, 20), allow);
      } else {
        context.headers = req.headers;
        status = co_await call_extra(req, out, *added, context);
      }
    } else if (ep == nullptr) {
      status = co_await send_error(out, front, 404, "not_found",
                                   "no endpoint " + quote_input(req.method, 20) + " " + quote_input(path) +
                                       "; tinyroute serves " + served_paths());
    } else if (req.method != ep->method && !(req.method == "HEAD" && std::string(ep->method) == "GET")) {
      Headers allow = {{"allow", ep->method}};
      status = co_await send_error(
          out, front, 405, "method_not_allowed",
          std::string(path) + " accepts " + ep->method + ", not " + quote_input(req.method, 20), allow);
    } else if (path == "/health") {
      json breaker_states = json::object();
      for (const auto& [backend, state] : breakers.snapshot())
        breaker_states[backend] = breaker_state_name(state);
      const json internal = internal_json();
      json body = {{"status", "ok"},
                   {"breakers", breaker_states},
                   {"internal_model", internal},
                   {"queue",
                    {{"queued", internal.is_object() ? internal.value("queued", 0) : 0},
                     {"in_flight", internal.is_object() ? internal.value("active", 0) : 0}}},
                   {"backends", backends_json(*current_config())}};
      status = co_await send_json(out, 200, body);
    } else if (path == "/queue/stats") {
      const json internal = internal_json();
      json body = {{"queue_depth", internal.is_object() ? internal.value("queued", 0) : 0},
                   {"in_flight", internal.is_object() ? internal.value("active", 0) : 0},
                   {"internal_model", internal},
                   {"backends", backends_json(*current_config())}};
      status = co_await send_json(out, 200, body);
    } else if (path == "/") {
      Headers headers = {{"content-type", "text/plain; charset=utf-8"}};
      co_await out.send(200, headers, "Ollama is running");
      status = 200;
    } else if (path == "/api/version") {
      json body = {{"version", kOllamaApiVersion}};
      status = co_await send_json(out, 200, body);
    } else if (path == "/api/show") {
      status = co_await show(req, out, grant);
    } else if (path == "/api/embed" || path == "/api/embeddings" || path == "/v1/embeddings") {
      status = co_await embed(req, out, grant, context.priority, model_label);
    } else if (path == "/metrics") {
      Headers headers = {{"content-type", "text/plain; version=0.0.4"}};
      // A named local, not a temporary: GCC 12 destroys temporaries inside co_await expressions twice.
      const std::string text = metrics.render() + pool_metrics(pool.stats()) +
                               (options.extra_metrics ? options.extra_metrics() : "");
      co_await out.send(200, headers, text);
      status = 200;
    } else if (path == "/v1/models") {
      json data = json::array();
      for (const auto& name : listed_models(*current_config(), options)) {
        if (grant != nullptr && !grant->all && !is_auto_alias(options, name) && !grant->allows(name))
          continue;
        data.push_back({{"id", name}, {"object", "model"}, {"created", 0}, {"owned_by", "tinyroute"}});
      }
      json body = {{"object", "list"}, {"data", data}};
      status = co_await send_json(out, 200, body);
    } else if (path == "/api/tags" || path == "/api/ps") {
      auto cfg = current_config();
      const std::string loaded = config_loaded_at();
      json models = json::array();
      for (const auto& name : listed_models(*cfg, options)) {
        if (grant != nullptr && !grant->all && !is_auto_alias(options, name) && !grant->allows(name))
          continue;
        json entry = ollama_tag(*cfg, options, name, loaded);
        if (path == "/api/ps") { // remote models are always "loaded"; nothing expires
          entry["expires_at"] = "9999-12-31T23:59:59Z";
          entry["size_vram"] = 0;
        }
        models.push_back(std::move(entry));
      }
      json body = {{"models", models}};
      status = co_await send_json(out, 200, body);
    } else if (path == "/v1/route") {
      context.headers = req.headers;
      status = co_await route(req, out, context);
    } else if (path == "/v1/chat/completions") {
      status = co_await chat(req, out, *openai, grant, context.priority, category_label, model_label);
    } else if (path == "/v1/responses") {
      status = co_await chat(req, out, *responses, grant, context.priority, category_label, model_label);
    } else if (path == "/v1/messages") {
      status = co_await chat(req, out, *anthropic, grant, context.priority, category_label, model_label);
    } else if (path == "/v1/messages/count_tokens") {
      status = co_await count_tokens(req, out, grant, context.priority, category_label, model_label);
    } else if (path == "/api/chat") {
      status = co_await chat(req, out, *ollama_chat, grant, context.priority, category_label, model_label);
    } else if (path == "/api/generate") {
      status =
          co_await chat(req, out, *ollama_generate, grant, context.priority, category_label, model_label);
    }
  } catch (const boost::system::system_error&) {
    // The client went away mid-answer: nothing left to tell it.
    metrics.request_finished(endpoint_label, category_label, model_label, 499, seconds_since(started));
    throw;
  } catch (const std::exception& e) {
    spdlog::error("gateway: {} {} failed: {}", req.method, path, e.what());
    if (out.started()) {
      metrics.request_finished(endpoint_label, category_label, model_label, 500, seconds_since(started));
      throw;
    }
    // The exception's text stays in the log: it is for whoever fixes the bug, not for the client.
    failure =
        "tinyroute failed while answering this request (an internal error; the server log has the details)";
  }
  if (failure) status = co_await send_error(out, front, 500, "internal_error", *failure);
  metrics.request_finished(endpoint_label, category_label, model_label, status, seconds_since(started));
}

namespace {

// Every endpoint's body goes through here (and so every endpoint added later): strict JSON under the
// limits in request-json.h.
json parse_body(const std::string& body) {
  return parse_request_json(body);
}

// A JSON value of the wrong type that a handler touched without checking first (the checked accessors
// in chat.h name the field). The library's text names no field either, so it is not passed on.
FrontError wrong_type(const json::exception& e) {
  spdlog::debug("gateway: a request field had an unexpected type: {}", e.what());
  return FrontError(400, "invalid_request_error",
                    "a field of the request body has the wrong JSON type (for example a number where text "
                    "belongs); check the field types against the API's reference");
}

std::string header_value(const HttpRequest& req, const std::string& name) {
  const auto it = req.headers.find(name);
  return it == req.headers.end() ? std::string() : it->second;
}

std::string model_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// A category named by an MLX-dialect request: its models, no classification. Selection sees the same
// availability as routed requests: models a backend lacks (polled) and backends whose breaker is open.
RouteDecision category_decision(const Config& cfg, const ChatRequest& request,
                                const std::map<std::string, BackendModels>& polled,
                                const Breakers& breakers) {
  const auto started = std::chrono::steady_clock::now();
  if (cfg.find_category(request.category) == nullptr) {
    std::vector<std::string> names;
    for (const auto& c : cfg.categories) names.push_back(c.name);
    bad_request("unknown category '" + request.category + "'; configured categories: " + model_list(names));
  }
  RequestFacts facts;
  facts.needs_tools = !request.tools.empty();
  std::size_t bytes = 0;
  for (const auto& m : request.messages) {
    for (const auto& part : m.content) {
      if (part.kind == ContentPart::Kind::image) facts.needs_vision = true;
      bytes += part.text.size();
    }
  }
  // About four bytes a token: selection only needs to know whether the context window can hold it.
  const long long estimate =
      static_cast<long long>(bytes / 4) + std::max(0, request.sampling.max_tokens.value_or(0));
  facts.estimated_tokens = static_cast<int>(std::min<long long>(estimate, std::numeric_limits<int>::max()));
  const Availability availability = availability_of(cfg, polled, breakers);
  Selection selection;
  try {
    selection = select_model(cfg, request.category, facts, availability);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::no_candidate) throw FrontError(503, "no_candidate", e.what());
    if (e.code() == ErrorCode::context_overflow) throw FrontError(413, "context_length_exceeded", e.what());
    bad_request(e.what());
  }
  RouteDecision d;
  d.category = request.category;
  d.confidence = 1;
  d.model = selection.model;
  d.fallbacks = selection.fallbacks;
  d.reason = "the request named category '" + request.category + "'; " + selection.reason;
  d.source = "explicit";
  d.route_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return d;
}

// An /api/embed ({"input"}) or /api/embeddings ({"prompt"}) body; sets `name` to the model asked for.
EmbedRequest parse_embed_request(const json& body, bool legacy, std::string& name) {
  if (!body.is_object()) bad_request("the request body must be a JSON object");
  name = opt_string(body, "model", "").value_or("");
  if (name.empty()) bad_request("'model' is required (an embedding model, or \"auto\")");
  EmbedRequest request;
  if (legacy) {
    auto prompt = opt_string(body, "prompt", "");
    if (!prompt) bad_request("'prompt' is required and must be a string");
    request.inputs = {*prompt};
  } else {
    request.inputs = string_or_array(body, "input", "");
    if (request.inputs.empty()) bad_request("'input' is required: a string or a non-empty array of strings");
  }
  for (const char* key : {"truncate", "dimensions"}) {
    if (body.contains(key) && !body[key].is_null()) request.passthrough[key] = body[key];
  }
  // keep_alive and the runner options say how an Ollama server runs the model: hints. Other options
  // must reach the backend.
  if (body.contains("keep_alive") && !body["keep_alive"].is_null())
    request.hints["keep_alive"] = body["keep_alive"];
  if (const json* options = opt_object(body, "options", "")) {
    for (auto it = options->begin(); it != options->end(); ++it) {
      if (!it->is_null())
        (runner_option(it.key()) ? request.hints : request.passthrough)["options"][it.key()] = *it;
    }
  }
  return request;
}

// The native endpoints' "priority" field; the header's value when the body has none.
Priority body_priority(const json& body, const JsonRequestContext& context) {
  if (!body.is_object() || !body.contains("priority") || body["priority"].is_null()) return context.priority;
  const json& field = body["priority"];
  std::optional<Priority> p = field.is_string() ? parse_priority(field.get<std::string>()) : std::nullopt;
  if (!p) bad_request("'priority' must be \"high\", \"medium\" or \"low\"");
  return *p;
}

} // namespace

// Per backend: its availability (polled model lists, breaker) and its concurrency queue.
json Gateway::Impl::backends_json(const Config& cfg) const {
  json out = gateway::backends_json(cfg, model_lists.snapshot(), breakers, options.availability_poll_s);
  const auto queued = queues.snapshot();
  for (auto& [url, b] : out.items()) {
    const auto it = queued.find(url);
    const BackendQueues::Stats stats = it != queued.end() ? it->second : BackendQueues::Stats{};
    b["max_concurrency"] = backend_limit(cfg, url);
    b["in_flight"] = stats.in_flight;
    b["waiting"] = stats.waiting;
    b["waiting_by_priority"] = {{"high", stats.waiting_by_priority[static_cast<int>(Priority::high)]},
                                {"medium", stats.waiting_by_priority[static_cast<int>(Priority::normal)]},
                                {"low", stats.waiting_by_priority[static_cast<int>(Priority::low)]}};
  }
  return out;
}

awaitable<int> Gateway::Impl::show(HttpRequest& req, ResponseWriter& out, const Grant* grant) {
  std::optional<FrontError> failure;
  try {
    json body = parse_body(req.body);
    if (!body.is_object()) bad_request("the request body must be a JSON object");
    // "model" today; older clients send "name".
    auto name = opt_string(body, "model", "");
    if (!name || name->empty()) name = opt_string(body, "name", "");
    if (!name || name->empty()) bad_request("'model' is required");
    auto cfg = current_config();
    json answer = ollama_show(*cfg, options, *name, config_loaded_at());
    if (grant != nullptr && !is_auto_alias(options, *name) && !grant->allows(*name))
      throw FrontError(403, "permission_error", "this API key may not use model '" + *name + "'");
    co_return co_await send_json(out, 200, answer);
  } catch (const FrontError& e) {
    failure = e;
  } catch (const json::exception& e) {
    failure = wrong_type(e);
  }
  co_return co_await send_error(out, *ollama_chat, failure->status, failure->type, failure->what());
}

awaitable<int> Gateway::Impl::embed(HttpRequest& req, ResponseWriter& out, const Grant* grant,
                                    Priority priority, std::string& model_label) {
  const bool legacy = req.target == "/api/embeddings"; // {"prompt"} in, {"embedding"} out
  const bool openai_shape = req.target == "/v1/embeddings";
  const FrontAdapter& front = openai_shape ? *openai : *ollama_chat;
  std::optional<FrontError> failure;
  try {
    std::string name;
    bool base64 = false;
    EmbedRequest request;
    if (openai_shape) {
      OpenAIEmbeddings parsed = parse_openai_embeddings(parse_body(req.body));
      name = std::move(parsed.model);
      request = std::move(parsed.request);
      base64 = parsed.base64;
    } else {
      request = parse_embed_request(parse_body(req.body), legacy, name);
    }
    request.priority = priority;
    auto cfg = current_config();
    const ModelConfig& model = embedding_model(*cfg, options, name);
    model_label = model.name;
    if (grant != nullptr && !grant->allows(model.name))
      throw FrontError(403, "permission_error", "this API key may not use model '" + model.name + "'");
    ForwardOptions fopts;
    fopts.timeouts = {options.connect_timeout_s, options.first_byte_timeout_s, options.idle_timeout_s};
    fopts.tls = tls;
    fopts.queues = &queues;
    fopts.pool = options.upstream_keepalive > 0 ? &pool : nullptr;
    const auto started = std::chrono::steady_clock::now();
    EmbedResult result = co_await forward_embed(*cfg, model, request, fopts);
    metrics.backend_latency(model.name, seconds_since(started));
    json answer;
    if (openai_shape) {
      answer = render_openai_embeddings(result, model.name, base64);
    } else if (legacy) {
      answer = {{"embedding", result.embeddings.front()}};
    } else {
      answer = {{"model", name},
                {"embeddings", result.embeddings},
                {"total_duration", static_cast<long long>(seconds_since(started) * 1e9)},
                {"load_duration", 0},
                {"prompt_eval_count", result.prompt_tokens}};
    }
    Headers headers = {{"x-tinyroute-model", model.name}};
    if (std::string names = unapplied(request.hints, model.provider); !names.empty())
      headers.emplace_back("x-tinyroute-unapplied", std::move(names));
    co_return co_await send_json(out, 200, answer, std::move(headers));
  } catch (const FrontError& e) {
    failure = e;
  } catch (const json::exception& e) {
    failure = wrong_type(e);
  }
  co_return co_await send_error(out, front, failure->status, failure->type, failure->what());
}

awaitable<int> Gateway::Impl::route(HttpRequest& req, ResponseWriter& out,
                                    const JsonRequestContext& context) {
  std::optional<FrontError> failure;
  try {
    json body = parse_body(req.body);
    const Priority priority = body_priority(body, context);
    if (body.is_object()) body.erase("priority");
    if (body.is_object() && !body.contains("model")) body["model"] = "auto";
    std::string conversation = header_value(req, "x-tinyroute-conversation");
    if (body.is_object() && body.contains("conversation")) {
      if (!body["conversation"].is_string()) bad_request("\"conversation\" must be a string");
      conversation = body["conversation"].get<std::string>();
      body.erase("conversation");
    }
    ChatRequest request = openai->parse(body);
    request.priority = priority;
    request.conversation = std::move(conversation);
    RouteDecision d = co_await call_router(request);
    co_return co_await send_json(out, 200, to_json(d));
  } catch (const FrontError& e) {
    failure = e;
  } catch (const json::exception& e) {
    failure = wrong_type(e);
  }
  co_return co_await send_error(out, *openai, failure->status, failure->type, failure->what());
}

awaitable<int> Gateway::Impl::call_extra(HttpRequest& req, ResponseWriter& out, const ExtraEndpoint& endpoint,
                                         const JsonRequestContext& context) {
  int status = 500;
  std::string type = "internal_error";
  std::string message;
  try {
    json body;
    if (!req.body.empty() && req.method != "GET" && req.method != "HEAD") body = parse_body(req.body);
    json answer = co_await asio::co_spawn(
        router_pool,
        [&endpoint, &body, &context]() -> awaitable<json> { co_return endpoint.handler(body, context); },
        use_awaitable);
    co_return co_await send_json(out, 200, answer);
  } catch (const FrontError& e) {
    status = e.status;
    type = e.type;
    message = e.what();
  } catch (const json::exception& e) {
    const FrontError wrong = wrong_type(e);
    status = wrong.status;
    type = wrong.type;
    message = wrong.what();
  } catch (const Error& e) {
    status = http_status_for(e.code());
    type = e.code() == ErrorCode::context_overflow ? "context_length_exceeded"
           : status < 500                          ? "invalid_request_error"
                                                   : std::string(error_code_name(e.code()));
    message = e.what();
    if (status >= 500) spdlog::error("gateway: {} failed: {}", endpoint.path, message);
  } catch (const std::exception& e) {
    // A bug: the exception's text goes to the log, not to the client.
    spdlog::error("gateway: {} failed: {}", endpoint.path, e.what());
    message =
        "tinyroute failed while answering this request (an internal error; the server log has the details)";
  }
  co_return co_await send_error(out, *openai, status, type, message);
}

// The model a request names, or the one routing picks for "auto", with the guards: the internal model
// is refused (403), an unknown model is a 404 listing the available ones, a model the API key may not
// use a 403. Throws FrontError.
awaitable<RouteDecision> Gateway::Impl::resolve(const Config& cfg, const ChatRequest& request,
                                                const Grant* grant, std::string& category_label,
                                                std::string& model_label) {
  RouteDecision decision;
  if (is_internal_model(cfg, request.model)) {
    throw FrontError(403, "internal_model_forbidden",
                     "'" + request.model +
                         "' is tinyroute's internal routing model; it is internal-only and never answers "
                         "requests. Use \"auto\" or one of: " +
                         model_list(listed_models(cfg, options)));
  }
  if (!request.category.empty() && is_auto_alias(options, request.model)) {
    decision = category_decision(cfg, request, model_lists.snapshot(), breakers);
    metrics.routing_latency(decision.source, decision.route_ms / 1000);
  } else if (is_auto_alias(options, request.model)) {
    decision = co_await call_router(request);
    if (is_internal_model(cfg, decision.model)) {
      // A router bug must still never make the internal model answer.
      throw FrontError(500, "internal_model_forbidden",
                       "the router chose the internal model '" + decision.model + "', which never answers");
    }
  } else {
    const ModelConfig* m = find_answer_model(cfg, request.model);
    if (m == nullptr) {
      throw FrontError(404, "model_not_found",
                       "model '" + request.model +
                           "' is not configured; available: " + model_list(listed_models(cfg, options)));
    }
    decision.model = m->name;
    decision.category = m->categories.empty() ? "" : m->categories.front();
    decision.source = "explicit";
    decision.reason = "the request named the model";
    metrics.decision(decision.source);
  }
  category_label = decision.category.empty() ? "-" : decision.category;
  model_label = decision.model;
  if (grant != nullptr && !grant->allows(decision.model)) {
    throw FrontError(403, "permission_error",
                     is_auto_alias(options, request.model)
                         ? "routing chose '" + decision.model +
                               "' for this request, which this API key may not use"
                         : "this API key may not use model '" + decision.model + "'");
  }
  co_return decision;
}

awaitable<int> Gateway::Impl::chat(HttpRequest& req, ResponseWriter& out, const FrontAdapter& front,
                                   const Grant* grant, Priority priority, std::string& category_label,
                                   std::string& model_label) {
  auto config_ptr = current_config();
  const Config& cfg = *config_ptr;
  ChatRequest request;
  RouteDecision decision;
  std::vector<std::string> models;
  std::optional<FrontError> failure;
  try {
    request = front.parse(parse_body(req.body));
    request.priority = priority;
    request.conversation = header_value(req, "x-tinyroute-conversation");
    decision = co_await resolve(cfg, request, grant, category_label, model_label);
    models = candidates(cfg, decision);
    if (grant != nullptr) // a fallback the key may not use is skipped, never silently substituted
      std::erase_if(models, [&](const std::string& m) { return !grant->allows(m); });
    // Nor is a parameter dropped: only candidates whose backend takes everything the request asked for.
    if (std::string refusal = drop_unable(cfg, models, request, front); !refusal.empty())
      bad_request(refusal);
  } catch (const FrontError& e) {
    failure = e;
  } catch (const json::exception& e) {
    failure = wrong_type(e);
  }
  if (failure) co_return co_await send_error(out, front, failure->status, failure->type, failure->what());

  auto headers_for = [&](const std::string& model) {
    Headers headers{{"x-tinyroute-category", decision.category},
                    {"x-tinyroute-model", model},
                    {"x-tinyroute-confidence", fmt_double(decision.confidence, 3)},
                    {"x-tinyroute-route-ms", fmt_double(decision.route_ms, 2)},
                    {"x-tinyroute-decision-source", decision.source}};
    // Ollama's runner settings, which a backend of another kind does not take: said, not dropped.
    const ModelConfig* m = find_answer_model(cfg, model);
    if (std::string names = m ? unapplied(request.hints, m->provider) : ""; !names.empty())
      headers.emplace_back("x-tinyroute-unapplied", std::move(names));
    return headers;
  };

  ForwardOptions fopts;
  fopts.timeouts = {options.connect_timeout_s, options.first_byte_timeout_s, options.idle_timeout_s};
  fopts.retries = options.retries;
  fopts.backoff_s = options.retry_backoff_s;
  fopts.tls = tls;
  fopts.pool = options.upstream_keepalive > 0 ? &pool : nullptr;
  fopts.queues = &queues;

  std::string answering;
  ForwardSink sink;
  sink.begin = [&](const std::string& model) { answering = model; };
  ChatResult result;
  std::unique_ptr<FrontStream> stream;
  bool ended_with_error = false;
  if (request.stream) {
    sink.committed = [&] { return out.started(); };
    sink.event = [&](const ChatEvent& e) -> awaitable<void> {
      if (!out.started()) {
        auto headers = headers_for(answering);
        headers.emplace_back("content-type", front.stream_content_type());
        headers.emplace_back("cache-control", "no-cache");
        co_await out.begin_stream(200, headers);
        stream = front.stream(request, answering);
        co_await out.write_chunk(stream->start());
      }
      if (e.kind == ChatEvent::Kind::error) ended_with_error = true;
      co_await out.write_chunk(stream->event(e));
    };
  } else {
    sink.committed = [] { return false; };
    sink.begin = [&](const std::string& model) {
      answering = model;
      result = {};
    };
    sink.event = [&](const ChatEvent& e) -> awaitable<void> {
      accumulate(result, e);
      co_return;
    };
  }

  ForwardResult fr = co_await forward(cfg, models, request, fopts, metrics, breakers, sink);
  model_label = fr.ok ? fr.model : decision.model;
  if (!fr.ok) {
    co_return co_await send_error(out, front, fr.status, fr.error_type, fr.message,
                                  headers_for(decision.model));
  }
  if (request.stream) {
    if (!out.started()) { // the upstream finished without a single event
      ChatEvent finish;
      finish.kind = ChatEvent::Kind::finish;
      finish.finish_reason = "stop";
      co_await sink.event(finish);
    }
    if (!ended_with_error) co_await out.write_chunk(stream->finish());
    co_await out.end_stream();
    co_return 200;
  }
  co_return co_await send_json(out, 200, front.render(result, request, fr.model), headers_for(fr.model));
}

// POST /v1/messages/count_tokens: the model is resolved as for /v1/messages (routing for "auto"); its
// backend counts when it can, else the internal model's tokenizer estimates (see count-tokens.h).
awaitable<int> Gateway::Impl::count_tokens(HttpRequest& req, ResponseWriter& out, const Grant* grant,
                                           Priority priority, std::string& category_label,
                                           std::string& model_label) {
  auto config_ptr = current_config();
  const Config& cfg = *config_ptr;
  std::optional<FrontError> failure;
  try {
    ChatRequest request = parse_count_tokens(*anthropic, parse_body(req.body));
    request.priority = priority;
    request.conversation = header_value(req, "x-tinyroute-conversation");
    const RouteDecision decision = co_await resolve(cfg, request, grant, category_label, model_label);
    const ModelConfig* model = find_answer_model(cfg, decision.model);
    if (model == nullptr) throw FrontError(500, "internal_error", "routing chose an unknown model");
    ForwardOptions fopts;
    fopts.timeouts = {options.connect_timeout_s, options.first_byte_timeout_s, options.idle_timeout_s};
    fopts.tls = tls;
    fopts.pool = options.upstream_keepalive > 0 ? &pool : nullptr;
    std::optional<TokenCount> counted = co_await count_upstream(*model, request, fopts);
    if (!counted) {
      const std::function<int(const std::string&)>& tokenizer = options.count_tokens;
      counted = co_await asio::co_spawn(
          router_pool,
          [&tokenizer, &request]() -> awaitable<TokenCount> {
            const std::string text = estimate_text(request);
            if (tokenizer) {
              try {
                co_return TokenCount{tokenizer(text), "internal-estimate"};
              } catch (const std::exception& e) { // e.g. the engine is being replaced by a reload
                spdlog::warn("count_tokens: the internal tokenizer failed ({}); estimating by bytes",
                             e.what());
              }
            }
            co_return TokenCount{static_cast<int>((text.size() + 3) / 4), "byte-estimate"};
          },
          use_awaitable);
    }
    Headers headers = {{"x-tinyroute-token-count", counted->source},
                       {"x-tinyroute-model", model->name},
                       {"x-tinyroute-category", decision.category},
                       {"x-tinyroute-decision-source", decision.source}};
    const json body = {{"input_tokens", counted->input_tokens}};
    co_return co_await send_json(out, 200, body, std::move(headers));
  } catch (const FrontError& e) {
    failure = e;
  }
  co_return co_await send_error(out, *anthropic, failure->status, failure->type, failure->what());
}

// Polls every backend's model list, then sleeps a period; ends with the io_context.
awaitable<void> Gateway::Impl::poll_models() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const ClientTimeouts timeouts{options.connect_timeout_s, std::min(options.first_byte_timeout_s, 30.0),
                                options.idle_timeout_s};
  for (;;) {
    const auto config_now = current_config();
    const std::map<std::string, Provider> backends = backends_of(*config_now);
    for (auto it = backends.begin(); it != backends.end(); ++it) {
      if (it->second == Provider::anthropic) continue; // no model list to ask: assumed available
      const std::string url = it->first;
      const Provider provider = it->second;
      const std::string key = poll_api_key(*config_now, url);
      const auto before = model_lists.snapshot();
      const auto prev = before.find(url);
      const bool was_up = prev == before.end() || !prev->second.polled || prev->second.reachable;
      BackendModels polled = co_await poll_backend(url, provider, key, timeouts, tls);
      // Logged on changes only: a server that stays down must not fill the log every period.
      if (!polled.reachable && was_up) spdlog::warn("availability: {}; its models are skipped", polled.error);
      if (polled.reachable && !was_up) spdlog::info("availability: {} answers again", url);
      model_lists.put(std::move(polled));
    }
    timer.expires_after(
        std::chrono::milliseconds(static_cast<long long>(options.availability_poll_s * 1000)));
    co_await timer.async_wait(use_awaitable);
  }
}

Gateway::Gateway(Config config, Router router, GatewayOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(router), std::move(options))) {}

Gateway::~Gateway() {
  if (impl_ && impl_->running) stop(std::chrono::milliseconds(0));
  if (impl_) impl_->router_pool.join();
}

void Gateway::add_json_endpoint(std::string method, std::string path, JsonContextHandler handler) {
  auto& s = *impl_;
  if (s.running)
    throw Error(ErrorCode::invalid_argument, "add_json_endpoint: the gateway is already serving");
  if (path.empty() || path[0] != '/')
    throw Error(ErrorCode::invalid_argument, "add_json_endpoint: the path must start with '/': " + path);
  if (!handler) throw Error(ErrorCode::invalid_argument, "add_json_endpoint: no handler for " + path);
  if (find_endpoint(path) != nullptr || s.find_extra(path) != nullptr)
    throw Error(ErrorCode::invalid_argument, "add_json_endpoint: " + path + " is already served");
  for (auto& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  s.extra.push_back({std::move(method), std::move(path), std::move(handler)});
}

void Gateway::add_json_endpoint(std::string method, std::string path, JsonHandler handler) {
  if (!handler) throw Error(ErrorCode::invalid_argument, "add_json_endpoint: no handler for " + path);
  add_json_endpoint(std::move(method), std::move(path),
                    JsonContextHandler([h = std::move(handler)](const json& body, const JsonRequestContext&) {
                      return h(body);
                    }));
}

void Gateway::start() {
  auto& s = *impl_;
  if (s.running) return;
  ServerLimits limits;
  limits.max_body_bytes = s.options.max_body_bytes;
  limits.max_header_bytes = s.options.max_header_bytes;
  limits.request_read_timeout_s = s.options.request_read_timeout_s;
  if (s.contexts.empty()) {
    for (int i = 0; i < std::max(1, s.options.threads); ++i)
      s.contexts.push_back(std::make_unique<Impl::NetworkContext>());
  } else {
    for (auto& context : s.contexts) context->restart(); // started again after stop()
  }
  std::vector<asio::io_context*> contexts;
  for (auto& context : s.contexts) contexts.push_back(context.get());
  s.server = std::make_unique<HttpServer>(
      contexts, s.options.host, s.options.port, limits,
      [impl = impl_.get()](HttpRequest& req, ResponseWriter& out) { return impl->handle(req, out); });
  s.server->start();
  s.bound_port = s.server->port();
  for (auto* context : contexts) s.work.push_back(asio::make_work_guard(*context));
  if (s.options.availability_poll_s > 0) asio::co_spawn(*contexts.front(), s.poll_models(), asio::detached);
  for (auto* context : contexts) s.threads.emplace_back([context] { context->run(); });
  s.running = true;
  spdlog::info("gateway: listening on {}:{}", s.options.host, port());
}

int Gateway::port() const {
  return impl_->server ? impl_->server->port() : 0;
}

void Gateway::stop(std::chrono::milliseconds drain) {
  auto& s = *impl_;
  if (!s.running) return;
  s.server->stop_accepting();
  const auto deadline = std::chrono::steady_clock::now() + drain;
  while (s.server->active_requests() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  s.work.clear();
  for (auto& context : s.contexts) context->stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  s.running = false;
}

void Gateway::reload(Config config) {
  auto next = std::make_shared<const Config>(std::move(config));
  std::lock_guard lock(impl_->config_mutex);
  impl_->config = std::move(next);
  impl_->loaded_at = iso_time();
}

std::optional<Priority> parse_priority(std::string_view text) {
  std::string t(text);
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  while (!t.empty() && t.front() == ' ') t.erase(0, 1);
  if (t == "high") return Priority::high;
  if (t == "medium" || t == "normal") return Priority::normal;
  if (t == "low") return Priority::low;
  return std::nullopt;
}

std::string_view priority_name(Priority priority) {
  switch (priority) {
  case Priority::high:
    return "high";
  case Priority::low:
    return "low";
  case Priority::normal:
    break;
  }
  return "medium";
}

Availability Gateway::availability() const {
  return availability_of(*impl_->current_config(), impl_->model_lists.snapshot(), impl_->breakers);
}

std::string Gateway::metrics_text() const {
  return impl_->metrics.render();
}

GatewayOptions gateway_options_from(const Config& config) {
  GatewayOptions options;
  options.host = config.gateway.host;
  options.port = config.gateway.port;
  options.max_body_bytes = config.gateway.max_body_bytes;
  options.availability_poll_s = config.gateway.availability_poll_s;
  std::string problems;
  for (const auto& key : config.gateway.api_keys) {
    const char* value = std::getenv(key.key_env.c_str());
    if (value == nullptr || *value == '\0') {
      problems += (problems.empty() ? "" : "\n") + config.source_path + ":" + std::to_string(key.line) +
                  ": gateway.api_keys: the environment variable " + key.key_env +
                  " is not set or empty; export the key there before starting the gateway";
      continue;
    }
    auto& models = options.api_keys[value];
    models.insert(models.end(), key.models.begin(), key.models.end());
  }
  if (!problems.empty()) throw Error(ErrorCode::config_invalid, problems);
  return options;
}

} // namespace tinyroute
