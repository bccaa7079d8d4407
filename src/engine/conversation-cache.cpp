#include "engine/conversation-cache.h"

#include <algorithm>

namespace tinyroute::engine {

bool ConversationCache::active(const std::string& key) const {
  return std::find(active_.begin(), active_.end(), key) != active_.end();
}

void ConversationCache::release(const std::string& key) {
  active_.erase(std::find(active_.begin(), active_.end(), key));
}

int ConversationCache::count() const {
  int n = 0;
  for (const auto& p : pools_.all()) n += static_cast<int>(p->kept.size());
  return n;
}

// Removes the entry only: whoever calls it has freed or taken over the cells.
void ConversationCache::erase(Pool& pool, Kept* k) {
  pool.kept_cells -= static_cast<int>(k->tokens.size());
  pool.kept.erase(pool.kept.begin() + (k - pool.kept.data()));
  n_kept_.store(count());
}

void ConversationCache::drop(Pool& pool, Kept* k) {
  llama_memory_seq_rm(pool.mem, k->seq, -1, -1);
  pool.free_seqs.push_back(k->seq);
  n_evictions_.fetch_add(1);
  erase(pool, k);
}

llama_seq_id ConversationCache::take(Pool& pool, Kept* k, llama_pos from) {
  const llama_seq_id seq = k->seq;
  llama_memory_seq_rm(pool.mem, seq, from, -1);
  erase(pool, k);
  return seq;
}

// Keys, not pointers, name what stays: dropping one moves the others.
bool ConversationCache::evict_one(const std::string& keep, Pool* only) {
  Pool* in = nullptr;
  Kept* victim = nullptr;
  for (auto& p : pools_.all()) {
    if (only != nullptr && p.get() != only) continue;
    for (auto& k : p->kept)
      if (k.key != keep && (victim == nullptr || k.last_used < victim->last_used)) {
        victim = &k;
        in = p.get();
      }
  }
  if (victim == nullptr) return false;
  drop(*in, victim);
  return true;
}

int ConversationCache::evict_for(Pool& pool, int cells, const std::string& keep) {
  int freed = 0;
  while (freed < cells) {
    const int before = pool.kept_cells;
    if (!evict_one(keep, &pool)) break;
    freed += before - pool.kept_cells;
  }
  return freed;
}

void ConversationCache::drop_built_on(Pool& pool, const std::string& prefix) {
  for (size_t i = pool.kept.size(); i-- > 0;)
    if (pool.kept[i].prefix == prefix) drop(pool, &pool.kept[i]);
}

void ConversationCache::drop_all(Pool& pool) {
  while (!pool.kept.empty()) drop(pool, &pool.kept.back());
}

bool ConversationCache::keeps(const Task& t) const {
  if (!t.holds_conversation || t.error || t.seqs.empty() || capacity_ < 1 || !t.query_done) return false;
  if (t.prefix.empty()) return true;
  const PrefixSlot* slot = t.pool->find_prefix(t.prefix);
  return slot != nullptr && slot->ready && slot->version == t.prefix_version;
}

void ConversationCache::keep(Task& t) {
  Pool& pool = *t.pool;
  llama_memory_seq_rm(pool.mem, t.seqs[0], t.query_end(), -1);
  pool.kept.push_back(
      {t.conversation, t.prefix, t.prefix_version, t.seqs[0], std::move(t.query), pools_.tick()});
  pool.kept_cells += static_cast<int>(pool.kept.back().tokens.size());
  while (count() > capacity_) evict_one(t.conversation);
  n_kept_.store(count());
}

} // namespace tinyroute::engine
