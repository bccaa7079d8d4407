#include "engine/context-pool.h"

#include <algorithm>

#include "tinyroute/error.h"

namespace tinyroute::engine {

namespace {

// llama.cpp attends over a multiple of 256 cells; a context's size is one too.
int pad_cells(int n) {
  return (std::max(n, 1) + 255) / 256 * 256;
}

// The whole context's state into `to`, no decode. It lists each cell once with every sequence holding
// it, so a kept conversation's share of its prefix stays shared (a sequence's own state would copy the
// prefix's cells into it); it holds the memory only, no logits, and is read into cells from 0. False,
// `to` emptied, when it could not be copied.
bool copy_whole_state(llama_context* from, llama_context* to) {
  std::vector<std::uint8_t> state(llama_state_get_size(from));
  const bool copied = !state.empty() &&
                      llama_state_get_data(from, state.data(), state.size()) == state.size() &&
                      llama_state_set_data(to, state.data(), state.size()) == state.size();
  if (!copied) llama_memory_clear(llama_get_memory(to), true);
  return copied;
}

// One sequence's own state into the same sequence of `to`. False, its cells in `to` removed, when it
// could not be copied.
bool copy_sequence(llama_context* from, llama_context* to, llama_seq_id seq) {
  std::vector<std::uint8_t> state(llama_state_seq_get_size(from, seq));
  const bool copied = llama_state_seq_get_data(from, state.data(), state.size(), seq) == state.size() &&
                      llama_state_seq_set_data(to, state.data(), state.size(), seq) != 0;
  if (!copied) llama_memory_seq_rm(llama_get_memory(to), seq, -1, -1);
  return copied;
}

} // namespace

int Pool::prefix_cells() const {
  int n = 0;
  for (const auto& s : prefixes) n += static_cast<int>(s.tokens.size());
  return n;
}

bool Pool::holds_prefixes() const {
  return std::any_of(prefixes.begin(), prefixes.end(), [](const PrefixSlot& s) { return !s.name.empty(); });
}

bool Pool::has_free_slot() const {
  return std::any_of(prefixes.begin(), prefixes.end(), [](const PrefixSlot& s) { return s.name.empty(); });
}

PrefixSlot* Pool::slot_for(const std::string& name) {
  if (PrefixSlot* s = find_prefix(name)) return s;
  for (auto& s : prefixes)
    if (s.name.empty()) return &s;
  PrefixSlot* lru = nullptr;
  for (auto& s : prefixes)
    if (!s.busy && (lru == nullptr || s.last_used < lru->last_used)) lru = &s;
  return lru;
}

PrefixSlot* Pool::find_prefix(const std::string& name) {
  for (auto& s : prefixes)
    if (!s.name.empty() && s.name == name) return &s;
  return nullptr;
}

Kept* Pool::find_kept(const std::string& key) {
  for (auto& k : kept)
    if (k.key == key) return &k;
  return nullptr;
}

ContextPools::ContextPools(const Model& model, const EngineParams& params, const llama_context_params& base)
    : model_(model), params_(params), base_(base) {
  // Kept conversations hold a sequence id each, on top of what requests in flight use.
  first_seqs_ = std::min(params.n_parallel * 4 + params.n_conversations, 256 - params.n_prefixes);
  if (first_seqs_ < 1)
    throw Error(ErrorCode::invalid_argument, "engine params: too many prefixes (at most 255)");
  // A fair share of the budget, so that the next prefixes get contexts of their own too.
  room_ = std::max(256, pad_cells(params.n_ctx / (2 * params.n_contexts)));
}

ContextPtr ContextPools::new_context(int cells, int n_seqs) const {
  llama_context_params cp = base_;
  cp.n_ctx = static_cast<uint32_t>(cells);
  cp.n_seq_max = static_cast<uint32_t>(n_seqs);
  cp.n_batch = static_cast<uint32_t>(std::min(params_.n_batch, cells));
  cp.n_ubatch = static_cast<uint32_t>(std::min({params_.n_ubatch, params_.n_batch, cells}));
  // llama.cpp sizes the output buffer by max(outputs, sequences); both must fit its limit.
  cp.n_outputs_max = std::max(cp.n_batch, cp.n_seq_max);
  ContextPtr ctx(llama_init_from_model(model_.get(), cp));
  if (!ctx)
    throw Error(ErrorCode::internal,
                "llama.cpp could not create a context (n_ctx " + std::to_string(cells) + ")");
  return ctx;
}

// llama.cpp keeps a row of logits per sequence id of a context (n_vocab floats each, ~1 MiB for Gemma
// 3's vocabulary), so only the first pool gets every prefix slot and sequence id; later ones get their
// share of the slots and what n_parallel requests and the kept conversations need.
Pool& ContextPools::make(int cells) {
  const bool first = pools_.empty();
  const int slots =
      first ? params_.n_prefixes : (params_.n_prefixes + params_.n_contexts - 1) / params_.n_contexts;
  const int seqs = first ? first_seqs_ : std::min(params_.n_parallel + params_.n_conversations, first_seqs_);
  auto pool = std::make_unique<Pool>();
  pool->ctx = new_context(cells, slots + seqs);
  pool->n_seqs = slots + seqs;
  pool->mem = llama_get_memory(pool->ctx.get());
  pool->kv_cells = static_cast<int>(llama_n_ctx(pool->ctx.get()));
  for (int i = 0; i < slots; ++i) pool->prefixes.push_back({"", {}, i, false, false, 0, 0});
  for (int i = seqs - 1; i >= 0; --i) pool->free_seqs.push_back(slots + i);
  cells_allocated_ += pool->kv_cells;
  pools_.push_back(std::move(pool));
  n_pools_.store(static_cast<int>(pools_.size()));
  return *pools_.back();
}

// A new pool of `cells` (at most n_ctx) while the engine may have another and the pools together stay
// within n_ctx; the first one always. With one context allowed, it is n_ctx cells from the start.
Pool* ContextPools::try_make(int cells) {
  if (static_cast<int>(pools_.size()) >= params_.n_contexts) return nullptr;
  if (pools_.empty() && params_.n_contexts == 1) return &make(params_.n_ctx);
  cells = std::min(cells, params_.n_ctx);
  if (!pools_.empty() && cells_allocated_ + cells > params_.n_ctx) return nullptr;
  return &make(cells);
}

Pool* ContextPools::place_prefix(int prefix_tokens) {
  if (Pool* p = try_make(pad_cells(prefix_tokens) + room_)) return p;
  Pool* best = nullptr;
  for (bool need_slot : {true, false}) {
    for (auto& p : pools_) {
      if (need_slot && !p->has_free_slot()) continue;
      if (best == nullptr || p->held_cells() < best->held_cells()) best = p.get();
    }
    if (best != nullptr) return best;
  }
  return nullptr;
}

// A pool holding no prefix with room for the request, else a new one while the engine may have one,
// else the pool with the most cells not held by prefixes and kept conversations.
Pool* ContextPools::for_request(int cells) {
  for (auto& p : pools_)
    if (!p->holds_prefixes() && p->kv_cells - kKvMargin - p->held_cells() >= cells) return p.get();
  if (Pool* p = try_make(std::max(room_, pad_cells(cells + kKvMargin)))) return p;
  Pool* best = nullptr;
  auto spare = [](const Pool& p) { return p.kv_cells - p.held_cells(); };
  for (auto& p : pools_)
    if (best == nullptr || spare(*p) > spare(*best)) best = p.get();
  return best;
}

bool ContextPools::grow(Pool& pool, int cells, bool needs) {
  if (pool.cannot_grow) return false;
  const int current = std::max(pool.kv_cells, pool.grow_to);
  const int cap = needs ? params_.n_ctx : std::min(params_.n_ctx, current + params_.n_ctx - cells_allocated_);
  const int target = std::min(cap, std::max(2 * pool.kv_cells, pad_cells(cells)));
  if (target < cells || target <= current) return pool.grow_to >= cells;
  cells_allocated_ += target - current;
  pool.grow_to = target;
  return true;
}

bool ContextPools::rebuild(Pool& pool, std::vector<std::string>& lost) {
  ContextPtr ctx;
  try {
    ctx = new_context(pool.grow_to, pool.n_seqs);
  } catch (const Error&) {
    cells_allocated_ -= pool.grow_to - pool.kv_cells;
    pool.grow_to = 0;
    pool.cannot_grow = true;
    return true;
  }
  // Every cell where the model allows it; else each prefix's own state (context-pool.h).
  const bool whole = rebuild_keeps_conversations();
  const bool copied = whole && copy_whole_state(pool.ctx.get(), ctx.get());
  for (auto& s : pool.prefixes) {
    if (!s.ready || copied || (!whole && copy_sequence(pool.ctx.get(), ctx.get(), s.seq))) continue;
    lost.push_back(s.name);
    s = PrefixSlot{"", {}, s.seq, false, false, 0, 0};
  }
  pool.ctx = std::move(ctx);
  pool.mem = llama_get_memory(pool.ctx.get());
  pool.kv_cells = static_cast<int>(llama_n_ctx(pool.ctx.get()));
  pool.grow_to = 0;
  n_rebuilds_.fetch_add(1);
  return copied;
}

std::pair<Pool*, PrefixSlot*> ContextPools::find_prefix(const std::string& name) {
  for (auto& p : pools_)
    if (PrefixSlot* s = p->find_prefix(name)) return {p.get(), s};
  return {nullptr, nullptr};
}

std::pair<Pool*, Kept*> ContextPools::find_kept(const std::string& key) {
  for (auto& p : pools_)
    if (Kept* k = p->find_kept(key)) return {p.get(), k};
  return {nullptr, nullptr};
}

} // namespace tinyroute::engine
