// Conversations: a message is decided with its conversation's earlier turns, and the engine decodes only
// the new turn by continuing the sequence it kept. The model's weights are random, so these tests assert
// what holds for any weights: every message's decisions equal the whole conversation decoded from
// scratch in a fresh context (the brute-force twin), whether the kept sequence was continued, evicted and
// rebuilt, or the window moved; messages of one conversation sent at once are decided in order.
#include <gtest/gtest.h>

#include <thread>

#include "test-support.h"
#include "tinyroute/analyze.h"
#include "tinyroute/conversations.h"
#include "tinyroute/decision-cache.h"

namespace tinyroute {
namespace {

Config config(int conversation_tokens = 1024) {
  const std::string y = "internal_model:\n  model: " + test::tiny_model() +
                        "\n  threads: 1\n  context: 8192\n  max_query_tokens: 48\n  conversation_tokens: " +
                        std::to_string(conversation_tokens) +
                        "\n"
                        "categories:\n"
                        "  - name: coding\n    description: Writing, fixing or explaining code.\n"
                        "  - name: math\n    description: Calculations and proofs.\n"
                        "  - name: chat\n    description: Small talk and everything else.\n"
                        "models:\n"
                        "  - name: general\n    provider: ollama\n    base_url: http://127.0.0.1:11434\n"
                        "    categories: [coding, math, chat]\n"
                        "default_category: chat\n"
                        "agents:\n"
                        "  - name: billing\n    description: Invoices, refunds and payments.\n"
                        "    endpoint: http://127.0.0.1:9001/inbox\n"
                        "  - name: triage\n    description: Anything else.\n"
                        "    endpoint: http://127.0.0.1:9003/inbox\n    triage: true\n";
  return parse_config(y, "conversation.yaml");
}

EngineParams engine_params(int conversations = 16) {
  EngineParams p = engine_default_params();
  p.model_path = test::tiny_model();
  p.n_ctx = 8192;
  p.n_threads = 1;
  p.n_conversations = conversations;
  return p;
}

void expect_same(const std::vector<std::pair<std::string, double>>& fast,
                 const std::vector<std::pair<std::string, double>>& slow, const std::string& what) {
  ASSERT_EQ(fast.size(), slow.size()) << what;
  for (size_t i = 0; i < fast.size(); ++i) {
    EXPECT_EQ(fast[i].first, slow[i].first) << what;
    EXPECT_NEAR(fast[i].second, slow[i].second, 1e-3) << what << " " << fast[i].first;
  }
}

void expect_same(const AnalyzeResult& fast, const AnalyzeResult& slow, const std::string& what) {
  expect_same(fast.classification.distribution, slow.classification.distribution, what + " category");
  ASSERT_TRUE(fast.agent && slow.agent) << what;
  expect_same(fast.agent->distribution, slow.agent->distribution, what + " agent");
  ASSERT_EQ(fast.fields.size(), slow.fields.size()) << what;
  for (const auto& [name, f] : fast.fields)
    expect_same(f.distribution, slow.fields.at(name).distribution, what + " " + name);
  EXPECT_EQ(fast.query_tokens, slow.query_tokens) << what;
  EXPECT_EQ(fast.conversation_turns, slow.conversation_turns) << what;
}

const std::vector<std::string>& turns_a() {
  static const std::vector<std::string> t = {
      "My deploy pipeline fails on the test step", "It says permission denied on /var/run/docker.sock",
      "ok that fixed it, but now the invoice for the runners doubled", "can you refund the second charge?"};
  return t;
}

const std::vector<std::string>& turns_b() {
  static const std::vector<std::string> t = {"Сколько будет 17 умножить на 23?", "а если ещё разделить на 7?",
                                             "thanks!"};
  return t;
}

std::vector<std::string> first(const std::vector<std::string>& turns, size_t n) {
  return {turns.begin(), turns.begin() + static_cast<std::ptrdiff_t>(n)};
}

TEST(Conversation, EachMessageEqualsTheWholeConversationDecodedFromScratch) {
  Engine engine(engine_params());
  Analyzer analyzer(engine, config());
  const size_t n = std::max(turns_a().size(), turns_b().size());
  std::map<std::string, int> previous; // each conversation's last query length
  for (size_t i = 0; i < n; ++i) {     // interleaved: a1 b1 a2 b2 ...
    for (const auto* turns : {&turns_a(), &turns_b()}) {
      if (i >= turns->size()) continue;
      const std::string id = turns == &turns_a() ? "a" : "b";
      const AnalyzeResult r = analyzer.analyze((*turns)[i], AnalyzeOptions{id}).get();
      const std::string what = id + std::to_string(i + 1);
      expect_same(r, analyzer.analyze_conversation_reference(first(*turns, i + 1)), what);
      EXPECT_EQ(r.conversation, id);
      EXPECT_EQ(r.conversation_turns, static_cast<int>(i + 1)) << what;
      EXPECT_EQ(r.source, "model");
      const int query_before = previous[id];
      previous[id] = r.query_tokens;
      if (i == 0) {
        EXPECT_EQ(r.conversation_source, "new") << what;
        EXPECT_EQ(r.reused_tokens, 0) << what;
      } else {
        // Only the new turn (and the cues) decoded: the earlier turns came from the kept sequence.
        EXPECT_EQ(r.conversation_source, "continued") << what;
        EXPECT_GT(r.reused_tokens, 0) << what;
        const ScoreRequest whole = analyzer.request_for((*turns)[i]);
        size_t cues = 0;
        for (const auto& b : whole.branches) cues += b.cue.size();
        EXPECT_EQ(r.tokens_decoded + r.reused_tokens, r.query_tokens + static_cast<int>(cues)) << what;
        // Everything the previous message's window held is reused (its answer head aside).
        const int head = static_cast<int>(whole.query.size() - engine.tokenize((*turns)[i], false).size());
        EXPECT_GE(r.reused_tokens, query_before - head) << what;
      }
    }
  }
  const ConversationStats s = analyzer.conversations()->stats();
  EXPECT_EQ(s.conversations, 2u);
  EXPECT_EQ(s.messages, turns_a().size() + turns_b().size());
  EXPECT_EQ(s.continued, turns_a().size() + turns_b().size() - 2);
  EXPECT_EQ(s.rebuilt, 0u);
  EXPECT_EQ(engine.stats().conversations, 2);
}

TEST(Conversation, TheFirstMessageIsDecidedLikeAStandaloneRequest) {
  Engine engine(engine_params());
  Analyzer analyzer(engine, config());
  const AnalyzeResult r = analyzer.analyze(turns_a()[0], AnalyzeOptions{"x"}).get();
  const AnalyzeResult alone = analyzer.analyze_reference(turns_a()[0]);
  expect_same(r.classification.distribution, alone.classification.distribution, "first");
  EXPECT_EQ(r.query_tokens, alone.query_tokens);
}

TEST(Conversation, AnEvictedSequenceIsRebuiltFromTheTextWithTheSameResult) {
  Engine engine(engine_params(1)); // one kept sequence: two interleaved conversations evict each other
  Analyzer analyzer(engine, config());
  for (size_t i = 0; i < 3; ++i) {
    for (const auto* turns : {&turns_a(), &turns_b()}) {
      const std::string id = turns == &turns_a() ? "a" : "b";
      const AnalyzeResult r = analyzer.analyze((*turns)[i], AnalyzeOptions{id}).get();
      const std::string what = id + std::to_string(i + 1);
      expect_same(r, analyzer.analyze_conversation_reference(first(*turns, i + 1)), what);
      EXPECT_EQ(r.conversation_source, i == 0 ? "new" : "rebuilt") << what;
      EXPECT_EQ(r.reused_tokens, 0) << what;
    }
  }
  EXPECT_EQ(analyzer.conversations()->stats().rebuilt, 4u);
  EXPECT_EQ(engine.stats().conversations, 1);
  EXPECT_GE(engine.stats().conversation_evictions, 5u);
  // Back to back, the kept one is continued again.
  const AnalyzeResult r = analyzer.analyze(turns_b()[0], AnalyzeOptions{"b"}).get();
  EXPECT_EQ(r.conversation_source, "continued");
}

// A message delivered twice (a bus retry, a client retry) is decided as it was the first time, against
// the brute-force twin of the conversation up to it, and the next message sees it once.
TEST(Conversation, ARedeliveredMessageIsDecidedAsBeforeAndNotAppendedTwice) {
  Engine engine(engine_params());
  Analyzer analyzer(engine, config());
  auto options = [](const std::string& turn) {
    AnalyzeOptions o("r");
    o.turn_id = turn;
    return o;
  };
  analyzer.analyze(turns_a()[0], options("m1")).get();
  const AnalyzeResult second = analyzer.analyze(turns_a()[1], options("m2")).get();
  for (int retry = 0; retry < 3; ++retry) {
    const AnalyzeResult again = analyzer.analyze(turns_a()[1], options("m2")).get();
    EXPECT_EQ(again.conversation_source, "replayed");
    EXPECT_EQ(again.conversation_turns, 2);
    expect_same(again, second, "retry " + std::to_string(retry));
    expect_same(again, analyzer.analyze_conversation_reference(first(turns_a(), 2)), "retry twin");
  }
  const AnalyzeResult third = analyzer.analyze(turns_a()[2], options("m3")).get();
  EXPECT_EQ(third.conversation_turns, 3);
  expect_same(third, analyzer.analyze_conversation_reference(first(turns_a(), 3)), "after the retries");
  EXPECT_EQ(analyzer.conversations()->stats().replayed, 3u);
  EXPECT_EQ(analyzer.conversations()->stats().messages, 3u);
}

TEST(Conversation, NoKeptSequencesStillGivesTheSameResults) {
  Engine engine(engine_params(0));
  Analyzer analyzer(engine, config());
  for (size_t i = 0; i < 2; ++i) {
    const AnalyzeResult r = analyzer.analyze(turns_a()[i], AnalyzeOptions{"a"}).get();
    expect_same(r, analyzer.analyze_conversation_reference(first(turns_a(), i + 1)), "a" + std::to_string(i));
  }
  EXPECT_EQ(engine.stats().conversations, 0);
}

TEST(Conversation, PastTheWindowTheOldestTurnsGoAndTheSequenceIsRebuilt) {
  Engine engine(engine_params());
  Analyzer analyzer(engine, config(96)); // 96 tokens: two or three of these turns
  std::vector<std::string> sent;
  bool moved = false;
  for (int i = 0; i < 8; ++i) {
    sent.push_back("message number " + std::to_string(i) + ": the build of service " + std::to_string(i * 7) +
                   " broke again after the dependency upgrade, logs attached");
    const AnalyzeResult r = analyzer.analyze(sent.back(), AnalyzeOptions{"long"}).get();
    const AnalyzeResult ref = analyzer.analyze_conversation_reference(sent);
    expect_same(r, ref, "turn " + std::to_string(i));
    EXPECT_LE(r.query_tokens, 96 + 16);
    if (r.conversation_turns < i + 1) moved = true;
  }
  EXPECT_TRUE(moved);
  EXPECT_GT(analyzer.conversations()->stats().rebuilt, 0u);
  EXPECT_GT(analyzer.conversations()->stats().continued, 0u);
}

TEST(Conversation, MessagesSentAtOnceAreDecidedInOrder) {
  Engine engine(engine_params());
  Analyzer analyzer(engine, config());
  // All four go to the engine before any is read; it runs them one after another, each continuing
  // the previous one's sequence.
  std::vector<std::future<AnalyzeResult>> pending;
  for (const auto& text : turns_a()) pending.push_back(analyzer.analyze(text, AnalyzeOptions{"burst"}));
  std::vector<std::thread> others; // and other traffic alongside
  std::vector<AnalyzeResult> other_results(3);
  for (size_t i = 0; i < other_results.size(); ++i)
    others.emplace_back([&, i] { other_results[i] = analyzer.analyze(turns_b()[i]).get(); });
  for (size_t i = 0; i < pending.size(); ++i) {
    const AnalyzeResult r = pending[i].get();
    expect_same(r, analyzer.analyze_conversation_reference(first(turns_a(), i + 1)),
                "burst " + std::to_string(i));
    if (i > 0) {
      EXPECT_EQ(r.conversation_source, "continued");
    }
  }
  for (auto& t : others) t.join();
  for (size_t i = 0; i < other_results.size(); ++i) EXPECT_EQ(other_results[i].conversation_source, "") << i;
}

TEST(Conversation, MessagesAreNeverAnsweredFromTheDecisionCache) {
  Engine engine(engine_params());
  auto cache = std::make_shared<DecisionCache>();
  Analyzer analyzer(engine, config(), cache);
  (void)analyzer.analyze("yes", AnalyzeOptions{"c"}).get();
  const AnalyzeResult again = analyzer.analyze("yes", AnalyzeOptions{"c"}).get();
  EXPECT_EQ(again.source, "model");
  EXPECT_EQ(again.conversation_turns, 2);
  EXPECT_EQ(cache->stats().hits, 0u);
}

TEST(Conversation, AnOverlongIdIsRefused) {
  Engine engine(engine_params());
  Analyzer analyzer(engine, config());
  try {
    (void)analyzer.analyze("hi", AnalyzeOptions{std::string(300, 'c')});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
  }
}

TEST(ConversationWindow, DropsTheOldestTurnsToHalfTheWindow) {
  std::vector<ConversationTurn> w;
  EXPECT_FALSE(push_turn(w, {"a", 40}, 100));
  EXPECT_FALSE(push_turn(w, {"b", 40}, 100));
  EXPECT_TRUE(push_turn(w, {"c", 40}, 100)); // 120 > 100: down to <= 50 with c
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].text, "c");
  EXPECT_TRUE(push_turn(w, {"huge", 500}, 100)); // the newest always stays
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].text, "huge");
}

