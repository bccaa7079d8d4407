// The internal-model guard, the product's central invariant: every spelling of the internal model is
// recognised, and a config that makes it an answer model anywhere is refused with where it stands.
// (The reader's FILE:LINE refusals are in config-test.cpp, the gateway's per-endpoint refusals in
// gateway-test.cpp, selection's in select-test.cpp: all of them go through these functions.)
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tinyroute/config.h"
#include "tinyroute/error.h"
#include "tinyroute/internal-model-guard.h"

namespace tinyroute {
namespace {

struct NameCase {
  std::string name;
  bool internal;
};

void check_names(const InternalModelConfig& im, const std::vector<NameCase>& cases) {
  Config cfg;
  cfg.internal_model = im;
  for (const auto& c : cases)
    EXPECT_EQ(cfg.is_internal_model_name(c.name), c.internal) << "\"" << c.name << "\"";
}

TEST(InternalModelGuard, TinyLlamaUnderEveryNameItIsServedBy) {
  InternalModelConfig im;
  im.model = "tinyllama-1.1b-chat";
  check_names(im, {
                      {"tinyllama-1.1b-chat", true},
                      {"TinyLlama-1.1B-Chat", true},
                      {"tinyllama", true},
                      {"tinyllama:latest", true},
                      {"tinyllama:1.1b", true},
                      {"tinyllama:1.1b-chat", true},
                      {"tinyllama-1.1b-chat-v1.0", true},
                      {"tinyllama:q4_0", true},           // family match
                      {"tinyllama-1.1b-chat:q8_0", true}, // family of the name
                      {" tinyllama ", true},              // whitespace does not hide it
                      {"library/tinyllama:latest", true}, // Ollama's namespaced form
                      {"TinyLlama/TinyLlama-1.1B-Chat-v1.0", true},
                      {"hf.co/TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF:Q4_K_M", true},
                      {"tinyllama2:7b", false}, // another family, not a prefix match
                      {"llama3.1:8b", false},
                      {"qwen2.5-coder:32b", false},
                      {"mlx-community/Qwen2.5-32B-Instruct-4bit", false},
                      {"", false},
                  });
}

TEST(InternalModelGuard, AnyModelByItsNameAliasesPathAndFileStem) {
  InternalModelConfig im;
  im.model = "/opt/models/router-small.Q4_K_M.gguf";
  im.name = "router";
  im.aliases = {"Classifier:v2"};
  check_names(im, {
                      {"router", true},
                      {"ROUTER:latest", true},
                      {"classifier:v2", true},
                      {"classifier", true},    // the alias's family
                      {"classifier:v3", true}, // same family, other tag
                      {"router-small.Q4_K_M", true},
                      {"router-small.q4_k_m.gguf", true},
                      {"/opt/models/router-small.Q4_K_M.gguf", true},
                      {"/opt/models/router-small.Q4_K_M.gguf:latest", true}, // the path with a tag
                      {"routers", false},
                      {"tinyllama", false}, // TinyLlama's names only when it is TinyLlama
                      {"opt", false},
                  });
  const auto names = internal_model_names(im);
  EXPECT_NE(std::find(names.begin(), names.end(), "router-small.q4_k_m"), names.end());
}

// A config built in code (no reader to refuse it): the guard names the section and the spelling.
TEST(InternalModelGuard, ACodeBuiltConfigWithTheInternalModelAsAnAnswerModelIsRefused) {
  const auto base = [] {
    Config c;
    c.internal_model.model = "tinyllama-1.1b-chat";
    ModelConfig big;
    big.name = "llama3.1:8b";
    big.provider = Provider::ollama;
    big.base_url = "http://127.0.0.1:11434";
    big.categories = {"chat"};
    c.models.push_back(big);
    return c;
  };
  EXPECT_NO_THROW(check_internal_model_guard(base()));
  const auto refused = [](const Config& c, const std::string& where) {
    try {
      check_internal_model_guard(c);
      ADD_FAILURE() << "accepted: " << where;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::internal_model_forbidden);
      EXPECT_EQ(std::string(e.what()).rfind(where + ": ", 0), 0) << e.what();
    }
  };
  Config named = base();
  named.models[0].name = "tinyllama:1.1b-chat";
  refused(named, "models");
  Config upstream = base();
  upstream.models[0].upstream_model = "TinyLlama/TinyLlama-1.1B-Chat-v1.0";
  refused(upstream, "models");
  Config fallback = base();
  fallback.fallbacks["chat"] = {"llama3.1:8b", "tinyllama:latest"};
  refused(fallback, "fallbacks.chat");
}

} // namespace
} // namespace tinyroute
