#include "tinyroute/decision-cache.h"

#include <sstream>

namespace tinyroute {

std::string normalize_request_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u == ' ' || u == '\t' || u == '\n' || u == '\r' || u == '\f' || u == '\v') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += (u >= 'A' && u <= 'Z') ? static_cast<char>(u - 'A' + 'a') : c;
  }
  return out;
}

DecisionCache::DecisionCache(DecisionCacheOptions options, std::function<Clock::time_point()> now)
    : options_(options), now_(std::move(now)) {}

std::string DecisionCache::key(std::string_view text, std::string_view config_hash, std::string_view kind) {
  // Length-prefixed parts: no text can be crafted to collide with another kind or config.
  std::string k;
  for (std::string_view part : {kind, config_hash})
    k += std::to_string(part.size()) + ":" + std::string(part);
  return k + normalize_request_text(text);
}

std::shared_ptr<const AnalyzeResult> DecisionCache::find(const std::string& key) {
  std::lock_guard lock(mutex_);
  const auto it = index_.find(key);
  if (it == index_.end()) {
    ++stats_.misses;
    return nullptr;
  }
  const auto age = std::chrono::duration<double>(now_() - it->second->stored).count();
  if (age > options_.ttl_s) {
    lru_.erase(it->second);
    index_.erase(it);
    ++stats_.expirations;
    ++stats_.misses;
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  ++stats_.hits;
  stats_.saved_ms += it->second->value->timing.total_ms;
  return it->second->value;
}

void DecisionCache::put(const std::string& key, AnalyzeResult value) {
  std::lock_guard lock(mutex_);
  if (options_.max_entries == 0) return;
  if (const auto it = index_.find(key); it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.push_front({key, std::make_shared<const AnalyzeResult>(std::move(value)), now_()});
  index_[key] = lru_.begin();
  while (lru_.size() > options_.max_entries) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
    ++stats_.evictions;
  }
}

void DecisionCache::clear() {
  std::lock_guard lock(mutex_);
  lru_.clear();
  index_.clear();
}

DecisionCacheStats DecisionCache::stats() const {
  std::lock_guard lock(mutex_);
  DecisionCacheStats s = stats_;
  s.entries = lru_.size();
  return s;
}

std::string DecisionCache::metrics_text() const {
  const DecisionCacheStats s = stats();
  std::ostringstream o;
  auto metric = [&o](const char* name, const char* type, const char* help, auto value) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
      << name << " " << value << "\n";
  };
  metric("tinyroute_decision_cache_hits_total", "counter", "Decisions answered from the decision cache.",
         s.hits);
  metric("tinyroute_decision_cache_misses_total", "counter",
         "Decisions the cache did not hold (the model ran).", s.misses);
  metric("tinyroute_decision_cache_evictions_total", "counter", "Entries pushed out by the size bound.",
         s.evictions);
  metric("tinyroute_decision_cache_expirations_total", "counter", "Entries found older than the TTL.",
         s.expirations);
  metric("tinyroute_decision_cache_entries", "gauge", "Decisions held now.", s.entries);
  metric("tinyroute_decision_cache_saved_seconds_total", "counter",
         "Internal-model time the cache hits did not spend.", s.saved_ms / 1000);
  return o.str();
}

} // namespace tinyroute
