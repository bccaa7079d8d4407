// The Ollama and MLX-server surfaces as their clients use them: /api/tags, /api/show, /api/ps,
// /api/version, GET and HEAD /, /api/embed and /api/embeddings, request fields passed through to an
// Ollama backend, /api/generate with a category, the priority header, /queue/stats and /health, and
// per-backend concurrency limits served by priority. Backends are real: llama-server (chat, and a second
// one serving embeddings), tinyroute's own Ollama front as an Ollama-kind backend, and a small real
// Ollama-shaped server that records what reaches it.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "sdk.h"
#include "test-support.h"
#include "tinyroute/gateway.h"
#include "upstreams.h"

namespace {

using namespace tinyroute;
using namespace tinyroute::test::gw;
namespace t = tinyroute::test;

// A real little upstream that records every request body in arrival order and answers "ok": NDJSON on
// Ollama's /api/chat, SSE on OpenAI's /v1/chat/completions. With hold_first, the first request is held
// open until release(): it keeps a backend slot busy.
class RecordingOllama {
public:
  explicit RecordingOllama(bool hold_first = false)
      : hold_first_(hold_first), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { serve(); });
  }
  ~RecordingOllama() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      released_ = true;
    }
    cv_.notify_all();
    beast::error_code ec;
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
    for (auto& c : connections_) c.join();
  }
  int port() const { return acceptor_.local_endpoint().port(); }
  std::vector<json> bodies() const {
    std::lock_guard lock(mutex_);
    return bodies_;
  }
  std::vector<std::string> targets() const {
    std::lock_guard lock(mutex_);
    return targets_;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      released_ = true;
    }
    cv_.notify_all();
  }

private:
  void serve() {
    for (;;) {
      tcp::socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec) return;
      {
        std::lock_guard lock(mutex_);
        if (stop_) return;
      }
      connections_.emplace_back([this, s = std::move(socket)]() mutable { answer(std::move(s)); });
    }
  }
  void answer(tcp::socket socket) {
    beast::error_code ec;
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    http::read(socket, buf, req, ec);
    if (ec) return;
    bool hold = false;
    {
      std::lock_guard lock(mutex_);
      bodies_.push_back(json::parse(req.body(), nullptr, false));
      targets_.push_back(std::string(req.target()));
      hold = hold_first_ && bodies_.size() == 1;
    }
    if (hold) {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return released_; });
    }
    const bool openai = req.target().starts_with("/v1/");
    const std::string sse =
        "data: " +
        json{{"choices", {{{"index", 0}, {"delta", {{"content", "ok"}}}, {"finish_reason", "stop"}}}}}
            .dump() +
        "\n\ndata: [DONE]\n\n";
    const std::string body = openai ? sse
                                    : json{{"model", "recorded"},
                                           {"created_at", "2026-01-01T00:00:00Z"},
                                           {"message", {{"role", "assistant"}, {"content", "ok"}}},
                                           {"done", false}}
                                              .dump() +
                                          "\n" +
                                          json{{"model", "recorded"},
                                               {"created_at", "2026-01-01T00:00:00Z"},
                                               {"message", {{"role", "assistant"}, {"content", ""}}},
                                               {"done", true},
                                               {"done_reason", "stop"},
                                               {"prompt_eval_count", 3},
                                               {"eval_count", 1}}
                                              .dump() +
                                          "\n";
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, openai ? "text/event-stream" : "application/x-ndjson");
    res.body() = body;
    res.keep_alive(false);
    res.prepare_payload();
    http::write(socket, res, ec);
    socket.close(ec);
  }
  bool hold_first_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::vector<std::thread> connections_; // only touched by the accept thread, then the destructor
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<json> bodies_;
  std::vector<std::string> targets_;
  bool released_ = false;
  bool stop_ = false;
};

