#include "engine/scheduler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "engine/context-pool.h"
#include "engine/conversation-cache.h"
#include "engine/embed.h"
#include "engine/logprob.h"
#include "engine/prefix-cache.h"
#include "engine/sampling.h"
#include "engine/task.h"

namespace tinyroute::engine {

struct Scheduler::State {
  const Model& model;
  EngineParams params;
  int n_vocab = 0;
  llama_pos n_swa = 0; // sliding-window size of the model's windowed layers; 0 = none
  Embedder embedder;   // the worker's; a middle block's capture is every context's eval-callback data

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Task>> submitted; // guarded by mu
  bool stopping = false;                       // guarded by mu
  std::uint64_t next_order = 0;                // guarded by mu

  // Worker-only state.
  std::vector<std::unique_ptr<Task>> waiting;
  std::vector<std::unique_ptr<Task>> active;
  std::unique_ptr<ContextPools> pools; // at most params.n_contexts, made on first use
  std::unique_ptr<ConversationCache> conversations;
  std::unique_ptr<PrefixCache> prefixes; // its resident names are read by callers

  DecodeCounts counts;
  std::atomic<std::uint64_t> n_requests{0}, n_generate{0}, max_batch_requests{0};
  std::atomic<std::uint64_t> n_grammar_fast{0}, n_grammar_full{0};
  std::vector<llama_token_data> candidates; // sampling scratch, the worker's only
  std::atomic<int> n_queued{0}, n_active{0};

  std::thread worker;

  State(const Model& m, const EngineParams& p)
      : model(m), params(p), embedder(p.hidden_layer, m.info().n_embd) {
    if (p.n_parallel < 1 || p.n_prefixes < 1 || p.n_batch < 1 || p.n_ubatch < 1 || p.n_ctx < 64 ||
        p.n_conversations < 0 || p.n_contexts < 1 || p.n_contexts > 64) {
      throw Error(ErrorCode::invalid_argument,
                  "engine params: n_parallel, n_prefixes, n_batch, n_ubatch must be "
                  ">= 1, n_conversations >= 0, n_contexts in [1, 64], n_ctx >= 64");
    }
    const int n_layer = m.info().n_layer;
    if (p.hidden_layer < 0 || p.hidden_layer >= std::max(n_layer, 1))
      throw Error(ErrorCode::invalid_argument, "engine params: hidden_layer " +
                                                   std::to_string(p.hidden_layer) +
                                                   " is not 0 (the final layer) or a block in [1, " +
                                                   std::to_string(n_layer - 1) + "] of this model");
    // llama.cpp caps a causal model's batch at the context; a larger batch of ours would trip its
    // assertion on the first long decode instead of failing cleanly (context_overflow).
    params.n_batch = std::min(p.n_batch, p.n_ctx);
    llama_context_params cp = llama_context_default_params(); // every context's, but its size
    cp.n_threads = p.n_threads;
    cp.n_threads_batch = p.n_threads;
    cp.kv_unified = true; // requests share their prefix's KV cells instead of copying them
    // CPU flash attention accumulates V in f16 for short query batches; after a long prefix that
    // drifts ~1e-2 from a fresh decode. The plain path keeps f32 accumulators and stays exact, but
    // computes every row against every cell in use in its context (masked); flash attention skips the
    // masked cells. Off unless asked for.
    cp.flash_attn_type = p.flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    // Sliding-window layers (Gemma 3) get their own KV cache. Full size, so it holds every cell the
    // budget below counts (kv_cells): a smaller one runs out when shared prefix cells, which llama.cpp
    // never prunes, outnumber it. Set, not left to the default, which has changed between versions.
    n_swa = model.info().n_swa;
    cp.swa_full = true;
    cp.no_perf = true;
    embedder.attach(cp);
    n_vocab = model.info().n_vocab;
    pools = std::make_unique<ContextPools>(model, params, cp);
    conversations = std::make_unique<ConversationCache>(*pools, params.n_conversations);
    prefixes = std::make_unique<PrefixCache>(model, params.state_dir, *pools, *conversations);
    worker = std::thread([this] { run(); });
  }

