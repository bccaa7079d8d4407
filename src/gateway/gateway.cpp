// The Gateway: owns the io_context, the transport and the metrics; dispatches each HTTP request to
// its endpoint, resolves the model (Router for "auto", the internal-model guard) and streams the
// forwarded answer back through the request's front adapter.
#include "tinyroute/gateway.h"

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "gateway/auth.h"
#include "gateway/chat.h"
#include "gateway/forward.h"
#include "gateway/http-server.h"
#include "gateway/metrics.h"
#include "gateway/routing.h"
#include "tinyroute/error.h"

namespace tinyroute {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using namespace gateway;

namespace {

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
                                  {"/v1/messages", "POST"},
                                  {"/api/chat", "POST"},
                                  {"/api/generate", "POST"},
                                  {"/v1/route", "POST"},
                                  {"/v1/models", "GET"},
                                  {"/api/tags", "GET"},
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

struct ExtraEndpoint {
  std::string method;
  std::string path;
  JsonHeadersHandler handler;
};

} // namespace

struct Gateway::Impl {
  Impl(Config c, Router r, GatewayOptions o)
      : config(std::make_shared<const Config>(std::move(c))), router(std::move(r)), options(std::move(o)) {}

  std::shared_ptr<const Config> current_config() const {
    std::lock_guard lock(config_mutex);
    return config;
  }

  mutable std::mutex config_mutex;
  std::shared_ptr<const Config> config;
  Router router;
  GatewayOptions options;
  std::vector<ExtraEndpoint> extra; // fixed once start() ran: read without a lock
  ApiKeys api_keys{options.api_keys};
  std::shared_ptr<asio::ssl::context> tls = make_client_tls(options.ca_file); // shared by https calls
  Metrics metrics;
  Breakers breakers{BreakerOptions{options.breaker_failures, std::chrono::milliseconds(static_cast<long long>(
                                                                 options.breaker_open_s * 1000))}};
  std::unique_ptr<FrontAdapter> openai = make_openai_front();
  std::unique_ptr<FrontAdapter> anthropic = make_anthropic_front();
  std::unique_ptr<FrontAdapter> ollama_chat = make_ollama_chat_front();
  std::unique_ptr<FrontAdapter> ollama_generate = make_ollama_generate_front();

  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  asio::thread_pool router_pool{2}; // the Router may run a model: keep it off the network threads
  std::unique_ptr<HttpServer> server;
  std::vector<std::thread> threads;
  bool running = false;
  int bound_port = 0; // kept: the acceptor is closed after stop()

  awaitable<void> handle(HttpRequest& req, ResponseWriter& out);
  awaitable<int> chat(HttpRequest& req, ResponseWriter& out, const FrontAdapter& front, const Grant* grant,
                      std::string& category_label, std::string& model_label);
  awaitable<int> route(HttpRequest& req, ResponseWriter& out);
  awaitable<RouteDecision> call_router(const ChatRequest& request);
  awaitable<int> call_extra(HttpRequest& req, ResponseWriter& out, const ExtraEndpoint& endpoint);
  const ExtraEndpoint* find_extra(const std::string& path) const {
    for (const auto& e : extra) {
      if (e.path == path) return &e;
    }
    return nullptr;
  }
  std::string served_paths() const {
    std::string served = "/v1/chat/completions, /v1/messages, /v1/models, /api/chat, /api/generate, "
                         "/api/tags, /v1/route, /health, /metrics";
    for (const auto& e : extra) served += ", " + e.path;
    return served;
  }

