// The named prefixes resident in the contexts' prefix slots: a prefix task's admission (its own slot,
// else a free one, else the idle one used longest ago), eviction for room, and each prefix's KV state
// saved to and loaded from internal_model.state_dir, so a restart does not decode it again. The
// worker's only, but for the resident names and tokens, which callers read on any thread.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/context-pool.h"
#include "engine/conversation-cache.h"
#include "engine/model.h"
#include "engine/task.h"

namespace tinyroute::engine {

class PrefixCache {
public:
  // `state_dir`: where prefix states are kept; empty for none.
  PrefixCache(const Model& model, std::string state_dir, ContextPools& pools,
              ConversationCache& conversations)
      : model_fingerprint_(model.info().fingerprint), state_dir_(std::move(state_dir)), pools_(pools),
        conversations_(conversations) {}

  // Tries to make a prefix task active. Returns false to keep it waiting (resources busy).
  bool admit(Task& t);
  // The prefix task's tokens are decoded: its slot is ready (and saved to state_dir).
  void finish(Task& t);
  // The prefix task failed: its slot is emptied.
  void abandon(Task& t);
  // Frees at least `cells` KV cells of `pool` by dropping its idle resident prefixes, least recently
  // used first, never `keep`. Returns the cells freed (less than asked when nothing else is idle).
  int evict_for(Pool& pool, int cells, const PrefixSlot* keep);
  // Prefixes that left their slots elsewhere (a context rebuild that could not copy them).
  void forget(const std::vector<std::string>& names);

  // The resident prefix's tokens; throws Error(unknown_prefix). Any thread.
  std::vector<Token> tokens(const std::string& name) const;

private:
  std::string state_path(const std::vector<Token>& tokens) const;
  bool try_load(Task& t, PrefixSlot& slot);
  void finish(Task& t, PrefixSlot& slot, bool from_disk);
  PrefixSlot* slot_of(const Task& t);

  std::string model_fingerprint_;
  std::string state_dir_;
  ContextPools& pools_;
  ConversationCache& conversations_;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<Token>> resident_; // guarded by mu_
};

} // namespace tinyroute::engine