  ~State() {
    {
      std::lock_guard lk(mu);
      stopping = true;
    }
    cv.notify_all();
    if (worker.joinable()) worker.join();
  }

  // Rebuilds an idle pool larger (ContextPools::rebuild), its prefixes and kept conversations with it.
  void rebuild(Pool& pool) {
    std::vector<std::string> lost;
    if (pools->rebuild(pool, lost)) return;
    conversations->drop_all(pool);
    prefixes->forget(lost);
  }

  void submit(std::unique_ptr<Task> t) {
    {
      std::lock_guard lk(mu);
      if (stopping) throw Error(ErrorCode::engine_stopped, "engine is shutting down");
      t->order = next_order++;
      submitted.push_back(std::move(t));
      n_queued.fetch_add(1);
    }
    cv.notify_one();
  }

  // ---- worker ----

  static double effective_priority(const Task& t, int max_wait) {
    return static_cast<int>(t.priority) + static_cast<double>(t.waited) / std::max(1, max_wait);
  }

  void sort_by_priority(std::vector<std::unique_ptr<Task>>& v) const {
    const int mw = params.max_wait_batches;
    std::stable_sort(v.begin(), v.end(), [mw](const auto& a, const auto& b) {
      const double pa = effective_priority(*a, mw), pb = effective_priority(*b, mw);
      if (pa != pb) return pa > pb;
      return a->order < b->order;
    });
  }