  static awaitable<int> send_json(ResponseWriter& out, int status, const json& body, Headers headers = {}) {
    headers.emplace_back("content-type", "application/json");
    co_await out.send(status, headers, body.dump());
    co_return status;
  }
  static awaitable<int> send_error(ResponseWriter& out, const FrontAdapter& front, int status,
                                   const std::string& type, const std::string& message,
                                   Headers headers = {}) {
    co_return co_await send_json(out, status, front.error(status, type, message), std::move(headers));
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
    throw FrontError(503, "routing_failed", std::string("routing failed: ") + e.what());
  } catch (const std::exception& e) {
    throw FrontError(500, "routing_failed", std::string("routing failed: ") + e.what());
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
  const FrontAdapter& front = path.rfind("/api/", 0) == 0 ? *ollama_chat
                              : path == "/v1/messages"    ? *anthropic
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
    const bool open_path = path == "/health" && (req.method == "GET" || req.method == "HEAD");
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
    } else if (added != nullptr) {
      if (req.method != added->method && !(req.method == "HEAD" && added->method == "GET")) {
        Headers allow = {{"allow", added->method}};
        status = co_await send_error(out, front, 405, "method_not_allowed",
                                     path + " accepts " + added->method + ", not " + req.method, allow);
      } else {
        status = co_await call_extra(req, out, *added);
      }
    } else if (ep == nullptr) {
      status = co_await send_error(out, front, 404, "not_found",
                                   "no endpoint " + req.method + " " + path + "; tinyroute serves " +
                                       served_paths());
    } else if (req.method != ep->method && !(req.method == "HEAD" && std::string(ep->method) == "GET")) {
      Headers allow = {{"allow", ep->method}};
      status =
          co_await send_error(out, front, 405, "method_not_allowed",
                              std::string(path) + " accepts " + ep->method + ", not " + req.method, allow);
    } else if (path == "/health") {
      json backends = json::object();
      for (const auto& [backend, state] : breakers.snapshot()) backends[backend] = breaker_state_name(state);
      json body = {{"status", "ok"}, {"breakers", backends}};
      status = co_await send_json(out, 200, body);
    } else if (path == "/metrics") {
      Headers headers = {{"content-type", "text/plain; version=0.0.4"}};
      // A named local, not a temporary: GCC 12 destroys temporaries inside co_await expressions twice.
      const std::string text = metrics.render() + (options.extra_metrics ? options.extra_metrics() : "");
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
    } else if (path == "/api/tags") {
      json models = json::array();
      for (const auto& name : listed_models(*current_config(), options)) {
        if (grant != nullptr && !grant->all && !is_auto_alias(options, name) && !grant->allows(name))
          continue;
        models.push_back({{"name", name},
                          {"model", name},
                          {"modified_at", iso_time()},
                          {"size", 0},
                          {"digest", ""},
                          {"details", {{"format", "remote"}, {"family", "tinyroute"}}}});
      }
      json body = {{"models", models}};
      status = co_await send_json(out, 200, body);
    } else if (path == "/v1/route") {
      status = co_await route(req, out);
    } else if (path == "/v1/chat/completions") {
      status = co_await chat(req, out, *openai, grant, category_label, model_label);
    } else if (path == "/v1/messages") {
      status = co_await chat(req, out, *anthropic, grant, category_label, model_label);
    } else if (path == "/api/chat") {
      status = co_await chat(req, out, *ollama_chat, grant, category_label, model_label);
    } else if (path == "/api/generate") {
      status = co_await chat(req, out, *ollama_generate, grant, category_label, model_label);
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
    failure = std::string("tinyroute failed: ") + e.what();
  }
  if (failure) status = co_await send_error(out, front, 500, "internal_error", *failure);
  metrics.request_finished(endpoint_label, category_label, model_label, status, seconds_since(started));
}

namespace {

json parse_body(const std::string& body) {
  if (body.empty()) bad_request("the request body is empty; send a JSON object");
  try {
    return json::parse(body);
  } catch (const json::parse_error& e) {
    bad_request(std::string("the request body is not valid JSON: ") + e.what());
  }
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

} // namespace

awaitable<int> Gateway::Impl::route(HttpRequest& req, ResponseWriter& out) {
  std::optional<FrontError> failure;
  try {
    json body = parse_body(req.body);
    if (body.is_object() && !body.contains("model")) body["model"] = "auto";
    std::string conversation = header_value(req, "x-tinyroute-conversation");
    if (body.is_object() && body.contains("conversation")) {
      if (!body["conversation"].is_string()) bad_request("\"conversation\" must be a string");
      conversation = body["conversation"].get<std::string>();
      body.erase("conversation");
    }
    ChatRequest request = openai->parse(body);
    request.conversation = std::move(conversation);
    RouteDecision d = co_await call_router(request);
    co_return co_await send_json(out, 200, to_json(d));
  } catch (const FrontError& e) {
    failure = e;
  }
  co_return co_await send_error(out, *openai, failure->status, failure->type, failure->what());
}

awaitable<int> Gateway::Impl::call_extra(HttpRequest& req, ResponseWriter& out,
                                         const ExtraEndpoint& endpoint) {
  int status = 500;
  std::string type = "internal_error";
  std::string message;
  try {
    json body;
    if (!req.body.empty() && req.method != "GET" && req.method != "HEAD") body = parse_body(req.body);
    json answer = co_await asio::co_spawn(
        router_pool,
        [&endpoint, &body, &req]() -> awaitable<json> { co_return endpoint.handler(body, req.headers); },
        use_awaitable);
    co_return co_await send_json(out, 200, answer);
  } catch (const FrontError& e) {
    status = e.status;
    type = e.type;
    message = e.what();
  } catch (const Error& e) {
    status = http_status_for(e.code());
    type = status < 500 ? "invalid_request_error" : std::string(error_code_name(e.code()));
    message = e.what();
  } catch (const std::exception& e) {
    message = std::string("tinyroute failed: ") + e.what();
  }
  co_return co_await send_error(out, *openai, status, type, message);
}

awaitable<int> Gateway::Impl::chat(HttpRequest& req, ResponseWriter& out, const FrontAdapter& front,
                                   const Grant* grant, std::string& category_label,
                                   std::string& model_label) {
  auto config_ptr = current_config();
  const Config& cfg = *config_ptr;
  ChatRequest request;
  RouteDecision decision;
  std::optional<FrontError> failure;
  try {
    request = front.parse(parse_body(req.body));
    request.conversation = header_value(req, "x-tinyroute-conversation");
    if (is_internal_model(cfg, request.model)) {
      throw FrontError(403, "internal_model_forbidden",
                       "'" + request.model +
                           "' is tinyroute's internal routing model; it is internal-only and never answers "
                           "requests. Use \"auto\" or one of: " +
                           model_list(listed_models(cfg, options)));
    }
    if (is_auto_alias(options, request.model)) {
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
    }
    category_label = decision.category.empty() ? "-" : decision.category;
    model_label = decision.model;
    if (grant != nullptr && !grant->allows(decision.model)) {
      model_label = decision.model;
      throw FrontError(403, "permission_error",
                       is_auto_alias(options, request.model)
                           ? "routing chose '" + decision.model +
                                 "' for this request, which this API key may not use"
                           : "this API key may not use model '" + decision.model + "'");
    }
  } catch (const FrontError& e) {
    failure = e;
  }
  if (failure) co_return co_await send_error(out, front, failure->status, failure->type, failure->what());

  auto headers_for = [&](const std::string& model) {
    return Headers{{"x-tinyroute-category", decision.category},
                   {"x-tinyroute-model", model},
                   {"x-tinyroute-confidence", fmt_double(decision.confidence, 3)},
                   {"x-tinyroute-route-ms", fmt_double(decision.route_ms, 2)},
                   {"x-tinyroute-decision-source", decision.source}};
  };

  ForwardOptions fopts;
  fopts.timeouts = {options.connect_timeout_s, options.first_byte_timeout_s, options.idle_timeout_s};
  fopts.retries = options.retries;
  fopts.backoff_s = options.retry_backoff_s;
  fopts.tls = tls;
  std::vector<std::string> models = candidates(cfg, decision);
  if (grant != nullptr) // a fallback the key may not use is skipped, never silently substituted
    std::erase_if(models, [&](const std::string& m) { return !grant->allows(m); });

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
  co_return co_await send_json(out, 200, front.render(result, fr.model), headers_for(fr.model));
}

Gateway::Gateway(Config config, Router router, GatewayOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(router), std::move(options))) {}

Gateway::~Gateway() {
  if (impl_ && impl_->running) stop(std::chrono::milliseconds(0));
  if (impl_) impl_->router_pool.join();
}

void Gateway::add_json_endpoint(std::string method, std::string path, JsonHandler handler) {
  if (!handler) throw Error(ErrorCode::invalid_argument, "add_json_endpoint: no handler for " + path);
  add_json_endpoint(std::move(method), std::move(path),
                    JsonHeadersHandler([h = std::move(handler)](const json& body,
                                                                const std::map<std::string, std::string>&) {
                      return h(body);
                    }));
}

void Gateway::add_json_endpoint(std::string method, std::string path, JsonHeadersHandler handler) {
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

void Gateway::start() {
  auto& s = *impl_;
  if (s.running) return;
  ServerLimits limits;
  limits.max_body_bytes = s.options.max_body_bytes;
  limits.max_header_bytes = s.options.max_header_bytes;
  limits.request_read_timeout_s = s.options.request_read_timeout_s;
  s.server = std::make_unique<HttpServer>(
      s.io, s.options.host, s.options.port, limits,
      [impl = impl_.get()](HttpRequest& req, ResponseWriter& out) { return impl->handle(req, out); });
  s.server->start();
  s.bound_port = s.server->port();
  s.work.emplace(s.io.get_executor());
  for (int i = 0; i < std::max(1, s.options.threads); ++i) s.threads.emplace_back([&s] { s.io.run(); });
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
  s.work.reset();
  s.io.stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  s.running = false;
}

void Gateway::reload(Config config) {
  auto next = std::make_shared<const Config>(std::move(config));
  std::lock_guard lock(impl_->config_mutex);
  impl_->config = std::move(next);
}

std::string Gateway::metrics_text() const {
  return impl_->metrics.render();
}

GatewayOptions gateway_options_from(const Config& config) {
  GatewayOptions options;
  options.host = config.gateway.host;
  options.port = config.gateway.port;
  options.max_body_bytes = config.gateway.max_body_bytes;
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
