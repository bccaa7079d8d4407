// A replay of the calls a local multi-agent deployment's agents make to the Ollama / MLX server that
// tinyroute replaces, against a real `tinyroute serve` (generated internal model) forwarding to a real
// llama-server: probe /v1/models, /api/tags and /api/show; /api/chat with options and the priority
// header, whole and streamed; /api/generate with a category; /health and /queue/stats. Every response
// is checked for the fields those agents parse.
#include <gtest/gtest.h>

#include <csignal>
#include <sstream>
#include <thread>

#include "cli-common.h"

namespace cli_test {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

// An Ollama chat/generate answer line as those agents read it.
void expect_ollama_answer(const json& j, bool generate, bool done) {
  EXPECT_TRUE(j["model"].is_string()) << j;
  EXPECT_TRUE(j["created_at"].is_string()) << j;
  EXPECT_EQ(j["done"], done) << j;
  if (generate) {
    EXPECT_TRUE(j["response"].is_string()) << j;
  } else {
    EXPECT_EQ(j["message"]["role"], "assistant") << j;
    EXPECT_TRUE(j["message"]["content"].is_string()) << j;
  }
  if (done) {
    EXPECT_TRUE(j["done_reason"].is_string()) << j;
    EXPECT_TRUE(j["eval_count"].is_number_integer()) << j;
    EXPECT_TRUE(j["prompt_eval_count"].is_number_integer()) << j;
    EXPECT_TRUE(j["total_duration"].is_number_integer()) << j;
  }
}

std::vector<json> ndjson(const std::string& body) {
  std::vector<json> lines;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(json::parse(line, nullptr, false));
  }
  return lines;
}

