// Idle keep-alive connections to plain-HTTP upstreams, per key: host:port and the io_context (network
// thread) that owns the socket. A forward takes one if there is one and gives it back once its response
// was read to the end; a connect per request would cost more than the whole proxying work. TLS upstreams are
// not pooled (their sessions would need the same care).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/beast/core/tcp_stream.hpp>

namespace tinyroute::gateway {

class ConnectionPool {
public:
  // `max_idle_per_host`: idle connections kept per key (0 = no pooling); `max_idle_age`: an
  // idle connection older than this is closed, not reused (servers drop idle connections too).
  explicit ConnectionPool(std::size_t max_idle_per_host,
                          std::chrono::steady_clock::duration max_idle_age = std::chrono::seconds(30));
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // The most recently returned live connection under `key`, if any.
  std::optional<boost::beast::tcp_stream> take(const std::string& key);
  void give_back(const std::string& key, boost::beast::tcp_stream stream);

  struct Stats {
    std::uint64_t reused = 0, returned = 0, dropped = 0;
    std::size_t idle = 0;
  };
  Stats stats() const;

private:
  struct Idle {
    boost::beast::tcp_stream stream;
    std::chrono::steady_clock::time_point since;
  };
  const std::size_t max_idle_;
  const std::chrono::steady_clock::duration max_age_;
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<Idle>> idle_;
  Stats stats_;
};

} // namespace tinyroute::gateway
