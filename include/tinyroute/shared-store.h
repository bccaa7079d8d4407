// Where several serve processes keep what they must agree on: the decision cache and the conversations'
// turns. The route layer depends on this interface only; the Redis implementation
// (tinyroute/redis-shared-store.h) is built with the Redis code and handed in by serve. Every call may
// throw Error(io) when the store is down or slower than its timeout: the caller then decides without it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tinyroute/conversations.h"

namespace tinyroute {

// What storing a decision left behind.
struct SharedDecisionPut {
  std::size_t entries = 0; // decisions the scope holds now
  std::uint64_t evicted = 0;
};

// What appending a turn saw: the window, as ConversationStore::append returns it.
struct SharedAppend {
  ConversationWindow window;
  std::uint64_t evicted = 0; // conversations forgotten by the count bound
};

class SharedStore {
public:
  virtual ~SharedStore() = default;
  // `scope` names a namespace (the decision cache passes the config hash, so two configs never share
  // a decision); `key` is DecisionCache::key's.
  virtual std::optional<std::string> find_decision(std::string_view scope, const std::string& key) = 0;
  // Kept `ttl_s` seconds; past `max_entries` in the scope the oldest stored go first.
  virtual SharedDecisionPut put_decision(std::string_view scope, const std::string& key,
                                         const std::string& value, std::size_t max_entries, double ttl_s) = 0;
  // ConversationStore::append with the turns in the store, atomically, whichever process calls it.
  virtual SharedAppend append_turn(std::string_view scope, const std::string& conversation,
                                   const ConversationTurn& turn, int window_tokens) = 0;
  virtual std::string describe() const = 0; // where it is, for logs
};

} // namespace tinyroute
