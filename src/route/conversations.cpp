#include "tinyroute/conversations.h"

#include <algorithm>
#include <sstream>

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

ConversationStore::ConversationStore(ConversationOptions options) : options_(options) {}

ConversationStore::ConversationStore(ConversationOptions options, std::shared_ptr<SharedStore> shared,
                                     std::string scope)
    : options_(options), shared_(std::move(shared)), scope_(std::move(scope)) {}

namespace {
// Turn ids remembered per conversation: more than a window holds, so a late redelivery is still known.
constexpr std::size_t kSeenTurns = 256;
} // namespace

ConversationStore::Entry& ConversationStore::touch(const std::string& id) {
  auto it = index_.find(id);
  if (it == index_.end()) {
    lru_.push_front({id, {}, {}});
    index_[id] = lru_.begin();
    while (lru_.size() > options_.max_conversations && lru_.size() > 1) {
      index_.erase(lru_.back().id);
      lru_.pop_back();
      if (!shared_) ++stats_.evicted; // with a shared store its own bound counts
    }
  } else {
    lru_.splice(lru_.begin(), lru_, it->second);
  }
  return lru_.front();
}

ConversationWindow ConversationStore::append(const std::string& id, ConversationTurn turn) {
  if (shared_) {
    try {
      SharedAppend a = shared_->append_turn(scope_, id, turn, options_.window_tokens);
      std::lock_guard lock(mutex_);
      stats_.evicted += a.evicted;
      if (a.window.replayed) {
        ++stats_.replayed;
        return std::move(a.window);
      }
      ++stats_.messages;
      // The local copy: what answers while the shared store cannot.
      Entry& e = touch(id);
      e.window = a.window.turns;
      if (!turn.id.empty()) {
        e.seen.push_back(turn.id);
        if (e.seen.size() > kSeenTurns) e.seen.pop_front();
      }
      return std::move(a.window);
    } catch (const Error&) {
      std::lock_guard lock(mutex_);
      ++stats_.shared_fallbacks;
    }
  }
  return append_local(id, std::move(turn));
}

ConversationWindow ConversationStore::append_local(const std::string& id, ConversationTurn turn) {
  std::lock_guard lock(mutex_);
  Entry& e = touch(id);
  ConversationWindow w;
  if (!turn.id.empty() && std::find(e.seen.begin(), e.seen.end(), turn.id) != e.seen.end()) {
    ++stats_.replayed;
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
  ++stats_.messages;
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
  std::lock_guard lock(mutex_);
  if (!had_history) return;
  if (reused > 0 && !moved) {
    ++stats_.continued;
  } else {
    ++stats_.rebuilt;
  }
}

void ConversationStore::clear() {
  std::lock_guard lock(mutex_);
  lru_.clear();
  index_.clear();
}

ConversationStats ConversationStore::stats() const {
  std::lock_guard lock(mutex_);
  ConversationStats s = stats_;
  s.conversations = lru_.size();
  return s;
}

std::string ConversationStore::metrics_text() const {
  const ConversationStats s = stats();
  std::ostringstream o;
  auto metric = [&o](const char* name, const char* type, const char* help, auto value) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
      << name << " " << value << "\n";
  };
  metric("tinyroute_conversations", "gauge", "Conversations whose recent turns are kept.", s.conversations);
  metric("tinyroute_conversation_messages_total", "counter", "Messages analyzed as part of a conversation.",
         s.messages);
  metric("tinyroute_conversation_continued_total", "counter",
         "Conversation messages that continued the engine's kept sequence (only the new turn decoded).",
         s.continued);
  metric("tinyroute_conversation_rebuilt_total", "counter",
         "Conversation messages whose earlier turns were decoded again (sequence evicted or window moved).",
         s.rebuilt);
  metric("tinyroute_conversation_evicted_total", "counter", "Conversations forgotten by the size bound.",
         s.evicted);
  metric("tinyroute_conversation_replayed_total", "counter",
         "Redelivered conversation messages (a turn id already seen): routed again, not appended again.",
         s.replayed);
  if (shared_) {
    metric("tinyroute_conversation_shared_fallbacks_total", "counter",
           "Conversation messages the shared store (shared_state) could not serve: this process's own "
           "copy of the window answered.",
           s.shared_fallbacks);
  }
  return o.str();
}

} // namespace tinyroute
