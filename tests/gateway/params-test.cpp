// Every parameter honoured or refused, on every front: sent to a model on each backend protocol, a
// parameter either reaches the upstream under that protocol's name (read from what a real little
// upstream received) or is a 400 in the front's error shape naming it as the client spelled it. Also:
// routing falls back past a candidate that cannot take a parameter, /v1/embeddings' fields, and
// /v1/messages/count_tokens' three sources (x-tinyroute-token-count).
#include <gtest/gtest.h>

#include <mutex>
#include <sstream>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "tinyroute/gateway.h"
#include "upstreams.h"

namespace {

using namespace tinyroute;
using namespace tinyroute::test::gw;

// A real upstream that speaks all three backend protocols with one short answer each and records every
// request it gets: POST /v1/chat/completions (OpenAI SSE), /v1/messages (Anthropic SSE), /api/chat
// (Ollama NDJSON), /v1/messages/count_tokens, /v1/chat/completions/input_tokens, /v1/embeddings and
// /api/embed. One connection at a time, each closed after its answer.
class Recorder {
public:
  Recorder() : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { serve(); });
  }
  ~Recorder() {
    stop_ = true;
    beast::error_code ec;
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  int port() const { return acceptor_.local_endpoint().port(); }
  // The last request's path and JSON body.
  std::pair<std::string, json> last() {
    std::lock_guard lock(mutex_);
    return last_;
  }
  void forget() {
    std::lock_guard lock(mutex_);
    last_ = {};
  }

private:
  void serve() {
    while (!stop_) {
      tcp::socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      beast::flat_buffer buf;
      http::request<http::string_body> req;
      http::read(socket, buf, req, ec);
      if (ec) continue;
      const std::string path(req.target());
      {
        std::lock_guard lock(mutex_);
        last_ = {path, json::parse(req.body(), nullptr, false)};
      }
      http::response<http::string_body> res{http::status::ok, 11};
      res.keep_alive(false);
      if (path == "/v1/chat/completions") {
        res.set(http::field::content_type, "text/event-stream");
        res.body() = "data: " + json::parse(R"({"choices":[{"index":0,"delta":{"content":"ok"}}]})").dump() +
                     "\n\ndata: " +
                     json::parse(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],
                                     "usage":{"prompt_tokens":3,"completion_tokens":1}})")
                         .dump() +
                     "\n\ndata: [DONE]\n\n";
      } else if (path == "/v1/messages") {
        res.set(http::field::content_type, "text/event-stream");
        for (const char* e :
             {R"({"type":"message_start","message":{"usage":{"input_tokens":3}}})",
              R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})",
              R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}})",
              R"({"type":"content_block_stop","index":0})",
              R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}})",
              R"({"type":"message_stop"})"})
          res.body() += "data: " + std::string(e) + "\n\n";
      } else if (path == "/api/chat") {
        res.set(http::field::content_type, "application/x-ndjson");
        res.body() =
            R"({"message":{"role":"assistant","content":"ok"},"done":false})"
            "\n"
            R"({"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":1})"
            "\n";
      } else if (path == "/v1/messages/count_tokens") {
        res.set(http::field::content_type, "application/json");
        res.body() = R"({"input_tokens":42})";
      } else if (path == "/v1/chat/completions/input_tokens") {
        res.set(http::field::content_type, "application/json");
        res.body() = R"({"object":"response.input_tokens","input_tokens":17})";
      } else if (path == "/v1/embeddings") {
        res.set(http::field::content_type, "application/json");
        res.body() = R"({"data":[{"index":0,"embedding":[0.5,-1.25,3]}],"usage":{"prompt_tokens":2}})";
      } else if (path == "/api/embed") {
        res.set(http::field::content_type, "application/json");
        res.body() = R"({"embeddings":[[0.5,-1.25,3]],"prompt_eval_count":2})";
      } else {
        res.result(http::status::not_found);
        res.body() = R"({"error":"not found"})";
      }
      res.prepare_payload();
      http::write(socket, res, ec);
      socket.close(ec);
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::pair<std::string, json> last_;
};

struct Env {
  std::unique_ptr<Recorder> upstream;
  std::unique_ptr<Gateway> gw;
};
Env* env = nullptr;

class ParamsTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    env = new Env;
    env->upstream = std::make_unique<Recorder>();
    const int up = env->upstream->port();
    Config c = base_config();
    c.models = {model("oai", Provider::openai, up), model("claude", Provider::anthropic, up),
                model("olla", Provider::ollama, up)};
    for (auto& m : c.models) m.capabilities.embedding = true;
    GatewayOptions opts;
    opts.port = 0;
    opts.upstream_keepalive = 0;
    opts.auto_aliases = {"auto", "auto-claude-then-oai"};
    // The internal model's tokenizer stands in as one token a word.
    opts.count_tokens = [](const std::string& text) {
      std::istringstream in(text);
      int n = 0;
      for (std::string w; in >> w;) ++n;
      return n;
    };
    Router router = [](const ChatRequest& r) {
      RouteDecision d{"general", 1, "oai", {}, "test", "rule", 0};
      if (r.model == "auto-claude-then-oai") d = {"general", 1, "claude", {"oai"}, "test", "rule", 0};
      return d;
    };
    env->gw = std::make_unique<Gateway>(c, router, opts);
    env->gw->start();
  }
  static void TearDownTestSuite() {
    env->gw->stop(std::chrono::seconds(1));
    delete env;
    env = nullptr;
  }
  static int port() { return env->gw->port(); }
};

// One request: a front's body with `patch` merged in, sent to `model`.
struct Row {
  const char* front; // path
  const char* model;
  json patch;
  // Forwarded: a JSON pointer into what the upstream received and the value it must hold (a null value:
  // the pointer must be absent). Refused: the status is 400 and the message names `refused`.
  std::string pointer;
  json value;
  std::string refused;
};

