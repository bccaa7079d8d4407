// Observability: Prometheus text exposition of requests by category, model and status; request,
// routing and backend latency histograms;
// in-flight requests, upstream attempts and fallbacks. Thread-safe; owned by one Gateway.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "core/prometheus.h"

namespace tinyroute::gateway {

class Metrics {
public:
  void request_started();
  void request_finished(const std::string& endpoint, const std::string& category, const std::string& model,
                        int status, double seconds);
  void routing_latency(const std::string& source, double seconds); // the Router's time per decision
  void decision(const std::string& source); // a decision made without the Router (explicit model)
  void backend_latency(const std::string& model, double seconds); // request sent -> response head
  void upstream_attempt(const std::string& model,
                        const std::string& outcome); // ok|connect_error|status_5xx|...
  void fallback(const std::string& from, const std::string& to);
  std::string render() const;

private:
  using Histogram = prometheus::Histogram;
  Histogram& histogram(std::map<std::string, Histogram>& by_label, const std::string& label);
  mutable std::mutex mutex_;
  long long in_flight_ = 0;
  // endpoint, category, model, status
  std::map<std::tuple<std::string, std::string, std::string, int>, long long> requests_;
  std::map<std::string, Histogram> latency_;         // model
  std::map<std::string, Histogram> routing_latency_; // decision source
  std::map<std::string, long long> decisions_;       // decision source (routed and explicit)
  std::map<std::string, Histogram> backend_latency_; // model
  std::map<std::pair<std::string, std::string>, long long> attempts_;
  std::map<std::pair<std::string, std::string>, long long> fallbacks_;
};

} // namespace tinyroute::gateway