  // Tries to make a score, generate or embed task active. Returns false to keep it waiting.
  bool admit(Task& t) {
    if (t.kind == Task::Kind::prefix) return prefixes->admit(t);
    Pool* pool = nullptr;
    const PrefixSlot* slot = nullptr;
    if (!t.prefix.empty()) {
      auto [p, s] = pools->find_prefix(t.prefix);
      if (s == nullptr) {
        fail(t, std::make_exception_ptr(
                    Error(ErrorCode::unknown_prefix,
                          "unknown prefix '" + t.prefix + "' (add it with add_prefix first)")));
        return true;
      }
      if (!s->ready) return false; // being decoded: wait for it
      s->last_used = pools->tick();
      slot = s;
      pool = p;
    }
    // A conversation runs one request at a time; the next one continues the kept sequence.
    t.waits_on_conversation = !t.conversation.empty() && conversations->active(t.conversation);
    if (t.waits_on_conversation) return false;
    auto [kept_pool, kept_seq] =
        t.conversation.empty() ? std::pair<Pool*, Kept*>{nullptr, nullptr} : pools->find_kept(t.conversation);
    if (pool == nullptr) {
      int n_seqs = 1;
      pool = kept_pool != nullptr && t.prefix.empty()
                 ? kept_pool
                 : pools->for_request(request_cells(t, static_cast<int>(t.feed.size()), &n_seqs));
    }
    if (pool == nullptr || pool->grow_to > 0) return false;
    if (kept_seq != nullptr && (kept_pool != pool || kept_seq->prefix != t.prefix ||
                                (slot != nullptr && kept_seq->prefix_version != slot->version))) {
      conversations->drop(*kept_pool, kept_seq); // built on another prefix (or an older version of it)
      kept_seq = nullptr;
    }
    // Everything below is computed into locals and committed only once the task is admitted: a task
    // that must wait is retried on the next round and must find itself unchanged.
    const int prefix_len = slot ? static_cast<int>(slot->tokens.size()) : 0;
    std::vector<Token> reprise; // the prefix's last token, re-decoded when the query is empty
    llama_pos pos0 = t.kind == Task::Kind::embed ? 0 : prefix_len;
    if (t.kind != Task::Kind::embed && t.feed.empty()) {
      if (prefix_len == 0) {
        fail(t, std::make_exception_ptr(
                    Error(ErrorCode::invalid_argument, "nothing to condition on: empty prefix and query")));
        return true;
      }
      reprise = {slot->tokens.back()};
      pos0 = prefix_len - 1;
      if (!pool->window_intact(slot->seq, pos0, n_swa)) { // the whole prefix, decoded again
        reprise = slot->tokens;
        pos0 = 0;
      }
    }
    // Tokens the kept sequence already holds (at least the query's last is decoded again: its logits
    // are read and the branches fork after it).
    size_t reuse = 0;
    if (kept_seq != nullptr && !t.feed.empty()) {
      const size_t limit = std::min(kept_seq->tokens.size(), t.feed.size() - 1);
      while (reuse < limit && kept_seq->tokens[reuse] == t.feed[reuse]) ++reuse;
      if (!pool->window_intact(kept_seq->seq, pos0 + static_cast<llama_pos>(reuse), n_swa)) reuse = 0;
    }
    const int n_feed = static_cast<int>(reprise.empty() ? t.feed.size() - reuse : reprise.size());
    int n_seqs = 1;
    const int need = request_cells(t, n_feed, &n_seqs);
    // Taking the kept sequence over frees its cells past the reused part.
    const int kept_spare = kept_seq ? static_cast<int>(kept_seq->tokens.size() - reuse) : 0;
    int budget_total = pool->kv_cells - kKvMargin - pool->held_cells() + kept_spare;
    // Kept conversations are a cache: a pool grows into budget no context uses for them where the
    // rebuild keeps them, else they make room for requests before anything waits.
    if (need > budget_total - pool->kv_reserved) {
      const int short_by = need - (budget_total - pool->kv_reserved);
      if (pool->kept_cells > 0 && pools->rebuild_keeps_conversations() &&
          pools->grow(*pool, pool->kv_cells + short_by, false))
        return false;
      budget_total += conversations->evict_for(*pool, short_by, t.conversation);
    }
    if (need > budget_total || pos0 + static_cast<int>(reuse) + need > pool->kv_cells) {
      // A pool that can grow does, before it drops its other prefixes (with sliding-window layers its
      // conversations go: nothing is reused then).
      if (pools->grow(*pool, pool->prefix_cells() + kKvMargin + static_cast<int>(reuse) + need, true))
        return false;
      budget_total += prefixes->evict_for(*pool, need - budget_total, slot);
    }
    if (kept_seq != nullptr) kept_seq = pool->find_kept(t.conversation); // evictions moved the entries
    if (pos0 + static_cast<int>(reuse) + need > pool->kv_cells || need > budget_total) {
      fail(t, std::make_exception_ptr(Error(
                  ErrorCode::context_overflow,
                  "request needs " + std::to_string(prefix_len + static_cast<int>(reuse) + need) +
                      " tokens of context (prefix " + std::to_string(prefix_len) + ", request " +
                      std::to_string(static_cast<int>(reuse) + need) + "); the engine has " +
                      std::to_string(budget_total + prefix_len) + " (shorten the input or raise n_ctx)")));
      return true;
    }
    if (need > budget_total - pool->kv_reserved) {
      // Requests in flight hold the room: a pool with budget to spare grows for the next ones.
      if (pools->has_spare_share()) pools->grow(*pool, pool->kv_cells + need, false);
      return false;
    }
    const int fresh_seqs = kept_seq ? n_seqs - 1 : n_seqs;
    while (static_cast<int>(pool->free_seqs.size()) < fresh_seqs &&
           conversations->evict_one(t.conversation, pool)) {
    }
    if (static_cast<int>(pool->free_seqs.size()) < fresh_seqs) return false;
    if (kept_seq != nullptr) kept_seq = pool->find_kept(t.conversation);

    if (!reprise.empty()) t.feed = std::move(reprise);
    take_seat(t, *pool);
    t.pos0 = pos0;
    if (kept_seq != nullptr) {
      t.seqs.push_back(conversations->take(*pool, kept_seq, pos0 + static_cast<llama_pos>(reuse)));
      kept_seq = nullptr;
    }
    for (int i = 0; i < fresh_seqs; ++i) {
      t.seqs.push_back(pool->free_seqs.back());
      pool->free_seqs.pop_back();
    }
    t.reserve = static_cast<int>(reuse) + need;
    pool->kv_reserved += t.reserve;
    if (reuse > 0) {
      t.n_reused = static_cast<int>(reuse);
      t.feed.erase(t.feed.begin(), t.feed.begin() + static_cast<std::ptrdiff_t>(reuse));
      t.pos0 = pos0 + static_cast<llama_pos>(reuse);
      conversations->count_reuse();
    } else if (slot != nullptr) {
      llama_memory_seq_rm(pool->mem, t.seqs[0], -1, -1); // a taken-over sequence that shares nothing
      llama_memory_seq_cp(pool->mem, slot->seq, t.seqs[0], -1, t.pos0);
    }
    if (!t.conversation.empty()) {
      conversations->hold(t.conversation);
      t.holds_conversation = true;
      t.prefix_version = slot ? slot->version : 0;
    }
    t.started = Clock::now();
    return true;
  }

