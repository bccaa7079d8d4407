// serve's shared state (tinyroute/redis-shared-store.h) against a real redis-server: decisions expire
// and stay within their bound, conversation windows are the in-process store's, the conversation
// count and idle time are bounded, and a Redis that is down or frozen costs the caller a bounded wait
// and a counted fallback, never an error.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <thread>
#include <tuple>

#include "redis-fixture.h"
#include "tinyroute/decision-cache.h"
#include "tinyroute/error.h"
#include "tinyroute/redis-shared-store.h"

namespace tinyroute::test {
namespace {

using Ms = std::chrono::milliseconds;

SharedStateConfig shared_config(const std::string& url, int conversations = 100, int ttl_s = 3600) {
  SharedStateConfig c;
  c.enabled = true;
  c.redis = url;
  c.prefix = "test:shared";
  c.timeout_ms = 200;
  c.conversations = conversations;
  c.conversation_ttl_s = ttl_s;
  return c;
}

const std::string kScope = "0123456789abcdef0123456789abcdef";

long long count_keys(RedisClient& c, const std::string& pattern) {
  return static_cast<long long>(c.command({"KEYS", pattern}).elements.size());
}

AnalyzeResult sample_decision() {
  AnalyzeResult r;
  r.classification.category = "coding";
  r.classification.top_label = "coding";
  r.classification.confidence = 0.8123456789012345;
  r.classification.distribution = {{"chat", 0.1876543210987655}, {"coding", 0.8123456789012345}};
  r.classification.source = "model";
  r.classification.strategy = Strategy::choice;
  AgentRoute a;
  a.agent = "billing";
  a.top_agent = "billing";
  a.confidence = 0.5;
  a.distribution = {{"billing", 0.5}, {"triage", 0.5}};
  a.source = "model";
  r.agent = a;
  r.fields["language"] = FieldDecision{"en", 0.9, {{"en", 0.9}, {"ru", 0.1}}};
  r.timing.total_ms = 12.5;
  r.query_tokens = 7;
  r.tokens_decoded = 11;
  r.source = "model";
  return r;
}

// The bus config of the bus tests without its bus section.
std::string without_bus(const std::string& yaml) {
  return yaml.substr(0, yaml.find("bus:\n"));
}

TEST(SharedStateConfig, ReadsItsKeysAndSharesTheBusConnectionByDefault) {
  const std::string base = bus_config_yaml("redis://10.0.0.7:6390/2", "model");
  EXPECT_FALSE(parse_config(base, "c.yaml").shared_state.enabled);
  const Config inherited = parse_config(base + "shared_state:\n  timeout_ms: 20\n", "c.yaml");
  ASSERT_TRUE(inherited.shared_state.enabled);
  EXPECT_EQ(inherited.shared_state.redis, "redis://10.0.0.7:6390/2");
  EXPECT_EQ(inherited.shared_state.timeout_ms, 20);
  EXPECT_EQ(inherited.shared_state.prefix, "tinyroute:shared");
  const Config own =
      parse_config(without_bus(base) + "shared_state:\n  redis: unix:///run/r.sock?db=1\n  prefix: team:a\n"
                                       "  conversations: 50\n  conversation_ttl: 600\n"
                                       "  password_env: SHARED_PASSWORD\n",
                   "c.yaml");
  EXPECT_EQ(own.shared_state.redis, "unix:///run/r.sock?db=1");
  EXPECT_EQ(own.shared_state.prefix, "team:a");
  EXPECT_EQ(own.shared_state.conversations, 50);
  EXPECT_EQ(own.shared_state.conversation_ttl_s, 600);
  EXPECT_EQ(own.shared_state.password_env, "SHARED_PASSWORD");
}

TEST(SharedStateConfig, MistakesNameFileLineAndKey) {
  const std::string base = without_bus(bus_config_yaml("redis://127.0.0.1", "model"));
  const auto line_of = [&](int in_section) {
    return std::to_string(std::count(base.begin(), base.end(), '\n') + in_section);
  };
  // The section, the line within it (1: "shared_state:"; the section itself is reported at its first
  // key, as the bus section is) and what the error names there.
  const std::vector<std::tuple<std::string, int, std::string>> table = {
      {"shared_state:\n  redis: http://127.0.0.1:6379\n", 2, "shared_state.redis: \"http"},
      {"shared_state:\n  redis: redis://u:p@127.0.0.1\n", 2, "shared_state.redis: must not hold"},
      {"shared_state:\n  timeout_ms: 50\n", 2, "shared_state.redis: is missing"},
      {"shared_state:\n  redis: redis://127.0.0.1\n  timeout_ms: 0\n", 3, "shared_state.timeout_ms"},
      {"shared_state:\n  redis: redis://127.0.0.1\n  conversations: -1\n", 3, "shared_state.conversations"},
      {"shared_state:\n  redis: redis://127.0.0.1\n  prefix: \"a b\"\n", 3, "shared_state.prefix"},
      {"shared_state:\n  redis: redis://127.0.0.1\n  password_env: \"not a name\"\n", 3,
       "shared_state.password_env"},
      {"shared_state:\n  redis: redis://127.0.0.1\n  ttl: 5\n", 3, "shared_state.ttl: unknown key"},
  };
  for (const auto& [extra, line, expected] : table) {
    SCOPED_TRACE(extra);
    try {
      parse_config(base + extra, "c.yaml");
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::config_invalid);
      const std::string what = e.what();
      EXPECT_NE(what.find("c.yaml:" + line_of(line) + ": " + expected), std::string::npos) << what;
    }
  }
}

TEST(SharedStore, ADecisionRoundTripsThroughItsText) {
  const AnalyzeResult r = sample_decision();
  const AnalyzeResult back = decode_decision(encode_decision(r));
  EXPECT_EQ(back.classification.category, "coding");
  EXPECT_EQ(back.classification.confidence, r.classification.confidence); // bit for bit
  EXPECT_EQ(back.classification.distribution, r.classification.distribution);
  ASSERT_TRUE(back.agent.has_value());
  EXPECT_EQ(back.agent->agent, "billing");
  EXPECT_EQ(back.agent->distribution, r.agent->distribution);
  EXPECT_EQ(back.fields.at("language").value, "en");
  EXPECT_EQ(back.fields.at("language").distribution, r.fields.at("language").distribution);
  EXPECT_EQ(back.timing.total_ms, 12.5);
  EXPECT_EQ(back.tokens_decoded, 11);
  EXPECT_THROW(decode_decision("{\"v\":1}"), Error);
  EXPECT_THROW(decode_decision("not json"), Error);
}

TEST(SharedStore, DecisionsExpireAfterTheirTtl) {
  RedisServer redis;
  auto c = redis.client();
  auto store = make_redis_shared_store(shared_config(redis.url()));
  store->put_decision(kScope, "k1", "v1", 100, 0.4);
  ASSERT_EQ(store->find_decision(kScope, "k1"), std::optional<std::string>("v1"));
  EXPECT_EQ(store->find_decision("fedcba9876543210", "k1"), std::nullopt) << "another config's scope";
  // Keys start with the prefix and the config hash's first 16 hex digits.
  EXPECT_EQ(count_keys(*c, "test:shared:{0123456789abcdef}:d:*"), 1);
  std::this_thread::sleep_for(Ms(600));
  EXPECT_EQ(store->find_decision(kScope, "k1"), std::nullopt);
  EXPECT_EQ(count_keys(*c, "test:shared:*"), 0) << "the entry and its index both expire";
}

TEST(SharedStore, TheDecisionBoundHoldsAndTheOldestGoFirst) {
  RedisServer redis;
  auto c = redis.client();
  auto store = make_redis_shared_store(shared_config(redis.url()));
  std::uint64_t evicted = 0;
  SharedDecisionPut last;
  for (int i = 0; i < 10; ++i) {
    last = store->put_decision(kScope, "k" + std::to_string(i), "v" + std::to_string(i), 4, 300);
    evicted += last.evicted;
    std::this_thread::sleep_for(Ms(2)); // distinct store times
  }
  EXPECT_EQ(last.entries, 4u);
  EXPECT_EQ(evicted, 6u);
  EXPECT_EQ(count_keys(*c, "test:shared:{0123456789abcdef}:d:*"), 4);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(store->find_decision(kScope, "k" + std::to_string(i)), std::nullopt);
  for (int i = 6; i < 10; ++i) EXPECT_TRUE(store->find_decision(kScope, "k" + std::to_string(i)));
  const long long ttl = c->command({"PTTL", "test:shared:{0123456789abcdef}:d"}).integer;
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 300000);
}