json base_body(const std::string& front, const std::string& model) {
  if (front == "/v1/chat/completions")
    return {{"model", model}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  if (front == "/v1/messages")
    return {{"model", model}, {"max_tokens", 8}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  if (front == "/api/chat")
    return {{"model", model}, {"stream", false}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  if (front == "/api/generate") return {{"model", model}, {"stream", false}, {"prompt", "hi"}};
  return {{"model", model}, {"input", "hi"}}; // /v1/responses
}

std::string error_message(const std::string& front, const json& j) {
  if (front.rfind("/api/", 0) == 0) return j.value("error", "");
  return j.contains("error") && j["error"].is_object() ? j["error"].value("message", "") : "";
}

const json tools =
    json::parse(R"([{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])");
const json anthropic_tools = json::parse(R"([{"name":"f","input_schema":{"type":"object"}}])");
const json responses_tools =
    json::parse(R"([{"type":"function","name":"f","parameters":{"type":"object"}}])");
const json schema_format = json::parse(
    R"({"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object"},"strict":true}})");

TEST_F(ParamsTest, EveryParameterReachesTheBackendOrIsRefusedByName) {
  const std::vector<Row> table = {
      // ---- OpenAI chat completions ----
      {"/v1/chat/completions", "oai", {{"n", 2}}, "", nullptr, "'n'"},
      {"/v1/chat/completions", "oai", {{"n", 1}}, "/n", nullptr, ""},
      {"/v1/chat/completions", "oai", {{"logprobs", true}}, "", nullptr, "'logprobs'"},
      {"/v1/chat/completions", "oai", {{"top_logprobs", 2}}, "", nullptr, "'top_logprobs'"},
      {"/v1/chat/completions", "oai", {{"modalities", {"text", "audio"}}}, "", nullptr, "'modalities'"},
      {"/v1/chat/completions", "oai", {{"functions", {{{"name", "f"}}}}}, "", nullptr, "'functions'"},
      {"/v1/chat/completions", "oai", {{"seed", 7}}, "/seed", 7, ""},
      {"/v1/chat/completions", "olla", {{"seed", 7}}, "/options/seed", 7, ""},
      {"/v1/chat/completions", "claude", {{"seed", 7}}, "", nullptr, "'seed'"},
      {"/v1/chat/completions", "olla", {{"presence_penalty", 0.5}}, "/options/presence_penalty", 0.5, ""},
      {"/v1/chat/completions", "claude", {{"frequency_penalty", 0.5}}, "", nullptr, "'frequency_penalty'"},
      {"/v1/chat/completions", "oai", {{"stop", "END"}}, "/stop", {"END"}, ""},
      {"/v1/chat/completions", "claude", {{"stop", "END"}}, "/stop_sequences", {"END"}, ""},
      {"/v1/chat/completions", "olla", {{"stop", "END"}}, "/options/stop", {"END"}, ""},
      {"/v1/chat/completions", "claude", {{"top_k", 5}}, "/top_k", 5, ""},
      {"/v1/chat/completions", "olla", {{"max_completion_tokens", 9}}, "/options/num_predict", 9, ""},
      {"/v1/chat/completions",
       "oai",
       {{"response_format", schema_format}},
       "/response_format",
       schema_format,
       ""},
      {"/v1/chat/completions",
       "olla",
       {{"response_format", {{"type", "json_object"}}}},
       "/format",
       "json",
       ""},
      {"/v1/chat/completions",
       "claude",
       {{"response_format", {{"type", "json_object"}}}},
       "",
       nullptr,
       "'response_format'"},
      {"/v1/chat/completions",
       "oai",
       {{"response_format", {{"type", "text"}}}},
       "/response_format",
       nullptr,
       ""},
      {"/v1/chat/completions",
       "oai",
       {{"tools", tools}, {"tool_choice", "required"}},
       "/tool_choice",
       "required",
       ""},
      {"/v1/chat/completions",
       "claude",
       {{"tools", tools}, {"tool_choice", "required"}},
       "/tool_choice",
       {{"type", "any"}},
       ""},
      {"/v1/chat/completions",
       "olla",
       {{"tools", tools}, {"tool_choice", "required"}},
       "",
       nullptr,
       "'tool_choice'"},
      {"/v1/chat/completions", "olla", {{"tools", tools}, {"tool_choice", "none"}}, "/tools", nullptr, ""},
      {"/v1/chat/completions",
       "claude",
       {{"tools", tools}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "f"}}}}}},
       "/tool_choice",
       {{"type", "tool"}, {"name", "f"}},
       ""},
      {"/v1/chat/completions",
       "oai",
       {{"tools", tools}, {"parallel_tool_calls", false}},
       "/parallel_tool_calls",
       false,
       ""},
      {"/v1/chat/completions",
       "claude",
       {{"tools", tools}, {"parallel_tool_calls", false}},
       "/tool_choice/disable_parallel_tool_use",
       true,
       ""},
      {"/v1/chat/completions",
       "olla",
       {{"tools", tools}, {"parallel_tool_calls", false}},
       "",
       nullptr,
       "'parallel_tool_calls'"},
      {"/v1/chat/completions", "oai", {{"user", "u1"}}, "/user", "u1", ""},
      {"/v1/chat/completions", "claude", {{"user", "u1"}}, "/metadata/user_id", "u1", ""},
      {"/v1/chat/completions", "olla", {{"user", "u1"}}, "", nullptr, "'user'"},
      {"/v1/chat/completions", "oai", {{"logit_bias", {{"50256", -100}}}}, "/logit_bias/50256", -100, ""},
      {"/v1/chat/completions", "claude", {{"logit_bias", {{"50256", -100}}}}, "", nullptr, "'logit_bias'"},
      {"/v1/chat/completions", "olla", {{"service_tier", "flex"}}, "", nullptr, "'service_tier'"},
      // ---- Anthropic messages ----
      {"/v1/messages", "oai", {{"stop_sequences", {"END"}}}, "/stop", {"END"}, ""},
      {"/v1/messages", "olla", {{"top_k", 3}}, "/options/top_k", 3, ""},
      {"/v1/messages",
       "oai",
       {{"tools", anthropic_tools}, {"tool_choice", {{"type", "any"}}}},
       "/tool_choice",
       "required",
       ""},
      {"/v1/messages",
       "olla",
       {{"tools", anthropic_tools}, {"tool_choice", {{"type", "tool"}, {"name", "f"}}}},
       "",
       nullptr,
       "'tool_choice'"},
      {"/v1/messages",
       "oai",
       {{"tools", anthropic_tools}, {"tool_choice", {{"type", "auto"}, {"disable_parallel_tool_use", true}}}},
       "/parallel_tool_calls",
       false,
       ""},
      {"/v1/messages",
       "olla",
       {{"tools", anthropic_tools}, {"tool_choice", {{"type", "auto"}, {"disable_parallel_tool_use", true}}}},
       "",
       nullptr,
       "'tool_choice.disable_parallel_tool_use'"},
      {"/v1/messages", "claude", {{"metadata", {{"user_id", "u2"}}}}, "/metadata/user_id", "u2", ""},
      {"/v1/messages", "oai", {{"metadata", {{"user_id", "u2"}}}}, "/user", "u2", ""},
      {"/v1/messages", "olla", {{"metadata", {{"user_id", "u2"}}}}, "", nullptr, "'metadata.user_id'"},
      {"/v1/messages", "claude", {{"metadata", {{"tenant", "x"}}}}, "", nullptr, "'metadata.tenant'"},
      {"/v1/messages",
       "claude",
       {{"thinking", {{"type", "enabled"}, {"budget_tokens", 1024}}}},
       "/thinking/type",
       "enabled",
       ""},
      {"/v1/messages",
       "oai",
       {{"thinking", {{"type", "enabled"}, {"budget_tokens", 1024}}}},
       "",
       nullptr,
       "'thinking'"},
      {"/v1/messages",
       "claude",
       {{"tools", {{{"type", "web_search_20250305"}, {"name", "web_search"}}}}},
       "",
       nullptr,
       "'tools[0].type'"},
      // ---- Ollama ----
      {"/api/chat", "olla", {{"options", {{"num_ctx", 4096}, {"seed", 3}}}}, "/options/num_ctx", 4096, ""},
      {"/api/chat", "oai", {{"options", {{"repeat_penalty", 1.1}}}}, "", nullptr, "'options.repeat_penalty'"},
      {"/api/chat", "claude", {{"options", {{"mirostat", 2}}}}, "", nullptr, "'options.mirostat'"},
      {"/api/chat", "oai", {{"options", {{"num_ctx", 4096}}}}, "/options", nullptr, ""}, // a runner hint: see
                                                                                         // below
      {"/api/chat", "oai", {{"options", {{"seed", 3}, {"num_predict", 5}}}}, "/seed", 3, ""},
      {"/api/chat", "claude", {{"options", {{"seed", 3}}}}, "", nullptr, "'options.seed'"},
      {"/api/chat", "claude", {{"options", {{"top_k", 3}}}}, "/top_k", 3, ""},
      {"/api/chat", "olla", {{"keep_alive", "10m"}}, "/keep_alive", "10m", ""},
      {"/api/chat", "oai", {{"keep_alive", "10m"}}, "/keep_alive", nullptr, ""},
      {"/api/chat",
       "olla",
       {{"options", {{"num_ctx", 4096}, {"num_thread", 2}}}},
       "/options/num_thread",
       2,
       ""},
      {"/api/chat", "claude", {{"think", true}}, "", nullptr, "'think'"},
      {"/api/chat", "oai", {{"format", "json"}}, "/response_format/type", "json_object", ""},
      {"/api/chat", "claude", {{"format", "json"}}, "", nullptr, "'format'"},
      {"/api/chat", "olla", {{"logprobs", true}}, "", nullptr, "'logprobs'"},
      {"/api/generate", "olla", {{"suffix", "}"}}, "", nullptr, "'suffix'"},
      {"/api/generate", "olla", {{"raw", true}}, "", nullptr, "'raw'"},
      {"/api/generate", "olla", {{"raw", false}, {"keep_alive", "1m"}}, "/keep_alive", "1m", ""},
      // ---- Responses ----
      {"/v1/responses", "claude", {{"max_output_tokens", 9}}, "/max_tokens", 9, ""},
      {"/v1/responses", "olla", {{"max_output_tokens", 9}}, "/options/num_predict", 9, ""},
      {"/v1/responses",
       "claude",
       {{"text", {{"format", {{"type", "json_object"}}}}}},
       "",
       nullptr,
       "'text.format'"},
      {"/v1/responses",
       "oai",
       {{"tools", responses_tools}, {"tool_choice", "required"}},
       "/tool_choice",
       "required",
       ""},
      {"/v1/responses",
       "olla",
       {{"tools", responses_tools}, {"tool_choice", "required"}},
       "",
       nullptr,
       "'tool_choice'"},
      {"/v1/responses", "oai", {{"prompt_cache_key", "k"}}, "/prompt_cache_key", "k", ""},
      {"/v1/responses", "claude", {{"prompt_cache_key", "k"}}, "", nullptr, "'prompt_cache_key'"},
      {"/v1/responses", "oai", {{"previous_response_id", "resp_1"}}, "", nullptr, "'previous_response_id'"},
      {"/v1/responses", "oai", {{"metadata", {{"k", "v"}}}}, "/metadata", nullptr, ""},
      {"/v1/responses", "oai", {{"seed", 1}}, "", nullptr, "Unrecognized request argument supplied: seed"},
  };
  for (const auto& row : table) {
    json body = base_body(row.front, row.model);
    body.update(row.patch);
    SCOPED_TRACE(std::string(row.front) + " -> " + row.model + ": " + body.dump());
    env->upstream->forget();
    auto r = request(port(), "POST", row.front, body.dump());
    if (!row.refused.empty()) {
      EXPECT_EQ(r.status, 400) << r.body;
      const std::string message = error_message(row.front, r.j());
      EXPECT_NE(message.find(row.refused), std::string::npos) << r.body;
      EXPECT_TRUE(env->upstream->last().first.empty()) << "nothing reached the upstream";
      continue;
    }
    ASSERT_EQ(r.status, 200) << r.body;
    const auto [path, sent] = env->upstream->last();
    const json::json_pointer pointer(row.pointer);
    if (row.value.is_null()) {
      EXPECT_FALSE(sent.contains(pointer)) << path << " got " << sent.dump();
    } else {
      ASSERT_TRUE(sent.contains(pointer)) << path << " got " << sent.dump();
      EXPECT_EQ(sent[pointer], row.value) << path << " got " << sent.dump();
    }
  }
}

