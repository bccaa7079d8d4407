// The proof that batching and the prefix cache are correct: every fast-path result equals its
// slow twin (a fresh context, the whole prompt decoded from scratch) within 1e-3 per token.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "exactness.h"
#include "test-support.h"
#include "tinyroute/engine.h"

namespace tinyroute {
namespace {

using test::expect_same_scores;
constexpr double kFlashTol = 2e-2; // flash attention's f16 accumulation: 1.3e-2 seen with a 560-token prefix

const std::vector<std::string>& queries() {
  static const std::vector<std::string> q = {
      " What's the weather in Paris tomorrow?",
      " Напиши функцию на Python, которая сортирует список.",
      " transfer $200 from checking to savings",
      " Почему сервер отвечает 502 после деплоя? Логи ниже: connection refused upstream",
      " hi",
      " Summarise the attached quarterly report and list the three biggest risks for the board, with owners "
      "and "
      "deadlines, in a table.",
  };
  return q;
}

std::vector<std::vector<Token>> labels(const Engine& engine) {
  std::vector<std::vector<Token>> out;
  for (const char* l : {" weather", " coding", " banking and finance", " devops incident", " small talk",
                        " summarization of documents", " перевод"}) {
    out.push_back(engine.tokenize(l, false));
  }
  return out;
}

EngineParams block_params(int hidden_layer) {
  EngineParams p = test::exact_params(test::tiny_model());
  p.hidden_layer = hidden_layer;
  return p;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 1e9;
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
  return d;
}

// Every block and the final layer: what the scheduler pools (ubatches of 128, a middle block's graph
// stopped after it) equals one batch in a fresh context with the whole graph computed. The long text
// spans three ubatches; the empty one is the BOS alone.
TEST(HiddenStates, EveryLayerEqualsItsBruteForceTwin) {
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += "the scheduler reads block outputs " + std::to_string(i) + ". ";
  std::vector<std::string> texts;
  for (const auto& q : queries()) texts.push_back(q);
  texts.push_back("");
  texts.push_back(long_text);
  const int n_layer = Engine(block_params(0)).info().n_layer;
  ASSERT_GE(n_layer, 2);
  for (int layer = 0; layer < n_layer; ++layer) {
    Engine engine(block_params(layer));
    ASSERT_GT(engine.tokenize(long_text, false).size(), 256u);
    for (const auto& t : texts) {
      const auto tokens = engine.tokenize(t, false);
      const HiddenState fast = engine.embed_tokens(tokens).get();
      const HiddenState twin = engine.embed_reference(tokens);
      EXPECT_LE(max_abs_diff(fast.embedding, twin.embedding), 1e-4) << "layer " << layer << ": " << t;
      EXPECT_EQ(fast.n_decoded, twin.n_decoded);
      double norm = 0;
      for (float v : fast.embedding) norm += static_cast<double>(v) * v;
      EXPECT_NEAR(norm, 1.0, 1e-5) << "layer " << layer << ": " << t;
    }
  }
}

// A middle block leaves the cells above it unwritten for the embed's own sequence. Requests after it
// on the same engine must not see that: they stay equal to their brute-force twin.
TEST(HiddenStates, ScoringAfterAMiddleBlockEmbedStaysExact) {
  Engine engine(block_params(1));
  for (const auto& q : queries()) engine.embed_tokens(engine.tokenize(q, false)).get();
  for (const auto& q : queries()) {
    ScoreRequest r;
    r.query = engine.tokenize(q, true);
    r.continuations = labels(engine);
    expect_same_scores(engine.score(r).get(), engine.score_reference(r), q);
  }
}

TEST(Exactness, BatchedPrefixCachedScoringEqualsBruteForce) {
  Engine engine(test::exact_params(test::tiny_model()));
  engine.add_prefix("classify", "<|system|>\nClassify the user's request into one category.</s>\n<|user|>\n")
      .get();
  const auto conts = labels(engine);
  // Submit everything at once so requests share decodes.
  std::vector<ScoreRequest> reqs;
  std::vector<std::future<ScoreResult>> futs;
  for (const auto& q : queries()) {
    ScoreRequest r;
    r.prefix = "classify";
    r.query = engine.tokenize(q, false);
    r.continuations = conts;
    reqs.push_back(r);
    futs.push_back(engine.score(r));
  }
  for (size_t i = 0; i < futs.size(); ++i) {
    expect_same_scores(futs[i].get(), engine.score_reference(reqs[i]), queries()[i]);
  }
  EXPECT_GT(engine.stats().max_batch_requests, 1u) << "requests were never batched together";
}

TEST(Exactness, EmptyQueryScoresFromTheEndOfThePrefix) {
  Engine engine(test::exact_params(test::tiny_model()));
  engine.add_prefix("p", "The answer is").get();
  ScoreRequest r;
  r.prefix = "p";
  r.continuations = {engine.tokenize(" yes", false), engine.tokenize(" no, certainly not", false)};
  expect_same_scores(engine.score(r).get(), engine.score_reference(r), "empty query");
}

TEST(Exactness, NoPrefixScoringEqualsBruteForce) {
  Engine engine(test::exact_params(test::tiny_model()));
  ScoreRequest r;
  r.query = engine.tokenize("Route: refund my order", true);
  r.continuations = labels(engine);
  expect_same_scores(engine.score(r).get(), engine.score_reference(r), "no prefix");
}

TEST(Exactness, ManyMultiTokenContinuationsProcessedInWavesStayExact) {
  Engine engine(test::exact_params(test::tiny_model()));
  engine.add_prefix("p", "Pick a label:").get();
  ScoreRequest r;
  r.prefix = "p";
  r.query = engine.tokenize(" deploy the new build to staging", false);
  for (int i = 0; i < 40; ++i)
    r.continuations.push_back(engine.tokenize(" label number " + std::to_string(i), false));
  expect_same_scores(engine.score(r).get(), engine.score_reference(r), "40 continuations");
}

TEST(Exactness, QueriesLongerThanOneBatchStayExact) {
  Engine engine(test::exact_params(test::tiny_model(), /*n_batch=*/32));
  engine.add_prefix("p", "Instructions: read the whole message, then classify it. Message:").get();
  std::string long_text;
  for (int i = 0; i < 12; ++i) long_text += " The payment service times out when the queue is full, again.";
  ScoreRequest r;
  r.prefix = "p";
  r.query = engine.tokenize(long_text, false);
  ASSERT_GT(r.query.size(), 64u);
  r.continuations = labels(engine);
  expect_same_scores(engine.score(r).get(), engine.score_reference(r), "long query");
}

// llama.cpp splits a decode into ubatches; a ubatch much smaller than the batch (the default is 128 of
// 512, to keep the attention scratch small) must not change a single score, with several requests at once.
TEST(Exactness, SmallUbatchSplittingADecodeStaysExact) {
  EngineParams p = test::exact_params(test::tiny_model());
  p.n_ubatch = 8;
  Engine engine(p);
  engine.add_prefix("p", "Instructions: read the whole message, then classify it. Message:").get();
  std::vector<ScoreRequest> requests;
  for (const char* text :
       {" deploy the new build to staging", " the payment service times out when the queue is full",
        " what is the weather tomorrow in Berlin?"}) {
    ScoreRequest r;
    r.prefix = "p";
    r.query = engine.tokenize(text, false);
    r.continuations = labels(engine);
    requests.push_back(std::move(r));
  }
  std::vector<std::future<ScoreResult>> pending;
  for (const auto& r : requests) pending.push_back(engine.score(r)); // submitted together: one decode
  for (size_t i = 0; i < requests.size(); ++i)
    expect_same_scores(pending[i].get(), engine.score_reference(requests[i]), "request " + std::to_string(i));
}

// A batch larger than the context (a small `context` in a config) is capped, not a llama.cpp abort:
// what fits is scored exactly, what does not is a clean context_overflow.
TEST(Exactness, BatchLargerThanTheContextIsCappedNotAnAbort) {
  EngineParams p = test::exact_params(test::tiny_model());
  p.n_ctx = 128;
  p.n_batch = 512;
  Engine engine(p);
  ScoreRequest fits;
  fits.query = engine.tokenize(" deploy the new build to staging", true);
  fits.continuations = labels(engine);
  expect_same_scores(engine.score(fits).get(), engine.score_reference(fits), "short query");
  std::string long_text;
  for (int i = 0; i < 120; ++i) long_text += " the payment service times out again";
  ScoreRequest too_long;
  too_long.query = engine.tokenize(long_text, true);
  too_long.continuations = labels(engine);
  ASSERT_GT(too_long.query.size(), 512u); // past the context even after llama.cpp pads it
  try {
    engine.score(too_long).get();
    FAIL() << "a query longer than the context must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::context_overflow) << e.what();
  }
}

// Without llama.cpp's weight repacking (the memory-saving setting) the fast paths stay exact too.
TEST(Exactness, WithoutWeightRepackingScoringEqualsBruteForce) {
  EngineParams p = test::exact_params(test::tiny_model());
  p.repack = false;
  Engine engine(p);
  engine.add_prefix("p", "Instructions: read the whole message, then classify it. Message:").get();
  ScoreRequest r;
  r.prefix = "p";
  r.query = engine.tokenize(" deploy the new build to staging", false);
  r.continuations = labels(engine);
  expect_same_scores(engine.score(r).get(), engine.score_reference(r), "no repack");
}

// Reading the file instead of mapping it (the default when repacking) loads the same weights: the
// scores equal the brute-force reference and the mapped engine's, bit for bit.
TEST(Exactness, ReadInsteadOfMappedScoresEqualTheMappedEngine) {
  ScoreRequest r;
  r.prefix = "p";
  ScoreResult by_mode[2];
  for (const bool mapped : {true, false}) {
    EngineParams p = test::exact_params(test::tiny_model());
    p.use_mmap = mapped;
    Engine engine(p);
    engine.add_prefix("p", "Instructions: read the whole message, then classify it. Message:").get();
    r.query = engine.tokenize(" deploy the new build to staging", false);
    r.continuations = labels(engine);
    by_mode[mapped ? 0 : 1] = engine.score(r).get();
    if (!mapped) expect_same_scores(by_mode[1], engine.score_reference(r), "read, not mapped");
  }
  const auto& a = by_mode[0].continuations;
  const auto& b = by_mode[1].continuations;
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].total, b[i].total) << "label " << i;
    EXPECT_EQ(a[i].token_logprobs, b[i].token_logprobs) << "label " << i;
  }
}

