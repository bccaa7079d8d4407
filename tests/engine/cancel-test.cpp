// Per-request cancellation (CancelToken): a queued request and a running generation end with
// Error(cancelled), the requests beside them keep their exact results, and what the cancelled ones
// held (sequences, KV reservations, a conversation's turn) is given back. Asserted on results and
// decoded-token counts, never on time.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "test-support.h"
#include "tinyroute/engine.h"

namespace tinyroute {
namespace {

EngineParams cancel_params(int parallel) {
  EngineParams p = engine_default_params();
  p.model_path = test::tiny_model();
  p.n_ctx = 4096;
  p.n_threads = 1;
  p.n_parallel = parallel;
  p.max_wait_batches = 1000; // arrival order only
  return p;
}

// The code a future fails with; internal when it succeeded.
template <typename T> ErrorCode failure_of(std::future<T>& f) {
  try {
    f.get();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::cancelled) ADD_FAILURE() << e.what();
    return e.code();
  }
  ADD_FAILURE() << "the request completed";
  return ErrorCode::internal;
}

GenerateRequest long_generation(Engine& engine, const std::string& text, int max_tokens) {
  GenerateRequest g;
  g.prompt = engine.tokenize(text, true);
  g.max_tokens = max_tokens;
  return g;
}

ScoreRequest a_score(Engine& engine, const std::string& text) {
  ScoreRequest r;
  r.prefix = "cancel_test";
  r.query = engine.tokenize(" " + text, false);
  r.continuations = {engine.tokenize_after("Answer:", " yes"), engine.tokenize_after("Answer:", " no"),
                     engine.tokenize_after("Answer:", " maybe later")};
  return r;
}

// The counters are updated just after a result is handed over: wait (bounded) for them to settle.
EngineStats settled(const Engine& engine) {
  for (int i = 0; i < 5000; ++i) {
    const EngineStats s = engine.stats();
    if (s.active == 0 && s.queued == 0) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return engine.stats();
}

void expect_same_scores(const ScoreResult& fast, const ScoreResult& slow) {
  ASSERT_EQ(fast.continuations.size(), slow.continuations.size());
  for (size_t i = 0; i < fast.continuations.size(); ++i)
    EXPECT_NEAR(fast.continuations[i].total, slow.continuations[i].total, 1e-3) << i;
}

TEST(EngineCancel, QueuedRequestEndsCancelledOthersStayExact) {
  Engine engine(cancel_params(1)); // one request at a time: the ones behind the first are queued
  engine.add_prefix("cancel_test", "Decide whether the request needs an answer.").get();
  const GenerateRequest first = long_generation(engine, "Once upon a time", 300);
  auto running = engine.generate(first);
  for (int i = 0; i < 5000 && engine.stats().active == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));

  ScoreRequest queued_score = a_score(engine, "Refund my last invoice");
  GenerateRequest queued_gen = long_generation(engine, "A second story", 200);
  CancelToken token; // one token, two requests
  queued_score.cancel = token;
  queued_gen.cancel = token;
  auto cancelled_score = engine.score(queued_score);
  auto cancelled_gen = engine.generate(queued_gen);
  const ScoreRequest other = a_score(engine, "The deploy failed on prod");
  auto behind = engine.score(other);
  token.cancel();

  EXPECT_EQ(failure_of(cancelled_score), ErrorCode::cancelled);
  EXPECT_EQ(failure_of(cancelled_gen), ErrorCode::cancelled);
  const GenerateResult r = running.get();
  const GenerateResult ref = engine.generate_reference(first);
  EXPECT_EQ(r.tokens, ref.tokens);
  expect_same_scores(behind.get(), engine.score_reference(other));
  const EngineStats s = settled(engine);
  EXPECT_EQ(s.queued, 0);
  EXPECT_EQ(s.active, 0);
}

TEST(EngineCancel, RunningGenerationStopsBetweenDecodesAndFreesItsCells) {
  Engine engine(cancel_params(2));
  engine.add_prefix("cancel_test", "Decide whether the request needs an answer.").get();
  // Without cancellation the generation runs to its budget: that is what a cancel cuts short.
  const GenerateRequest req = long_generation(engine, "Tell me everything about the sea", 1500);
  const GenerateResult whole = engine.generate(req).get();
  ASSERT_EQ(whole.tokens.size(), 1500u) << "the test model should not end this generation early";

  const std::uint64_t before = engine.stats().tokens;
  GenerateRequest cut = req;
  cut.cancel = CancelToken();
  auto cancelled = engine.generate(cut);
  const ScoreRequest beside = a_score(engine, "Please restart the staging cluster");
  auto other = engine.score(beside);
  // Bounded wait until the generation is producing tokens, then cancel it.
  for (int i = 0; i < 10000 && engine.stats().tokens < before + 40; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  cut.cancel.cancel();
  EXPECT_EQ(failure_of(cancelled), ErrorCode::cancelled);
  expect_same_scores(other.get(), engine.score_reference(beside));
  // It stopped well before its budget: far fewer tokens decoded than the whole generation took.
  EXPECT_LT(engine.stats().tokens - before, static_cast<std::uint64_t>(whole.n_decoded));

  // Its KV reservation and sequence came back: repeated cancelled generations leave room for a request
  // that needs most of the context, and the generation gives the same tokens as before.
  for (int i = 0; i < 8; ++i) {
    GenerateRequest g = long_generation(engine, "Story " + std::to_string(i), 1000);
    g.cancel.cancel(); // cancelled before it is even submitted
    auto f = engine.generate(g);
    EXPECT_EQ(failure_of(f), ErrorCode::cancelled);
  }
  const GenerateResult again = engine.generate(req).get();
  EXPECT_EQ(again.tokens, whole.tokens);
  EXPECT_EQ(settled(engine).active, 0);
}

TEST(EngineCancel, CancelledConversationTurnIsNotKeptAndTheNextTurnIsExact) {
  Engine engine(cancel_params(1));
  engine.add_prefix("cancel_test", "Decide whether the request needs an answer.").get();
  ScoreRequest first = a_score(engine, "My invoice is wrong.");
  first.conversation = "conv";
  engine.score(first).get();
  // The second turn waits behind a long generation and is cancelled there; the third continues the
  // conversation as if the second had never been sent.
  auto blocker = engine.generate(long_generation(engine, "Once upon a time", 200));
  for (int i = 0; i < 5000 && engine.stats().active == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ScoreRequest second = a_score(engine, "My invoice is wrong. Also the refund.");
  second.conversation = "conv";
  second.cancel.cancel();
  auto cancelled = engine.score(second);
  ScoreRequest third = a_score(engine, "My invoice is wrong. Please fix it.");
  third.conversation = "conv";
  auto next = engine.score(third);
  EXPECT_EQ(failure_of(cancelled), ErrorCode::cancelled);
  blocker.get();
  const ScoreResult r = next.get();
  EXPECT_GT(r.n_reused, 0); // continued the first turn's kept sequence
  ScoreRequest plain = third;
  plain.conversation.clear();
  expect_same_scores(r, engine.score_reference(plain));
}

} // namespace
} // namespace tinyroute
