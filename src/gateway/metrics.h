// Observability: Prometheus text exposition of requests by category, model and status; request,
// routing and backend latency histograms;
// in-flight requests, upstream attempts and fallbacks. Thread-safe; owned by one Gateway.
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <tuple>

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
  static constexpr std::array<double, 12> buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                     0.5,   1,    2.5,   5,    10,  30};
  struct Histogram {
    std::array<long long, buckets.size()> counts{};
    long long count = 0;
    double sum = 0;
    void observe(double seconds);
  };
  static void render_histogram(std::ostream& o, const char* name, const char* label,
                               const std::map<std::string, Histogram>& by_label);
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