// Flash attention (internal_model.flash_attn) trades exactness for speed: llama.cpp's CPU kernel
// accumulates V in f16 for short query batches (f32 for 64 rows and more), so scores move from the
// plain path, more with a long prefix. It is held to a looser bound, and it stays deterministic. Both
// a short prefix and one as long as a real instruction prefix (hundreds of tokens) are checked.
TEST(Exactness, FlashAttentionStaysCloseToTheReferenceAndDeterministic) {
  EngineParams p = test::exact_params(test::tiny_model());
  p.flash_attn = true;
  Engine engine(p);
  std::string long_head = "Instructions: read the whole message, then classify it.";
  for (int i = 0; i < 40; ++i)
    long_head += " Example " + std::to_string(i) + ": the weather in Paris is a weather question.";
  engine.add_prefix("short", "Instructions: read the whole message, then classify it. Message:").get();
  engine.add_prefix("long", long_head + " Message:").get();
  ASSERT_GT(engine.tokenize(long_head, false).size(), 512u); // past the kernel's split-KV threshold
  // Another resident prefix: its cells are in the shared cache, masked out for this request.
  engine.add_prefix("other", "Rate how urgent the request is, from low to critical. Request:").get();
  for (const char* prefix : {"short", "long"}) {
    double worst = 0;
    for (const auto& q : queries()) {
      ScoreRequest r;
      r.prefix = prefix;
      r.query = engine.tokenize(q, false);
      r.continuations = labels(engine);
      const ScoreResult fast = engine.score(r).get(), again = engine.score(r).get();
      const ScoreResult slow = engine.score_reference(r);
      for (size_t j = 0; j < fast.continuations.size(); ++j)
        for (size_t k = 0; k < fast.continuations[j].token_logprobs.size(); ++k) {
          EXPECT_EQ(fast.continuations[j].token_logprobs[k], again.continuations[j].token_logprobs[k]) << q;
          worst = std::max(worst, std::abs(static_cast<double>(fast.continuations[j].token_logprobs[k]) -
                                           slow.continuations[j].token_logprobs[k]));
        }
    }
    EXPECT_LT(worst, kFlashTol) << prefix << " prefix: flash attention moved a log-probability by " << worst;
    RecordProperty(std::string("worst_logprob_difference_") + prefix, std::to_string(worst));
  }
}

