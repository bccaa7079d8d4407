#include "engine/task.h"

#include <algorithm>

#include "engine/logprob.h"

namespace tinyroute::engine {

namespace {

// Forks the next wave's lanes from the end of the query: each starts as a metadata-only copy of the
// main sequence's cells.
void setup_wave(Task& t) {
  t.wave_begin = t.wave_end;
  t.wave_end = std::min(t.lanes.size(), t.wave_begin + t.seqs.size());
  const llama_pos qend = t.query_end();
  llama_memory_seq_rm(t.pool->mem, t.seqs[0], qend, -1);
  for (size_t i = 1; i < t.wave_end - t.wave_begin; ++i) {
    llama_memory_seq_rm(t.pool->mem, t.seqs[i], -1, -1);
    llama_memory_seq_cp(t.pool->mem, t.seqs[0], t.seqs[i], -1, qend);
  }
  t.wave_fed.assign(t.wave_end - t.wave_begin, 0);
}

bool wave_complete(const Task& t) {
  for (size_t i = 0; i < t.wave_fed.size(); ++i)
    if (t.wave_fed[i] < t.lanes[t.wave_begin + i].tokens.size()) return false;
  return true;
}

} // namespace

void plan_lanes(Task& t) {
  for (size_t g = 0; g < t.groups.size(); ++g) {
    const auto& group = t.groups[g];
    bool singles_read = group.cue.empty(); // an empty cue reads one-token continuations from the query
    for (size_t j = 0; j < group.conts.size(); ++j) {
      const auto& c = group.conts[j];
      if (c.size() < 2) continue;
      Task::Lane lane{g, j, !singles_read, group.cue};
      lane.tokens.insert(lane.tokens.end(), c.begin(), c.end() - 1);
      singles_read = true;
      t.lanes.push_back(std::move(lane));
    }
    if (!singles_read) t.lanes.push_back({g, Task::kNoCont, true, group.cue});
  }
}

int request_cells(const Task& t, int n_feed, int* n_seqs) {
  *n_seqs = 1;
  if (t.kind == Task::Kind::score) {
    size_t max_len = 0;
    for (const auto& lane : t.lanes) max_len = std::max(max_len, lane.tokens.size());
    *n_seqs = std::max<int>(1, std::min<int>(static_cast<int>(t.lanes.size()), kMaxSeqsPerTask));
    return n_feed + *n_seqs * static_cast<int>(max_len);
  }
  return n_feed + (t.kind == Task::Kind::generate ? t.max_tokens : 0);
}

void advance_score(Task& t) {
  // Called after the query or a wave completed.
  if (!wave_complete(t)) return;
  if (t.wave_end >= t.lanes.size()) {
    t.done = true;
    return;
  }
  setup_wave(t);
}

int feed_rows(Task& t, Batch& batch, int cap, Outputs outputs) {
  const int before = batch.size();
  while (batch.size() < cap && t.feeding()) {
    const bool last = t.fed + 1 == t.feed.size();
    const bool out = outputs == Outputs::all || (last && outputs == Outputs::last);
    batch.add(t.feed[t.fed], t.pos0 + static_cast<llama_pos>(t.fed), t.seqs[0], out);
    ++t.fed;
  }
  return batch.size() - before;
}

int fill(Task& t, Batch& batch, int cap, std::vector<RowUse>& rows) {
  const int before = batch.size();
  auto room = [&] { return batch.size() < cap; };
  if (t.feeding()) {
    // An embed's rows all give embeddings (never read here: an embed decodes alone, run_embed); a
    // prefix reads nothing; score and generate read the query's last row.
    const Outputs outputs = t.kind == Task::Kind::embed    ? Outputs::all
                            : t.kind == Task::Kind::prefix ? Outputs::none
                                                           : Outputs::last;
    if (feed_rows(t, batch, cap, outputs) > 0 && outputs == Outputs::last && !t.feeding()) {
      const auto what = t.kind == Task::Kind::generate ? RowUse::What::gen : RowUse::What::query_last;
      rows.push_back({&t, what, 0, 0, batch.size() - 1});
    }
  } else if (t.kind == Task::Kind::score && t.query_done) {
    const llama_pos qend = t.query_end();
    for (size_t i = 0; i < t.wave_fed.size() && room(); ++i) {
      const size_t l = t.wave_begin + i;
      const auto& lane = t.lanes[l];
      const size_t cue = t.groups[lane.group].cue.size();
      while (room() && t.wave_fed[i] < lane.tokens.size()) {
        const size_t k = t.wave_fed[i];
        const bool logits = k + 1 >= cue; // cue tokens before the last predict nothing scored
        const int row = batch.add(lane.tokens[k], qend + static_cast<llama_pos>(k), t.seqs[i], logits);
        if (logits) rows.push_back({&t, RowUse::What::lane, l, k, row});
        ++t.wave_fed[i];
      }
    }
  } else if (t.kind == Task::Kind::generate && t.has_pending) {
    const auto pos = t.query_end() + static_cast<llama_pos>(t.out.size()) - 1;
    const int row = batch.add(t.pending, pos, t.seqs[0], true);
    rows.push_back({&t, RowUse::What::gen, 0, 0, row});
    t.has_pending = false;
  }
  return batch.size() - before;
}

void read_score_row(const RowUse& r, const float* logits, int n_vocab) {
  Task& t = *r.task;
  const double lse = log_sum_exp(logits, n_vocab);
  if (r.what == RowUse::What::query_last) {
    for (auto& g : t.groups) {
      if (!g.cue.empty()) continue;
      for (size_t j = 0; j < g.conts.size(); ++j)
        g.scores[j].token_logprobs[0] = static_cast<float>(logits[g.conts[j][0]] - lse);
    }
    t.query_done = true;
    t.query_finished = Clock::now();
    t.wave_end = 0;
    t.wave_fed.clear();
    advance_score(t);
    return;
  }
  const auto& lane = t.lanes[r.lane];
  auto& g = t.groups[lane.group];
  const size_t cue = g.cue.size();
  auto put = [&](size_t j, size_t token) {
    g.scores[j].token_logprobs[token] = static_cast<float>(logits[g.conts[j][token]] - lse);
  };
  if (r.k + 1 == cue) { // the cue's last row: every continuation's first token
    if (lane.cont != Task::kNoCont) put(lane.cont, 0);
    if (lane.reads_singles)
      for (size_t j = 0; j < g.conts.size(); ++j)
        if (g.conts[j].size() == 1) put(j, 0);
  }
  if (r.k >= cue) put(lane.cont, r.k - cue + 1);
}

void take_token(Task& t, Token tok, bool eog) {
  if (eog) {
    t.done = true;
    return;
  }
  t.out.push_back(tok);
  if (static_cast<int>(t.out.size()) >= t.max_tokens) {
    t.limit = true;
    t.done = true;
  } else {
    t.pending = tok;
    t.has_pending = true;
  }
}

} // namespace tinyroute::engine
