#include "gateway/breaker.h"

namespace tinyroute::gateway {

const char* breaker_state_name(BreakerState s) {
  switch (s) {
  case BreakerState::closed:
    return "closed";
  case BreakerState::open:
    return "open";
  case BreakerState::half_open:
    return "half_open";
  }
  return "closed";
}

bool Breakers::allow(const std::string& backend, Clock::time_point now) {
  std::lock_guard lk(mu_);
  Entry& e = entries_[backend];
  switch (e.state) {
  case BreakerState::closed:
    return true;
  case BreakerState::open:
    if (now - e.opened < options_.open_for) return false;
    e.state = BreakerState::half_open;
    e.probing = true;
    return true;
  case BreakerState::half_open:
    if (e.probing) return false; // one probe at a time
    e.probing = true;
    return true;
  }
  return true;
}

void Breakers::success(const std::string& backend) {
  std::lock_guard lk(mu_);
  entries_[backend] = Entry{};
}

void Breakers::failure(const std::string& backend, Clock::time_point now) {
  std::lock_guard lk(mu_);
  Entry& e = entries_[backend];
  e.probing = false;
  if (e.state == BreakerState::half_open || ++e.failures >= options_.failure_threshold) {
    e.state = BreakerState::open;
    e.opened = now;
  }
}

void Breakers::release(const std::string& backend) {
  std::lock_guard lk(mu_);
  entries_[backend].probing = false;
}

BreakerState Breakers::state(const std::string& backend) const {
  std::lock_guard lk(mu_);
  const auto it = entries_.find(backend);
  return it == entries_.end() ? BreakerState::closed : it->second.state;
}

bool Breakers::refusing(const std::string& backend, Clock::time_point now) const {
  std::lock_guard lk(mu_);
  const auto it = entries_.find(backend);
  return it != entries_.end() && it->second.state == BreakerState::open &&
         now - it->second.opened < options_.open_for;
}

std::map<std::string, BreakerState> Breakers::snapshot() const {
  std::lock_guard lk(mu_);
  std::map<std::string, BreakerState> out;
  for (const auto& [k, v] : entries_) out[k] = v.state;
  return out;
}

} // namespace tinyroute::gateway
