// `tinyroute serve` as a real process: health, the native endpoints, SIGHUP reloads (good and broken
// configs), SIGTERM, and an end-to-end forward to a real llama-server standing in for the large model.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "cli-common.h"
#include "tinyroute/select.h"

namespace cli_test {

Reply http(int port, const std::string& method, const std::string& target, const std::string& body,
           const std::map<std::string, std::string>& headers) {
  return tinyroute::test::http_request(port, method, target, body, {headers.begin(), headers.end()});
}

namespace {

// Waits until the log mentions `what` (the server logs each reload's outcome).
bool wait_for_log(const std::string& path, const std::string& what, int count = 1) {
  for (int i = 0; i < 200; ++i) {
    const std::string log = t::read_file(path);
    int seen = 0;
    for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++seen;
    if (seen >= count) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool configured(const json& category) {
  return category.is_string() &&
         std::find(kCategories.begin(), kCategories.end(), category.get<std::string>()) != kCategories.end();
}

class ServeTest : public ::testing::Test {
protected:
  void start(int upstream_port, const std::string& extra_yaml = "") {
    start_with(config_yaml(t::tiny_model(), upstream_port) + extra_yaml, "tinyroute");
  }
  // Writes `yaml` to NAME.yaml and starts serve on it, logging to NAME.log.
  void start_with(const std::string& yaml, const std::string& name) {
    config = dir.file(name + ".yaml");
    log = dir.file(name + ".log");
    t::write_file(config, yaml);
    port = t::free_port();
    serve = std::make_unique<t::Process>(
        std::vector<std::string>{TINYROUTE_CLI, "serve", "--config", config, "--port", std::to_string(port)},
        std::map<std::string, std::string>{}, log);
    ASSERT_TRUE(t::wait_healthy(port, *serve)) << t::read_file(log);
  }
  t::TempDir dir;
  std::string config, log;
  int port = 0;
  std::unique_ptr<t::Process> serve;
};

TEST_F(ServeTest, AnswersNativeEndpointsReloadsAndStops) {
  start(t::free_port());
  auto c = http(port, "POST", "/v1/classify", R"({"text":"Напиши функцию на Rust"})");
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_TRUE(configured(c.j()["category"])) << c.body;
  EXPECT_EQ(c.j()["distribution"].size(), 3u);

  auto m = http(
      port, "POST", "/v1/classify",
      R"({"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"2+2?"}]}]})");
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_TRUE(configured(m.j()["category"])) << m.body;

  auto bad = http(port, "POST", "/v1/classify", R"({"text": 5})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_TRUE(bad.j()["error"]["message"].is_string()) << bad.body;
  EXPECT_EQ(http(port, "POST", "/v1/classify", "not json").status, 400);
  EXPECT_EQ(http(port, "POST", "/v1/classify", R"({"messages":[]})").status, 400);

  auto r = http(port, "POST", "/v1/route", R"({"messages":[{"role":"user","content":"hello"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(configured(r.j()["category"])) << r.body;
  EXPECT_TRUE(r.j()["model"] == "big" || r.j()["model"] == "spare") << r.body;

  // A changed description and a fourth category: reloaded, still serving, the new labels in use.
  std::string yaml = config_yaml(t::tiny_model(), t::free_port(), "Small talk, jokes and greetings.");
  yaml.replace(yaml.find("models:\n"), 8,
               "  - name: translation\n    description: Translating text.\nmodels:\n");
  yaml.replace(yaml.find("[chat, coding, math]"), 20, "[chat, coding, math, translation]");
  t::write_file(config, yaml);
  ::kill(serve->pid(), SIGHUP);
  ASSERT_TRUE(wait_for_log(log, "reloaded")) << t::read_file(log);
  auto reloaded = http(port, "POST", "/v1/classify", R"({"text":"hi"})");
  EXPECT_EQ(reloaded.status, 200);
  EXPECT_EQ(reloaded.j()["distribution"].size(), 4u) << reloaded.body;

  // A broken config: logged, the old one kept, the process alive.
  t::write_file(config, "internal_model: [\n");
  ::kill(serve->pid(), SIGHUP);
  ASSERT_TRUE(wait_for_log(log, "reload failed")) << t::read_file(log);
  EXPECT_TRUE(serve->running());
  EXPECT_TRUE(wait_for_log(log, "still serving the previous config: " + config + ":"))
      << "the error names the file: " << t::read_file(log);
  auto after = http(port, "POST", "/v1/classify", R"({"text":"hi"})");
  EXPECT_EQ(after.status, 200);
  EXPECT_EQ(after.j()["distribution"].size(), 4u) << "the last good config stays: " << after.body;

  auto metrics = http(port, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("tinyroute_"), std::string::npos);

  EXPECT_EQ(serve->stop(SIGTERM, std::chrono::seconds(20)), 0) << t::read_file(log);
  EXPECT_FALSE(t::wait_for_port(port, std::chrono::milliseconds(200)));
}

// /v1/analyze answers every decision in one pass; /v1/route and "auto" use the same pass, and a repeated
// request (whitespace and case aside) comes from the decision cache until a reload empties it.
TEST_F(ServeTest, AnalyzeRouteAndTheDecisionCache) {
  start(t::free_port());
  auto a = http(port, "POST", "/v1/analyze", R"({"text":"Write a Python function that sorts a list"})");
  ASSERT_EQ(a.status, 200) << a.body;
  const json j = a.j();
  EXPECT_TRUE(configured(j["category"]["category"])) << a.body;
  EXPECT_TRUE(j["agent"].is_null()) << "the config has no agents: " << a.body;
  for (const char* field : {"language", "urgency", "needs_tools", "complexity"})
    EXPECT_TRUE(j["fields"][field]["value"].is_string()) << field << ": " << a.body;
  EXPECT_TRUE(j["selection"]["model"] == "big" || j["selection"]["model"] == "spare") << a.body;
  EXPECT_EQ(j["source"], "model");
  EXPECT_GT(j["tokens_decoded"].get<int>(), 0);

  auto again =
      http(port, "POST", "/v1/analyze", R"({"text":"  write a PYTHON function that sorts a list "})");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.j()["source"], "cache") << again.body;
  EXPECT_EQ(again.j()["tokens_decoded"], 0);
  EXPECT_EQ(again.j()["category"]["category"], j["category"]["category"]);
  EXPECT_EQ(http(port, "POST", "/v1/analyze", R"({"text":"  "})").status, 400);

  const std::string body = R"({"messages":[{"role":"user","content":"what is 17 times 23?"}]})";
  auto r1 = http(port, "POST", "/v1/route", body);
  ASSERT_EQ(r1.status, 200) << r1.body;
  EXPECT_NE(r1.j()["source"], "cache") << r1.body;
  auto r2 = http(port, "POST", "/v1/route", body);
  ASSERT_EQ(r2.status, 200) << r2.body;
  EXPECT_EQ(r2.j()["source"], "cache") << r2.body;
  EXPECT_EQ(r2.j()["category"], r1.j()["category"]);
  EXPECT_EQ(r2.j()["model"], r1.j()["model"]);

  const std::string metrics = http(port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tinyroute_decision_cache_hits_total 2\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tinyroute_decision_cache_misses_total 2\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tinyroute_decision_cache_saved_seconds_total"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tinyroute_routing_duration_seconds_count{source=\"cache\"} 1"), std::string::npos)
      << metrics;

  ::kill(serve->pid(), SIGHUP);
  ASSERT_TRUE(wait_for_log(log, "reloaded")) << t::read_file(log);
  auto r3 = http(port, "POST", "/v1/route", body);
  ASSERT_EQ(r3.status, 200) << r3.body;
  EXPECT_NE(r3.j()["source"], "cache") << "a reload empties the cache: " << r3.body;
  EXPECT_EQ(serve->stop(SIGTERM, std::chrono::seconds(20)), 0) << t::read_file(log);
}

