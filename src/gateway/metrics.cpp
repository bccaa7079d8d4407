#include "gateway/metrics.h"

#include <sstream>

namespace tinyroute::gateway {

namespace {
std::string esc(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}
} // namespace

void Metrics::request_started() {
  std::lock_guard lock(mutex_);
  ++in_flight_;
}

void Metrics::Histogram::observe(double seconds) {
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    if (seconds <= buckets[i]) ++counts[i];
  }
  ++count;
  sum += seconds;
}

void Metrics::request_finished(const std::string& endpoint, const std::string& category,
                               const std::string& model, int status, double seconds) {
  std::lock_guard lock(mutex_);
  --in_flight_;
  ++requests_[{endpoint, category, model, status}];
  latency_[model].observe(seconds);
}

void Metrics::routing_latency(const std::string& source, double seconds) {
  std::lock_guard lock(mutex_);
  routing_latency_[source].observe(seconds);
  ++decisions_[source];
}

void Metrics::decision(const std::string& source) {
  std::lock_guard lock(mutex_);
  ++decisions_[source];
}

void Metrics::backend_latency(const std::string& model, double seconds) {
  std::lock_guard lock(mutex_);
  backend_latency_[model].observe(seconds);
}

void Metrics::render_histogram(std::ostream& o, const char* name, const char* label,
                               const std::map<std::string, Histogram>& by_label) {
  for (const auto& [value, h] : by_label) {
    const std::string l = std::string(label) + "=\"" + esc(value) + "\"";
    for (std::size_t i = 0; i < buckets.size(); ++i)
      o << name << "_bucket{" << l << ",le=\"" << buckets[i] << "\"} " << h.counts[i] << "\n";
    o << name << "_bucket{" << l << ",le=\"+Inf\"} " << h.count << "\n";
    o << name << "_sum{" << l << "} " << h.sum << "\n";
    o << name << "_count{" << l << "} " << h.count << "\n";
  }
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
  o << "# HELP tinyroute_requests_total Requests answered, by endpoint, category, model and HTTP status.\n"
    << "# TYPE tinyroute_requests_total counter\n";
  for (const auto& [k, v] : requests_) {
    o << "tinyroute_requests_total{endpoint=\"" << esc(std::get<0>(k)) << "\",category=\""
      << esc(std::get<1>(k)) << "\",model=\"" << esc(std::get<2>(k)) << "\",status=\"" << std::get<3>(k)
      << "\"} " << v << "\n";
  }
  o << "# HELP tinyroute_request_duration_seconds Time from request to the end of the answer, by model.\n"
    << "# TYPE tinyroute_request_duration_seconds histogram\n";
  for (const auto& [model, h] : latency_) {
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      o << "tinyroute_request_duration_seconds_bucket{model=\"" << esc(model) << "\",le=\"" << buckets[i]
        << "\"} " << h.counts[i] << "\n";
    }
    o << "tinyroute_request_duration_seconds_bucket{model=\"" << esc(model) << "\",le=\"+Inf\"} " << h.count
      << "\n";
    o << "tinyroute_request_duration_seconds_sum{model=\"" << esc(model) << "\"} " << h.sum << "\n";
    o << "tinyroute_request_duration_seconds_count{model=\"" << esc(model) << "\"} " << h.count << "\n";
  }
  o << "# HELP tinyroute_routing_duration_seconds Time the router took per decision, by decision source.\n"
    << "# TYPE tinyroute_routing_duration_seconds histogram\n";
  render_histogram(o, "tinyroute_routing_duration_seconds", "source", routing_latency_);
  o << "# HELP tinyroute_decisions_total Routing decisions, by source (rule, model, cache, default, "
       "explicit).\n"
    << "# TYPE tinyroute_decisions_total counter\n";
  for (const auto& [source, n] : decisions_)
    o << "tinyroute_decisions_total{source=\"" << esc(source) << "\"} " << n << "\n";
  o << "# HELP tinyroute_backend_duration_seconds Time from sending a request upstream to its response "
       "head (time to first byte), by model.\n"
    << "# TYPE tinyroute_backend_duration_seconds histogram\n";
  render_histogram(o, "tinyroute_backend_duration_seconds", "model", backend_latency_);
  o << "# HELP tinyroute_in_flight_requests Requests being answered now.\n"
    << "# TYPE tinyroute_in_flight_requests gauge\n"
    << "tinyroute_in_flight_requests " << in_flight_ << "\n";
  o << "# HELP tinyroute_upstream_attempts_total Tries against upstream models, by outcome.\n"
    << "# TYPE tinyroute_upstream_attempts_total counter\n";
  for (const auto& [k, v] : attempts_) {
    o << "tinyroute_upstream_attempts_total{model=\"" << esc(k.first) << "\",outcome=\"" << esc(k.second)
      << "\"} " << v << "\n";
  }
  o << "# HELP tinyroute_fallbacks_total Requests moved from a failing model to its fallback.\n"
    << "# TYPE tinyroute_fallbacks_total counter\n";
  for (const auto& [k, v] : fallbacks_) {
    o << "tinyroute_fallbacks_total{from=\"" << esc(k.first) << "\",to=\"" << esc(k.second) << "\"} " << v
      << "\n";
  }
  return o.str();
}

} // namespace tinyroute::gateway
