#include "tinyroute/conversations.h"

#include <sstream>

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

std::vector<ConversationTurn> ConversationStore::append(const std::string& id, ConversationTurn turn,
                                                        bool* had_history, bool* moved) {
  std::lock_guard lock(mutex_);
  ++stats_.messages;
  auto it = index_.find(id);
  if (it == index_.end()) {
    lru_.push_front({id, {}});
    index_[id] = lru_.begin();
    while (lru_.size() > options_.max_conversations && lru_.size() > 1) {
      index_.erase(lru_.back().id);
      lru_.pop_back();
      ++stats_.evicted;
    }
  } else {
    lru_.splice(lru_.begin(), lru_, it->second);
  }
  Entry& e = lru_.front();
  if (had_history != nullptr) *had_history = !e.window.empty();
  const bool trimmed = push_turn(e.window, std::move(turn), options_.window_tokens);
  if (moved != nullptr) *moved = trimmed;
  return e.window;
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
  return o.str();
}

} // namespace tinyroute
