// tinyroute-mkmodel: the generated GGUF files load in llama.cpp with the requested shape, are
// reproducible per seed, and bad input fails loudly.
#include "test-support.h"

#include <ggml-cpp.h>
#include <gguf.h>
#include <gtest/gtest.h>
#include <llama.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace tinyroute::test;

namespace {

struct ModelDeleter {
  void operator()(llama_model* m) const { llama_model_free(m); }
};
using ModelPtr = std::unique_ptr<llama_model, ModelDeleter>;

struct ContextDeleter {
  void operator()(llama_context* c) const { llama_free(c); }
};
using ContextPtr = std::unique_ptr<llama_context, ContextDeleter>;

class Mkmodel : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
    llama_backend_init();
  }
  static void TearDownTestSuite() { llama_backend_free(); }

  static ModelPtr load(const std::string& path) {
    llama_model_params p = llama_model_default_params();
    p.n_gpu_layers = 0;
    return ModelPtr(llama_model_load_from_file(path.c_str(), p));
  }

  TempDir dir;
};

std::pair<int, std::string> mkmodel(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {TINYROUTE_MKMODEL};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

gguf_context_ptr open_gguf(const std::string& path) {
  return gguf_context_ptr(gguf_init_from_file(path.c_str(), gguf_init_params{true, nullptr}));
}

std::string str_val(const gguf_context* g, const std::string& key) {
  const int64_t id = gguf_find_key(g, key.c_str());
  if (id < 0 || gguf_get_kv_type(g, id) != GGUF_TYPE_STRING) return "<missing>";
  return gguf_get_val_str(g, id);
}

uint32_t u32_val(const gguf_context* g, const std::string& key) {
  const int64_t id = gguf_find_key(g, key.c_str());
  if (id < 0 || gguf_get_kv_type(g, id) != GGUF_TYPE_UINT32) return 0;
  return gguf_get_val_u32(g, id);
}

size_t scalar_size(gguf_type t) {
  switch (t) {
  case GGUF_TYPE_UINT8:
  case GGUF_TYPE_INT8:
  case GGUF_TYPE_BOOL:
    return 1;
  case GGUF_TYPE_UINT16:
  case GGUF_TYPE_INT16:
    return 2;
  case GGUF_TYPE_UINT32:
  case GGUF_TYPE_INT32:
  case GGUF_TYPE_FLOAT32:
    return 4;
  case GGUF_TYPE_UINT64:
  case GGUF_TYPE_INT64:
  case GGUF_TYPE_FLOAT64:
    return 8;
  default:
    return 0;
  }
}

// The raw bytes of one tensor, read straight from the file.
std::string tensor_bytes(const std::string& path, const std::string& name) {
  gguf_context_ptr g = open_gguf(path);
  if (!g) return {};
  const int64_t id = gguf_find_tensor(g.get(), name.c_str());
  if (id < 0) return {};
  const std::string all = read_file(path);
  const size_t off = gguf_get_data_offset(g.get()) + gguf_get_tensor_offset(g.get(), id);
  return all.substr(off, gguf_get_tensor_size(g.get(), id));
}

TEST_F(Mkmodel, TinyPresetLoadsWithRequestedShape) {
  const std::string path = dir.file("tiny.gguf");
  make_model(path, {"--preset", "tiny", "--seed", "7"});

  ModelPtr model = load(path);
  ASSERT_TRUE(model) << "llama.cpp refused the tiny model";
  EXPECT_EQ(llama_model_n_layer(model.get()), 2);
  EXPECT_EQ(llama_model_n_embd(model.get()), 64);
  EXPECT_EQ(llama_model_n_head(model.get()), 4);
  EXPECT_EQ(llama_model_n_head_kv(model.get()), 2);
  EXPECT_EQ(llama_model_n_ctx_train(model.get()), 2048);
  EXPECT_EQ(llama_vocab_n_tokens(llama_model_get_vocab(model.get())), 32000);

  const char* tmpl = llama_model_chat_template(model.get(), nullptr);
  ASSERT_NE(tmpl, nullptr);
  EXPECT_NE(std::string(tmpl).find("<|assistant|>"), std::string::npos);
  EXPECT_NE(std::string(tmpl).find("eos_token"), std::string::npos);

  char name[128] = {};
  ASSERT_GT(llama_model_meta_val_str(model.get(), "general.name", name, sizeof name), 0);
  EXPECT_STREQ(name, "tinyroute-random-tiny-seed7");

  // Small enough for tests (f32, 32000-token vocabulary): well under 32 MB.
  EXPECT_LT(fs::file_size(path), 32u << 20);
}

TEST_F(Mkmodel, TinyModelDecodesToFiniteNonDegenerateLogits) {
  ModelPtr model = load(tiny_model(1));
  ASSERT_TRUE(model);
  const llama_vocab* vocab = llama_model_get_vocab(model.get());

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 64;
  cp.n_batch = 64;
  cp.n_threads = 1;
  cp.n_threads_batch = 1;
  ContextPtr ctx(llama_init_from_model(model.get(), cp));
  ASSERT_TRUE(ctx);

  const std::string text = "Route this request to the billing agent.";
  std::vector<llama_token> tokens(64);
  const int n = llama_tokenize(vocab, text.c_str(), static_cast<int32_t>(text.size()), tokens.data(),
                               static_cast<int32_t>(tokens.size()), true, false);
  ASSERT_GT(n, 3);
  ASSERT_EQ(llama_decode(ctx.get(), llama_batch_get_one(tokens.data(), n)), 0);

  const float* logits = llama_get_logits_ith(ctx.get(), -1);
  ASSERT_NE(logits, nullptr);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  float lo = logits[0], hi = logits[0];
  for (int i = 0; i < n_vocab; ++i) {
    ASSERT_TRUE(std::isfinite(logits[i])) << "logit " << i;
    lo = std::min(lo, logits[i]);
    hi = std::max(hi, logits[i]);
  }
  EXPECT_GT(hi - lo, 1.0f) << "logits are nearly constant";
}

TEST_F(Mkmodel, SameSeedIsByteIdenticalDifferentSeedDiffers) {
  const std::string a = dir.file("a.gguf"), b = dir.file("b.gguf"), c = dir.file("c.gguf");
  make_model(a, {"--seed", "3", "--threads", "1"});
  make_model(b, {"--seed", "3", "--threads", "2"}); // the thread count must not matter
  make_model(c, {"--seed", "4"});
  EXPECT_EQ(read_file(a), read_file(b));

  for (const std::string tensor : {"token_embd.weight", "blk.1.attn_q.weight", "output.weight"}) {
    const std::string wa = tensor_bytes(a, tensor), wc = tensor_bytes(c, tensor);
    ASSERT_FALSE(wa.empty()) << tensor;
    EXPECT_EQ(wa.size(), wc.size()) << tensor;
    EXPECT_NE(wa, wc) << tensor << " does not depend on the seed";
  }
  // Norms are ones whatever the seed.
  EXPECT_EQ(tensor_bytes(a, "blk.0.attn_norm.weight"), tensor_bytes(c, "blk.0.attn_norm.weight"));
}

TEST_F(Mkmodel, TensorsHaveLlamaNamesShapesTypesAndValues) {
  const std::string path = dir.file("custom.gguf");
  make_model(path, {"--n-layer", "3", "--n-embd", "128", "--n-ff", "320", "--n-head", "8", "--n-head-kv", "2",
                    "--n-ctx", "512", "--type", "f16", "--seed", "9"});

  // With data: gguf checks that the file holds every tensor's bytes.
  ggml_context* data_ctx = nullptr;
  gguf_context_ptr g(gguf_init_from_file(path.c_str(), gguf_init_params{false, &data_ctx}));
  ASSERT_TRUE(g);
  ggml_context_ptr data(data_ctx);

  struct Expect {
    std::string name;
    int64_t ne0, ne1;
    ggml_type type;
  };
  std::vector<Expect> want = {{"token_embd.weight", 128, 32000, GGML_TYPE_F16},
                              {"output_norm.weight", 128, 1, GGML_TYPE_F32},
                              {"output.weight", 128, 32000, GGML_TYPE_F16}};
  for (int i = 0; i < 3; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    want.push_back({p + "attn_norm.weight", 128, 1, GGML_TYPE_F32});
    want.push_back({p + "attn_q.weight", 128, 128, GGML_TYPE_F16});
    want.push_back({p + "attn_k.weight", 128, 32, GGML_TYPE_F16});
    want.push_back({p + "attn_v.weight", 128, 32, GGML_TYPE_F16});
    want.push_back({p + "attn_output.weight", 128, 128, GGML_TYPE_F16});
    want.push_back({p + "ffn_norm.weight", 128, 1, GGML_TYPE_F32});
    want.push_back({p + "ffn_gate.weight", 128, 320, GGML_TYPE_F16});
    want.push_back({p + "ffn_down.weight", 320, 128, GGML_TYPE_F16});
    want.push_back({p + "ffn_up.weight", 128, 320, GGML_TYPE_F16});
  }
  ASSERT_EQ(gguf_get_n_tensors(g.get()), static_cast<int64_t>(want.size()));
  for (const Expect& e : want) {
    const int64_t id = gguf_find_tensor(g.get(), e.name.c_str());
    ASSERT_GE(id, 0) << e.name;
    const int64_t* ne = gguf_get_tensor_ne(g.get(), id);
    EXPECT_EQ(ne[0], e.ne0) << e.name;
    EXPECT_EQ(ne[1], e.ne1) << e.name;
    EXPECT_EQ(gguf_get_tensor_type(g.get(), id), e.type) << e.name;
  }

  const ggml_tensor* norm = ggml_get_tensor(data.get(), "blk.2.ffn_norm.weight");
  ASSERT_NE(norm, nullptr);
  for (int64_t i = 0; i < 128; ++i) ASSERT_EQ(ggml_get_f32_1d(norm, i), 1.0f);
  const ggml_tensor* q = ggml_get_tensor(data.get(), "blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  double sum = 0, sumsq = 0;
  const int64_t nq = ggml_nelements(q);
  for (int64_t i = 0; i < nq; ++i) {
    const double v = ggml_fp16_to_fp32(static_cast<const ggml_fp16_t*>(q->data)[i]);
    sum += v;
    sumsq += v * v;
  }
  const double stddev = std::sqrt(sumsq / static_cast<double>(nq) - (sum / nq) * (sum / nq));
  EXPECT_NEAR(sum / static_cast<double>(nq), 0.0, 0.01);
  EXPECT_NEAR(stddev, 1.0 / std::sqrt(128.0), 0.01); // 1/sqrt(fan_in)

  EXPECT_EQ(u32_val(g.get(), "general.file_type"), 1u); // LLAMA_FTYPE_MOSTLY_F16
  EXPECT_EQ(u32_val(g.get(), "llama.rope.dimension_count"), 16u);

  ModelPtr model = load(path);
  ASSERT_TRUE(model);
  EXPECT_EQ(llama_model_n_layer(model.get()), 3);
  EXPECT_EQ(llama_model_n_embd(model.get()), 128);
  EXPECT_EQ(llama_model_n_head(model.get()), 8);
  EXPECT_EQ(llama_model_n_head_kv(model.get()), 2);
  EXPECT_EQ(llama_model_n_ctx_train(model.get()), 512);
}

TEST_F(Mkmodel, CopiesEveryTokenizerKeyFromTheVocab) {
  const std::string path = dir.file("tok.gguf");
  make_model(path, {});
  gguf_context_ptr vocab = open_gguf(TINYROUTE_VOCAB_GGUF);
  gguf_context_ptr model = open_gguf(path);
  ASSERT_TRUE(vocab);
  ASSERT_TRUE(model);

  int copied = 0;
  for (int64_t i = 0; i < gguf_get_n_kv(vocab.get()); ++i) {
    const std::string key = gguf_get_key(vocab.get(), i);
    if (!key.starts_with("tokenizer.") || key == "tokenizer.chat_template") continue;
    const int64_t j = gguf_find_key(model.get(), key.c_str());
    ASSERT_GE(j, 0) << key;
    ASSERT_EQ(gguf_get_kv_type(model.get(), j), gguf_get_kv_type(vocab.get(), i)) << key;
    if (gguf_get_kv_type(vocab.get(), i) == GGUF_TYPE_ARRAY) {
      ASSERT_EQ(gguf_get_arr_type(model.get(), j), gguf_get_arr_type(vocab.get(), i)) << key;
      const size_t n = gguf_get_arr_n(vocab.get(), i);
      ASSERT_EQ(gguf_get_arr_n(model.get(), j), n) << key;
      if (gguf_get_arr_type(vocab.get(), i) == GGUF_TYPE_STRING) {
        for (size_t k = 0; k < n; ++k) {
          ASSERT_STREQ(gguf_get_arr_str(model.get(), j, k), gguf_get_arr_str(vocab.get(), i, k)) << key;
        }
      } else {
        const size_t bytes = n * scalar_size(gguf_get_arr_type(vocab.get(), i));
        EXPECT_EQ(std::memcmp(gguf_get_arr_data(model.get(), j), gguf_get_arr_data(vocab.get(), i), bytes), 0)
            << key;
      }
    } else if (gguf_get_kv_type(vocab.get(), i) == GGUF_TYPE_STRING) {
      EXPECT_EQ(str_val(model.get(), key), str_val(vocab.get(), key)) << key;
    }
    ++copied;
  }
  EXPECT_GE(copied, 5); // model, pre, tokens, scores, token_type, special ids...
  EXPECT_EQ(str_val(model.get(), "general.architecture"), "llama");
  EXPECT_EQ(u32_val(model.get(), "llama.vocab_size"), 32000u);
  EXPECT_EQ(u32_val(model.get(), "llama.block_count"), 2u); // ours, not the vocab file's
  EXPECT_NE(str_val(model.get(), "tokenizer.chat_template").find("<|user|>"), std::string::npos);
}

TEST_F(Mkmodel, NoChatTemplateOmitsTheKey) {
  const std::string path = dir.file("notmpl.gguf");
  make_model(path, {"--no-chat-template"});
  gguf_context_ptr g = open_gguf(path);
  ASSERT_TRUE(g);
  EXPECT_LT(gguf_find_key(g.get(), "tokenizer.chat_template"), 0);
  ModelPtr model = load(path);
  ASSERT_TRUE(model);
  EXPECT_EQ(llama_model_chat_template(model.get(), nullptr), nullptr);
}

TEST_F(Mkmodel, UnknownArchitectureIsWellFormedButRefusedByLlama) {
  const std::string path = dir.file("nosucharch.gguf");
  make_model(path, {"--arch", "nosucharch"});

  ggml_context* data_ctx = nullptr;
  gguf_context_ptr g(gguf_init_from_file(path.c_str(), gguf_init_params{false, &data_ctx}));
  ASSERT_TRUE(g) << "not a well-formed GGUF";
  ggml_context_ptr data(data_ctx);
  EXPECT_EQ(str_val(g.get(), "general.architecture"), "nosucharch");
  EXPECT_EQ(u32_val(g.get(), "nosucharch.block_count"), 2u);
  EXPECT_EQ(u32_val(g.get(), "nosucharch.embedding_length"), 64u);
  EXPECT_LT(gguf_find_key(g.get(), "llama.block_count"), 0);
  EXPECT_GT(gguf_get_n_tensors(g.get()), 0);

  EXPECT_FALSE(load(path)) << "llama.cpp accepted an unknown architecture";
}

TEST_F(Mkmodel, QuantizesWithLlamaQuantize) {
  if (std::string(TINYROUTE_LLAMA_QUANTIZE).empty()) GTEST_SKIP() << "no llama-quantize";
  const std::string path = dir.file("q.gguf");
  make_model(path, {"--type", "f16", "--quantize", "Q8_0", "--llama-quantize", TINYROUTE_LLAMA_QUANTIZE,
                    "--threads", "1"});
  EXPECT_FALSE(fs::exists(path + ".f16.tmp")) << "temporary f16 file left behind";
  gguf_context_ptr g = open_gguf(path);
  ASSERT_TRUE(g);
  EXPECT_EQ(u32_val(g.get(), "general.file_type"), 7u); // LLAMA_FTYPE_MOSTLY_Q8_0
  EXPECT_EQ(gguf_get_tensor_type(g.get(), gguf_find_tensor(g.get(), "blk.0.attn_q.weight")), GGML_TYPE_Q8_0);
  ModelPtr model = load(path);
  ASSERT_TRUE(model);
  EXPECT_EQ(llama_model_n_layer(model.get()), 2);
}

// Each bad invocation: exit status 1, a message on stderr naming the problem, no output file.
struct BadCase {
  std::string what;
  std::vector<std::string> args; // after --vocab/--out unless they are overridden
  std::string message;
};

TEST_F(Mkmodel, BadArgumentsFailWithAMessage) {
  const std::string out = dir.file("out.gguf");
  const std::string garbage = dir.file("garbage.gguf");
  write_file(garbage, "this is not a gguf file at all");
  const std::string no_tokenizer = dir.file("no-tokenizer.gguf");
  {
    gguf_context_ptr g(gguf_init_empty());
    gguf_set_val_str(g.get(), "general.architecture", "llama");
    ASSERT_TRUE(gguf_write_to_file(g.get(), no_tokenizer.c_str(), false));
  }
  const std::string vocab = TINYROUTE_VOCAB_GGUF;
  const std::vector<BadCase> cases = {
      {"missing vocab", {"--vocab", dir.file("nope.gguf"), "--out", out}, "vocab file not found"},
      {"vocab not gguf", {"--vocab", garbage, "--out", out}, "not a valid GGUF"},
      {"vocab without tokenizer", {"--vocab", no_tokenizer, "--out", out}, "tokenizer"},
      {"no vocab option", {"--out", out}, "--vocab"},
      {"no out option", {"--vocab", vocab}, "--out"},
      {"non-numeric", {"--vocab", vocab, "--out", out, "--n-embd", "abc"}, "--n-embd"},
      {"trailing junk", {"--vocab", vocab, "--out", out, "--n-layer", "2x"}, "--n-layer"},
      {"zero", {"--vocab", vocab, "--out", out, "--n-head", "0"}, "--n-head"},
      {"negative seed", {"--vocab", vocab, "--out", out, "--seed", "-1"}, "--seed"},
      {"heads do not divide", {"--vocab", vocab, "--out", out, "--n-head", "5"}, "multiple of n_head"},
      {"kv heads do not divide",
       {"--vocab", vocab, "--out", out, "--n-head-kv", "3"},
       "multiple of n_head_kv"},
      {"unknown preset", {"--vocab", vocab, "--out", out, "--preset", "huge"}, "--preset"},
      {"unknown type", {"--vocab", vocab, "--out", out, "--type", "q8"}, "--type"},
      {"bad arch", {"--vocab", vocab, "--out", out, "--arch", "no.dots"}, "--arch"},
      {"quantize without tool", {"--vocab", vocab, "--out", out, "--quantize", "Q4_K_M"}, "--llama-quantize"},
      {"quantize tool missing",
       {"--vocab", vocab, "--out", out, "--quantize", "Q4_K_M", "--llama-quantize", dir.file("no-such-tool")},
       "llama-quantize"},
      {"unwritable output", {"--vocab", vocab, "--out", dir.file("no/such/dir/out.gguf")}, "cannot write"},
      {"unknown option", {"--vocab", vocab, "--out", out, "--bogus"}, "--bogus"},
  };
  for (const BadCase& c : cases) {
    auto [rc, output] = mkmodel(c.args);
    EXPECT_EQ(rc, 1) << c.what << ": " << output;
    EXPECT_NE(output.find(c.message), std::string::npos) << c.what << ": " << output;
    EXPECT_FALSE(fs::exists(out)) << c.what << " left an output file";
  }
}

TEST_F(Mkmodel, HelpExitsZero) {
  auto [rc, output] = mkmodel({"--help"});
  EXPECT_EQ(rc, 0);
  EXPECT_NE(output.find("--preset"), std::string::npos);
}

} // namespace