// One routing path: `tinyroute route --json` prints what POST /v1/route answers for the same text, and
// `tinyroute classify --json` what POST /v1/classify answers (the same rules, cache, model pass and
// selection), with a prompt strategy, a hidden-state one, and fused (a head trained by `tinyroute train`
// with the prompt beside it).
TEST_F(ServeTest, TheCommandLineRoutesAsTheServerDoes) {
  for (const std::string strategy : {"choice", "centroid", "fused"}) {
    SCOPED_TRACE(strategy);
    std::string yaml = config_yaml(t::tiny_model(), t::free_port());
    yaml.replace(yaml.find("  parallel: 4\n"), 14,
                 "  parallel: 4\n  strategy: " + strategy + "\n  state_dir: " + dir.file("state") + "\n");
    // A rule decides before the model on every entry point.
    yaml += "rules:\n  - keywords: [invoice]\n    category: math\n";
    if (strategy == "fused") {
      const std::string data = dir.file("train.jsonl");
      t::write_file(data, training_jsonl());
      t::write_file(dir.file("train.yaml"), yaml);
      auto [rc, out] = tinyroute({"train", data, "--config", dir.file("train.yaml"), "--heldout-every", "2"});
      ASSERT_EQ(rc, 0) << out;
    }
    start_with(yaml, "tinyroute-" + strategy);
    for (const std::string text :
         {"Write a Python function that sorts a list", "what is 17 times 23?", "Привет! Как дела?",
          "prod is down, the deploy failed", "check this invoice for me"}) {
      const json message = {{"role", "user"}, {"content", text}};
      auto server = http(port, "POST", "/v1/route", json{{"messages", json::array({message})}}.dump());
      ASSERT_EQ(server.status, 200) << server.body;
      auto [rc, out] = tinyroute({"route", "--config", config, "--json", text});
      ASSERT_EQ(rc, 0) << out;
      const json cli = parse_or_fail(out);
      EXPECT_EQ(cli["category"], server.j()["category"]) << text;
      EXPECT_NEAR(cli["confidence"].get<double>(), server.j()["confidence"].get<double>(), 1e-3) << text;
      EXPECT_EQ(cli["source"], server.j()["source"]) << text;
      EXPECT_EQ(cli["model"], server.j()["model"]) << text;
      EXPECT_EQ(cli["fallbacks"], server.j()["fallbacks"]) << text;
      // /v1/classify and `tinyroute classify` take the same path: the same category, confidence and
      // distribution, and the same source (the server's answer may come from its decision cache).
      auto c = http(port, "POST", "/v1/classify", json{{"text", text}}.dump());
      ASSERT_EQ(c.status, 200) << c.body;
      auto [crc, cout] = tinyroute({"classify", "--config", config, "--json", text});
      ASSERT_EQ(crc, 0) << cout;
      const json cli_classify = parse_or_fail(cout);
      for (const json& j : {c.j(), cli_classify}) {
        EXPECT_EQ(j["category"], server.j()["category"]) << text << " " << j.dump();
        EXPECT_NEAR(j["confidence"].get<double>(), server.j()["confidence"].get<double>(), 1e-3) << text;
      }
      EXPECT_EQ(cli_classify["distribution"].size(), c.j()["distribution"].size()) << text;
      for (size_t i = 0; i < c.j()["distribution"].size(); ++i)
        EXPECT_NEAR(cli_classify["distribution"][i]["prob"].get<double>(),
                    c.j()["distribution"][i]["prob"].get<double>(), 1e-3)
            << text;
      const bool rule = text.find("invoice") != std::string::npos;
      EXPECT_EQ(cli_classify["source"], server.j()["source"]) << text; // rule, or model | default
      EXPECT_EQ(server.j()["source"] == "rule", rule) << text;
      EXPECT_EQ(c.j()["source"], rule ? "rule" : "cache") << text; // /v1/route decided it a moment ago
      if (rule) {
        EXPECT_EQ(c.j()["category"], "math");
      }
    }
    EXPECT_EQ(serve->stop(SIGTERM, std::chrono::seconds(20)), 0) << t::read_file(log);
  }
}

