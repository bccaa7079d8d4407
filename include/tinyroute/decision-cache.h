// An exact-match cache of internal decisions: the same request (after normalising whitespace and
// case) under the same config gets the same decision without running the model. Bounded in entries
// (least recently used goes first) and in age (TTL). Thread-safe; one per process, shared by the
// analyzers built on every config reload (clear() it on reload; keys also carry the config hash).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "tinyroute/analyze.h"

namespace tinyroute {

struct DecisionCacheOptions {
  std::size_t max_entries = 4096; // 0 = the cache never stores
  double ttl_s = 300;             // an entry older than this is a miss
};

struct DecisionCacheStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t evictions = 0; // pushed out by the size bound
  std::uint64_t expirations = 0;
  std::size_t entries = 0;
  double saved_ms = 0; // the model time the hits did not spend (each entry's original cost)
};

// Trimmed, runs of whitespace collapsed to one space, ASCII letters lower-cased (bytes >= 0x80 are kept:
// case folding beyond ASCII would need a Unicode table, and a miss is only slower, never wrong).
std::string normalize_request_text(std::string_view text);

class DecisionCache {
public:
  using Clock = std::chrono::steady_clock;
  explicit DecisionCache(DecisionCacheOptions options = {},
                         std::function<Clock::time_point()> now = Clock::now);

  // The key for a decision `kind` (e.g. "analyze") about `text` under the config with `config_hash`.
  static std::string key(std::string_view text, std::string_view config_hash, std::string_view kind);

  // A hit counts towards hits and saved_ms and becomes the most recently used; otherwise a miss.
  std::shared_ptr<const AnalyzeResult> find(const std::string& key);
  void put(const std::string& key, AnalyzeResult value);
  void clear();
  DecisionCacheStats stats() const;
  // Prometheus text: tinyroute_decision_cache_{hits,misses,evictions,expirations}_total,
  // tinyroute_decision_cache_entries and tinyroute_decision_cache_saved_seconds_total.
  std::string metrics_text() const;

private:
  struct Entry {
    std::string key;
    std::shared_ptr<const AnalyzeResult> value;
    Clock::time_point stored;
  };
  DecisionCacheOptions options_;
  std::function<Clock::time_point()> now_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_; // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  DecisionCacheStats stats_;
};

} // namespace tinyroute
