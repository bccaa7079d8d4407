#include "gateway/connection-pool.h"

#include <utility>

namespace tinyroute::gateway {

ConnectionPool::ConnectionPool(std::size_t max_idle_per_host,
                               std::chrono::steady_clock::duration max_idle_age)
    : max_idle_(max_idle_per_host), max_age_(max_idle_age) {}

std::optional<boost::beast::tcp_stream> ConnectionPool::take(const std::string& key) {
  std::vector<Idle> stale; // closed outside the lock
  std::optional<boost::beast::tcp_stream> out;
  {
    std::lock_guard lock(mutex_);
    auto it = idle_.find(key);
    if (it == idle_.end()) return std::nullopt;
    const auto now = std::chrono::steady_clock::now();
    auto& list = it->second;
    while (!list.empty()) {
      Idle last = std::move(list.back());
      list.pop_back();
      if (now - last.since > max_age_ || !last.stream.socket().is_open()) {
        ++stats_.dropped;
        stale.push_back(std::move(last));
        continue;
      }
      ++stats_.reused;
      out.emplace(std::move(last.stream));
      break;
    }
  }
  for (auto& s : stale) {
    boost::beast::error_code ignored;
    s.stream.socket().close(ignored);
  }
  return out;
}

void ConnectionPool::give_back(const std::string& key, boost::beast::tcp_stream stream) {
  stream.expires_never();
  std::unique_lock lock(mutex_);
  auto& list = idle_[key];
  if (list.size() >= max_idle_) {
    ++stats_.dropped;
    lock.unlock();
    boost::beast::error_code ignored;
    stream.socket().close(ignored);
    return;
  }
  ++stats_.returned;
  list.push_back(Idle{std::move(stream), std::chrono::steady_clock::now()});
}

ConnectionPool::Stats ConnectionPool::stats() const {
  std::lock_guard lock(mutex_);
  Stats s = stats_;
  for (const auto& [key, list] : idle_) s.idle += list.size();
  return s;
}

} // namespace tinyroute::gateway
