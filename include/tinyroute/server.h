// tinyroute serve as a library: the gateway with the internal model as its router. Requests for "auto",
// POST /v1/route and /v1/classify are decided on one routing path (serve/route-request.h) and forwarded
// to the chosen large model; /v1/analyze, /v1/select, /v1/agents/* and /v1/metadata serve the other
// decisions on the same engine; the config's bus section runs the bus dispatcher beside it. The
// decision cache and the conversations live in-process, or in Redis with shared_state.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "tinyroute/config.h"

namespace tinyroute {

struct ServerOptions {
  std::optional<std::string> host; // unset: the config's gateway.listen (default 127.0.0.1:8080)
  std::optional<int> port;         // 0: any free port
  int threads = 2;                 // network threads
  // With internal_model.deadline_ms the model warms up in the background after start(), routing by the
  // rules and the default category meanwhile. Called on that thread when it fails: stop the server.
  std::function<void()> on_warmup_failed;
};

class Server {
public:
  // Loads the internal model, makes the stores, the bus dispatcher and the gateway with every
  // endpoint. Without a routing deadline the model's instruction prefixes are decoded here.
  Server(Config config, ServerOptions options = {});
  ~Server(); // stops at once when still serving
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void start(); // listens (and starts the background warm-up, when there is one)
  int port() const;
  const std::string& host() const;

  // Serves `next` from now on: the engine is kept unless the internal model's shape changed; requests
  // in flight finish on the previous set. Throws when the new set cannot be built; the previous one
  // stays in service. Sections read only at start (bus connection, shared_state) are logged.
  void reload(Config next);

  // Stops the bus (its engine work cancelled, its entries left pending), stops accepting and gives
  // requests in flight `drain` to finish; the engine work of those still running is then cancelled
  // (they answer 503 shutting_down). False when the internal model failed to warm up.
  bool stop(std::chrono::milliseconds drain);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace tinyroute
