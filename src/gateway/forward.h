// Reliability: forwards a ChatRequest to its candidate models in order. Each model gets 1 + retries
// tries with exponential backoff on connect errors, 429 and 5xx; a model that keeps failing hands over
// to the next. Once bytes reached the client there is no retry: a break becomes an error event.
#pragma once

#include <utility> // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "gateway/backend-queue.h"
#include "gateway/breaker.h"
#include "gateway/chat.h"
#include "gateway/http-client.h"
#include "gateway/metrics.h"

namespace tinyroute::gateway {

struct Attempt {
  std::string model;
  int status = 0; // upstream HTTP status; 0 = no response
  std::string error;
  bool timed_out = false; // no answer in time (connect or first byte)
};

// What the forwarder drives. begin() is called when an upstream accepted the request (a retry after
// a partial, uncommitted answer calls it again: drop what was gathered); committed() says whether
// bytes already reached the client.
struct ForwardSink {
  std::function<void(const std::string& model)> begin;
  std::function<boost::asio::awaitable<void>(const ChatEvent&)> event;
  std::function<bool()> committed;
};

struct ForwardOptions {
  ClientTimeouts timeouts;
  int retries = 1;
  double backoff_s = 0.2;
  std::shared_ptr<boost::asio::ssl::context> tls; // for https:// upstreams
  ConnectionPool* pool = nullptr;                 // keep-alive connections to http:// upstreams
  BackendQueues* queues = nullptr; // per-backend concurrency limits (max_concurrency); null = none
};

struct ForwardResult {
  bool ok = false;   // an upstream answered (possibly ending in an error event after commit)
  std::string model; // who answered
  int status = 0;    // when !ok: the HTTP status to give the client
  std::string error_type;
  std::string message; // when !ok: lists every attempt
  std::vector<Attempt> attempts;
};

boost::asio::awaitable<ForwardResult> forward(const Config& config, const std::vector<std::string>& models,
                                              const ChatRequest& request, const ForwardOptions& options,
                                              Metrics& metrics, Breakers& breakers, ForwardSink& sink);

} // namespace tinyroute::gateway