TEST(DeploymentReplay, TheAgentsCallsAllAnswerInTheShapesTheyParse) {
  if (std::string(TINYROUTE_LLAMA_SERVER).empty()) GTEST_SKIP() << "llama-server is not built";
  t::TempDir dir;
  const int llama_port = t::free_port();
  t::Process llama({TINYROUTE_LLAMA_SERVER, "-m", t::tiny_model(2), "--port", std::to_string(llama_port),
                    "--host", "127.0.0.1", "-c", "2048", "-np", "2", "-t", "1"},
                   {}, dir.file("llama-server.log"));
  ASSERT_TRUE(t::wait_healthy(llama_port, llama, std::chrono::seconds(120)))
      << t::read_file(dir.file("llama-server.log"));
  const std::string config = dir.file("tinyroute.yaml");
  const std::string log = dir.file("serve.log");
  t::write_file(config, config_yaml(t::tiny_model(), llama_port));
  const int port = t::free_port();
  t::Process serve({TINYROUTE_CLI, "serve", "--config", config, "--port", std::to_string(port)}, {}, log);
  ASSERT_TRUE(t::wait_healthy(port, serve, std::chrono::seconds(60))) << t::read_file(log);
  auto get = [&](const std::string& path) { return t::http_request(port, "GET", path); };
  auto post = [&](const std::string& path, const json& body, const Headers& headers = {}) {
    return t::http_request(port, "POST", path, body.dump(), headers);
  };

  // 1. Probing the server before use: a 404 on /v1/models would read as "server down".
  auto models = get("/v1/models");
  ASSERT_EQ(models.status, 200) << models.body;
  std::vector<std::string> ids;
  const json listed = models.j(); // a named copy: the loop must not walk a destroyed temporary
  for (const auto& m : listed["data"]) ids.push_back(m["id"]);
  EXPECT_EQ(ids, (std::vector<std::string>{"big", "spare", "auto"}));
  EXPECT_EQ(get("/").body, "Ollama is running");
  EXPECT_TRUE(get("/api/version").j()["version"].is_string());

  // 2. /api/tags, then /api/show for each model: a model whose show fails is dropped by the agents.
  auto tags = get("/api/tags");
  ASSERT_EQ(tags.status, 200);
  ASSERT_EQ(tags.j()["models"].size(), 3u) << tags.body;
  const json tag_list = tags.j();
  for (const auto& m : tag_list["models"]) {
    EXPECT_TRUE(m["size"].is_number_integer() && m["modified_at"].is_string() && m["details"].is_object())
        << m;
    auto show = post("/api/show", {{"model", m["name"]}});
    ASSERT_EQ(show.status, 200) << m["name"] << ": " << show.body;
    EXPECT_TRUE(show.j()["capabilities"].is_array());
    EXPECT_TRUE(show.j()["details"].is_object());
    EXPECT_TRUE(show.j()["model_info"].is_object());
  }
  EXPECT_EQ(post("/api/show", {{"model", "qwen3-coder:30b"}}).status, 404);
  EXPECT_EQ(post("/api/show", {{"model", "tinyllama"}}).status, 403);

  // 3. /api/chat as the agents send it: options, keep_alive, the priority header; "auto" is classified
  //    by the internal model (at high priority) and forwarded.
  const json options = {{"num_ctx", 2048}, {"temperature", 0.3}, {"num_predict", 6}, {"top_p", 0.9}};
  const json messages = json::array({{{"role", "system"}, {"content", "Ты — Вероника, разработчик."}},
                                     {{"role", "user"}, {"content", "Напиши функцию сортировки на Python"}}});
  auto chat = post("/api/chat",
                   {{"model", "auto"},
                    {"messages", messages},
                    {"stream", false},
                    {"options", options},
                    {"keep_alive", "5m"}},
                   {{"X-Request-Priority", "high"}});
  ASSERT_EQ(chat.status, 200) << chat.body << t::read_file(log);
  expect_ollama_answer(chat.j(), false, true);
  EXPECT_LE(chat.j()["eval_count"].get<int>(), 6) << "options.num_predict reaches the backend";
  EXPECT_TRUE(chat.headers["x-tinyroute-model"] == "big" || chat.headers["x-tinyroute-model"] == "spare");
  EXPECT_FALSE(chat.headers["x-tinyroute-decision-source"].empty());

  auto streamed = post("/api/chat", {{"model", "big"}, {"messages", messages}, {"options", options}},
                       {{"X-Request-Priority", "low"}});
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_EQ(streamed.headers["content-type"], "application/x-ndjson");
  auto lines = ndjson(streamed.body);
  ASSERT_GE(lines.size(), 2u);
  for (std::size_t i = 0; i < lines.size(); ++i) expect_ollama_answer(lines[i], false, i + 1 == lines.size());

  EXPECT_EQ(
      post("/api/chat", {{"model", "auto"}, {"messages", messages}}, {{"X-Request-Priority", "asap"}}).status,
      400);

  // 4. The MLX-server dialect: /api/generate with a category instead of a model, top-level max_tokens.
  auto gen = post(
      "/api/generate",
      {{"category", "coding"}, {"prompt", "Напиши функцию на C++"}, {"max_tokens", 5}, {"stream", false}},
      {{"X-Request-Priority", "medium"}});
  ASSERT_EQ(gen.status, 200) << gen.body;
  expect_ollama_answer(gen.j(), true, true);
  EXPECT_LE(gen.j()["eval_count"].get<int>(), 5);
  EXPECT_EQ(gen.headers["x-tinyroute-category"], "coding");
  EXPECT_EQ(gen.headers["x-tinyroute-decision-source"], "explicit");
  auto gen_stream = post("/api/generate", {{"category", "coding"}, {"prompt", "Hello"}, {"max_tokens", 5}});
  ASSERT_EQ(gen_stream.status, 200) << gen_stream.body;
  auto glines = ndjson(gen_stream.body);
  ASSERT_GE(glines.size(), 1u);
  for (std::size_t i = 0; i < glines.size(); ++i)
    expect_ollama_answer(glines[i], true, i + 1 == glines.size());
  auto unknown = post("/api/generate", {{"category", "poetry"}, {"prompt", "x"}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.j()["error"].get<std::string>().find("chat, coding, math"), std::string::npos)
      << unknown.body;

  // 5. The native endpoints take the same priority, as a field or the header.
  EXPECT_EQ(post("/v1/classify", {{"text", "привет"}, {"priority", "high"}}).status, 200);
  EXPECT_EQ(post("/v1/classify", {{"text", "привет"}, {"priority", "urgent"}}).status, 400);
  EXPECT_EQ(post("/v1/analyze", {{"text", "привет"}}, {{"X-Request-Priority", "low"}}).status, 200);

  // 6. Health with detail and the queue, as the deployment's monitors read them.
  auto health = get("/health").j();
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(health["internal_model"]["loaded"], true) << health;
  EXPECT_TRUE(health["queue"]["queued"].is_number_integer());
  const std::string backend = "http://127.0.0.1:" + std::to_string(llama_port);
  EXPECT_EQ(health["backends"][backend]["breaker"], "closed") << health;
  auto stats = get("/queue/stats").j();
  EXPECT_TRUE(stats["queue_depth"].is_number_integer()) << stats;
  EXPECT_TRUE(stats["in_flight"].is_number_integer());
  EXPECT_EQ(stats["backends"][backend]["in_flight"], 0) << stats;
  EXPECT_GT(stats["internal_model"]["requests"].get<int>(), 0) << stats;

  EXPECT_EQ(serve.stop(SIGTERM, std::chrono::seconds(20)), 0) << t::read_file(log);
}

} // namespace
} // namespace cli_test