TEST(ConversationStore, ForgetsTheLeastRecentlyUsedConversation) {
  ConversationStore store(ConversationOptions{2, 1000});
  EXPECT_FALSE(store.append("a", {"1", 1}).had_history);
  store.append("b", {"1", 1});
  EXPECT_TRUE(store.append("a", {"2", 1}).had_history);
  store.append("c", {"1", 1}); // b goes
  const ConversationWindow w = store.append("b", {"2", 1});
  EXPECT_EQ(w.turns.size(), 1u);
  EXPECT_FALSE(w.had_history);
  EXPECT_EQ(store.stats().conversations, 2u);
  EXPECT_EQ(store.stats().evicted, 2u);
  EXPECT_NE(store.metrics_text().find("tinyroute_conversation_evicted_total 2"), std::string::npos);
}

std::vector<std::string> texts(const ConversationWindow& w) {
  std::vector<std::string> out;
  for (const auto& t : w.turns) out.push_back(t.text);
  return out;
}

TEST(ConversationStore, ARedeliveredTurnIsNotAppendedAgain) {
  ConversationStore store(ConversationOptions{10, 100});
  store.append("c", {"one", 10, "m1"});
  EXPECT_EQ(texts(store.append("c", {"two", 10, "m2"})), (std::vector<std::string>{"one", "two"}));
  // The last turn again: the same window, nothing appended.
  ConversationWindow again = store.append("c", {"two", 10, "m2"});
  EXPECT_TRUE(again.replayed);
  EXPECT_TRUE(again.had_history);
  EXPECT_EQ(texts(again), (std::vector<std::string>{"one", "two"}));
  store.append("c", {"three", 10, "m3"});
  // An earlier turn again: the window it first saw.
  again = store.append("c", {"one", 10, "m1"});
  EXPECT_TRUE(again.replayed);
  EXPECT_FALSE(again.had_history);
  EXPECT_EQ(texts(again), (std::vector<std::string>{"one"}));
  // Turns without an id are always new.
  store.append("c", {"four", 10});
  EXPECT_EQ(texts(store.append("c", {"four", 10})),
            (std::vector<std::string>{"one", "two", "three", "four", "four"}));
  // The window moves past m1 (110 > 100 tokens): a late redelivery follows the turns now there, unstored.
  store.append("c", {"big", 60, "m5"});
  again = store.append("c", {"one", 10, "m1"});
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(texts(again), (std::vector<std::string>{"big", "one"}));
  EXPECT_EQ(texts(store.append("c", {"six", 10, "m6"})), (std::vector<std::string>{"big", "six"}));
  const ConversationStats s = store.stats();
  EXPECT_EQ(s.messages, 7u);
  EXPECT_EQ(s.replayed, 3u);
  EXPECT_NE(store.metrics_text().find("tinyroute_conversation_replayed_total 3"), std::string::npos);
  // Ids are per conversation: another conversation's m1 is its own first turn.
  EXPECT_FALSE(store.append("d", {"one", 10, "m1"}).replayed);
}

} // namespace
} // namespace tinyroute