TEST(Exactness, RejectsAZeroUbatch) {
  EngineParams p = test::exact_params(test::tiny_model());
  p.n_ubatch = 0;
  EXPECT_THROW(Engine{p}, Error);
}

TEST(Exactness, PrefixCacheUnderEightThreadsMatchesSingleThreadedResults) {
  Engine engine(test::exact_params(test::tiny_model()));
  engine.add_prefix("classify", "Classify the request. Categories: weather, coding, banking, devops, chat.")
      .get();
  const auto conts = labels(engine);
  constexpr int kRequests = 500;
  std::vector<ScoreRequest> reqs(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    reqs[i].prefix = "classify";
    reqs[i].query = engine.tokenize(
        queries()[static_cast<size_t>(i) % queries().size()] + " #" + std::to_string(i), false);
    reqs[i].continuations = conts;
  }
  std::vector<ScoreResult> single(kRequests);
  for (int i = 0; i < kRequests; ++i) single[i] = engine.score(reqs[i]).get();

  std::vector<ScoreResult> multi(kRequests);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::pair<int, std::future<ScoreResult>>> mine;
      for (int i = t; i < kRequests; i += 8) mine.emplace_back(i, engine.score(reqs[i]));
      for (auto& [i, f] : mine) multi[i] = f.get();
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < kRequests; ++i) expect_same_scores(multi[i], single[i], "request " + std::to_string(i));
  EXPECT_GT(engine.stats().max_batch_requests, 1u);
}