// A conversation id (body field or x-tinyroute-conversation header) makes /v1/analyze, /v1/route and
// auto-routed chat requests see the conversation's earlier messages; the engine continues the kept
// sequence, and conversation messages never come from the decision cache.
TEST_F(ServeTest, ConversationsOverHttp) {
  start(t::free_port()); // nothing listens upstream: chat requests are routed, then fail to forward
  auto a1 = http(port, "POST", "/v1/analyze", R"({"text":"my build fails","conversation":"c1"})");
  ASSERT_EQ(a1.status, 200) << a1.body;
  EXPECT_EQ(a1.j()["conversation"]["source"], "new") << a1.body;
  EXPECT_EQ(a1.j()["conversation"]["turns"], 1);
  auto a2 = http(port, "POST", "/v1/analyze", R"({"text":"it is a linker error"})",
                 {{"x-tinyroute-conversation", "c1"}});
  ASSERT_EQ(a2.status, 200) << a2.body;
  EXPECT_EQ(a2.j()["conversation"]["id"], "c1") << a2.body;
  EXPECT_EQ(a2.j()["conversation"]["source"], "continued") << a2.body;
  EXPECT_EQ(a2.j()["conversation"]["turns"], 2);
  EXPECT_GT(a2.j()["conversation"]["reused_tokens"].get<int>(), 0);
  // The cues cost the same both times; of the query, only what the kept sequence lacked was decoded.
  const int cues = a1.j()["tokens_decoded"].get<int>() - a1.j()["query_tokens"].get<int>();
  EXPECT_EQ(a2.j()["tokens_decoded"].get<int>() + a2.j()["conversation"]["reused_tokens"].get<int>(),
            a2.j()["query_tokens"].get<int>() + cues)
      << a2.body;
  // A client's retry of a named message (message_id, or x-tinyroute-message-id) is not a new turn.
  for (const char* source : {"continued", "replayed"}) {
    auto a3 = http(port, "POST", "/v1/analyze", R"({"text":"on arm64 only","conversation":"c1"})",
                   {{"x-tinyroute-message-id", "m3"}});
    ASSERT_EQ(a3.status, 200) << a3.body;
    EXPECT_EQ(a3.j()["conversation"]["source"], source) << a3.body;
    EXPECT_EQ(a3.j()["conversation"]["turns"], 3) << a3.body;
  }
  EXPECT_TRUE(http(port, "POST", "/v1/analyze", R"({"text":"x"})").j()["conversation"].is_null());
  EXPECT_EQ(http(port, "POST", "/v1/analyze", R"({"text":"x","conversation":7})").status, 400);
  EXPECT_EQ(http(port, "POST", "/v1/analyze", R"({"text":"x","conversation":"c9","message_id":7})").status,
            400);

  const std::string body =
      R"({"messages":[{"role":"user","content":"what is 17 times 23?"}],"conversation":"c2"})";
  for (int i = 0; i < 2; ++i) {
    auto r = http(port, "POST", "/v1/route", body);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.j()["source"], "cache") << "a conversation message depends on the turns before it";
  }
  auto chat = http(port, "POST", "/v1/chat/completions",
                   R"({"model":"auto","messages":[{"role":"user","content":"and divided by 7?"}]})",
                   {{"x-tinyroute-conversation", "c2"}});
  EXPECT_GE(chat.status, 500) << chat.body;
  const std::string metrics = http(port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tinyroute_conversation_messages_total 6\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tinyroute_conversation_continued_total 4\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tinyroute_conversation_replayed_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tinyroute_conversations 2\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tinyroute_conversation_sequences 2\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tinyroute_decision_cache_hits_total 0\n"), std::string::npos) << metrics;
  // Classification, analyze and the metadata scorers each hold a prefix: more than one context.
  const auto at = metrics.find("\ntinyroute_engine_contexts ");
  ASSERT_NE(at, std::string::npos) << metrics;
  const int contexts = std::stoi(metrics.substr(at + std::string("\ntinyroute_engine_contexts ").size()));
  EXPECT_GE(contexts, 2) << metrics;
  EXPECT_LE(contexts, 4) << metrics;
  EXPECT_NE(metrics.find("\ntinyroute_engine_context_rebuilds_total "), std::string::npos) << metrics;
  EXPECT_EQ(serve->stop(SIGTERM, std::chrono::seconds(20)), 0) << t::read_file(log);
}

