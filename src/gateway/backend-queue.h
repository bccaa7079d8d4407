// Per-backend concurrency limits: at most `limit` forwards to one backend server (base URL) at once.
// The others wait without holding a thread, in a queue ordered by request priority, then arrival; a
// slot freed by one request is handed straight to the next waiter.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "tinyroute/config.h"
#include "tinyroute/engine.h"

namespace tinyroute::gateway {

class BackendQueues {
public:
  struct Stats {
    int limit = 0; // 0 = unlimited
    int in_flight = 0;
    int waiting = 0;
    std::array<int, 3> waiting_by_priority{}; // indexed by Priority (low, normal, high)
  };

  // A held slot; giving it back (destruction) lets the next waiter in.
  class Permit {
  public:
    Permit() = default;
    Permit(BackendQueues* owner, std::string backend) : owner_(owner), backend_(std::move(backend)) {}
    Permit(Permit&& other) noexcept;
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit();

  private:
    BackendQueues* owner_ = nullptr;
    std::string backend_;
  };

  BackendQueues() = default;
  BackendQueues(const BackendQueues&) = delete;
  BackendQueues& operator=(const BackendQueues&) = delete;

  // Waits for a slot on `backend`. limit <= 0 = unlimited (the forward is still counted in flight).
  boost::asio::awaitable<Permit> acquire(const std::string& backend, int limit, Priority priority);
  std::map<std::string, Stats> snapshot() const;

  struct Waiter {
    int priority = 0;
    std::uint64_t seq = 0;
    bool ready = false;           // a slot was handed over (in_flight already counts it)
    std::function<void()> resume; // set while the waiting coroutine is suspended
  };

private:
  struct Queue {
    int limit = 0;
    int in_flight = 0;
    std::vector<std::shared_ptr<Waiter>> waiting;
  };
  void release(const std::string& backend);

  mutable std::mutex mutex_;
  std::map<std::string, Queue> queues_;
  std::uint64_t next_seq_ = 0;
};

// The limit that applies to `base_url`: the smallest max_concurrency its models set; 0 = none.
int backend_limit(const Config& config, const std::string& base_url);

} // namespace tinyroute::gateway
