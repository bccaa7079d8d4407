#include "tinyroute/conversations.h"

#include <algorithm>
#include <deque>
#include <mutex>
#include <sstream>

#include "core/lru.h"
#include "core/prometheus.h"
#include "tinyroute/error.h"
#include "tinyroute/shared-store.h"

namespace tinyroute {

bool push_turn(std::vector<ConversationTurn>& window, ConversationTurn turn, int max_tokens) {
  int total = turn.tokens;
  for (const auto& t : window) total += t.tokens;
  bool trimmed = false;
  if (total > max_tokens) {
    size_t drop = 0;
    while (drop < window.size() && total > max_tokens / 2) total -= window[drop++].tokens;
    window.erase(window.begin(), window.begin() + static_cast<std::ptrdiff_t>(drop));
    trimmed = drop > 0;
  }
  window.push_back(std::move(turn));
  return trimmed;
}

namespace {
// Turn ids remembered per conversation: more than a window holds, so a late redelivery is still known.
constexpr std::size_t kSeenTurns = 256;
} // namespace

struct ConversationStore::State {
  struct Entry {
    std::vector<ConversationTurn> window;
    std::deque<std::string> seen; // ids of the recent turns, the window's and some before (bounded)
  };
  std::mutex mutex;
  LruMap<std::string, Entry> entries;
  ConversationStats stats;

  // Conversation `id`, found or created, as the most recently used; under `mutex`. The one just
  // touched always stays, whatever the bound.
  Entry& touch(const std::string& id, std::size_t max_conversations, bool count_evictions) {
    if (Entry* e = entries.find(id)) return *e;
    Entry& created = entries.put(id, {}); // the front: trimming to at least 1 keeps it (and the reference)
    const std::size_t evicted = entries.trim(std::max<std::size_t>(max_conversations, 1));
    if (count_evictions) stats.evicted += evicted; // with a shared store its own bound counts
    return created;
  }
};

ConversationStore::ConversationStore(ConversationOptions options)
    : options_(options), state_(std::make_unique<State>()) {}

ConversationStore::ConversationStore(ConversationOptions options, std::shared_ptr<SharedStore> shared,
                                     std::string scope)
    : options_(options), shared_(std::move(shared)), scope_(std::move(scope)),
      state_(std::make_unique<State>()) {}

ConversationStore::~ConversationStore() = default;

ConversationWindow ConversationStore::append(const std::string& id, ConversationTurn turn) {
  if (shared_) {
    try {
      SharedAppend a = shared_->append_turn(scope_, id, turn, options_.window_tokens);
      std::lock_guard lock(state_->mutex);
      state_->stats.evicted += a.evicted;
      if (a.window.replayed) {
        ++state_->stats.replayed;
        return std::move(a.window);
      }
      ++state_->stats.messages;
      // The local copy: what answers while the shared store cannot.
      State::Entry& e = state_->touch(id, options_.max_conversations, !shared_);
      e.window = a.window.turns;
      if (!turn.id.empty()) {
        e.seen.push_back(turn.id);
        if (e.seen.size() > kSeenTurns) e.seen.pop_front();
      }
      return std::move(a.window);
    } catch (const Error&) {
      std::lock_guard lock(state_->mutex);
      ++state_->stats.shared_fallbacks;
    }
  }
  return append_local(id, std::move(turn));
}

ConversationWindow ConversationStore::append_local(const std::string& id, ConversationTurn turn) {
  std::lock_guard lock(state_->mutex);
  State::Entry& e = state_->touch(id, options_.max_conversations, !shared_);
  ConversationWindow w;
  if (!turn.id.empty() && std::find(e.seen.begin(), e.seen.end(), turn.id) != e.seen.end()) {
    ++state_->stats.replayed;
    w.replayed = true;
    const auto at =
        std::find_if(e.window.begin(), e.window.end(), [&](const auto& t) { return t.id == turn.id; });
    if (at != e.window.end()) {
      w.turns.assign(e.window.begin(), at + 1);
    } else { // the window moved past it: the turns now there, then the message (not stored)
      w.turns = e.window;
      w.turns.push_back(std::move(turn));
    }
    w.had_history = w.turns.size() > 1;
    return w;
  }
  ++state_->stats.messages;
  if (!turn.id.empty()) {
    e.seen.push_back(turn.id);
    if (e.seen.size() > kSeenTurns) e.seen.pop_front();
  }
  w.had_history = !e.window.empty();
  w.moved = push_turn(e.window, std::move(turn), options_.window_tokens);
  w.turns = e.window;
  return w;
}

void ConversationStore::record(bool had_history, bool moved, int reused) {
  std::lock_guard lock(state_->mutex);
  if (!had_history) return;
  if (reused > 0 && !moved) {
    ++state_->stats.continued;
  } else {
    ++state_->stats.rebuilt;
  }
}

void ConversationStore::clear() {
  std::lock_guard lock(state_->mutex);
  state_->entries.clear();
}

ConversationStats ConversationStore::stats() const {
  std::lock_guard lock(state_->mutex);
  ConversationStats s = state_->stats;
  s.conversations = state_->entries.size();
  return s;
}

std::string ConversationStore::metrics_text() const {
  const ConversationStats s = stats();
  std::ostringstream o;
  using prometheus::metric;
  using prometheus::Type;
  metric(o, "tinyroute_conversations", Type::gauge, "Conversations whose recent turns are kept.",
         s.conversations);
  metric(o, "tinyroute_conversation_messages_total", Type::counter,
         "Messages analyzed as part of a conversation.", s.messages);
  metric(o, "tinyroute_conversation_continued_total", Type::counter,
         "Conversation messages that continued the engine's kept sequence (only the new turn decoded).",
         s.continued);
  metric(o, "tinyroute_conversation_rebuilt_total", Type::counter,
         "Conversation messages whose earlier turns were decoded again (sequence evicted or window moved).",
         s.rebuilt);
  metric(o, "tinyroute_conversation_evicted_total", Type::counter,
         "Conversations forgotten by the size bound.", s.evicted);
  metric(o, "tinyroute_conversation_replayed_total", Type::counter,
         "Redelivered conversation messages (a turn id already seen): routed again, not appended again.",
         s.replayed);
  if (shared_) {
    metric(o, "tinyroute_conversation_shared_fallbacks_total", Type::counter,
           "Conversation messages the shared store (shared_state) could not serve: this process's own "
           "copy of the window answered.",
           s.shared_fallbacks);
  }
  return o.str();
}

} // namespace tinyroute
