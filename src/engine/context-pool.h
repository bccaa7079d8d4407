// The engine's llama_contexts on its one model, and where prefixes and requests go among them.
// llama.cpp's exact (non-flash) attention computes each decoded row against every cell in use in its
// context, masked; so a prefix gets a context of its own while the KV budget allows, and a request
// pays for the cells of its prefix's context, not for everything resident in the engine.
#pragma once

#include <llama.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/llama-handles.h"
#include "engine/model.h"
#include "tinyroute/engine.h"

namespace tinyroute::engine {

inline constexpr int kKvMargin = 8; // cells kept free so the KV slot search never fails

struct PrefixSlot {
  std::string name;
  std::vector<Token> tokens;
  llama_seq_id seq = 0;
  bool ready = false;
  bool busy = false; // a prefix task is (re)writing it
  std::uint64_t last_used = 0;
  std::uint64_t version = 0; // changes whenever its cells are rewritten or dropped
};

// A conversation's sequence kept after its request: the prefix's cells (shared with the prefix's own
// sequence) and `tokens` after them. Counted in KV cells as tokens.size(); dropped with its prefix.
struct Kept {
  std::string key;
  std::string prefix;
  std::uint64_t prefix_version = 0;
  llama_seq_id seq = 0;
  std::vector<Token> tokens;
  std::uint64_t last_used = 0;
};

// One llama_context with its own KV cells: the prefixes placed in it, the requests that use them and
// the conversations kept on them. The scheduler's worker is its only user.
struct Pool {
  ContextPtr ctx;
  llama_memory_t mem = nullptr;
  int kv_cells = 0;
  int n_seqs = 0; // sequence ids of its context: prefix slots, then requests and kept conversations
  std::vector<PrefixSlot> prefixes;
  std::vector<llama_seq_id> free_seqs;
  int kv_reserved = 0;      // cells reserved by its requests in flight
  std::vector<Kept> kept;   // conversation sequences kept on its prefixes (or on none)
  int kept_cells = 0;       // sum of kept[i].tokens.size()
  int active = 0;           // its requests in flight
  int grow_to = 0;          // > kv_cells: admits nothing until idle, then is rebuilt this large
  bool cannot_grow = false; // a larger context could not be made

  // Cells held outside requests in flight: resident prefixes and kept conversations.
  int held_cells() const { return kept_cells + prefix_cells(); }
  int prefix_cells() const;
  bool holds_prefixes() const;
  bool has_free_slot() const;
  // The slot for the prefix `name`: its own (busy, maybe), else a free one, else the idle one used
  // longest ago (the caller evicts it); null when every slot is busy.
  PrefixSlot* slot_for(const std::string& name);
  PrefixSlot* find_prefix(const std::string& name);
  Kept* find_kept(const std::string& key);
  // llama.cpp lets a decode overwrite cells that lie outside a sequence's sliding window, when no
  // other sequence holds them, since a sequence only moves forward. Continuing from an earlier
  // position (a kept conversation's common part, the prefix's last token again) needs the window of
  // that position, which may have lost its first cells: true when `seq` still holds all of it.
  // `n_swa`: the model's sliding window, 0 for none.
  bool window_intact(llama_seq_id seq, llama_pos pos, llama_pos n_swa) const {
    return n_swa <= 0 || llama_memory_seq_pos_min(mem, seq) <= std::max<llama_pos>(0, pos - n_swa + 1);
  }
};

// Every context, the KV budget they share (EngineParams::n_ctx) and the rules that place work in them.
class ContextPools {
public:
  // `base`: every context's parameters but its size, batch and sequence count.
  ContextPools(const Model& model, const EngineParams& params, const llama_context_params& base);

  std::vector<std::unique_ptr<Pool>>& all() { return pools_; }

  // A context of its own for a new prefix while the engine may make one, else the one holding the
  // fewest cells among those with a free prefix slot (small prefixes share with small ones), else the
  // one holding the fewest (it evicts its least recently used idle prefix).
  Pool* place_prefix(int prefix_tokens);
  // Where a request without a prefix (and an embed) needing `cells` decodes.
  Pool* for_request(int cells);

  // Asks for `pool` to hold `cells`: it stops admitting, and once idle is rebuilt larger (rebuild).
  // A request or prefix that `needs` the cells may grow it as far as n_ctx; requests that only wait
  // for room, while the contexts together stay within n_ctx. True when the caller should wait for the
  // rebuild; false when the pool cannot hold `cells`.
  bool grow(Pool& pool, int cells, bool needs);
  // Remakes an idle pool at pool.grow_to cells with what it holds copied, no decode. Without
  // sliding-window layers that is every cell, the whole context's state (llama_state_get_data/
  // set_data): its prefixes and the conversations kept on them, cells shared between sequences still
  // shared. With them, each prefix's own state only: the whole state packs the cells into other
  // indices, and Gemma 3's scores follow the cell layout by more than the twin's tolerance, where a
  // prefix alone lands where a fresh decode puts it. Returns true when the kept conversations came
  // along; else the caller drops them. Prefixes not copied have their slots emptied and their names
  // appended to `lost`. When the larger context cannot be made the pool stays as it was.
  bool rebuild(Pool& pool, std::vector<std::string>& lost);
  // True when a rebuild copies kept conversations with their prefixes (rebuild).
  bool rebuild_keeps_conversations() const { return model_.info().n_swa <= 0; }
  // True when the contexts together may still grow for throughput by a prefix's share.
  bool has_spare_share() const { return params_.n_ctx - cells_allocated_ >= room_; }

  std::pair<Pool*, PrefixSlot*> find_prefix(const std::string& name);
  std::pair<Pool*, Kept*> find_kept(const std::string& key);

  // The clock of last uses, one for prefixes and kept conversations: last_used and a prefix's version.
  std::uint64_t tick() { return ++use_clock_; }

  // Read by any thread (EngineStats).
  int count() const { return n_pools_.load(); }
  std::uint64_t rebuilds() const { return n_rebuilds_.load(); }

private:
  ContextPtr new_context(int cells, int n_seqs) const;
  Pool& make(int cells);
  Pool* try_make(int cells);

  const Model& model_;
  EngineParams params_;
  llama_context_params base_;
  int first_seqs_ = 0; // request and conversation sequence ids of the first pool
  int room_ = 0;       // cells a context made for one prefix gets beyond it
  int cells_allocated_ = 0;
  std::uint64_t use_clock_ = 0;
  std::vector<std::unique_ptr<Pool>> pools_;
  std::atomic<int> n_pools_{0};
  std::atomic<std::uint64_t> n_rebuilds_{0};
};

} // namespace tinyroute::engine
