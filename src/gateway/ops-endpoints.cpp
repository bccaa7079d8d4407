// The operations endpoints: /health, /queue/stats and /metrics.
#include "gateway/gateway-impl.h"

namespace tinyroute {

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

} // namespace

awaitable<int> Gateway::Impl::on_health(Call& c) {
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
  co_return co_await send_json(c.out, 200, body);
}

awaitable<int> Gateway::Impl::on_queue_stats(Call& c) {
  const json internal = internal_json();
  json body = {{"queue_depth", internal.is_object() ? internal.value("queued", 0) : 0},
               {"in_flight", internal.is_object() ? internal.value("active", 0) : 0},
               {"internal_model", internal},
               {"backends", backends_json(*current_config())}};
  co_return co_await send_json(c.out, 200, body);
}

awaitable<int> Gateway::Impl::on_metrics(Call& c) {
  Headers headers = {{"content-type", "text/plain; version=0.0.4"}};
  // A named local, not a temporary: GCC 12 destroys temporaries inside co_await expressions twice.
  const std::string text =
      metrics.render() + pool_metrics(pool.stats()) + (options.extra_metrics ? options.extra_metrics() : "");
  co_await c.out.send(200, headers, text);
  co_return 200;
}

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

} // namespace tinyroute
