// Conversations: the text of each conversation's recent turns, so that analyze can route a message with
// the turns before it. The engine keeps the decoded sequence of a conversation (ScoreRequest::
// conversation) and decodes only what a new message adds; this store keeps the text, so a sequence the
// engine evicted is rebuilt from it on the next message. Bounded in conversations (least recently used
// goes first) and, per conversation, in tokens (the window). Thread-safe; one per process, shared by
// the analyzers built on every config reload. With a SharedStore (serve's shared_state) the turns live
// there, so every process sees the same window; when the store cannot answer, the local copy of the
// windows this process saw answers instead (and the fallback is counted).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tinyroute {

class SharedStore;

struct ConversationOptions {
  std::size_t max_conversations = 10000; // conversations whose text is kept
  int window_tokens = 1024;              // a conversation's turns kept, in tokens (separators included)
};

struct ConversationTurn {
  std::string text;
  int tokens = 0; // what it adds to the window (its separator included)
  // The message's own id (the bus's msg_id), or empty. A turn whose id the conversation has seen is
  // a redelivery of that message, not a new turn: it is not appended again.
  std::string id = {};
};

// Appends `turn` to `window` (oldest first). When the window would pass `max_tokens`, the oldest turns
// go until the window is at most half full with the new turn: the kept sequence then has to be rebuilt
// once per half window, not at every message. The newest turn always stays. Returns whether turns went.
bool push_turn(std::vector<ConversationTurn>& window, ConversationTurn turn, int max_tokens);

struct ConversationStats {
  std::size_t conversations = 0;      // tracked now
  std::uint64_t messages = 0;         // appended in total
  std::uint64_t continued = 0;        // the engine continued its kept sequence
  std::uint64_t rebuilt = 0;          // earlier turns decoded again (evicted, or the window moved)
  std::uint64_t evicted = 0;          // conversations forgotten by the size bound
  std::uint64_t replayed = 0;         // redeliveries of a turn already seen (not appended again)
  std::uint64_t shared_fallbacks = 0; // the shared store failed: the local windows answered
};

// What append saw: the window the decisions see, and how it came about.
struct ConversationWindow {
  std::vector<ConversationTurn> turns; // oldest first, the message's own turn last
  bool had_history = false;            // earlier turns come before the message's
  bool moved = false;                  // some earlier turns went (the window moved)
  bool replayed = false;               // the message was seen before: its window, nothing appended
};

class ConversationStore {
public:
  explicit ConversationStore(ConversationOptions options = {});
  // Turns in `shared` under `scope` (serve passes the internal model's fingerprint: the turns' token
  // counts are its tokenizer's; the store adds window_tokens to the namespace).
  ConversationStore(ConversationOptions options, std::shared_ptr<SharedStore> shared, std::string scope);

  // Appends a turn to conversation `id` (created when new) and returns the window the decisions see,
  // the new turn last. A turn whose id was seen in this conversation is a redelivery: the window ends
  // at its first delivery when that is still in it (the same decisions again); when the window has
  // moved past it, the message follows the turns now there. Nothing is appended either way.
  ConversationWindow append(const std::string& id, ConversationTurn turn);
  // How a message was served: with history, the kept sequence continued (`reused` > 0 and the window
  // did not move) or the earlier turns decoded again (rebuilt).
  void record(bool had_history, bool moved, int reused);
  void clear();
  const ConversationOptions& options() const { return options_; }
  ConversationStats stats() const;
  // Prometheus text: tinyroute_conversations, tinyroute_conversation_{messages,continued,rebuilt,
  // evicted,replayed}_total (and _shared_fallbacks_total with a shared store).
  std::string metrics_text() const;

  ~ConversationStore();

private:
  struct State; // the lock, the local windows (LRU) and the counters
  ConversationWindow append_local(const std::string& id, ConversationTurn turn);
  ConversationOptions options_;
  std::shared_ptr<SharedStore> shared_;
  std::string scope_;
  std::unique_ptr<State> state_;
};

} // namespace tinyroute
