#include "gateway/metrics.h"

#include <array>
#include <sstream>

namespace tinyroute::gateway {

namespace {
constexpr std::array<double, 12> kSeconds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
using prometheus::label;
using prometheus::sample;
using prometheus::Type;
} // namespace

Metrics::Histogram& Metrics::histogram(std::map<std::string, Histogram>& by_label, const std::string& label) {
  return by_label.try_emplace(label, kSeconds).first->second;
}

void Metrics::request_started() {
  std::lock_guard lock(mutex_);
  ++in_flight_;
}

void Metrics::request_finished(const std::string& endpoint, const std::string& category,
                               const std::string& model, int status, double seconds) {
  std::lock_guard lock(mutex_);
  --in_flight_;
  ++requests_[{endpoint, category, model, status}];
  histogram(latency_, model).observe(seconds);
}

void Metrics::routing_latency(const std::string& source, double seconds) {
  std::lock_guard lock(mutex_);
  histogram(routing_latency_, source).observe(seconds);
  ++decisions_[source];
}

void Metrics::decision(const std::string& source) {
  std::lock_guard lock(mutex_);
  ++decisions_[source];
}

void Metrics::backend_latency(const std::string& model, double seconds) {
  std::lock_guard lock(mutex_);
  histogram(backend_latency_, model).observe(seconds);
}

void Metrics::upstream_attempt(const std::string& model, const std::string& outcome) {
  std::lock_guard lock(mutex_);
  ++attempts_[{model, outcome}];
}

void Metrics::fallback(const std::string& from, const std::string& to) {
  std::lock_guard lock(mutex_);
  ++fallbacks_[{from, to}];
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::ostringstream o;
  const auto histograms = [&o](const char* name, const char* key,
                               const std::map<std::string, Histogram>& by) {
    for (const auto& [value, h] : by) h.write(o, name, label(key, value));
  };
  prometheus::family(o, "tinyroute_requests_total", Type::counter,
                     "Requests answered, by endpoint, category, model and HTTP status.");
  for (const auto& [k, v] : requests_) {
    sample(o, "tinyroute_requests_total",
           label("endpoint", std::get<0>(k)) + "," + label("category", std::get<1>(k)) + "," +
               label("model", std::get<2>(k)) + "," + label("status", std::to_string(std::get<3>(k))),
           v);
  }
  prometheus::family(o, "tinyroute_request_duration_seconds", Type::histogram,
                     "Time from request to the end of the answer, by model.");
  histograms("tinyroute_request_duration_seconds", "model", latency_);
  prometheus::family(o, "tinyroute_routing_duration_seconds", Type::histogram,
                     "Time the router took per decision, by decision source.");
  histograms("tinyroute_routing_duration_seconds", "source", routing_latency_);
  prometheus::family(o, "tinyroute_decisions_total", Type::counter,
                     "Routing decisions, by source (rule, model, cache, default, explicit).");
  for (const auto& [source, n] : decisions_)
    sample(o, "tinyroute_decisions_total", label("source", source), n);
  prometheus::family(o, "tinyroute_backend_duration_seconds", Type::histogram,
                     "Time from sending a request upstream to its response head (time to first byte), by "
                     "model.");
  histograms("tinyroute_backend_duration_seconds", "model", backend_latency_);
  prometheus::metric(o, "tinyroute_in_flight_requests", Type::gauge, "Requests being answered now.",
                     in_flight_);
  prometheus::family(o, "tinyroute_upstream_attempts_total", Type::counter,
                     "Tries against upstream models, by outcome.");
  for (const auto& [k, v] : attempts_) {
    sample(o, "tinyroute_upstream_attempts_total", label("model", k.first) + "," + label("outcome", k.second),
           v);
  }
  prometheus::family(o, "tinyroute_fallbacks_total", Type::counter,
                     "Requests moved from a failing model to its fallback.");
  for (const auto& [k, v] : fallbacks_) {
    sample(o, "tinyroute_fallbacks_total", label("from", k.first) + "," + label("to", k.second), v);
  }
  return o.str();
}

} // namespace tinyroute::gateway