  void release(Task& t) {
    if (t.pool == nullptr) return; // never admitted (failed or already resident)
    Pool& pool = *t.pool;
    if (t.kind == Task::Kind::prefix) {
      if (t.error) prefixes->abandon(t);
    } else {
      const bool keep = conversations->keeps(t);
      for (size_t i = keep ? 1 : 0; i < t.seqs.size(); ++i) {
        llama_memory_seq_rm(pool.mem, t.seqs[i], -1, -1);
        pool.free_seqs.push_back(t.seqs[i]);
      }
      if (keep) conversations->keep(t);
    }
    if (t.holds_conversation) {
      conversations->release(t.conversation);
      t.holds_conversation = false;
    }
    t.seqs.clear();
    pool.kv_reserved -= t.reserve;
    t.reserve = 0;
    --pool.active;
    t.pool = nullptr;
  }

  void complete(Task& t) {
    n_requests.fetch_add(t.kind == Task::Kind::prefix ? 0 : 1);
    n_generate.fetch_add(t.kind == Task::Kind::generate ? 1 : 0);
    const auto now = Clock::now();
    const double queue_ms =
        t.started == Clock::time_point{} ? ms_between(t.enqueued, now) : ms_between(t.enqueued, t.started);
    const double compute_ms = t.started == Clock::time_point{} ? 0 : ms_between(t.started, now);
    switch (t.kind) {
    case Task::Kind::prefix:
      if (t.error)
        t.p_prefix.set_exception(t.error);
      else
        t.p_prefix.set_value(t.prefix_info);
      break;
    case Task::Kind::score:
      if (t.error) {
        t.p_score.set_exception(t.error);
      } else {
        ScoreResult r;
        for (auto& g : t.groups)
          for (auto& s : g.scores) s.total = sum_logprobs(s.token_logprobs);
        r.continuations = std::move(t.groups[0].scores);
        for (size_t g = 1; g < t.groups.size(); ++g) r.branches.push_back(std::move(t.groups[g].scores));
        r.n_decoded = t.n_decoded;
        r.n_reused = t.n_reused;
        r.queue_ms = queue_ms;
        r.compute_ms = compute_ms;
        r.query_ms = t.query_done ? ms_between(t.started, t.query_finished) : compute_ms;
        t.p_score.set_value(std::move(r));
      }
      break;
    case Task::Kind::generate:
      if (t.error) {
        t.p_gen.set_exception(t.error);
      } else {
        GenerateResult r;
        r.text = model.detokenize(t.out);
        r.tokens = std::move(t.out);
        r.stopped_by_limit = t.limit;
        r.n_decoded = t.n_decoded;
        r.queue_ms = queue_ms;
        r.compute_ms = compute_ms;
        t.p_gen.set_value(std::move(r));
      }
      break;
    case Task::Kind::embed:
      if (t.error)
        t.p_embed.set_exception(t.error);
      else
        t.p_embed.set_value(std::move(t.embedded));
      break;
    }
  }

  void on_row(const RowUse& r) {
    Task& t = *r.task;
    if (t.done) return;
    const float* logits = llama_get_logits_ith(t.pool->ctx.get(), r.row);
    if (logits == nullptr)
      throw Error(ErrorCode::internal, "llama.cpp returned no logits for a requested row");
    if (r.what != RowUse::What::gen) {
      read_score_row(r, logits, n_vocab);
      return;
    }
    bool full = false;
    const Token tok = sample_greedy(t.sampler.get(), logits, n_vocab, candidates, &full);
    if (t.sampler) (full ? n_grammar_full : n_grammar_fast).fetch_add(1);
    take_token(t, tok, model.is_eog(tok));
  }