TEST_F(ParamsTest, ARefusalNamesTheBackendsThatWouldTakeTheParameter) {
  json seeded = base_body("/api/chat", "claude");
  seeded["options"] = {{"seed", 3}};
  auto r = request(port(), "POST", "/api/chat", seeded.dump());
  ASSERT_EQ(r.status, 400) << r.body;
  const std::string message = r.j()["error"];
  EXPECT_NE(message.find("'options.seed' cannot be sent to model 'claude'"), std::string::npos) << message;
  EXPECT_NE(message.find("Anthropic"), std::string::npos) << message;
  EXPECT_NE(message.find("OpenAI-compatible or Ollama"), std::string::npos) << message;
  // In the Anthropic front's error shape on /v1/messages.
  json body = base_body("/v1/messages", "oai");
  body["thinking"] = {{"type", "enabled"}, {"budget_tokens", 1024}};
  r = request(port(), "POST", "/v1/messages", body.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j()["type"], "error");
  EXPECT_EQ(r.j()["error"]["type"], "invalid_request_error");
}

TEST_F(ParamsTest, OllamaRunnerSettingsAreReportedWhereTheyCannotApply) {
  // keep_alive and the runner options say how an Ollama server runs the model, not what it answers: an
  // OpenAI-compatible or Anthropic backend runs it its own way, and the answer says they were not applied.
  for (const char* m : {"oai", "claude"}) {
    SCOPED_TRACE(m);
    json body = base_body("/api/chat", m);
    body["keep_alive"] = "5m";
    body["options"] = {{"num_ctx", 4096}, {"use_mmap", false}, {"temperature", 0.5}};
    auto r = request(port(), "POST", "/api/chat", body.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["x-tinyroute-unapplied"], "keep_alive, options.num_ctx, options.use_mmap");
    const json sent = env->upstream->last().second;
    EXPECT_EQ(sent["temperature"], 0.5);
    EXPECT_FALSE(sent.contains("keep_alive") || sent.contains("options") || sent.contains("num_ctx")) << sent;
    body["stream"] = true; // streamed: the header comes with the stream's head
    r = request(port(), "POST", "/api/chat", body.dump());
    EXPECT_EQ(r.headers["x-tinyroute-unapplied"], "keep_alive, options.num_ctx, options.use_mmap");
  }
  json body = base_body("/api/chat", "olla");
  body["keep_alive"] = "5m";
  body["options"] = {{"num_ctx", 4096}};
  auto r = request(port(), "POST", "/api/chat", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.count("x-tinyroute-unapplied"), 0u);
  EXPECT_EQ(env->upstream->last().second["keep_alive"], "5m");
  EXPECT_EQ(env->upstream->last().second["options"]["num_ctx"], 4096);
  // The same on /api/embed.
  r = request(
      port(), "POST", "/api/embed",
      json{{"model", "oai"}, {"input", "x"}, {"keep_alive", "1m"}, {"options", {{"num_ctx", 512}}}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-tinyroute-unapplied"], "keep_alive, options.num_ctx");
  EXPECT_FALSE(env->upstream->last().second.contains("keep_alive"));
  r = request(
      port(), "POST", "/api/embed",
      json{{"model", "olla"}, {"input", "x"}, {"keep_alive", "1m"}, {"options", {{"num_ctx", 512}}}}.dump());
  EXPECT_EQ(env->upstream->last().second["keep_alive"], "1m");
  EXPECT_EQ(env->upstream->last().second["options"]["num_ctx"], 512);
}

TEST_F(ParamsTest, RoutingSkipsACandidateThatCannotTakeAParameter) {
  json body = base_body("/v1/chat/completions", "auto-claude-then-oai");
  body["seed"] = 7;
  auto r = request(port(), "POST", "/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-tinyroute-model"], "oai") << "claude has no seed: its fallback answered";
  EXPECT_EQ(env->upstream->last().second["seed"], 7);
  body.erase("seed");
  r = request(port(), "POST", "/v1/chat/completions", body.dump());
  EXPECT_EQ(r.headers["x-tinyroute-model"], "claude");
}

TEST_F(ParamsTest, OpenAIEmbeddingsReachBothKindsOfBackend) {
  for (const char* m : {"oai", "olla"}) {
    SCOPED_TRACE(m);
    auto r = request(port(), "POST", "/v1/embeddings",
                     json{{"model", m}, {"input", "hello"}, {"dimensions", 3}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = r.j();
    EXPECT_EQ(j["object"], "list");
    EXPECT_EQ(j["model"], m);
    EXPECT_EQ(j["data"][0]["object"], "embedding");
    EXPECT_EQ(j["data"][0]["embedding"], json::parse("[0.5,-1.25,3]"));
    EXPECT_EQ(j["usage"]["prompt_tokens"], 2);
    EXPECT_EQ(env->upstream->last().first, std::string(m) == "oai" ? "/v1/embeddings" : "/api/embed");
    EXPECT_EQ(env->upstream->last().second["dimensions"], 3);
    // base64: the little-endian float32 bytes of 0.5, -1.25, 3.
    r = request(port(), "POST", "/v1/embeddings",
                json{{"model", m}, {"input", {"hello"}}, {"encoding_format", "base64"}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.j()["data"][0]["embedding"], "AAAAPwAAoL8AAEBA");
  }
  const std::vector<std::pair<json, std::string>> refused = {
      {{{"model", "olla"}, {"input", "x"}, {"user", "u"}}, "'user'"},
      {{{"model", "oai"}, {"input", {1, 2, 3}}}, "token ids"},
      {{{"model", "oai"}, {"input", {{1, 2}, {3}}}}, "token ids"},
      {{{"model", "oai"}, {"input", "x"}, {"encoding_format", "int8"}}, "'encoding_format'"},
      {{{"model", "oai"}, {"input", "x"}, {"dimensions", 0}}, "'dimensions'"},
      {{{"model", "oai"}, {"input", ""}}, "'input'"},
      {{{"model", "oai"}, {"input", "x"}, {"truncate", true}},
       "Unrecognized request argument supplied: truncate"},
      {{{"model", "claude"}, {"input", "x"}}, "Anthropic"},
  };
  for (const auto& [body, named] : refused) {
    SCOPED_TRACE(body.dump());
    auto r = request(port(), "POST", "/v1/embeddings", body.dump());
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.j()["error"]["message"].get<std::string>().find(named), std::string::npos) << r.body;
  }
  // Ollama's own /api/embed: an Ollama-only field to an OpenAI-compatible backend is refused too.
  auto r = request(port(), "POST", "/api/embed",
                   json{{"model", "oai"}, {"input", "x"}, {"truncate", false}}.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.j()["error"].get<std::string>().find("'truncate'"), std::string::npos) << r.body;
  r = request(port(), "POST", "/api/embed",
              json{{"model", "olla"}, {"input", "x"}, {"truncate", false}}.dump());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(env->upstream->last().second["truncate"], false);
}

TEST_F(ParamsTest, CountTokensSaysWhoCounted) {
  const json body = {{"model", "claude"},
                     {"system", "Be brief."},
                     {"messages", {{{"role", "user"}, {"content", "one two three"}}}},
                     {"tools", anthropic_tools}};
  // An Anthropic backend counts itself: the request reaches its count_tokens without generation fields.
  auto r = request(port(), "POST", "/v1/messages/count_tokens", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j(), json({{"input_tokens", 42}}));
  EXPECT_EQ(r.headers["x-tinyroute-token-count"], "upstream");
  EXPECT_EQ(r.headers["x-tinyroute-model"], "claude");
  auto [path, sent] = env->upstream->last();
  EXPECT_EQ(path, "/v1/messages/count_tokens");
  EXPECT_EQ(sent["system"], "Be brief.");
  EXPECT_EQ(sent["tools"][0]["name"], "f");
  EXPECT_FALSE(sent.contains("max_tokens") || sent.contains("stream")) << sent.dump();

  // An OpenAI-compatible backend with a counting endpoint (llama-server's).
  json b = body;
  b["model"] = "oai";
  r = request(port(), "POST", "/v1/messages/count_tokens", b.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j()["input_tokens"], 17);
  EXPECT_EQ(r.headers["x-tinyroute-token-count"], "backend-tokenizer");
  std::tie(path, sent) = env->upstream->last();
  EXPECT_EQ(path, "/v1/chat/completions/input_tokens");
  EXPECT_EQ(sent["messages"][0], json({{"role", "system"}, {"content", "Be brief."}}));

  // Ollama has none: the internal model's tokenizer (here one token a word) estimates.
  b["model"] = "olla";
  r = request(port(), "POST", "/v1/messages/count_tokens", b.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-tinyroute-token-count"], "internal-estimate");
  EXPECT_GE(r.j()["input_tokens"].get<int>(), 6) << "system, Be brief., user, one two three";

  // Routed like /v1/messages; the internal model and unknown models refused in Anthropic's shape.
  b["model"] = "auto";
  r = request(port(), "POST", "/v1/messages/count_tokens", b.dump());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["x-tinyroute-model"], "oai");
  b["model"] = "router-small";
  r = request(port(), "POST", "/v1/messages/count_tokens", b.dump());
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.j()["error"]["type"], "internal_model_forbidden");
  b["model"] = "nope";
  r = request(port(), "POST", "/v1/messages/count_tokens", b.dump());
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.j()["type"], "error");
  r = request(port(), "POST", "/v1/messages/count_tokens", R"({"model":"oai"})");
  EXPECT_EQ(r.status, 400);
}

TEST_F(ParamsTest, TheInternalModelIsRefusedOnTheNewEndpoints) {
  for (const char* name : {"tinyllama-1.1b-chat", "ROUTER-SMALL:latest"}) {
    SCOPED_TRACE(name);
    auto r = request(port(), "POST", "/v1/responses", json{{"model", name}, {"input", "hi"}}.dump());
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.j()["error"]["type"], "internal_model_forbidden");
    r = request(port(), "POST", "/v1/embeddings", json{{"model", name}, {"input", "hi"}}.dump());
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.j()["error"]["type"], "internal_model_forbidden");
  }
}

} // namespace