// As in the in-process cache, a hit counts as a use: the bound evicts the least recently used.
TEST(SharedStore, TheDecisionBoundEvictsTheLeastRecentlyUsed) {
  RedisServer redis;
  auto store = make_redis_shared_store(shared_config(redis.url()));
  store->put_decision(kScope, "k0", "v0", 2, 300);
  std::this_thread::sleep_for(Ms(3)); // distinct millisecond scores
  store->put_decision(kScope, "k1", "v1", 2, 300);
  std::this_thread::sleep_for(Ms(3));
  ASSERT_EQ(store->find_decision(kScope, "k0"), std::optional<std::string>("v0")); // k0 used after k1
  std::this_thread::sleep_for(Ms(3));
  EXPECT_EQ(store->put_decision(kScope, "k2", "v2", 2, 300).evicted, 1u);
  EXPECT_EQ(store->find_decision(kScope, "k1"), std::nullopt);
  EXPECT_EQ(store->find_decision(kScope, "k0"), std::optional<std::string>("v0"));
  EXPECT_EQ(store->find_decision(kScope, "k2"), std::optional<std::string>("v2"));
}

TEST(SharedStore, ConversationWindowsAreTheInProcessStoresWhateverProcessAppends) {
  RedisServer redis;
  // Two stores on one Redis stand for two processes; the in-process store sees every turn.
  auto a = make_redis_shared_store(shared_config(redis.url()));
  auto b = make_redis_shared_store(shared_config(redis.url()));
  ConversationStore local(ConversationOptions{100, 40});
  for (int i = 0; i < 40; ++i) {
    ConversationTurn turn{"turn " + std::to_string(i), 3 + i % 5, i % 7 == 3 ? "" : "m" + std::to_string(i)};
    SharedStore& store = i % 2 == 0 ? *a : *b;
    const SharedAppend got = store.append_turn(kScope, "conv", turn, 40);
    const ConversationWindow want = local.append("conv", turn);
    ASSERT_EQ(got.window.turns.size(), want.turns.size()) << "turn " << i;
    for (std::size_t k = 0; k < want.turns.size(); ++k) {
      EXPECT_EQ(got.window.turns[k].text, want.turns[k].text);
      EXPECT_EQ(got.window.turns[k].tokens, want.turns[k].tokens);
      EXPECT_EQ(got.window.turns[k].id, want.turns[k].id);
    }
    EXPECT_EQ(got.window.had_history, want.had_history) << "turn " << i;
    EXPECT_EQ(got.window.moved, want.moved) << "turn " << i;
    EXPECT_FALSE(got.window.replayed);
  }
  // A redelivery (a turn id seen) is not appended: the window it first saw, on either process.
  for (const std::string id : {"m37", "m20"}) {
    const ConversationTurn again{"again", 3, id};
    const SharedAppend got = b->append_turn(kScope, "conv", again, 40);
    const ConversationWindow want = local.append("conv", again);
    EXPECT_TRUE(got.window.replayed);
    ASSERT_EQ(got.window.turns.size(), want.turns.size()) << id;
    EXPECT_EQ(got.window.turns.back().text, want.turns.back().text) << id;
  }
}