  // Requests whose token was cancelled: queued ones complete now, running ones are marked failed and
  // leave at the next finish_done_tasks (their sequences freed, nothing of theirs decoded again).
  void cancel_requested() {
    const auto err = [] {
      return std::make_exception_ptr(Error(ErrorCode::cancelled, "the request was cancelled"));
    };
    for (auto it = waiting.begin(); it != waiting.end();) {
      Task& t = **it;
      if (!t.cancelled()) {
        ++it;
        continue;
      }
      fail(t, err());
      complete(t);
      n_queued.fetch_sub(1);
      it = waiting.erase(it);
    }
    for (auto& t : active)
      if (!t->done && t->cancelled()) fail(*t, err());
  }

  void finish_done_tasks() {
    for (auto it = active.begin(); it != active.end();) {
      Task& t = **it;
      if (!t.done) {
        ++it;
        continue;
      }
      release(t);
      complete(t);
      it = active.erase(it);
    }
    n_active.store(static_cast<int>(active.size()));
  }

  // Admission, highest effective priority first; stops at the first request that must wait so a
  // large request is not overtaken forever by small ones (requests waiting on a prefix or on their
  // conversation excepted).
  void admit_waiting() {
    for (auto& p : pools->all())
      if (p->grow_to > 0 && p->active == 0) rebuild(*p);
    sort_by_priority(waiting);
    for (auto it = waiting.begin(); it != waiting.end();) {
      Task& t = **it;
      if (static_cast<int>(active.size()) >= params.n_parallel) break;
      bool ok = false;
      try {
        ok = admit(t);
      } catch (...) {
        fail(t, std::current_exception());
        ok = true;
      }
      if (ok) {
        n_queued.fetch_sub(1);
        active.push_back(std::move(*it));
        it = waiting.erase(it);
        continue;
      }
      const bool waits_on_prefix = t.kind != Task::Kind::prefix && !t.prefix.empty();
      if (!waits_on_prefix && !t.waits_on_conversation) break;
      ++it;
    }
  }

  // One llama_decode of `pool`'s active tasks; false when none had anything to decode.
  bool decode_pool(Pool& pool, Batch& batch, std::vector<RowUse>& rows, std::vector<Task*>& seq_owner) {
    batch.clear();
    rows.clear();
    std::uint64_t tasks_in_batch = 0;
    const int cap = batch_cap(batch, pool);
    for (auto& t : active) {
      if (t->pool != &pool || t->done) continue;
      if (batch.size() >= cap) break;
      if (fill(*t, batch, cap, rows) > 0) ++tasks_in_batch;
    }
    if (batch.size() == 0) return false;
    const int rc = llama_decode(pool.ctx.get(), batch.get());
    counts.add(batch.size());
    max_batch_requests.store(std::max(max_batch_requests.load(), tasks_in_batch));
    if (rc != 0) {
      const auto err = std::make_exception_ptr(
          Error(ErrorCode::internal, "llama_decode failed with status " + std::to_string(rc)));
      for (auto& t : active)
        if (t->pool == &pool) fail(*t, err);
      return true;
    }
    // Count decoded tokens per task (rows with and without logits).
    std::fill(seq_owner.begin(), seq_owner.end(), nullptr);
    for (auto& t : active)
      if (t->pool == &pool)
        for (llama_seq_id s : t->seqs) seq_owner[static_cast<size_t>(s)] = t.get();
    for (int i = 0; i < batch.size(); ++i) {
      if (Task* owner = seq_owner[static_cast<size_t>(batch.get().seq_id[i][0])]) ++owner->n_decoded;
    }
    for (const auto& r : rows) {
      try {
        on_row(r);
      } catch (...) {
        fail(*r.task, std::current_exception());
      }
    }
    for (auto& t : active) {
      if (t->pool != &pool || t->done) continue;
      if (t->kind == Task::Kind::prefix && !t->feeding()) {
        prefixes->finish(*t);
      } else if (t->kind == Task::Kind::score && t->query_done && !t->feeding()) {
        advance_score(*t);
      }
    }
    return true;
  }

