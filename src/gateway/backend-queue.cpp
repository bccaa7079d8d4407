#include "gateway/backend-queue.h"

#include <algorithm>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tinyroute::gateway {

namespace asio = boost::asio;

namespace {

// Suspends the calling coroutine until release() hands `w` a slot. The handler is parked in the waiter
// under the queue's mutex, so a slot handed over before the coroutine suspended is never lost.
template <typename Token>
auto async_wait_turn(std::mutex& mutex, std::shared_ptr<BackendQueues::Waiter> w, Token&& token) {
  return asio::async_initiate<Token, void()>(
      [&mutex, w](auto handler) {
        auto executor = asio::get_associated_executor(handler);
        auto held = std::make_shared<decltype(handler)>(std::move(handler));
        std::function<void()> resume = [held, executor] {
          asio::post(executor, [held]() mutable { std::move (*held)(); });
        };
        std::unique_lock lock(mutex);
        if (!w->ready) {
          w->resume = std::move(resume);
          return;
        }
        lock.unlock();
        resume();
      },
      token);
}

} // namespace

BackendQueues::Permit::Permit(Permit&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), backend_(std::move(other.backend_)) {}

BackendQueues::Permit& BackendQueues::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    if (owner_ != nullptr) owner_->release(backend_);
    owner_ = std::exchange(other.owner_, nullptr);
    backend_ = std::move(other.backend_);
  }
  return *this;
}

BackendQueues::Permit::~Permit() {
  if (owner_ != nullptr) owner_->release(backend_);
}

asio::awaitable<BackendQueues::Permit> BackendQueues::acquire(const std::string& backend, int limit,
                                                              Priority priority) {
  std::shared_ptr<Waiter> w;
  {
    std::lock_guard lock(mutex_);
    Queue& q = queues_[backend];
    q.limit = std::max(0, limit);
    if (q.limit == 0 || (q.in_flight < q.limit && q.waiting.empty())) {
      ++q.in_flight;
    } else {
      w = std::make_shared<Waiter>();
      w->priority = static_cast<int>(priority);
      w->seq = next_seq_++;
      q.waiting.push_back(w);
    }
  }
  if (w) co_await async_wait_turn(mutex_, w, asio::use_awaitable);
  co_return Permit(this, backend);
}

void BackendQueues::release(const std::string& backend) {
  std::function<void()> resume;
  {
    std::lock_guard lock(mutex_);
    Queue& q = queues_[backend];
    --q.in_flight;
    if (q.waiting.empty() || (q.limit > 0 && q.in_flight >= q.limit)) return;
    // Highest priority first; among equals, the one that came first.
    auto best = std::min_element(q.waiting.begin(), q.waiting.end(), [](const auto& a, const auto& b) {
      return a->priority != b->priority ? a->priority > b->priority : a->seq < b->seq;
    });
    std::shared_ptr<Waiter> next = *best;
    q.waiting.erase(best);
    ++q.in_flight;
    next->ready = true;
    resume = std::move(next->resume);
  }
  if (resume) resume();
}

std::map<std::string, BackendQueues::Stats> BackendQueues::snapshot() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, Stats> out;
  for (const auto& [backend, q] : queues_) {
    Stats s;
    s.limit = q.limit;
    s.in_flight = q.in_flight;
    s.waiting = static_cast<int>(q.waiting.size());
    for (const auto& w : q.waiting) ++s.waiting_by_priority[static_cast<std::size_t>(w->priority)];
    out.emplace(backend, s);
  }
  return out;
}

int backend_limit(const Config& config, const std::string& base_url) {
  int limit = 0;
  for (const auto& m : config.models) {
    if (m.base_url != base_url || m.max_concurrency <= 0) continue;
    limit = limit == 0 ? m.max_concurrency : std::min(limit, m.max_concurrency);
  }
  return limit;
}

} // namespace tinyroute::gateway
