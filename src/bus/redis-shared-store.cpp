// serve's shared state in Redis. Keys, for a scope S (the config hash for decisions; the tokenizer and
// window for conversations), cut to 16 hex digits and used as a hash tag so a scope's keys share a
// cluster slot:
//   PREFIX:{S}:d:<sha256 of the cache key>   a decision (JSON), PX ttl
//   PREFIX:{S}:d                              a sorted set of those keys by store time (the entry bound)
//   PREFIX:{S}:cW:<sha256 of the id>         a conversation (window W tokens): its turns and recent turn
//                                             ids (JSON), PX ttl
//   PREFIX:{S}:cW                             a sorted set of those keys by last use (the count bound)
// Appending a turn is one Lua script (read, window, write, bound), so two processes appending to one
// conversation at once each see a window the other's turn is either wholly in or wholly out of.
#include "tinyroute/redis-shared-store.h"

#include <chrono>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bus/redis-client.h"
#include "core/sha256.h"
#include "tinyroute/error.h"

namespace tinyroute {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// KEYS: entry, index. Returns the value (nil when absent or expired). A hit becomes the most recently
// used: its index score (what the bound evicts by, lowest first) moves to now, as in the in-process
// cache. The TTL still counts from the store (the entry's PX).
constexpr const char* kFindDecision = R"lua(
local v = redis.call('GET', KEYS[1])
if v then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[2], 'XX', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), KEYS[1])
end
return v
)lua";

// KEYS: entry, index. ARGV: value, ttl ms, max entries. Returns {entries, evicted}.
constexpr const char* kPutDecision = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
local n = redis.call('ZCARD', KEYS[2])
local max = tonumber(ARGV[3])
local evicted = 0
if n > max then
  local old = redis.call('ZPOPMIN', KEYS[2], n - max)
  for i = 1, #old, 2 do redis.call('DEL', old[i]) end
  evicted = n - max
  n = max
end
redis.call('PEXPIRE', KEYS[2], ttl)
return {n, evicted}
)lua";

// KEYS: conversation, index. ARGV: text, tokens, turn id, window tokens, max conversations, ttl ms,
// turn ids remembered. The window rule is push_turn's (conversations.cpp): past the window, the oldest
// turns go until it is at most half full with the new one. Returns JSON {w, replayed, had_history,
// moved, evicted}.
constexpr const char* kAppendTurn = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local text, tokens, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local window, max_convs, ttl, max_seen = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local raw = redis.call('GET', KEYS[1])
local c = {w = {}, s = {}}
if raw then c = cjson.decode(raw) end
local r = {replayed = false, had_history = false, moved = false, evicted = 0}
local seen = false
if id ~= '' then
  for _, s in ipairs(c.s) do if s == id then seen = true break end end