struct Env {
  std::unique_ptr<t::TempDir> dir;
  std::unique_ptr<t::Process> llama, embedder;
  int llama_port = 0, embed_port = 0;
  std::unique_ptr<RecordingOllama> recorder;
  std::unique_ptr<Gateway> inner; // Ollama-kind backend: tinyroute's own Ollama front
  std::unique_ptr<Gateway> gw;
  std::atomic<int> router_calls{0};
  std::string skip;
};
Env* env = nullptr;

class OllamaSurface : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    env = new Env;
    if (std::string(TINYROUTE_LLAMA_SERVER).empty() || std::string(TINYROUTE_MKMODEL).empty()) {
      env->skip = "llama-server or tinyroute-mkmodel is not built";
      return;
    }
    env->dir = std::make_unique<t::TempDir>();
    env->llama = start_llama_server({"-c", "2048", "-np", "4"}, env->llama_port, env->dir->file("llama.log"),
                                    env->skip);
    if (!env->skip.empty()) return;
    env->embedder = start_llama_server({"-c", "1024", "-np", "2", "--embeddings", "--pooling", "mean"},
                                       env->embed_port, env->dir->file("embed.log"), env->skip);
    if (!env->skip.empty()) return;
    env->recorder = std::make_unique<RecordingOllama>();

    Config inner = base_config();
    inner.models = {model("llama", Provider::openai, env->llama_port),
                    model("embedder", Provider::openai, env->embed_port)};
    inner.models[1].capabilities.embedding = true;
    GatewayOptions inner_opts;
    inner_opts.port = 0;
    env->inner = std::make_unique<Gateway>(inner, nullptr, inner_opts);
    env->inner->start();

    Config c = base_config();
    c.categories = {{"general", "anything", {}}, {"coding", "code", {}}, {"vision", "images", {}}};
    c.models = {model("qwen2.5-coder:32b", Provider::openai, env->llama_port),
                model("llava:7b", Provider::ollama, env->recorder->port()),
                model("recorded:8b", Provider::ollama, env->recorder->port()),
                model("nomic-embed-text", Provider::openai, env->embed_port),
                model("embed-chained", Provider::ollama, env->inner->port()),
                model("recorded-openai", Provider::openai, env->recorder->port())};
    c.models[0].upstream_model = "llama";
    c.models[0].categories = {"coding", "general"};
    c.models[0].capabilities.tools = true;
    c.models[0].context_window = 2048;
    c.models[1].categories = {"vision"};
    c.models[1].capabilities.vision = true;
    c.models[3].categories = {};
    c.models[3].capabilities.embedding = true;
    c.models[4].upstream_model = "embedder";
    c.models[4].categories = {};
    c.models[4].capabilities.embedding = true;
    GatewayOptions opts;
    opts.port = 0;
    opts.threads = 2;
    opts.breaker_failures = 1000;
    Router router = [](const ChatRequest&) {
      ++env->router_calls;
      RouteDecision d;
      d.category = "general";
      d.model = "qwen2.5-coder:32b";
      d.source = "model";
      return d;
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
  }
  static int port() { return env->gw->port(); }
  static Reply post(const std::string& path, const json& body,
                    const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return request(port(), "POST", path, body.dump(), headers);
  }
};

