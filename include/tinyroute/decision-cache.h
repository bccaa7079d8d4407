// An exact-match cache of internal decisions: the same request (after normalising whitespace and
// case) under the same config gets the same decision without running the model. Bounded in entries
// (least recently used goes first) and in age (TTL). Thread-safe; one per process, shared by the
// analyzers built on every config reload (clear() it on reload; keys also carry the config hash).
// With a SharedStore (serve's shared_state) the decisions live there instead, under the config hash,
// so a decision one process made answers every process; a store that cannot answer is a miss (the
// model decides) and is counted.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "tinyroute/analyze.h"

namespace tinyroute {

class SharedStore;

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
  double saved_ms = 0;                // the model time the hits did not spend (each entry's original cost)
  std::uint64_t shared_fallbacks = 0; // the shared store failed (a lookup became a miss, a store was lost)
};

// Trimmed, runs of whitespace collapsed to one space, ASCII letters lower-cased (bytes >= 0x80 are kept:
// case folding beyond ASCII would need a Unicode table, and a miss is only slower, never wrong).
std::string normalize_request_text(std::string_view text);

// A decision as text and back, for a shared store (every field a hit uses; the selection is made again
// on each hit). decode_decision throws Error(invalid_argument) for text it did not write.
std::string encode_decision(const AnalyzeResult& r);
AnalyzeResult decode_decision(std::string_view text);

class DecisionCache {
public:
  using Clock = std::chrono::steady_clock;
  explicit DecisionCache(DecisionCacheOptions options = {},
                         std::function<Clock::time_point()> now = Clock::now);
  // Decisions in `shared` (bounded and aged by `options` there), none in this process.
  DecisionCache(DecisionCacheOptions options, std::shared_ptr<SharedStore> shared);

  // The key for a decision `kind` (e.g. "analyze") about `text` under the config with `config_hash`.
  static std::string key(std::string_view text, std::string_view config_hash, std::string_view kind);

  // A hit counts towards hits and saved_ms and becomes the most recently used; otherwise a miss.
  // `scope` (the config hash) is the shared store's namespace; the local cache has the hash in the key.
  std::shared_ptr<const AnalyzeResult> find(const std::string& key, std::string_view scope = {});
  void put(const std::string& key, AnalyzeResult value, std::string_view scope = {});
  void clear();
  DecisionCacheStats stats() const;
  // Prometheus text: tinyroute_decision_cache_{hits,misses,evictions,expirations}_total,
  // tinyroute_decision_cache_entries, tinyroute_decision_cache_saved_seconds_total and
  // tinyroute_decision_cache_shared_fallbacks_total.
  std::string metrics_text() const;

  ~DecisionCache();

private:
  struct State; // the lock, the local entries (LRU) and the counters
  DecisionCacheOptions options_;
  std::function<Clock::time_point()> now_;
  std::shared_ptr<SharedStore> shared_;
  std::unique_ptr<State> state_;
};

} // namespace tinyroute