  void run() {
    Batch batch(params.n_batch, 1);
    std::vector<RowUse> rows;
    std::vector<Task*> seq_owner(256, nullptr);
    for (;;) {
      {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return stopping || !submitted.empty() || !active.empty() || !waiting.empty(); });
        if (stopping) break;
        while (!submitted.empty()) {
          waiting.push_back(std::move(submitted.front()));
          submitted.pop_front();
        }
      }

      cancel_requested();
      admit_waiting();
      finish_done_tasks();

      bool embedded = false;
      for (auto& t : active) {
        if (t->kind == Task::Kind::embed && !t->done) {
          embedder.run(*t, batch, counts);
          embedded = true;
        }
      }
      finish_done_tasks();

      // One decode per pool with work, the pool of the most urgent request first.
      sort_by_priority(active);
      std::vector<Pool*> order;
      for (auto& t : active)
        if (t->pool != nullptr && std::find(order.begin(), order.end(), t->pool) == order.end())
          order.push_back(t->pool);
      bool decoded = false;
      for (Pool* pool : order) decoded = decode_pool(*pool, batch, rows, seq_owner) || decoded;
      if (!decoded) {
        // Embeds just finished freed their room, a pool grows for a waiting request: admit the
        // waiting again before judging them.
        const bool growing = std::any_of(pools->all().begin(), pools->all().end(),
                                         [](const auto& p) { return p->grow_to > 0; });
        if (active.empty() && !waiting.empty() && !embedded && !growing) {
          // Nothing running and nothing admissible: these can never run. Fail them rather than spin.
          for (auto& t : waiting) {
            fail(*t, std::make_exception_ptr(Error(ErrorCode::internal, "request could not be scheduled")));
            complete(*t);
            n_queued.fetch_sub(1);
          }
          waiting.clear();
        }
        continue;
      }
      for (auto& t : waiting) ++t->waited;
      finish_done_tasks();
    }

    // Shutting down: nothing queued or running is left without an answer.
    const auto err =
        std::make_exception_ptr(Error(ErrorCode::engine_stopped, "engine stopped before the request ran"));
    std::lock_guard lk(mu);
    for (auto& t : submitted) waiting.push_back(std::move(t));
    submitted.clear();
    for (auto& t : waiting) {
      fail(*t, err);
      complete(*t);
    }
    for (auto& t : active) {
      if (!t->done) fail(*t, err);
      complete(*t);
    }
    waiting.clear();
    active.clear();
  }
};

Scheduler::Scheduler(const Model& model, const EngineParams& params)
    : state_(std::make_unique<State>(model, params)) {}
Scheduler::~Scheduler() = default;

namespace {
void check_tokens(std::span<const Token> tokens, int n_vocab, const char* what) {
  for (Token t : tokens) {
    if (t < 0 || t >= n_vocab) {
      throw Error(ErrorCode::invalid_argument, std::string(what) + ": token id " + std::to_string(t) +
                                                   " out of range [0, " + std::to_string(n_vocab) + ")");
    }
  }
}
} // namespace

std::future<PrefixInfo> Scheduler::add_prefix(std::string name, std::vector<Token> tokens) {
  if (name.empty()) throw Error(ErrorCode::invalid_argument, "prefix name must not be empty");
  if (tokens.empty()) throw Error(ErrorCode::invalid_argument, "prefix '" + name + "' has no tokens");
  check_tokens(tokens, state_->n_vocab, "prefix");
  auto t = std::make_unique<Task>();
  t->kind = Task::Kind::prefix;
  t->priority = Priority::high;
  t->prefix = std::move(name);
  t->feed = std::move(tokens);
  auto f = t->p_prefix.get_future();
  state_->submit(std::move(t));
  return f;
}

std::vector<Token> Scheduler::prefix_tokens(const std::string& name) const {
  return state_->prefixes->tokens(name);
}

