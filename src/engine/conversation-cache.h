// Conversations kept after their requests: a score request with a conversation key leaves its query's
// sequence in its context (Kept, in the contexts' lists), and the next request with the key continues
// it instead of decoding the common part again. A cache: requests and prefixes that need its cells
// evict it, least recently used first. The worker's only, but for the counts (EngineStats).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/context-pool.h"
#include "engine/task.h"

namespace tinyroute::engine {

class ConversationCache {
public:
  // `capacity`: EngineParams::n_conversations, kept conversations in all the contexts.
  ConversationCache(ContextPools& pools, int capacity) : pools_(pools), capacity_(capacity) {}

  // A conversation runs one request at a time: the key's request is admitted until it is released.
  bool active(const std::string& key) const;
  void hold(const std::string& key) { active_.push_back(key); }
  void release(const std::string& key);

  // Forgets a kept sequence: its cells and sequence id become free.
  void drop(Pool& pool, Kept* k);
  // Hands a kept sequence over to the request that continues it: the cells from `from` on go, the
  // rest are the request's. Returns the sequence id.
  llama_seq_id take(Pool& pool, Kept* k, llama_pos from);
  // Drops the least recently used kept conversation other than the one keyed `keep`, in `only` or
  // in any pool when it is null; false when there is none.
  bool evict_one(const std::string& keep, Pool* only = nullptr);
  // Frees at least `cells` KV cells of `pool` by dropping its kept conversations (least recently used
  // first, never the one keyed `keep`). Returns the cells freed.
  int evict_for(Pool& pool, int cells, const std::string& keep);
  // Kept conversations built on a prefix share its cells: they go when it goes.
  void drop_built_on(Pool& pool, const std::string& prefix);
  void drop_all(Pool& pool);

  // A finished conversation request keeps its sequence when it succeeded, the engine keeps
  // conversations, and the prefix it was built on is still the resident one.
  bool keeps(const Task& t) const;
  // Keeps `t`'s main sequence (its query; the branch cues decoded after it go), then evicts the least
  // recently used others beyond the capacity.
  void keep(Task& t);

  // Read by any thread.
  int size() const { return n_kept_.load(); }
  std::uint64_t evictions() const { return n_evictions_.load(); }
  std::uint64_t reuses() const { return n_reuses_.load(); }
  void count_reuse() { n_reuses_.fetch_add(1); }

private:
  void erase(Pool& pool, Kept* k);
  int count() const;

  ContextPools& pools_;
  int capacity_ = 0;
  std::vector<std::string> active_; // conversation keys with a request admitted
  std::atomic<int> n_kept_{0};
  std::atomic<std::uint64_t> n_evictions_{0}, n_reuses_{0};
};

} // namespace tinyroute::engine