void expect_batched_generation_equals_reference(Engine& engine, const std::string& grammar, int max_tokens) {
  std::vector<std::vector<Token>> prompts;
  for (const auto& q : queries()) prompts.push_back(engine.tokenize(q, false));
  test::expect_batched_generation_equals_reference(engine, "fmt", prompts, grammar, max_tokens);
}

TEST(Exactness, BatchedGenerationEqualsSequentialReference) {
  Engine engine(test::exact_params(test::tiny_model()));
  engine.add_prefix("fmt", "Write the message as JSON.\n").get();
  expect_batched_generation_equals_reference(engine, R"(root ::= "{\"summary\": \"" [a-z ]{1,20} "\"}")", 40);
}

// The scheduler checks the grammar on the argmax first and runs it over the whole vocabulary only when
// the argmax is rejected. A permissive grammar takes both ways; either gives the tokens of the
// reference, which runs the grammar over every candidate for every token.
TEST(Exactness, GrammarCheckedOnTheArgmaxFirstEqualsTheFullGrammarPass) {
  Engine engine(test::exact_params(test::tiny_model()));
  engine.add_prefix("fmt", "Answer on one line.\n").get();
  expect_batched_generation_equals_reference(engine, R"(root ::= [^\n]{1,30} "\n")", 32);
  const EngineStats st = engine.stats();
  EXPECT_GT(st.grammar_fast_tokens, 0u) << "no argmax was allowed by the grammar";
  EXPECT_GT(st.grammar_full_passes, 0u) << "no argmax was rejected by the grammar";
}

} // namespace
} // namespace tinyroute
