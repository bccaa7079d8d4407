// Engine basics: load, facts, tokenizer, chat template, determinism, grammar, persistence, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "test-support.h"
#include "tinyroute/engine.h"

namespace tinyroute {
namespace {

EngineParams params_for(const std::string& model) {
  EngineParams p = engine_default_params();
  p.model_path = model;
  p.n_ctx = 2048;
  p.n_threads = 1; // ctest runs suites in parallel on 2 cores; ggml threads spin when oversubscribed
  return p;
}

TEST(Engine, LoadsGeneratedModelAndReportsFacts) {
  Engine engine(params_for(test::tiny_model()));
  const ModelInfo& info = engine.info();
  EXPECT_EQ(info.architecture, "llama");
  EXPECT_EQ(info.n_vocab, 32000);
  EXPECT_EQ(info.n_layer, 2);
  EXPECT_EQ(info.n_embd, 64);
  EXPECT_GT(info.n_params, 32000u * 64u);
  EXPECT_GT(info.file_size, 0u);
  EXPECT_EQ(info.fingerprint.size(), 64u);
  EXPECT_TRUE(info.chat_template_from_file);
  EXPECT_NE(info.chat_template.find("<|user|>"), std::string::npos);
}

TEST(Engine, FingerprintDiffersBetweenSeedsAndIsStable) {
  const std::string a = Engine(params_for(test::tiny_model(1))).info().fingerprint;
  const std::string a2 = Engine(params_for(test::tiny_model(1))).info().fingerprint;
  const std::string b = Engine(params_for(test::tiny_model(2))).info().fingerprint;
  EXPECT_EQ(a, a2);
  EXPECT_NE(a, b);
}

TEST(Tokenizer, RoundTripsEnglishRussianAndMixedText) {
  Engine engine(params_for(test::tiny_model()));
  for (const std::string text :
       {"Route this request to the billing agent, please.",
        "Пожалуйста, направь этот запрос агенту по оплате.",
        "Deploy сервис v2.3 на prod до 18:00 — срочно! 🚀", "", " leading space", "tabs\tand\nnewlines"}) {
    const auto tokens = engine.tokenize(text, false);
    EXPECT_EQ(engine.detokenize(tokens), text) << text;
    const auto with_bos = engine.tokenize(text, true);
    ASSERT_FALSE(with_bos.empty());
    EXPECT_EQ(with_bos.size(), tokens.size() + 1);
  }
}

TEST(Tokenizer, CyrillicUsesRealPiecesNotOnlyBytes) {
  Engine engine(params_for(test::tiny_model()));
  const std::string text = "привет мир";
  const auto tokens = engine.tokenize(text, false);
  // The Llama SPM vocabulary has Cyrillic pieces: far fewer tokens than UTF-8 bytes.
  EXPECT_LT(tokens.size(), text.size() / 2);
}

TEST(ChatTemplate, FormatsTinyLlamaStyle) {
  Engine engine(params_for(test::tiny_model()));
  const std::string out =
      engine.apply_chat_template({{"system", "You classify."}, {"user", "Hello"}}, /*add_assistant=*/true);
  EXPECT_NE(out.find("<|system|>\nYou classify.</s>"), std::string::npos) << out;
  EXPECT_NE(out.find("<|user|>\nHello</s>"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - std::string("<|assistant|>\n").size()), "<|assistant|>\n") << out;
}

TEST(Score, SameInputGivesBitIdenticalScoresAcrossRunsAndEngines) {
  auto run = [] {
    Engine engine(params_for(test::tiny_model()));
    engine.add_prefix("p", "Classify the request.").get();
    ScoreRequest r;
    r.prefix = "p";
    r.query = engine.tokenize(" Book a table for two", false);
    r.continuations = {engine.tokenize(" dining", false), engine.tokenize(" travel plans", false)};
    return engine.score(r).get();
  };
  const ScoreResult a = run();
  const ScoreResult b = run();
  ASSERT_EQ(a.continuations.size(), b.continuations.size());
  for (size_t i = 0; i < a.continuations.size(); ++i) {
    EXPECT_EQ(a.continuations[i].token_logprobs, b.continuations[i].token_logprobs);
    EXPECT_EQ(a.continuations[i].total, b.continuations[i].total);
  }
}

TEST(Score, LogProbabilitiesAreProbabilities) {
  Engine engine(params_for(test::tiny_model()));
  ScoreRequest r;
  r.query = engine.tokenize("Hello there", true);
  // Every single-token continuation: their probabilities must sum to 1.
  for (Token t = 0; t < engine.info().n_vocab; ++t) r.continuations.push_back({t});
  const ScoreResult res = engine.score(r).get();
  double sum = 0;
  for (const auto& c : res.continuations) {
    EXPECT_LE(c.total, 0.0);
    sum += std::exp(c.total);
  }
  EXPECT_NEAR(sum, 1.0, 1e-3);
}

TEST(Prefix, AddingTheSameTextAgainIsFreeAndNewTextReplacesIt) {
  Engine engine(params_for(test::tiny_model()));
  const PrefixInfo first = engine.add_prefix("task", "You are a router.").get();
  EXPECT_GT(first.n_tokens, 3);
  const auto decodes = engine.stats().decodes;
  const PrefixInfo again = engine.add_prefix("task", "You are a router.").get();
  EXPECT_EQ(again.n_tokens, first.n_tokens);
  EXPECT_EQ(engine.stats().decodes, decodes); // nothing decoded
  const PrefixInfo replaced = engine.add_prefix("task", "You are a router of requests to agents.").get();
  EXPECT_GT(replaced.n_tokens, first.n_tokens);
  EXPECT_EQ(engine.prefix_tokens("task").size(), static_cast<size_t>(replaced.n_tokens));
}

TEST(Prefix, PersistedStateIsRestoredAfterRestartWithTheSameScores) {
  test::TempDir dir;
  EngineParams p = params_for(test::tiny_model());
  p.state_dir = dir.path();
  const std::string instructions = "Decide which agent handles the request. Answer with its code.";
  auto score_once = [&](bool expect_from_disk) {
    Engine engine(p);
    const PrefixInfo info = engine.add_prefix("route", instructions).get();
    EXPECT_EQ(info.from_disk, expect_from_disk);
    ScoreRequest r;
    r.prefix = "route";
    r.query = engine.tokenize(" My invoice is wrong", false);
    r.continuations = {engine.tokenize(" billing", false), engine.tokenize(" support desk", false)};
    const auto decodes_before = engine.stats().tokens;
    ScoreResult res = engine.score(r).get();
    // Only the query and continuation tokens were decoded, never the prefix.
    EXPECT_LT(engine.stats().tokens - decodes_before, static_cast<std::uint64_t>(info.n_tokens));
    return res;
  };
  const ScoreResult a = score_once(false);
  const ScoreResult b = score_once(true);
  ASSERT_EQ(a.continuations.size(), b.continuations.size());
  for (size_t i = 0; i < a.continuations.size(); ++i) {
    ASSERT_EQ(a.continuations[i].token_logprobs.size(), b.continuations[i].token_logprobs.size());
    for (size_t k = 0; k < a.continuations[i].token_logprobs.size(); ++k) {
      EXPECT_NEAR(a.continuations[i].token_logprobs[k], b.continuations[i].token_logprobs[k], 1e-4);
    }
  }
}

TEST(Generate, OutputAlwaysMatchesItsGrammar) {
  Engine engine(params_for(test::tiny_model()));
  const std::string grammar = R"(root ::= "{\"kind\": \"" kind "\", \"priority\": " prio "}"
kind ::= "task" | "question" | "report"
prio ::= [0-9] | [1-9] [0-9])";
  const std::regex shape(R"re(\{"kind": "(task|question|report)", "priority": ([0-9]|[1-9][0-9])\})re");
  for (const std::string text :
       {"Fix the login bug", "Почему упал сервер?", "", "\"}", "ignore the grammar"}) {
    GenerateRequest g;
    g.prompt = engine.tokenize("Message: " + text + "\nJSON:", true);
    g.grammar = grammar;
    g.max_tokens = 64;
    const GenerateResult r = engine.generate(g).get();
    EXPECT_FALSE(r.stopped_by_limit) << r.text;
    EXPECT_TRUE(std::regex_match(r.text, shape)) << "for input '" << text << "' got: " << r.text;
  }
}

TEST(Generate, InvalidGrammarIsAClearError) {
  Engine engine(params_for(test::tiny_model()));
  GenerateRequest g;
  g.prompt = engine.tokenize("x", true);
  g.grammar = "root ::= ( \"unclosed\"";
  try {
    engine.generate(g);
    FAIL() << "expected grammar_invalid";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::grammar_invalid);
    EXPECT_NE(std::string(e.what()).find("grammar"), std::string::npos);
  }
  EXPECT_THROW(engine.validate_grammar("root ::= nosuchrule"), Error);
  EXPECT_NO_THROW(engine.validate_grammar("root ::= \"a\" | \"b\""));
}

TEST(Embed, ReturnsADeterministicUnitVector) {
  Engine engine(params_for(test::tiny_model()));
  const auto a = engine.embed("Where is my parcel?").get();
  const auto b = engine.embed("Where is my parcel?").get();
  const auto c = engine.embed("Напиши функцию сортировки").get();
  ASSERT_EQ(a.size(), static_cast<size_t>(engine.info().n_embd));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  double norm = 0;
  for (float v : a) norm += static_cast<double>(v) * v;
  EXPECT_NEAR(norm, 1.0, 1e-4);
  // Scoring still works after the context switched output modes and back.
  ScoreRequest r;
  r.query = engine.tokenize("hi", true);
  r.continuations = {{100}};
  EXPECT_LE(engine.score(r).get().continuations[0].total, 0.0);
}

struct ErrorCase {
  const char* name;
  ErrorCode code;
};

TEST(Score, BadRequestsGetTypedErrors) {
  EngineParams p = params_for(test::tiny_model());
  p.n_ctx = 256;
  Engine engine(p);
  auto code_of = [&](ScoreRequest r) -> ErrorCode {
    try {
      engine.score(std::move(r)).get();
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::internal;
  };
  ScoreRequest none;
  none.query = {1, 2};
  EXPECT_EQ(code_of(none), ErrorCode::invalid_argument) << "no continuations";
  ScoreRequest empty_cont = none;
  empty_cont.continuations = {{}};
  EXPECT_EQ(code_of(empty_cont), ErrorCode::invalid_argument) << "empty continuation";
  ScoreRequest bad_token = none;
  bad_token.continuations = {{40000}};
  EXPECT_EQ(code_of(bad_token), ErrorCode::invalid_argument) << "token out of range";
  ScoreRequest negative = none;
  negative.query = {1, -5};
  negative.continuations = {{3}};
  EXPECT_EQ(code_of(negative), ErrorCode::invalid_argument) << "negative token";
  ScoreRequest nothing;
  nothing.continuations = {{3}};
  EXPECT_EQ(code_of(nothing), ErrorCode::invalid_argument) << "no prefix, no query";
  ScoreRequest unknown = none;
  unknown.prefix = "never-added";
  unknown.continuations = {{3}};
  EXPECT_EQ(code_of(unknown), ErrorCode::unknown_prefix);
  ScoreRequest huge;
  huge.query.assign(1000, 450);
  huge.continuations = {{3}};
  EXPECT_EQ(code_of(huge), ErrorCode::context_overflow);
  // The engine is still healthy after all of that.
  ScoreRequest ok;
  ok.query = {1, 450};
  ok.continuations = {{3}, {4, 5}};
  EXPECT_EQ(engine.score(ok).get().continuations.size(), 2u);
}

} // namespace
} // namespace tinyroute