TEST(SharedStore, TheConversationCountAndIdleTimeAreBounded) {
  RedisServer redis;
  auto c = redis.client();
  auto store = make_redis_shared_store(shared_config(redis.url(), 3, 1));
  std::uint64_t evicted = 0;
  for (int i = 0; i < 5; ++i) {
    evicted += store->append_turn(kScope, "conv-" + std::to_string(i), {"hello", 2, ""}, 100).evicted;
    std::this_thread::sleep_for(Ms(2));
  }
  EXPECT_EQ(evicted, 2u);
  EXPECT_EQ(count_keys(*c, "test:shared:{0123456789abcdef}:c100:*"), 3);
  // The forgotten conversation starts again; a kept one continues.
  EXPECT_FALSE(store->append_turn(kScope, "conv-0", {"again", 2, ""}, 100).window.had_history);
  EXPECT_TRUE(store->append_turn(kScope, "conv-4", {"again", 2, ""}, 100).window.had_history);
  std::this_thread::sleep_for(Ms(1300)); // conversation_ttl 1 s
  EXPECT_EQ(count_keys(*c, "test:shared:*"), 0);
  EXPECT_FALSE(store->append_turn(kScope, "conv-4", {"later", 2, ""}, 100).window.had_history);
}

TEST(SharedStore, ARedisThatIsDownOrFrozenIsACountedFallbackWithinTheTimeout) {
  RedisServer redis;
  auto shared = make_redis_shared_store(shared_config(redis.url()));
  DecisionCache cache(DecisionCacheOptions{16, 300}, shared);
  ConversationStore conversations(ConversationOptions{100, 1000}, shared, kScope);
  cache.put("k", sample_decision(), kScope);
  ASSERT_NE(cache.find("k", kScope), nullptr);
  conversations.append("conv", {"first", 2, ""});

  ::kill(redis.pid(), SIGSTOP); // frozen: connections open, nothing answers
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(cache.find("k", kScope), nullptr); // a miss: the model decides
  EXPECT_LT(std::chrono::steady_clock::now() - t0, Ms(1000)) << "timeout_ms 200";
  // During the back-off the store is not asked: the local copy of the window answers at once.
  t0 = std::chrono::steady_clock::now();
  const ConversationWindow w = conversations.append("conv", {"second", 2, ""});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, Ms(1000));
  ASSERT_EQ(w.turns.size(), 2u);
  EXPECT_EQ(w.turns[0].text, "first");
  ::kill(redis.pid(), SIGCONT);

  redis.kill(); // down: connections refused
  std::this_thread::sleep_for(Ms(300));
  cache.put("k2", sample_decision(), kScope);
  EXPECT_EQ(cache.find("k2", kScope), nullptr);
  EXPECT_GE(cache.stats().shared_fallbacks, 2u);
  EXPECT_GE(conversations.stats().shared_fallbacks, 1u);
  EXPECT_NE(cache.metrics_text().find("tinyroute_decision_cache_shared_fallbacks_total"), std::string::npos);
  EXPECT_NE(conversations.metrics_text().find("tinyroute_conversation_shared_fallbacks_total"),
            std::string::npos);

  redis.start(); // back (the AOF brings the entries back): answered again after the back-off
  ASSERT_TRUE(eventually([&] { return cache.find("k", kScope) != nullptr; }, Ms(10000)));
}

} // namespace
} // namespace tinyroute::test
