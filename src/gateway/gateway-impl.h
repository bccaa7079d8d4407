// The gateway's state and its endpoint table, shared by the files that hold its handlers: gateway.cpp
// (dispatch, the chat endpoints, lifecycle), ops-endpoints.cpp (/health, /queue/stats, /metrics),
// ollama-endpoints.cpp (the model listings) and decision-endpoints.cpp (/v1/route and the endpoints
// serve adds). Only those files include it.
#pragma once

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
using namespace gateway; // the gateway's own files only

namespace gateway {

// The error shape an answer takes: each front renders its own protocol's errors.
enum class Protocol { openai, anthropic, ollama, responses };

double seconds_since(std::chrono::steady_clock::time_point t);

// Where a library Error lands on the HTTP status scale (for added JSON endpoints).
int http_status_for(ErrorCode code);

// What a request still in flight when stop()'s drain ends is answered (503): its engine work was
// cancelled (Error(cancelled): only the gateway's stop() cancels a request's engine work).
FrontError shutting_down_error();

// Every endpoint's body goes through here (and so every endpoint added later): strict JSON under the
// limits in request-json.h.
json parse_body(const std::string& body);

// A JSON value of the wrong type that a handler touched without checking first (the checked accessors
// in chat.h name the field). The library's text names no field either, so it is not passed on.
FrontError wrong_type(const json::exception& e);

std::string header_value(const HttpRequest& req, const std::string& name);

// The native endpoints' "priority" field; the header's value when the body has none.
Priority body_priority(const json& body, const JsonRequestContext& context);

} // namespace gateway

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

  // ---- the endpoint table -------------------------------------------------------------------------
  struct Endpoint;
  // What a handler gets: the request, where the answer goes, and what dispatch worked out before it.
  struct Call {
    HttpRequest& req;
    ResponseWriter& out;
    const Endpoint& endpoint;
    const Grant* grant; // the API key's grant; nullptr when the gateway has no keys
    JsonRequestContext& context;
    std::string& category_label; // metrics labels the handler fills in
    std::string& model_label;
  };
  using Handler = awaitable<int> (Impl::*)(Call&);
  // One served endpoint. Dispatch runs the API key check (unless `open`), the priority header and the
  // body limit before the handler; a served path asked with another method is 405 naming this one,
  // an unserved path 404 listing the table. Errors before and in the handler take `errors`' shape.
  struct Endpoint {
    std::string method;
    std::string path;
    Protocol errors = Protocol::openai;
    bool open = false; // answered without an API key (liveness probes say nothing about models)
    Handler handler = nullptr;
    JsonContextHandler json = {}; // an endpoint added with add_json_endpoint (handler: on_json)
  };
  static std::vector<Endpoint> builtin_endpoints();
  // The built-in endpoints, then serve's (add_json_endpoint); fixed once start() ran, read without a lock.
  std::vector<Endpoint> endpoints = builtin_endpoints();
  const Endpoint* find_endpoint(const std::string& path) const {
    // An index loop, outside the coroutines: GCC 12 miscompiles range-for over containers inside them.
    for (std::size_t i = 0; i < endpoints.size(); ++i) {
      if (endpoints[i].path == path) return &endpoints[i];
    }
    return nullptr;
  }
  std::string served_paths() const {
    std::string served;
    for (const auto& e : endpoints) served += (served.empty() ? "" : ", ") + e.path;
    return served;
  }
  const FrontAdapter& front_for(Protocol p) const {
    switch (p) {
    case Protocol::anthropic:
      return *anthropic;
    case Protocol::ollama:
      return *ollama_chat;
    case Protocol::responses:
      return *responses;
    case Protocol::openai:
      break;
    }
    return *openai;
  }
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
  CancelToken shutdown; // this run's: cancelled when stop()'s drain is over (a new one per start())
  int bound_port = 0;   // kept: the acceptor is closed after stop()
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
  awaitable<int> call_json(HttpRequest& req, ResponseWriter& out, const Endpoint& endpoint,
                           const JsonRequestContext& context);
  // The handlers of builtin_endpoints(), and on_json for the added ones.
  awaitable<int> on_chat(Call& c);
  awaitable<int> on_count_tokens(Call& c);
  awaitable<int> on_embed(Call& c);
  awaitable<int> on_route(Call& c);
  awaitable<int> on_json(Call& c);
  awaitable<int> on_models(Call& c);
  awaitable<int> on_tags(Call& c);
  awaitable<int> on_show(Call& c);
  awaitable<int> on_version(Call& c);
  awaitable<int> on_root(Call& c);
  awaitable<int> on_health(Call& c);
  awaitable<int> on_queue_stats(Call& c);
  awaitable<int> on_metrics(Call& c);
  awaitable<int> show(HttpRequest& req, ResponseWriter& out, const Grant* grant);
  awaitable<int> embed(HttpRequest& req, ResponseWriter& out, const Grant* grant, Priority priority,
                       std::string& model_label);
  json backends_json(const Config& cfg) const;
  json internal_json() const { return options.internal_status ? options.internal_status() : json(nullptr); }
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

} // namespace tinyroute