std::future<ScoreResult> Scheduler::score(ScoreRequest request) {
  if (request.continuations.empty() && request.branches.empty())
    throw Error(ErrorCode::invalid_argument, "score: no continuations given");
  auto check_conts = [this](const std::vector<std::vector<Token>>& conts) {
    for (const auto& c : conts) {
      if (c.empty()) throw Error(ErrorCode::invalid_argument, "score: a continuation is empty");
      check_tokens(c, state_->n_vocab, "score continuation");
    }
  };
  check_conts(request.continuations);
  for (const auto& b : request.branches) {
    if (b.continuations.empty())
      throw Error(ErrorCode::invalid_argument, "score: a branch has no continuations");
    check_conts(b.continuations);
    check_tokens(b.cue, state_->n_vocab, "score branch cue");
  }
  check_tokens(request.query, state_->n_vocab, "score query");
  if (request.prefix.empty() && request.query.empty()) {
    throw Error(ErrorCode::invalid_argument, "score: nothing to condition on (no prefix and an empty query)");
  }
  if (!request.conversation.empty() && request.query.empty())
    throw Error(ErrorCode::invalid_argument, "score: a conversation request needs a query");
  auto t = std::make_unique<Task>();
  t->kind = Task::Kind::score;
  t->priority = request.priority;
  t->prefix = std::move(request.prefix);
  t->feed = std::move(request.query);
  t->conversation = std::move(request.conversation);
  t->cancel = request.cancel;
  if (!t->conversation.empty()) t->query = t->feed;
  t->groups.push_back({{}, std::move(request.continuations), {}});
  for (auto& b : request.branches) t->groups.push_back({std::move(b.cue), std::move(b.continuations), {}});
  for (auto& g : t->groups) {
    g.scores.resize(g.conts.size());
    for (size_t j = 0; j < g.conts.size(); ++j) g.scores[j].token_logprobs.assign(g.conts[j].size(), 0.f);
  }
  plan_lanes(*t);
  auto f = t->p_score.get_future();
  state_->submit(std::move(t));
  return f;
}

std::future<GenerateResult> Scheduler::generate(GenerateRequest request, SamplerPtr sampler) {
  if (request.max_tokens < 1) throw Error(ErrorCode::invalid_argument, "generate: max_tokens must be >= 1");
  check_tokens(request.prompt, state_->n_vocab, "generate prompt");
  if (request.prefix.empty() && request.prompt.empty()) {
    throw Error(ErrorCode::invalid_argument,
                "generate: nothing to condition on (no prefix and an empty prompt)");
  }
  auto t = std::make_unique<Task>();
  t->kind = Task::Kind::generate;
  t->priority = request.priority;
  t->prefix = std::move(request.prefix);
  t->feed = std::move(request.prompt);
  t->max_tokens = request.max_tokens;
  t->sampler = std::move(sampler);
  t->cancel = request.cancel;
  auto f = t->p_gen.get_future();
  state_->submit(std::move(t));
  return f;
}

std::future<HiddenState> Scheduler::embed(std::vector<Token> tokens, size_t pool_from) {
  if (tokens.empty()) throw Error(ErrorCode::invalid_argument, "embed: empty text");
  auto t = std::make_unique<Task>();
  t->kind = Task::Kind::embed;
  t->feed = std::move(tokens);
  t->pool_from = pool_from;
  auto f = t->p_embed.get_future();
  state_->submit(std::move(t));
  return f;
}

EngineStats Scheduler::stats() const {
  EngineStats s;
  s.decodes = state_->counts.decodes.load();
  s.tokens = state_->counts.tokens.load();
  s.requests = state_->n_requests.load();
  s.generate_requests = state_->n_generate.load();
  s.max_batch_requests = state_->max_batch_requests.load();
  s.queued = state_->n_queued.load();
  s.active = state_->n_active.load();
  s.contexts = state_->pools->count();
  s.context_rebuilds = state_->pools->rebuilds();
  s.conversations = state_->conversations->size();
  s.conversation_reuses = state_->conversations->reuses();
  s.conversation_evictions = state_->conversations->evictions();
  s.grammar_fast_tokens = state_->n_grammar_fast.load();
  s.grammar_full_passes = state_->n_grammar_full.load();
  return s;
}

} // namespace tinyroute::engine