end
if seen then
  r.replayed = true
  local w, found = {}, false
  for _, turn in ipairs(c.w) do
    w[#w + 1] = turn
    if turn[3] == id then found = true break end
  end
  if not found then w[#w + 1] = {text, tokens, id} end
  r.w = w
  r.had_history = #w > 1
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  if id ~= '' then
    c.s[#c.s + 1] = id
    if #c.s > max_seen then table.remove(c.s, 1) end
  end
  r.had_history = #c.w > 0
  local total = tokens
  for _, turn in ipairs(c.w) do total = total + turn[2] end
  if total > window then
    local drop = 0
    while drop < #c.w and total > math.floor(window / 2) do
      drop = drop + 1
      total = total - c.w[drop][2]
    end
    if drop > 0 then
      local kept = {}
      for i = drop + 1, #c.w do kept[#kept + 1] = c.w[i] end
      c.w = kept
      r.moved = true
    end
  end
  c.w[#c.w + 1] = {text, tokens, id}
  r.w = c.w
  redis.call('SET', KEYS[1], cjson.encode(c), 'PX', ttl)
end
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
local n = redis.call('ZCARD', KEYS[2])
if n > max_convs then
  local old = redis.call('ZPOPMIN', KEYS[2], n - max_convs)
  for i = 1, #old, 2 do
    if old[i] ~= KEYS[1] then redis.call('DEL', old[i]) end
  end
  r.evicted = n - max_convs
end
redis.call('PEXPIRE', KEYS[2], ttl)
return cjson.encode(r)
)lua";

// Turn ids remembered per conversation, as ConversationStore does.
constexpr int kSeenTurns = 256;

class RedisSharedStore final : public SharedStore {
public:
  explicit RedisSharedStore(const SharedStateConfig& c)
      : endpoint_(parse_redis_url(c.redis, c.username_env, c.password_env)), prefix_(c.prefix),
        timeout_(c.timeout_ms), max_conversations_(c.conversations),
        conversation_ttl_ms_(static_cast<long long>(c.conversation_ttl_s) * 1000), where_(c.redis) {}

  std::optional<std::string> find_decision(std::string_view scope, const std::string& key) override {
    const RedisValue v = call([&](RedisClient& r) {
      return r.command({"EVAL", kFindDecision, "2", decision_key(scope, key), scope_key(scope) + ":d"});
    });
    if (v.is_error()) throw Error(ErrorCode::io, "redis decision lookup: " + v.str);
    if (v.is_nil()) return std::nullopt;
    return v.str;
  }

  SharedDecisionPut put_decision(std::string_view scope, const std::string& key, const std::string& value,
                                 std::size_t max_entries, double ttl_s) override {
    const long long ttl_ms = std::max(1LL, static_cast<long long>(ttl_s * 1000));
    const RedisValue v = call([&](RedisClient& r) {
      return r.command({"EVAL", kPutDecision, "2", decision_key(scope, key), scope_key(scope) + ":d", value,
                        std::to_string(ttl_ms), std::to_string(max_entries)});
    });
    if (v.is_error() || v.elements.size() != 2) throw Error(ErrorCode::io, "redis decision store: " + v.str);
    return {static_cast<std::size_t>(v.elements[0].integer),
            static_cast<std::uint64_t>(v.elements[1].integer)};
  }

  SharedAppend append_turn(std::string_view scope, const std::string& conversation,
                           const ConversationTurn& turn, int window_tokens) override {
    // The window size is part of the namespace: a window is only the same under the same rule.
    const std::string base = scope_key(scope) + ":c" + std::to_string(window_tokens);
    const RedisValue v = call([&](RedisClient& r) {
      return r.command({"EVAL", kAppendTurn, "2", base + ":" + sha256_hex(conversation), base, turn.text,
                        std::to_string(turn.tokens), turn.id, std::to_string(window_tokens),
                        std::to_string(max_conversations_), std::to_string(conversation_ttl_ms_),
                        std::to_string(kSeenTurns)});
    });
    if (v.is_error() || v.type != RedisValue::Type::string)
      throw Error(ErrorCode::io, "redis conversation append: " + v.str);
    try {
      const json j = json::parse(v.str);
      SharedAppend a;
      ConversationWindow& w = a.window;
      w.replayed = j.at("replayed").get<bool>();
      w.had_history = j.at("had_history").get<bool>();
      w.moved = j.at("moved").get<bool>();
      a.evicted = j.at("evicted").get<std::uint64_t>();
      for (const auto& t : j.at("w")) {
        ConversationTurn turn_out;
        turn_out.text = t.at(0).get<std::string>();
        turn_out.tokens = t.at(1).get<int>();
        turn_out.id = t.at(2).get<std::string>();
        w.turns.push_back(std::move(turn_out));
      }
      if (w.turns.empty()) throw Error(ErrorCode::io, "redis conversation append: an empty window");
      return a;
    } catch (const json::exception& e) {
      throw Error(ErrorCode::io, std::string("redis conversation append: ") + e.what());
    }
  }

  std::string describe() const override { return where_ + " (keys " + prefix_ + ":*)"; }

private:
  std::string scope_key(std::string_view scope) const {
    return prefix_ + ":{" + std::string(scope.substr(0, 16)) + "}";
  }
  std::string decision_key(std::string_view scope, const std::string& key) const {
    return scope_key(scope) + ":d:" + sha256_hex(key);
  }

  // Runs `fn` on a pooled connection. A failure drops the connection and starts a back-off during which
  // every call fails at once (no connect attempt), so a Redis that is down costs requests no waiting.
  template <typename F> RedisValue call(F fn) {
    std::unique_ptr<RedisClient> client;
    {
      std::lock_guard lock(mutex_);
      if (Clock::now() < retry_at_) throw Error(ErrorCode::io, "redis " + where_ + " is backing off");
      if (!idle_.empty()) {
        client = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    try {
      if (!client) client = std::make_unique<RedisClient>(endpoint_, timeout_);
      RedisValue v = fn(*client);
      std::lock_guard lock(mutex_);
      if (failing_) spdlog::info("shared state: redis {} answers again", where_);
      failing_ = false;
      backoff_ = kFirstBackoff;
      idle_.push_back(std::move(client));
      return v;
    } catch (const Error& e) {
      std::lock_guard lock(mutex_);
      if (!failing_)
        spdlog::warn("shared state: redis {}: {}; deciding without it (retrying with back-off)", where_,
                     e.what());
      failing_ = true;
      retry_at_ = Clock::now() + backoff_;
      backoff_ = std::min(backoff_ * 2, kMaxBackoff);
      throw;
    }
  }

  static constexpr std::chrono::milliseconds kFirstBackoff{100};
  static constexpr std::chrono::milliseconds kMaxBackoff{5000};
  RedisEndpoint endpoint_;
  std::string prefix_;
  std::chrono::milliseconds timeout_;
  int max_conversations_;
  long long conversation_ttl_ms_;
  std::string where_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<RedisClient>> idle_;
  Clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_ = kFirstBackoff;
  bool failing_ = false;
};

} // namespace

std::shared_ptr<SharedStore> make_redis_shared_store(const SharedStateConfig& config) {
  return std::make_shared<RedisSharedStore>(config);
}

} // namespace tinyroute
