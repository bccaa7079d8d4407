// Request priority in the engine's scheduler: with the queue saturated by low-priority work, a
// high-priority classification is admitted as soon as the batch in flight ends; it never waits behind
// the low-priority requests queued before it. Asserted on completion order, never on time.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "test-support.h"
#include "tinyroute/classify.h"
#include "tinyroute/engine.h"

namespace tinyroute {
namespace {

TEST(EnginePriority, HighPriorityClassificationWaitsForAtMostOneBatch) {
  EngineParams p = engine_default_params();
  p.model_path = test::tiny_model();
  p.n_ctx = 4096;
  p.n_threads = 1;
  p.n_parallel = 1;          // one request per batch: "the batch in flight" is exactly one request
  p.max_wait_batches = 1000; // no ageing within this test: priority alone decides
  Engine engine(p);
  LabelScorerOptions options;
  options.prefix_name = "priority_test";
  options.task = "Decide whether the request is about programming or is casual conversation.";
  LabelScorer scorer(engine, {{"code", "Programming", {}}, {"chat", "Casual conversation", {}}}, options);

  // Saturate the queue: eight long low-priority generations.
  constexpr int kLow = 8;
  std::vector<std::future<GenerateResult>> low;
  for (int i = 0; i < kLow; ++i) {
    GenerateRequest g;
    g.prompt = engine.tokenize("Once upon a time, story number " + std::to_string(i), true);
    g.max_tokens = 200;
    g.priority = Priority::low;
    low.push_back(engine.generate(std::move(g)));
  }
  // Wait (bounded) until the first one is decoding and the rest are queued.
  for (int i = 0; i < 2000 && engine.stats().active == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_GE(engine.stats().queued, kLow - 2) << "the queue is saturated with low-priority work";

  LabelDistribution high = scorer.score("Write a C++ function that sorts a vector", Priority::high).get();
  EXPECT_EQ(high.labels.size(), 2u);
  int finished = 0;
  for (auto& f : low) finished += f.wait_for(std::chrono::seconds(0)) == std::future_status::ready ? 1 : 0;
  EXPECT_LE(finished, 1) << "the high-priority classification waited for more than the batch in flight";
  for (auto& f : low) f.get();
}

TEST(EnginePriority, EqualPriorityIsServedInArrivalOrder) {
  EngineParams p = engine_default_params();
  p.model_path = test::tiny_model();
  p.n_ctx = 4096;
  p.n_threads = 1;
  p.n_parallel = 1;
  Engine engine(p);
  std::vector<std::future<GenerateResult>> queued;
  for (int i = 0; i < 4; ++i) {
    GenerateRequest g;
    g.prompt = engine.tokenize("Request " + std::to_string(i), true);
    g.max_tokens = 100;
    g.priority = Priority::normal;
    queued.push_back(engine.generate(std::move(g)));
  }
  // The first one done means no later one is: one at a time, first come first served.
  queued[0].wait();
  int finished = 0;
  for (auto& f : queued) finished += f.wait_for(std::chrono::seconds(0)) == std::future_status::ready ? 1 : 0;
  EXPECT_EQ(finished, 1);
  for (auto& f : queued) f.get();
}

} // namespace
} // namespace tinyroute