TEST_F(ServeTest, SigintStopsCleanlyToo) {
  start(t::free_port());
  EXPECT_EQ(serve->stop(SIGINT, std::chrono::seconds(20)), 0) << t::read_file(log);
}

// /v1/select skips what the gateway knows is down, as routing does: here every model's server is (the
// poll finds nothing listening), so there is no candidate, and the answer says why.
TEST_F(ServeTest, SelectSkipsModelsTheGatewayKnowsAreDown) {
  start(t::free_port(), "gateway:\n  availability_poll: 0.2\n");
  json h;
  for (int i = 0; i < 200; ++i) {
    h = http(port, "GET", "/health").j();
    bool polled = true;
    for (const auto& [url, backend] : h["backends"].items())
      polled = polled && backend.value("polled", false);
    if (polled) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto r = http(port, "POST", "/v1/select", R"({"category":"coding"})");
  EXPECT_EQ(r.status, 503) << r.body << "\n" << h.dump();
  const std::string message = r.j()["error"]["message"];
  EXPECT_NE(message.find("big: unavailable"), std::string::npos) << message;
  EXPECT_NE(message.find("spare: unavailable"), std::string::npos) << message;
  EXPECT_EQ(serve->stop(SIGTERM, std::chrono::seconds(20)), 0) << t::read_file(log);
}

// POST /v1/select is select_model over HTTP: the same answer as the library for the same config, and
// every bad body or impossible request in the OpenAI error shape.
TEST_F(ServeTest, SelectAnswersWhatSelectModelDoesAndSaysWhyItCannot) {
  start(t::free_port());
  const tinyroute::Config loaded = tinyroute::load_config(config);
  for (const auto& category : kCategories) {
    auto r = http(port, "POST", "/v1/select", json{{"category", category}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const tinyroute::Selection expected = tinyroute::select_model(loaded, category, {});
    EXPECT_EQ(r.j()["model"], expected.model) << r.body;
    EXPECT_EQ(r.j()["fallbacks"], json(expected.fallbacks)) << r.body;
    EXPECT_EQ(r.j()["reason"], expected.reason) << r.body;
    EXPECT_TRUE(r.j()["rejected"].is_array()) << r.body;
  }
  // chat: big first, spare from fallbacks.chat.
  auto chat = http(port, "POST", "/v1/select", R"({"category":"chat","estimated_tokens":100})");
  EXPECT_EQ(chat.j()["model"], "big") << chat.body;
  EXPECT_EQ(chat.j()["fallbacks"], json({"spare"})) << chat.body;

  // Too large for every context window: the client's fault, 413 naming the limit and each rejection.
  auto huge = http(port, "POST", "/v1/select", R"({"category":"math","estimated_tokens":100000})");
  EXPECT_EQ(huge.status, 413) << huge.body;
  EXPECT_EQ(huge.j()["error"]["code"], "context_length_exceeded") << huge.body;
  EXPECT_NE(huge.j()["error"]["message"].get<std::string>().find("big: context 8192 < 100000 tokens"),
            std::string::npos)
      << huge.body;
  EXPECT_EQ(http(port, "POST", "/v1/select", R"({"category":"coding","needs_vision":true})").status, 503);
  EXPECT_EQ(http(port, "POST", "/v1/select", R"({"category":"coding","needs_tools":true})").status, 503);

  auto unknown = http(port, "POST", "/v1/select", R"({"category":"poetry"})");
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  EXPECT_EQ(unknown.j()["error"]["type"], "invalid_request_error") << unknown.body;
  EXPECT_NE(
      unknown.j()["error"]["message"].get<std::string>().find("configured categories: chat, coding, math"),
      std::string::npos)
      << unknown.body;
  for (const char* body :
       {R"({})", R"({"category":5})", R"([])", R"({"category":"chat","needs_tools":"yes"})",
        R"({"category":"chat","estimated_tokens":-1})", R"({"category":"chat","estimated_tokens":1.5})",
        R"({"category":"chat","tools":true})"}) {
    auto r = http(port, "POST", "/v1/select", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_TRUE(r.j()["error"]["message"].is_string()) << r.body;
  }
  EXPECT_EQ(http(port, "GET", "/v1/select").status, 405);
}

TEST(ServeConfig, ListensWhereTheGatewaySectionSaysAndRequiresItsApiKey) {
  t::TempDir dir;
  const int port = t::free_port();
  const std::string config = dir.file("tinyroute.yaml");
  const std::string log = dir.file("serve.log");
  t::write_file(config, config_yaml(t::tiny_model(), t::free_port()) +
                            "gateway:\n  listen: \"127.0.0.1:" + std::to_string(port) +
                            "\"\n  api_keys:\n    - {key_env: TR_TEST_KEY, models: [\"*\"]}\n");
  t::Process serve({TINYROUTE_CLI, "serve", "--config", config}, {{"TR_TEST_KEY", "s3cret-key"}}, log);
  ASSERT_TRUE(t::wait_healthy(port, serve)) << t::read_file(log); // /health needs no key
  const std::string body = R"({"text":"fix the build"})";
  EXPECT_EQ(http(port, "POST", "/v1/classify", body).status, 401);
  EXPECT_EQ(http(port, "POST", "/v1/classify", body, {{"authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(http(port, "POST", "/v1/classify", body, {{"authorization", "Bearer s3cret-key"}}).status, 200);
  EXPECT_EQ(t::read_file(log).find("s3cret-key"), std::string::npos) << "an API key reached the log";
  EXPECT_EQ(serve.stop(SIGTERM), 0);
}

TEST(ServeConfig, AMissingApiKeyVariableIsAClearStartupError) {
  t::TempDir dir;
  const std::string config = dir.file("tinyroute.yaml");
  t::write_file(config, config_yaml(t::tiny_model(), t::free_port()) +
                            "gateway:\n  api_keys:\n    - {key_env: TR_UNSET_KEY_VAR, models: [\"*\"]}\n");
  auto [rc, out] = tinyroute({"serve", "--config", config, "--port", "0"});
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("TR_UNSET_KEY_VAR"), std::string::npos) << out;
}

TEST(ServeFailures, BusyPortAndBadConfigExitOneWithAMessage) {
  t::TempDir dir;
  const std::string config = dir.file("c.yaml");
  t::write_file(config, config_yaml(t::tiny_model(), t::free_port()));
  const int port = t::free_port();
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor busy(
      io, {boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  auto [rc, out] = tinyroute({"serve", "--config", config, "--port", std::to_string(port)});
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find(std::to_string(port)), std::string::npos) << out;

  t::write_file(config, "nope: 1\n");
  auto [rc2, out2] = tinyroute({"serve", "--config", config, "--port", "0"});
  EXPECT_EQ(rc2, 1) << out2;
  EXPECT_NE(out2.find(config + ":1:"), std::string::npos) << out2;
}

// The whole path: an OpenAI request for "auto" is classified by the internal model and forwarded to a
// real llama-server (another tiny model standing in for the large one).
TEST_F(ServeTest, ForwardsAutoToARealLlamaServer) {
  if (std::string(TINYROUTE_LLAMA_SERVER).empty()) GTEST_SKIP() << "llama-server is not built";
  const int llama_port = t::free_port();
  t::Process llama({TINYROUTE_LLAMA_SERVER, "-m", t::tiny_model(2), "--port", std::to_string(llama_port),
                    "--host", "127.0.0.1", "-c", "2048", "-np", "2", "-t", "1"},
                   {}, dir.file("llama-server.log"));
  ASSERT_TRUE(t::wait_healthy(llama_port, llama, std::chrono::seconds(120)))
      << t::read_file(dir.file("llama-server.log"));
  start(llama_port);

  const std::string request =
      R"({"model":"auto","max_tokens":8,"messages":[{"role":"user","content":"Привет! Как дела?"}]})";
  auto r = http(port, "POST", "/v1/chat/completions", request);
  ASSERT_EQ(r.status, 200) << r.body << t::read_file(log);
  EXPECT_TRUE(configured(json(r.headers["x-tinyroute-category"]))) << r.headers["x-tinyroute-category"];
  EXPECT_TRUE(r.headers["x-tinyroute-model"] == "big" || r.headers["x-tinyroute-model"] == "spare");
  EXPECT_EQ(r.j()["object"], "chat.completion") << r.body;
  EXPECT_TRUE(r.j()["choices"][0]["message"]["content"].is_string()) << r.body;

  // The internal model is never an answer model, whatever the client asks.
  auto refused = http(port, "POST", "/v1/chat/completions",
                      R"({"model":"tinyllama","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(refused.status, 403) << refused.body;

  // The Responses API routes the same way.
  auto responses = http(port, "POST", "/v1/responses",
                        R"({"model":"auto","max_output_tokens":8,"input":"Привет! Как дела?"})");
  ASSERT_EQ(responses.status, 200) << responses.body << t::read_file(log);
  EXPECT_EQ(responses.j()["object"], "response") << responses.body;
  EXPECT_TRUE(responses.headers["x-tinyroute-model"] == "big" ||
              responses.headers["x-tinyroute-model"] == "spare");
  EXPECT_EQ(serve->stop(SIGTERM, std::chrono::seconds(20)), 0) << t::read_file(log);
}

TEST_F(ServeTest, CountTokensEstimatesWithTheInternalModelWhenTheBackendCannotCount) {
  start(t::free_port()); // nothing listens there: the backend cannot count
  auto count = [&](const std::string& text) {
    auto r = http(port, "POST", "/v1/messages/count_tokens",
                  json{{"model", "big"}, {"messages", {{{"role", "user"}, {"content", text}}}}}.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["x-tinyroute-token-count"], "internal-estimate");
    return r.j()["input_tokens"].get<int>();
  };
  const int short_count = count("hello");
  EXPECT_GT(short_count, 0);
  EXPECT_GT(count("hello there, how are you doing on this fine morning?"), short_count);
  EXPECT_EQ(serve->stop(SIGTERM, std::chrono::seconds(20)), 0) << t::read_file(log);
}

} // namespace
} // namespace cli_test
