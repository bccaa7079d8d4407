// The Responses API, /v1/embeddings and /v1/messages/count_tokens through the official openai and
// @anthropic-ai/sdk clients against real backends: llama-server on the generated model serves chat (as an
// OpenAI-compatible backend and, through its own /v1/messages, as an Anthropic one), a second
// llama-server embeddings, a second Gateway's Ollama front in front of them the Ollama kind, and a real
// little upstream answers with a tool call where random weights will not. With random weights the checks
// are of mechanism: shapes, event order, ids, usage, and prompt token counts that show what reached the
// model.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sdk.h"
#include "test-support.h"
#include "tinyroute/engine.h"
#include "tinyroute/gateway.h"
#include "upstreams.h"

namespace {

using namespace tinyroute;
using namespace tinyroute::test::gw;
namespace t = tinyroute::test;

// A chat template that writes tools, tool calls and tool results into the prompt (the generated model's
// own template drops them), so a prompt's token count shows whether they arrived.
const char* kToolTemplate =
    R"({%- if tools %}{{- 'Tools: ' }}{%- for tool in tools %}{{- tool | tojson }}{%- endfor %}{{- '\n' }}{%- endif %}
{%- for message in messages %}
{%- if message.role == 'assistant' and message.tool_calls %}
{{- 'assistant: ' }}{%- if message.content %}{{- message.content }}{%- endif %}
{%- for tool_call in message.tool_calls %}{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}
{{- '<tool_call>{"name": "' + tool_call.name + '", "arguments": ' }}{%- if tool_call.arguments is string %}{{- tool_call.arguments }}{%- else %}{{- tool_call.arguments | tojson }}{%- endif %}{{- '}</tool_call>' }}
{%- endfor %}{{- '\n' }}
{%- else %}
{{- message.role + ': ' + message.content + '\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- 'assistant: ' }}{%- endif %})";

struct Env {
  std::unique_ptr<t::TempDir> dir;
  std::unique_ptr<t::Process> llama, embedder;
  int llama_port = 0, embed_port = 0;
  std::unique_ptr<BadUpstream> tool_caller;
  std::shared_ptr<Engine> engine; // the internal model's tokenizer, for count_tokens estimates
  std::unique_ptr<Gateway> inner; // Ollama-kind backend: tinyroute's own Ollama front
  std::unique_ptr<Gateway> gw;
  std::string skip;
};
Env* env = nullptr;

class ApiSdk : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    env = new Env;
    if (std::string(TINYROUTE_LLAMA_SERVER).empty() || std::string(TINYROUTE_MKMODEL).empty()) {
      env->skip = "llama-server or tinyroute-mkmodel is not built";
      return;
    }
    env->dir = std::make_unique<t::TempDir>();
    const std::string tmpl = env->dir->file("tools.jinja");
    t::write_file(tmpl, kToolTemplate);
    env->llama = start_llama_server({"-c", "4096", "-np", "4", "--chat-template-file", tmpl}, env->llama_port,
                                    env->dir->file("llama.log"), env->skip);
    if (!env->skip.empty()) return;
    env->embedder = start_llama_server({"-c", "1024", "-np", "2", "--embeddings", "--pooling", "mean"},
                                       env->embed_port, env->dir->file("embed.log"), env->skip);
    if (!env->skip.empty()) return;
    env->tool_caller = std::make_unique<BadUpstream>("tool");
    EngineParams ep;
    ep.model_path = t::tiny_model();
    ep.n_threads = 1;
    ep.n_ctx = 512;
    ep.n_parallel = 1;
    ep.n_prefixes = 1;
    ep.n_conversations = 0;
    env->engine = std::make_shared<Engine>(ep);

    Config inner = base_config();
    inner.models = {model("llama", Provider::openai, env->llama_port),
                    model("embedder", Provider::openai, env->embed_port)};
    inner.models[1].capabilities.embedding = true;
    GatewayOptions inner_opts;
    inner_opts.port = 0;
    env->inner = std::make_unique<Gateway>(inner, nullptr, inner_opts);
    env->inner->start();

    Config c = base_config();
    c.models = {model("llama", Provider::openai, env->llama_port),
                model("claude", Provider::anthropic, env->llama_port), // llama-server's own /v1/messages
                model("chained", Provider::ollama, env->inner->port()),
                model("embedder", Provider::openai, env->embed_port),
                model("ollama-embedder", Provider::ollama, env->inner->port()),
                model("tool-caller", Provider::openai, env->tool_caller->port())};
    c.models[2].upstream_model = "llama";
    c.models[3].capabilities.embedding = true;
    c.models[4].capabilities.embedding = true;
    c.models[4].upstream_model = "embedder";
    GatewayOptions opts;
    opts.port = 0;
    opts.threads = 2;
    opts.count_tokens = [engine = env->engine](const std::string& text) {
      return static_cast<int>(engine->tokenize(text, true).size());
    };
    Router router = [](const ChatRequest&) {
      return RouteDecision{"general", 0.9, "llama", {}, "test", "rule", 0};
    };
    env->gw = std::make_unique<Gateway>(c, router, opts);
    env->gw->start();
  }

  static void TearDownTestSuite() {
    if (env->gw) env->gw->stop(std::chrono::seconds(1));
    if (env->inner) env->inner->stop(std::chrono::seconds(1));
    delete env;
    env = nullptr;
  }

  void SetUp() override {
    if (!env->skip.empty()) GTEST_SKIP() << env->skip;
    if (!node_clients_installed(TINYROUTE_GATEWAY_NODE_DIR))
      GTEST_SKIP() << "run `make node-deps` to get the official SDK clients";
  }

  static std::string url() { return "http://127.0.0.1:" + std::to_string(env->gw->port()); }
  static std::map<std::string, json> node(const std::string& script, const std::vector<std::string>& args) {
    std::string out;
    auto lines = run_node(TINYROUTE_GATEWAY_NODE_DIR, script, args, &out);
    if (lines.empty()) ADD_FAILURE() << out;
    return lines;
  }
};

bool has(const json& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

TEST_F(ApiSdk, ResponsesNonStreamingAndStreamingOnEveryBackendProtocol) {
  // "auto" is routed (to the OpenAI-compatible llama-server); "claude" is its Anthropic API; "chained"
  // Ollama.
  for (const auto& [name, answerer] : std::vector<std::pair<std::string, std::string>>{
           {"auto", "llama"}, {"claude", "claude"}, {"chained", "chained"}}) {
    SCOPED_TRACE(name);
    auto out = node("responses.mjs", {url(), name, "basic"});
    ASSERT_TRUE(out.count("complete") && out.count("stream") && out.count("helper"));
    const json& c = out["complete"];
    EXPECT_EQ(c["object"], "response");
    EXPECT_EQ(c["id"].get<std::string>().rfind("resp_", 0), 0u);
    EXPECT_EQ(c["model"], answerer);
    EXPECT_EQ(c["header_model"], answerer);
    EXPECT_EQ(c["header_source"], name == "auto" ? "rule" : "explicit");
    EXPECT_EQ(c["status"], "incomplete") << "8 tokens of random weights end at the limit";
    EXPECT_EQ(c["incomplete"]["reason"], "max_output_tokens");
    EXPECT_EQ(c["output_types"], json::array({"message"}));
    EXPECT_TRUE(c["output_text"].is_string());
    EXPECT_GT(c["usage"]["input_tokens"].get<int>(), 0);
    EXPECT_GT(c["usage"]["output_tokens"].get<int>(), 0);
    EXPECT_LE(c["usage"]["output_tokens"].get<int>(), 8);
    EXPECT_EQ(c["metadata"], json({{"ticket", "t-1"}}));
    EXPECT_EQ(c["instructions"], "Be brief.");

    const json& s = out["stream"];
    const json& types = s["types"];
    ASSERT_GE(types.size(), 9u) << s;
    EXPECT_EQ(types[0], "response.created");
    EXPECT_EQ(types[1], "response.in_progress");
    EXPECT_EQ(types[2], "response.output_item.added");
    EXPECT_EQ(types[3], "response.content_part.added");
    EXPECT_EQ(types[4], "response.output_text.delta");
    const std::size_t n = types.size();
    EXPECT_EQ(types[n - 4], "response.output_text.done");
    EXPECT_EQ(types[n - 3], "response.content_part.done");
    EXPECT_EQ(types[n - 2], "response.output_item.done");
    EXPECT_EQ(types[n - 1], "response.incomplete");
    EXPECT_TRUE(s["ordered"].get<bool>()) << "sequence_number counts up from 0";
    EXPECT_TRUE(s["one_id"].get<bool>());
    EXPECT_EQ(s["final_text"], s["text"]) << "the deltas add up to the final text";
    EXPECT_EQ(s["text"], c["output_text"]) << "greedy decoding: the same answer either way";
    EXPECT_EQ(s["usage"]["output_tokens"], c["usage"]["output_tokens"]);
    EXPECT_EQ(s["metadata"], json({{"ticket", "t-1"}}));

    const json& h = out["helper"];
    EXPECT_EQ(h["output_text"], h["deltas"]);
    EXPECT_EQ(h["output_text"], c["output_text"]);
    EXPECT_EQ(h["status"], "incomplete");
  }
}

TEST_F(ApiSdk, ResponsesFunctionCallRoundTrip) {
  // The call comes from an upstream that always calls get_weather; its output goes back, as items, to a
  // real model on each backend protocol.
  for (const std::string answerer : {"llama", "claude", "chained"}) {
    SCOPED_TRACE(answerer);
    auto out = node("responses.mjs", {url(), "tool-caller", "tools", answerer});
    ASSERT_TRUE(out.count("call") && out.count("call-stream") && out.count("roundtrip"));
    const json& call = out["call"];
    EXPECT_EQ(call["status"], "completed");
    EXPECT_EQ(call["output_types"], json::array({"function_call"}));
    EXPECT_EQ(call["name"], "get_weather");
    EXPECT_EQ(call["call_id"], "call_w1");
    EXPECT_EQ(call["id_prefix"], "fc_");
    EXPECT_EQ(call["arguments"], json({{"city", "Paris"}}));

    const json& streamed = out["call-stream"];
    EXPECT_EQ(streamed["name"], "get_weather");
    EXPECT_EQ(streamed["arguments"], json({{"city", "Paris"}}));
    for (const char* e :
         {"response.output_item.added", "response.function_call_arguments.delta",
          "response.function_call_arguments.done", "response.output_item.done", "response.completed"})
      EXPECT_TRUE(has(streamed["types"], e)) << e << " in " << streamed["types"];

    const json& rt = out["roundtrip"];
    EXPECT_EQ(rt["model"], answerer);
    EXPECT_EQ(rt["output_types"], json::array({"message"}));
    EXPECT_GT(rt["responses_tokens"].get<int>(), 0);
    // The same conversation as chat completions reads the same prompt; another function output does not.
    EXPECT_EQ(rt["responses_tokens"], rt["chat_tokens"]);
    EXPECT_NE(rt["responses_tokens"], rt["other_tokens"]) << "the function output reached the prompt";
  }
}

TEST_F(ApiSdk, ResponsesRefusalsAreTheSdksTypedErrors) {
  auto out = node("responses.mjs", {url(), "llama", "errors"});
  ASSERT_TRUE(out.count("errors"));
  const json& e = out["errors"];
  EXPECT_EQ(e["internal"]["status"], 403);
  EXPECT_EQ(e["internal"]["type"], "internal_model_forbidden");
  EXPECT_EQ(e["internal"]["cls"], "PermissionDeniedError");
  for (const auto& [key, field] : std::vector<std::pair<std::string, std::string>>{
           {"previous", "previous_response_id"}, {"store", "store"}, {"hosted_tool", "tools[0].type"}}) {
    EXPECT_EQ(e[key]["status"], 400) << key;
    EXPECT_EQ(e[key]["cls"], "BadRequestError") << key;
    EXPECT_NE(e[key]["message"].get<std::string>().find(field), std::string::npos) << e[key];
  }
}

TEST_F(ApiSdk, EmbeddingsThroughTheOpenAISdkOnBothBackendKinds) {
  // "ollama-embedder" reaches llama-server through an Ollama-kind backend's /api/embed; "auto" is the
  // first embedding model.
  for (const auto& [name, answerer] : std::vector<std::pair<std::string, std::string>>{
           {"embedder", "embedder"}, {"ollama-embedder", "ollama-embedder"}, {"auto", "embedder"}}) {
    SCOPED_TRACE(name);
    auto out = node("openai.mjs", {url(), name, "embeddings"});
    ASSERT_TRUE(out.count("embeddings"));
    const json& e = out["embeddings"];
    EXPECT_EQ(e["object"], "list");
    EXPECT_EQ(e["model"], answerer);
    EXPECT_EQ(e["header_model"], answerer);
    EXPECT_EQ(e["count"], 2);
    EXPECT_EQ(e["indexes"], json::array({0, 1}));
    EXPECT_GT(e["dims"][0].get<int>(), 0);
    EXPECT_EQ(e["dims"], e["float_dims"]);
    EXPECT_LT(e["max_diff"].get<double>(), 1e-6) << "base64 float32 and JSON numbers agree";
    EXPECT_TRUE(e["same_as_single"].get<bool>());
    EXPECT_TRUE(e["differ"].get<bool>()) << "two texts, two vectors";
    EXPECT_GT(e["usage"]["prompt_tokens"].get<int>(), 0);
  }
}

TEST_F(ApiSdk, CountTokensThroughTheAnthropicSdk) {
  // An Anthropic backend counts itself; llama-server behind the OpenAI protocol counts with the model's
  // own template and tokenizer: both exactly what the model then reads.
  for (const auto& [name, source] : std::vector<std::pair<std::string, std::string>>{
           {"claude", "upstream"}, {"llama", "backend-tokenizer"}, {"auto", "backend-tokenizer"}}) {
    SCOPED_TRACE(name);
    auto out = node("anthropic.mjs", {url(), name, "count-tokens"});
    ASSERT_TRUE(out.count("count"));
    const json& c = out["count"];
    EXPECT_EQ(c["source"], source);
    EXPECT_GT(c["input_tokens"].get<int>(), 0);
    EXPECT_EQ(c["input_tokens"], c["answered_input_tokens"]) << c;
    EXPECT_GT(c["longer"].get<int>(), c["input_tokens"].get<int>());
  }
  // Ollama cannot count: the internal model's tokenizer estimates, and says so.
  auto out = node("anthropic.mjs", {url(), "chained", "count-tokens"});
  ASSERT_TRUE(out.count("count"));
  const json& c = out["count"];
  EXPECT_EQ(c["source"], "internal-estimate");
  EXPECT_EQ(c["header_model"], "chained");
  EXPECT_GT(c["input_tokens"].get<int>(), 0);
  EXPECT_GT(c["longer"].get<int>(), c["input_tokens"].get<int>());
  const int answered = c["answered_input_tokens"];
  EXPECT_LT(std::abs(c["input_tokens"].get<int>() - answered), answered)
      << "an estimate, but of the right size";
}

} // namespace