bool has(const json& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

TEST_F(OllamaSurface, TagsListEveryRoutableModelWithOllamasFieldsStablyAcrossCalls) {
  auto first = request(port(), "GET", "/api/tags");
  ASSERT_EQ(first.status, 200) << first.body;
  const json tags = first.j();
  std::vector<std::string> names;
  const std::regex digest("[0-9a-f]{64}");
  for (const auto& m : tags["models"]) {
    names.push_back(m["name"]);
    EXPECT_EQ(m["model"], m["name"]);
    EXPECT_TRUE(m["size"].is_number_integer()) << m;
    EXPECT_TRUE(m["modified_at"].is_string()) << m;
    EXPECT_TRUE(std::regex_match(m["digest"].get<std::string>(), digest)) << m;
    for (const char* key : {"format", "family", "parameter_size", "quantization_level"})
      EXPECT_TRUE(m["details"][key].is_string()) << key << " in " << m;
  }
  for (const char* expected : {"qwen2.5-coder:32b", "llava:7b", "nomic-embed-text", "auto"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  EXPECT_EQ(first.body.find("tinyllama"), std::string::npos) << "the internal model is never listed";
  const json& coder = *std::find_if(tags["models"].begin(), tags["models"].end(),
                                    [](const json& m) { return m["name"] == "qwen2.5-coder:32b"; });
  EXPECT_EQ(coder["details"]["family"], "qwen2.5-coder");
  EXPECT_EQ(coder["details"]["parameter_size"], "32B");
  EXPECT_EQ(request(port(), "GET", "/api/tags").j(), tags) << "a listing is stable across calls";

  auto ps = request(port(), "GET", "/api/ps");
  ASSERT_EQ(ps.status, 200);
  ASSERT_EQ(ps.j()["models"].size(), tags["models"].size());
  EXPECT_TRUE(ps.j()["models"][0]["expires_at"].is_string());
}

TEST_F(OllamaSurface, ShowAnswersEveryListedModelAndRefusesOthersInOllamasShape) {
  const json tags = request(port(), "GET", "/api/tags").j(); // named: the loop must outlive no temporary
  for (const auto& m : tags["models"]) {
    auto show = post("/api/show", {{"model", m["name"]}});
    ASSERT_EQ(show.status, 200) << m["name"] << ": " << show.body;
    const json s = show.j();
    EXPECT_TRUE(s["details"]["family"].is_string());
    EXPECT_TRUE(s["model_info"].is_object());
    EXPECT_TRUE(s["model_info"]["general.architecture"].is_string());
    EXPECT_TRUE(s["capabilities"].is_array());
  }
  auto coder = post("/api/show", {{"model", "qwen2.5-coder:32b"}}).j();
  EXPECT_TRUE(has(coder["capabilities"], "completion") && has(coder["capabilities"], "tools")) << coder;
  EXPECT_FALSE(has(coder["capabilities"], "vision"));
  EXPECT_EQ(coder["model_info"]["tinyroute.context_length"], 2048);
  auto llava = post("/api/show", {{"name", "llava:7b"}}).j(); // older clients send "name"
  EXPECT_TRUE(has(llava["capabilities"], "vision")) << llava;
  auto embed = post("/api/show", {{"model", "nomic-embed-text"}}).j();
  EXPECT_EQ(embed["capabilities"], json::array({"embedding"})) << embed;
  auto latest = post("/api/show", {{"model", "nomic-embed-text:latest"}});
  EXPECT_EQ(latest.status, 200) << "Ollama's implicit :latest tag";

  auto missing = post("/api/show", {{"model", "nope:1b"}});
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.j()["error"], "model 'nope:1b' not found") << missing.body;
  auto internal = post("/api/show", {{"model", "tinyllama-1.1b-chat"}});
  EXPECT_EQ(internal.status, 403);
  EXPECT_TRUE(internal.j()["error"].is_string());
  EXPECT_EQ(internal.j()["type"], "internal_model_forbidden");
  EXPECT_EQ(post("/api/show", json::object()).status, 400);
  EXPECT_EQ(request(port(), "POST", "/api/show", "{not json").status, 400);
}

TEST_F(OllamaSurface, VersionAndLivenessProbes) {
  auto version = request(port(), "GET", "/api/version");
  ASSERT_EQ(version.status, 200);
  EXPECT_TRUE(std::regex_match(version.j()["version"].get<std::string>(), std::regex(R"(\d+\.\d+\.\d+)")));
  auto root = request(port(), "GET", "/");
  EXPECT_EQ(root.status, 200);
  EXPECT_EQ(root.body, "Ollama is running");
  auto head = request(port(), "HEAD", "/");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(request(port(), "GET", "/v1/models").status, 200);
}

TEST_F(OllamaSurface, EmbedThroughOpenAIAndOllamaKindBackends) {
  auto direct = post("/api/embed", {{"model", "nomic-embed-text"}, {"input", {"hello world", "second"}}});
  ASSERT_EQ(direct.status, 200) << direct.body;
  const json d = direct.j();
  EXPECT_EQ(d["model"], "nomic-embed-text");
  ASSERT_EQ(d["embeddings"].size(), 2u);
  const std::size_t dim = d["embeddings"][0].size();
  EXPECT_GT(dim, 0u);
  EXPECT_EQ(d["embeddings"][1].size(), dim);
  EXPECT_NE(d["embeddings"][0], d["embeddings"][1]);
  EXPECT_GT(d["prompt_eval_count"].get<int>(), 0);

  // The same server through an Ollama-kind backend (its /api/embed): the same vectors.
  auto chained = post("/api/embed", {{"model", "embed-chained"}, {"input", {"hello world", "second"}}});
  ASSERT_EQ(chained.status, 200) << chained.body;
  ASSERT_EQ(chained.j()["embeddings"].size(), 2u);
  for (std::size_t i = 0; i < dim; ++i) {
    EXPECT_NEAR(chained.j()["embeddings"][0][i].get<double>(), d["embeddings"][0][i].get<double>(), 1e-4);
  }
  auto single = post("/api/embed", {{"model", "auto"}, {"input", "hello world"}});
  ASSERT_EQ(single.status, 200) << single.body;
  EXPECT_EQ(single.headers["x-tinyroute-model"], "nomic-embed-text");
  ASSERT_EQ(single.j()["embeddings"].size(), 1u);

  auto legacy = post("/api/embeddings", {{"model", "nomic-embed-text"}, {"prompt", "hello world"}});
  ASSERT_EQ(legacy.status, 200) << legacy.body;
  ASSERT_EQ(legacy.j()["embedding"].size(), dim);
  for (std::size_t i = 0; i < dim; ++i) {
    EXPECT_NEAR(legacy.j()["embedding"][i].get<double>(), single.j()["embeddings"][0][i].get<double>(), 1e-4);
  }
}

TEST_F(OllamaSurface, EmbedRefusalsAreClear) {
  auto not_embedding = post("/api/embed", {{"model", "qwen2.5-coder:32b"}, {"input", "x"}});
  EXPECT_EQ(not_embedding.status, 400);
  EXPECT_NE(not_embedding.j()["error"].get<std::string>().find("nomic-embed-text"), std::string::npos)
      << "names the models that embed: " << not_embedding.body;
  EXPECT_EQ(post("/api/embed", {{"model", "nope"}, {"input", "x"}}).status, 404);
  EXPECT_EQ(post("/api/embed", {{"model", "tinyllama-1.1b-chat"}, {"input", "x"}}).status, 403);
  EXPECT_EQ(post("/api/embed", {{"model", "nomic-embed-text"}}).status, 400);
  EXPECT_EQ(post("/api/embed", {{"model", "nomic-embed-text"}, {"input", {1, 2}}}).status, 400);
  EXPECT_EQ(post("/api/embeddings", {{"model", "nomic-embed-text"}}).status, 400);
}

TEST_F(OllamaSurface, RequestFieldsReachAnOllamaBackend) {
  const json schema = {
      {"type", "object"}, {"properties", {{"answer", {{"type", "string"}}}}}, {"required", {"answer"}}};
  auto chat =
      post("/api/chat", {{"model", "recorded:8b"},
                         {"stream", false},
                         {"messages", {{{"role", "user"}, {"content", "look"}, {"images", {"aGVsbG8="}}}}},
                         {"options",
                          {{"num_ctx", 4096},
                           {"num_predict", 5},
                           {"temperature", 0.2},
                           {"repeat_penalty", 1.1},
                           {"mirostat", 0}}},
                         {"keep_alive", "5m"},
                         {"think", false},
                         {"format", schema}});
  ASSERT_EQ(chat.status, 200) << chat.body;
  EXPECT_EQ(chat.j()["message"]["content"], "ok");
  auto bodies = env->recorder->bodies();
  ASSERT_FALSE(bodies.empty());
  const json& seen = bodies.back();
  EXPECT_EQ(seen["options"]["num_ctx"], 4096) << seen;
  EXPECT_EQ(seen["options"]["num_predict"], 5);
  EXPECT_DOUBLE_EQ(seen["options"]["temperature"].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ(seen["options"]["repeat_penalty"].get<double>(), 1.1);
  EXPECT_EQ(seen["options"]["mirostat"], 0);
  EXPECT_EQ(seen["keep_alive"], "5m");
  EXPECT_EQ(seen["think"], false);
  EXPECT_EQ(seen["format"], schema);
  EXPECT_EQ(seen["messages"][0]["images"], json::array({"aGVsbG8="}));

  // /api/generate: "json" format, the MLX-style top-level max_tokens, the system prompt.
  auto gen = post("/api/generate", {{"model", "recorded:8b"},
                                    {"prompt", "hi"},
                                    {"system", "be brief"},
                                    {"stream", false},
                                    {"format", "json"},
                                    {"max_tokens", 7}});
  ASSERT_EQ(gen.status, 200) << gen.body;
  EXPECT_EQ(gen.j()["response"], "ok");
  const json last = env->recorder->bodies().back();
  EXPECT_EQ(last["format"], "json");
  EXPECT_EQ(last["options"]["num_predict"], 7);
  EXPECT_EQ(last["messages"][0]["role"], "system");
  EXPECT_EQ(last.count("max_tokens"), 0u) << "dialect fields are not forwarded: " << last;

  EXPECT_EQ(post("/api/chat", {{"model", "recorded:8b"},
                               {"messages", {{{"role", "user"}, {"content", "x"}}}},
                               {"format", "yaml"}})
                .status,
            400);
}

TEST_F(OllamaSurface, FormatAndOptionsBecomeTheirOpenAIEquivalents) {
  const json schema = {
      {"type", "object"}, {"properties", {{"n", {{"type", "integer"}}}}}, {"required", {"n"}}};
  const std::vector<std::pair<json, json>> cases = {
      {json("json"), json{{"type", "json_object"}}},
      {schema, json{{"type", "json_schema"}, {"json_schema", {{"name", "response"}, {"schema", schema}}}}}};
  for (const auto& [format, expected] : cases) {
    auto r = post("/api/chat", {{"model", "recorded-openai"},
                                {"stream", false},
                                {"format", format},
                                {"keep_alive", "5m"},
                                {"options", {{"num_predict", 8}, {"num_ctx", 2048}, {"temperature", 0.5}}},
                                {"messages", {{{"role", "user"}, {"content", "a number"}}}}});
    ASSERT_EQ(r.status, 200) << format << ": " << r.body;
    EXPECT_EQ(r.j()["message"]["content"], "ok");
    EXPECT_EQ(env->recorder->targets().back(), "/v1/chat/completions");
    const json seen = env->recorder->bodies().back();
    EXPECT_EQ(seen["response_format"], expected) << seen;
    EXPECT_EQ(seen["max_tokens"], 8);
    EXPECT_DOUBLE_EQ(seen["temperature"].get<double>(), 0.5);
    EXPECT_FALSE(seen.contains("keep_alive") || seen.contains("options") || seen.contains("format"))
        << "how an Ollama server runs the model means nothing to an OpenAI backend: " << seen;
    EXPECT_EQ(r.headers["x-tinyroute-unapplied"], "keep_alive, options.num_ctx") << "said, not dropped";
  }
  // What would change the answer and has no OpenAI equivalent: a 400 naming it, never dropped.
  for (const auto& [field, value] : std::vector<std::pair<std::string, json>>{
           {"options", {{"repeat_penalty", 1.1}}}, {"options", {{"mirostat", 2}}}, {"think", true}}) {
    const std::size_t before = env->recorder->bodies().size();
    auto r = post("/api/chat", {{"model", "recorded-openai"},
                                {"stream", false},
                                {field, value},
                                {"messages", {{{"role", "user"}, {"content", "a number"}}}}});
    EXPECT_EQ(r.status, 400) << field << ": " << r.body;
    const std::string named =
        field == "options" ? "'options." + value.begin().key() + "'" : "'" + field + "'";
    EXPECT_NE(r.j()["error"].get<std::string>().find(named), std::string::npos) << r.body;
    EXPECT_EQ(env->recorder->bodies().size(), before) << "nothing was forwarded";
  }
}

TEST_F(OllamaSurface, GenerateWithACategoryUsesItsModelsWithoutClassifying) {
  const int calls = env->router_calls;
  auto r = post("/api/generate",
                {{"category", "coding"}, {"prompt", "write a loop"}, {"max_tokens", 3}, {"stream", false}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-tinyroute-model"], "qwen2.5-coder:32b");
  EXPECT_EQ(r.headers["x-tinyroute-category"], "coding");
  EXPECT_EQ(r.headers["x-tinyroute-decision-source"], "explicit");
  EXPECT_EQ(r.j()["done"], true);
  EXPECT_TRUE(r.j()["response"].is_string());
  EXPECT_LE(r.j()["eval_count"].get<int>(), 3) << "top-level max_tokens is honoured";
  EXPECT_GT(r.j()["eval_count"].get<int>(), 0);

  // Streamed, with an image: the vision category's model, through the Ollama-kind backend.
  auto s =
      post("/api/generate",
           {{"category", "vision"}, {"prompt", "what is this"}, {"images", {"aGVsbG8="}}, {"max_tokens", 3}});
  ASSERT_EQ(s.status, 200) << s.body;
  EXPECT_EQ(s.headers["x-tinyroute-model"], "llava:7b");
  EXPECT_EQ(s.headers["content-type"], "application/x-ndjson");
  int lines = 0;
  json final_line;
  std::istringstream in(s.body);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    ++lines;
    final_line = json::parse(line);
    EXPECT_TRUE(final_line["response"].is_string()) << line;
  }
  EXPECT_GE(lines, 1);
  EXPECT_EQ(final_line["done"], true);
  EXPECT_EQ(env->router_calls, calls) << "a named category skips classification";

  auto unknown = post("/api/generate", {{"category", "poetry"}, {"prompt", "x"}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.j()["error"].get<std::string>().find("general, coding, vision"), std::string::npos)
      << unknown.body;
  EXPECT_EQ(post("/api/generate", {{"prompt", "x"}}).status, 400) << "a model or a category is needed";
  EXPECT_EQ(post("/api/generate", {{"model", "auto"}, {"prompt", "x"}, {"max_tokens", 0}}).status, 400);
}

TEST_F(OllamaSurface, PriorityHeaderIsValidatedInEveryProtocolsShape) {
  const std::vector<std::pair<std::string, std::string>> bad = {{"X-Request-Priority", "urgent"}};
  auto ollama =
      post("/api/chat", {{"model", "auto"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}}, bad);
  EXPECT_EQ(ollama.status, 400);
  EXPECT_NE(ollama.j()["error"].get<std::string>().find("high, medium or low"), std::string::npos);
  auto openai = post("/v1/chat/completions",
                     {{"model", "auto"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}}, bad);
  EXPECT_EQ(openai.status, 400);
  EXPECT_TRUE(openai.j()["error"]["message"].is_string()) << openai.body;
  auto anthropic =
      post("/v1/messages",
           {{"model", "auto"}, {"max_tokens", 4}, {"messages", {{{"role", "user"}, {"content", "x"}}}}}, bad);
  EXPECT_EQ(anthropic.status, 400);
  EXPECT_EQ(anthropic.j()["type"], "error");
  EXPECT_EQ(post("/v1/route", {{"messages", {{{"role", "user"}, {"content", "x"}}}}}, bad).status, 400);
  EXPECT_EQ(post("/v1/route", {{"priority", "urgent"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}})
                .status,
            400);
  EXPECT_EQ(
      post("/v1/route", {{"priority", "low"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}}).status,
      200);
  auto ok = post(
      "/api/chat",
      {{"model", "recorded:8b"}, {"stream", false}, {"messages", {{{"role", "user"}, {"content", "x"}}}}},
      {{"X-Request-Priority", "HIGH"}});
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(OllamaSurface, QueueStatsAndHealthDescribeEveryBackend) {
  auto stats = request(port(), "GET", "/queue/stats");
  ASSERT_EQ(stats.status, 200);
  const json s = stats.j();
  EXPECT_TRUE(s["queue_depth"].is_number_integer());
  EXPECT_TRUE(s["in_flight"].is_number_integer());
  const std::string llama_url = "http://127.0.0.1:" + std::to_string(env->llama_port);
  ASSERT_TRUE(s["backends"].contains(llama_url)) << s;
  const json& b = s["backends"][llama_url];
  for (const char* key : {"in_flight", "waiting", "max_concurrency"})
    EXPECT_TRUE(b[key].is_number_integer()) << key;
  // Each backend lists its models with their availability (from the model-list poll, when on).
  EXPECT_TRUE(std::any_of(b["models"].begin(), b["models"].end(), [](const json& m) {
    return m.value("name", "") == "qwen2.5-coder:32b" && m.value("available", false);
  })) << b["models"];
  EXPECT_TRUE(b["waiting_by_priority"].contains("high"));
  auto health = request(port(), "GET", "/health").j();
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(health["backends"][llama_url]["breaker"], "closed") << health;
  EXPECT_TRUE(health.contains("internal_model"));
  EXPECT_TRUE(health["queue"]["queued"].is_number_integer());
}

// Runs the official ollama client (tests/gateway/node/ollama.mjs); its JSON lines keyed by "kind".
std::map<std::string, json> run_ollama_client(const std::vector<std::string>& args) {
  return run_node(TINYROUTE_GATEWAY_NODE_DIR, "ollama.mjs", args);
}

TEST_F(OllamaSurface, OfficialOllamaClientOnEveryEndpointStreamingIncluded) {
  if (!node_clients_installed(TINYROUTE_GATEWAY_NODE_DIR))
    GTEST_SKIP() << "run `make node-deps` to get the official ollama client";
  auto out = run_ollama_client({"http://127.0.0.1:" + std::to_string(port()), "qwen2.5-coder:32b", "surface",
                                "nomic-embed-text", "coding"});
  for (const char* kind :
       {"version", "tags", "show", "show-missing", "ps", "embed", "embeddings", "chat-options",
        "chat-ollama-only", "chat-stream", "generate-category", "generate-category-stream"})
    ASSERT_TRUE(out.count(kind)) << kind;
  EXPECT_EQ(out["chat-ollama-only"]["status"], 400);
  EXPECT_NE(out["chat-ollama-only"]["error"].get<std::string>().find("'options.repeat_penalty'"),
            std::string::npos)
      << out["chat-ollama-only"];
  EXPECT_TRUE(out["version"]["version"].is_string());
  EXPECT_TRUE(has(out["tags"]["names"], "auto"));
  EXPECT_TRUE(out["tags"]["details"]["family"].is_string());
  EXPECT_TRUE(has(out["show"]["capabilities"]["qwen2.5-coder:32b"], "tools"));
  EXPECT_EQ(out["show"]["capabilities"].size(), out["tags"]["names"].size()) << "every listed model shows";
  EXPECT_EQ(out["show-missing"]["status"], 404);
  EXPECT_EQ(out["show-missing"]["error"], "model 'missing-model:1b' not found");
  EXPECT_EQ(out["ps"]["count"], out["tags"]["names"].size());
  EXPECT_EQ(out["embed"]["count"], 2);
  EXPECT_GT(out["embed"]["dims"].get<int>(), 0);
  EXPECT_EQ(out["embeddings"]["dims"], out["embed"]["dims"]);
  EXPECT_EQ(out["chat-options"]["done"], true);
  EXPECT_GT(out["chat-options"]["eval_count"].get<int>(), 0);
  EXPECT_GE(out["chat-stream"]["lines"].get<int>(), 2);
  EXPECT_EQ(out["chat-stream"]["done"], true);
  EXPECT_EQ(out["generate-category"]["done"], true);
  EXPECT_EQ(out["generate-category"]["model"], "qwen2.5-coder:32b");
  EXPECT_LE(out["generate-category"]["eval_count"].get<int>(), 4);
  EXPECT_EQ(out["generate-category-stream"]["done"], true);
}

// Polls /queue/stats until `backend` has `waiting` forwards queued (bounded; no timing is asserted).
bool wait_for_waiting(int gateway_port, const std::string& backend, int waiting) {
  for (int i = 0; i < 2000; ++i) {
    auto s = request(gateway_port, "GET", "/queue/stats").j();
    if (s["backends"][backend]["waiting"] == waiting) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

TEST(BackendConcurrency, HighPriorityIsServedBeforeQueuedLowPriority) {
  RecordingOllama upstream(/*hold_first=*/true);
  Config c = base_config();
  c.models = {model("slow", Provider::ollama, upstream.port())};
  c.models[0].max_concurrency = 1;
  GatewayOptions opts;
  opts.port = 0;
  opts.threads = 2;
  Gateway gw(c, nullptr, opts);
  gw.start();
  const std::string backend = c.models[0].base_url;
  auto send = [&](const std::string& text, const std::string& priority) {
    return std::thread([&, text, priority] {
      auto r = request(
          gw.port(), "POST", "/api/chat",
          json{{"model", "slow"}, {"stream", false}, {"messages", {{{"role", "user"}, {"content", text}}}}}
              .dump(),
          {{"X-Request-Priority", priority}});
      EXPECT_EQ(r.status, 200) << text << ": " << r.body;
    });
  };
  std::vector<std::thread> clients;
  clients.push_back(send("first", "low")); // takes the only slot and is held there
  for (int i = 0; i < 2000 && upstream.bodies().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(upstream.bodies().size(), 1u);
  clients.push_back(send("low-1", "low"));
  ASSERT_TRUE(wait_for_waiting(gw.port(), backend, 1));
  clients.push_back(send("low-2", "medium"));
  ASSERT_TRUE(wait_for_waiting(gw.port(), backend, 2));
  clients.push_back(send("high", "high"));
  ASSERT_TRUE(wait_for_waiting(gw.port(), backend, 3));
  auto stats = request(gw.port(), "GET", "/queue/stats").j()["backends"][backend];
  EXPECT_EQ(stats["in_flight"], 1);
  EXPECT_EQ(stats["waiting_by_priority"]["high"], 1);
  EXPECT_EQ(stats["waiting_by_priority"]["low"], 1);
  upstream.release();
  for (auto& t : clients) t.join();
  std::vector<std::string> order;
  for (const auto& b : upstream.bodies()) order.push_back(b["messages"][0]["content"]);
  EXPECT_EQ(order, (std::vector<std::string>{"first", "high", "low-2", "low-1"}))
      << "one at a time: high first, then medium, then low";
  EXPECT_EQ(request(gw.port(), "GET", "/queue/stats").j()["backends"][backend]["in_flight"], 0);
  gw.stop(std::chrono::seconds(1));
}

} // namespace
