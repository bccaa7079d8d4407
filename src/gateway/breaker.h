// Circuit breakers, one per backend server (base URL): a server that keeps failing is skipped at once
// instead of costing every request a connect timeout, and is probed again after a cool-down.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace tinyroute::gateway {

struct BreakerOptions {
  int failure_threshold = 5; // consecutive failures that open the breaker
  std::chrono::milliseconds open_for{30000};
};

enum class BreakerState { closed, open, half_open };

const char* breaker_state_name(BreakerState s);

class Breakers {
public:
  using Clock = std::chrono::steady_clock;
  explicit Breakers(BreakerOptions options = {}) : options_(options) {}

  // May a request go to `backend` now? Open: no, until the cool-down ends; then exactly one caller
  // gets a half-open probe while the others keep being refused until it reports.
  bool allow(const std::string& backend, Clock::time_point now = Clock::now());
  void success(const std::string& backend);
  void failure(const std::string& backend, Clock::time_point now = Clock::now());
  // A try that never reached the server (e.g. a missing API key) says nothing about it: end the probe.
  void release(const std::string& backend);
  BreakerState state(const std::string& backend) const;
  // Open and still cooling down: selection skips the backend. False once the cool-down is over, so
  // the next request can be the probe (skipping it for good would keep the breaker open forever).
  bool refusing(const std::string& backend, Clock::time_point now = Clock::now()) const;
  std::map<std::string, BreakerState> snapshot() const;

private:
  struct Entry {
    BreakerState state = BreakerState::closed;
    int failures = 0;
    Clock::time_point opened{};
    bool probing = false;
  };
  BreakerOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

} // namespace tinyroute::gateway
