#include "engine/prefix-cache.h"

#include <filesystem>

#include "engine/fingerprint.h"

namespace tinyroute::engine {

namespace fs = std::filesystem;

bool PrefixCache::admit(Task& t) {
  Pool* pool = pools_.find_prefix(t.prefix).first;
  if (pool == nullptr) pool = pools_.place_prefix(static_cast<int>(t.feed.size()));
  if (pool == nullptr || pool->grow_to > 0) return false;
  int budget_total = pool->kv_cells - kKvMargin - pool->held_cells();
  PrefixSlot* slot = pool->slot_for(t.prefix);
  if (slot == nullptr || slot->busy) return false;
  if (slot->ready && slot->name == t.prefix && slot->tokens == t.feed) { // already resident: free
    t.prefix_info = {t.prefix, static_cast<int>(t.feed.size()), false, 0};
    slot->last_used = pools_.tick();
    t.done = true;
    return true;
  }
  const int old = static_cast<int>(slot->tokens.size());
  // Kept conversations are a cache: a prefix that needs their room gets it.
  const int want = static_cast<int>(t.feed.size()) - old;
  if (want > budget_total - pool->kv_reserved)
    budget_total += conversations_.evict_for(*pool, want - (budget_total - pool->kv_reserved), std::string());
  // Room for a prefix that does not fit comes from the idle prefixes used longest ago (after a
  // reload: the old config's); a request that still names one gets unknown_prefix and re-adds it.
  // A pool that can grow does, before it drops its other prefixes.
  if (static_cast<int>(t.feed.size()) > budget_total + old &&
      pools_.grow(*pool, pool->prefix_cells() - old + static_cast<int>(t.feed.size()) + kKvMargin, true))
    return false;
  budget_total += evict_for(*pool, static_cast<int>(t.feed.size()) - budget_total - old, slot);
  if (static_cast<int>(t.feed.size()) > budget_total + old) {
    fail(t, std::make_exception_ptr(Error(ErrorCode::context_overflow,
                                          "prefix '" + t.prefix + "' has " + std::to_string(t.feed.size()) +
                                              " tokens; the context holds " +
                                              std::to_string(budget_total + old) + " (raise n_ctx)")));
    return true;
  }
  if (static_cast<int>(t.feed.size()) - old > budget_total - pool->kv_reserved) return false;
  if (!slot->name.empty()) {
    // The cells go away; so do kept conversations built on them (and their cells leave the count).
    conversations_.drop_built_on(*pool, slot->name);
  }
  llama_memory_seq_rm(pool->mem, slot->seq, -1, -1);
  slot->version = 0;
  slot->name = t.prefix;
  slot->tokens.clear();
  slot->ready = false;
  slot->busy = true;
  {
    std::lock_guard lk(mu_);
    resident_.erase(t.prefix);
  }
  take_seat(t, *pool);
  t.seqs = {slot->seq};
  t.pos0 = 0;
  t.started = Clock::now();
  if (try_load(t, *slot)) return true;
  t.reserve = static_cast<int>(t.feed.size());
  pool->kv_reserved += t.reserve;
  return true;
}

int PrefixCache::evict_for(Pool& pool, int cells, const PrefixSlot* keep) {
  int freed = 0;
  while (freed < cells) {
    PrefixSlot* victim = nullptr;
    for (auto& s : pool.prefixes)
      if (&s != keep && s.ready && !s.busy && (victim == nullptr || s.last_used < victim->last_used))
        victim = &s;
    if (victim == nullptr) break;
    freed += static_cast<int>(victim->tokens.size());
    const int kept_before = pool.kept_cells;
    conversations_.drop_built_on(pool, victim->name);
    freed += kept_before - pool.kept_cells;
    llama_memory_seq_rm(pool.mem, victim->seq, -1, -1);
    {
      std::lock_guard lk(mu_);
      resident_.erase(victim->name);
    }
    *victim = PrefixSlot{"", {}, victim->seq, false, false, 0, 0};
  }
  return freed;
}

std::string PrefixCache::state_path(const std::vector<Token>& tokens) const {
  return (fs::path(state_dir_) /
          ("prefix-" + tokens_fingerprint(model_fingerprint_, tokens).substr(0, 32) + ".llama-seq"))
      .string();
}

bool PrefixCache::try_load(Task& t, PrefixSlot& slot) {
  if (state_dir_.empty()) return false;
  const std::string path = state_path(t.feed);
  std::error_code ec;
  if (!fs::exists(path, ec)) return false;
  std::vector<llama_token> tokens(t.feed.size() + 1);
  size_t n = 0;
  const size_t rc =
      llama_state_seq_load_file(t.pool->ctx.get(), path.c_str(), slot.seq, tokens.data(), tokens.size(), &n);
  tokens.resize(n);
  if (rc == 0 || tokens != t.feed) {
    llama_memory_seq_rm(t.pool->mem, slot.seq, -1, -1); // stale or foreign file: decode instead
    return false;
  }
  finish(t, slot, true);
  return true;
}

void PrefixCache::finish(Task& t, PrefixSlot& slot, bool from_disk) {
  slot.tokens = t.feed;
  slot.ready = true;
  slot.busy = false;
  slot.last_used = pools_.tick();
  slot.version = slot.last_used;
  {
    std::lock_guard lk(mu_);
    resident_[slot.name] = slot.tokens;
  }
  if (!from_disk && !state_dir_.empty()) {
    std::error_code ec;
    fs::create_directories(state_dir_, ec);
    const std::string path = state_path(t.feed), tmp = path + ".tmp";
    if (llama_state_seq_save_file(t.pool->ctx.get(), tmp.c_str(), slot.seq, slot.tokens.data(),
                                  slot.tokens.size()) > 0) {
      fs::rename(tmp, path, ec);
    }
  }
  t.prefix_info = {t.prefix, static_cast<int>(t.feed.size()), from_disk, ms_between(t.started, Clock::now())};
  t.done = true;
}

PrefixSlot* PrefixCache::slot_of(const Task& t) {
  for (auto& s : t.pool->prefixes)
    if (s.seq == t.seqs[0]) return &s;
  return nullptr;
}

void PrefixCache::finish(Task& t) {
  if (PrefixSlot* s = slot_of(t)) finish(t, *s, false);
}

void PrefixCache::abandon(Task& t) {
  if (t.seqs.empty()) return;
  if (PrefixSlot* s = slot_of(t)) {
    llama_memory_seq_rm(t.pool->mem, s->seq, -1, -1);
    *s = PrefixSlot{"", {}, s->seq, false, false, 0, 0};
  }
}

void PrefixCache::forget(const std::vector<std::string>& names) {
  std::lock_guard lk(mu_);
  for (const auto& name : names) resident_.erase(name);
}

std::vector<Token> PrefixCache::tokens(const std::string& name) const {
  std::lock_guard lk(mu_);
  const auto it = resident_.find(name);
  if (it == resident_.end()) throw Error(ErrorCode::unknown_prefix, "unknown prefix '" + name + "'");
  return it->second;
}

} // namespace tinyroute::engine
