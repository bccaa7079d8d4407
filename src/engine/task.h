// A request as the scheduler's worker runs it (Task), and its planning: a score request's lanes and
// waves, the tokens it adds to a shared batch, and what it reads from the rows it asked logits for.
#pragma once

#include <llama.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "engine/context-pool.h"
#include "engine/llama-handles.h"
#include "tinyroute/engine.h"

namespace tinyroute::engine {

using Clock = std::chrono::steady_clock;

inline double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

inline constexpr int kMaxSeqsPerTask = 16; // continuation waves reuse a request's sequences beyond this

struct Task {
  enum class Kind { prefix, score, generate, embed };
  Kind kind = Kind::score;
  Priority priority = Priority::normal;
  std::uint64_t order = 0;
  int waited = 0; // decodes spent waiting for admission (ageing)
  Clock::time_point enqueued = Clock::now();
  Clock::time_point started{};

  std::string prefix;             // prefix used (score/generate) or being added (prefix)
  Pool* pool = nullptr;           // the context it decodes in, from admission on
  std::vector<llama_seq_id> seqs; // seqs[0] is the main sequence, ids of `pool`'s context
  int reserve = 0;                // KV cells reserved while active

  std::vector<Token> feed; // decoded on the main sequence from position pos0
  size_t fed = 0;
  size_t pool_from = 0; // embed from a middle block: rows before this (the BOS) are not pooled
  llama_pos pos0 = 0;
  int n_decoded = 0;

  // score with a conversation key: the main sequence is kept afterwards (see Kept).
  std::string conversation;
  std::vector<Token> query;           // the whole query, what the kept sequence holds after the prefix
  std::uint64_t prefix_version = 0;   // the prefix's version the sequence was built on
  int n_reused = 0;                   // query tokens taken over from the kept sequence
  bool holds_conversation = false;    // admitted: other requests with the key wait
  bool waits_on_conversation = false; // not admitted because one with the key is active

  // score: groups[0] is the request's own continuations (empty cue), groups[1..] its branches. Every
  // lane is a sequence forked from the end of the query that decodes one group's cue, then (for a
  // multi-token continuation) all but its last token; lanes run in waves of at most seqs.size().
  struct Group {
    std::vector<Token> cue;
    std::vector<std::vector<Token>> conts;
    std::vector<ContinuationScore> scores;
  };
  static constexpr size_t kNoCont = static_cast<size_t>(-1);
  struct Lane {
    size_t group = 0;
    size_t cont = kNoCont;      // the multi-token continuation it completes, kNoCont for a cue alone
    bool reads_singles = false; // its last cue row also scores the group's one-token continuations
    std::vector<Token> tokens;  // cue + cont[0 .. n-2]
  };
  std::vector<Group> groups;
  std::vector<Lane> lanes;
  size_t wave_begin = 0, wave_end = 0;
  std::vector<size_t> wave_fed;
  bool query_done = false;
  Clock::time_point query_finished{};

  // generate
  SamplerPtr sampler; // the grammar's, or null (greedy sampling is the scheduler's own)
  int max_tokens = 0;
  std::vector<Token> out;
  bool limit = false;
  bool has_pending = false;
  Token pending = 0;

  std::optional<CancelToken> cancel; // score and generate: the caller's
  bool done = false;
  std::exception_ptr error;

  bool cancelled() const { return cancel && cancel->cancelled(); }

  std::promise<PrefixInfo> p_prefix;
  std::promise<ScoreResult> p_score;
  std::promise<GenerateResult> p_gen;
  std::promise<HiddenState> p_embed;
  HiddenState embedded; // an embed's result, handed over in complete() (after the stats count it)
  PrefixInfo prefix_info;

  llama_pos query_end() const { return pos0 + static_cast<llama_pos>(feed.size()); }
  bool feeding() const { return fed < feed.size(); }
};

inline void fail(Task& t, std::exception_ptr e) {
  t.error = std::move(e);
  t.done = true;
}

// Admitted into `pool`: it decodes there until released.
inline void take_seat(Task& t, Pool& pool) {
  t.pool = &pool;
  ++pool.active;
}

// Splits a score request into groups and lanes (see Task). Runs on the caller's thread.
void plan_lanes(Task& t);

// Cells a request needs beyond what it reuses: its feed, and its lanes or generated tokens.
int request_cells(const Task& t, int n_feed, int* n_seqs);

// A score request whose query or current wave is complete moves to its next wave, or is done.
void advance_score(Task& t);

// llama_decode calls and the tokens they decoded; read by any thread (EngineStats).
struct DecodeCounts {
  std::atomic<std::uint64_t> decodes{0}, tokens{0};
  void add(int batch_tokens) {
    decodes.fetch_add(1);
    tokens.fetch_add(static_cast<std::uint64_t>(batch_tokens));
  }
};

// Rows `batch` may hold for one decode in `pool`: a small context was made with a smaller batch
// (llama.cpp caps it at the context).
inline int batch_cap(const Batch& batch, const Pool& pool) {
  return std::min(batch.capacity(), static_cast<int>(llama_n_batch(pool.ctx.get())));
}

// Which fed rows ask llama.cpp for their outputs (logits, or embeddings in embeddings mode).
enum class Outputs { all, last, none };

// Adds the task's next feed tokens, on its main sequence, while the batch holds fewer than `cap` rows;
// `outputs`: every row, the feed's last one, or none. Returns how many it added (the batch's last rows).
int feed_rows(Task& t, Batch& batch, int cap, Outputs outputs);

// One row of the batch whose logits a task reads.
struct RowUse {
  Task* task;
  enum class What { query_last, lane, gen } what;
  size_t lane = 0; // score: which lane
  size_t k = 0;    // score: the lane token at this row
  int row = 0;
};

// Adds the task's next tokens to the batch, up to `cap` rows in all, and the rows it will read to
// `rows`; returns how many it added.
int fill(Task& t, Batch& batch, int cap, std::vector<RowUse>& rows);

// A score row (query_last or lane) read: its logits (n_vocab of them) become the continuations'
// log-probabilities; the query's last row starts the lanes' first wave.
void read_score_row(const RowUse& r, const float* logits, int n_vocab);

// A generate request's sampled token: the output grows, or the request ends at an end-of-generation
// token or max_tokens.
void take_token(Task& t, Token tok, bool eog);

} // namespace tinyroute::engine
