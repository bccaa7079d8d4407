// Availability-aware selection ("first installed model wins"): the gateway polls every backend's
// model list (a real llama-server's /v1/models, a real Ollama-dialect server's /api/tags), the router
// selects with that snapshot, and models a backend lacks, backends that stopped answering and backends
// whose breaker is open are skipped with the reason. The pure parts are checked on their own first.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "gateway/availability.h"
#include "test-support.h"
#include "tinyroute/gateway.h"
#include "tinyroute/select.h"
#include "upstreams.h"

namespace t = tinyroute::test;
using namespace tinyroute;
using namespace tinyroute::gateway;
using namespace tinyroute::test::gw;

namespace {

TEST(Availability, ParsesOllamaTagsAndOpenAiModels) {
  EXPECT_EQ(parse_model_list(
                Provider::ollama,
                R"({"models":[{"name":"qwen2.5:3b","model":"qwen2.5:3b"},{"name":"moondream:latest"}]})"),
            (std::set<std::string>{"qwen2.5:3b", "moondream:latest"}));
  EXPECT_EQ(parse_model_list(Provider::openai, R"({"object":"list","data":[{"id":"a"},{"id":"b"},7]})"),
            (std::set<std::string>{"a", "b"}));
  EXPECT_THROW(parse_model_list(Provider::ollama, "<html>"), std::runtime_error);
  EXPECT_THROW(parse_model_list(Provider::openai, R"({"models":[]})"), std::runtime_error);
}

TEST(Availability, LatestTagIsImplicit) {
  BackendModels b;
  b.models = {"moondream:latest", "qwen2.5:3b"};
  EXPECT_TRUE(has_model(b, "moondream"));
  EXPECT_TRUE(has_model(b, "moondream:latest"));
  EXPECT_FALSE(has_model(b, "qwen2.5"));
  b.models = {"minicpm-v"};
  EXPECT_TRUE(has_model(b, "minicpm-v:latest"));
}

TEST(Availability, SnapshotSaysWhyEachModelIsSkipped) {
  Config c = base_config();
  c.models = {model("here", Provider::ollama, 1001),     model("absent", Provider::ollama, 1001),
              model("dead", Provider::openai, 1002),     model("unpolled", Provider::ollama, 1003),
              model("cloud", Provider::anthropic, 1004), model("tripped", Provider::openai, 1005)};
  std::map<std::string, BackendModels> polled;
  polled["http://127.0.0.1:1001"] = {
      "http://127.0.0.1:1001", Provider::ollama, true, true, "", {"here:latest"}, {}};
  polled["http://127.0.0.1:1002"] = {
      "http://127.0.0.1:1002", Provider::openai, true, false, "refused", {}, {}};
  Breakers breakers({1, std::chrono::seconds(60)});
  breakers.failure("http://127.0.0.1:1005");
  const Availability a = availability_of(c, polled, breakers);
  EXPECT_EQ(a.unavailable_models, (std::set<std::string>{"absent", "dead", "tripped"}));
  EXPECT_EQ(a.why.at("absent"), "not installed on http://127.0.0.1:1001");
  EXPECT_NE(a.why.at("dead").find("did not answer its model list"), std::string::npos);
  EXPECT_EQ(a.why.at("tripped"), "circuit breaker open for http://127.0.0.1:1005");

  c.categories = {{"general", "anything", {}}};
  const Selection s = select_model(c, "general", {}, a);
  EXPECT_EQ(s.model, "here");
  EXPECT_NE(s.reason.find("skipped absent: unavailable (not installed on http://127.0.0.1:1001)"),
            std::string::npos)
      << s.reason;
}

TEST(Availability, BreakerRefusesOnlyWhileCoolingDown) {
  Breakers breakers({1, std::chrono::milliseconds(1000)});
  const auto t0 = Breakers::Clock::now();
  breakers.failure("b", t0);
  EXPECT_TRUE(breakers.refusing("b", t0 + std::chrono::milliseconds(10)));
  // After the cool-down the backend is selectable again, so a request can be the probe.
  EXPECT_FALSE(breakers.refusing("b", t0 + std::chrono::milliseconds(1500)));
  EXPECT_FALSE(breakers.refusing("never-failed", t0));
}

std::string broken_url(const BadUpstream& b) {
  return "http://127.0.0.1:" + std::to_string(b.port());
}

// ---- with real servers -------------------------------------------------------------------------------

// A llama-server serving the generated model as "tiny-a" (OpenAI-compatible: /v1/models), a tinyroute
// gateway in front of it speaking Ollama's API (/api/tags lists "tiny-a"), and the gateway under test
// routing "auto" with select_model over the polled availability.
class AvailabilityServers : public ::testing::Test {
protected:
  void SetUp() override {
    if (std::string(TINYROUTE_LLAMA_SERVER).empty() || std::string(TINYROUTE_MKMODEL).empty())
      GTEST_SKIP() << "llama-server or tinyroute-mkmodel is not built";
    llama_port = t::free_port();
    llama = std::make_unique<t::Process>(std::vector<std::string>{TINYROUTE_LLAMA_SERVER, "--port",
                                                                  std::to_string(llama_port), "--host",
                                                                  "127.0.0.1", "-m", t::tiny_model(), "-c",
                                                                  "1024", "-np", "1", "--alias", "tiny-a"},
                                         std::map<std::string, std::string>{}, dir.file("llama-server.log"));
    bool healthy = false;
    for (int i = 0; i < 300 && !healthy; ++i) {
      if (t::wait_for_port(llama_port, std::chrono::milliseconds(100))) {
        try {
          healthy = request(llama_port, "GET", "/health").status == 200;
        } catch (const std::exception&) {
        }
      }
      if (!healthy) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(healthy) << t::read_file(dir.file("llama-server.log"));

    Config inner_config = base_config();
    inner_config.models = {model("tiny-a", Provider::openai, llama_port)};
    GatewayOptions inner_opts;
    inner_opts.port = 0;
    inner = std::make_unique<Gateway>(inner_config, nullptr, inner_opts);
    inner->start();

    // In selection order: two models their servers lack, then one on each server that has it.
    Config c = base_config();
    c.models = {model("missing", Provider::openai, llama_port),
                model("ollama-missing", Provider::ollama, inner->port()),
                model("llama", Provider::openai, llama_port),
                model("via-ollama", Provider::ollama, inner->port())};
    c.models[0].upstream_model = "not-installed";
    c.models[1].upstream_model = "nope:7b";
    c.models[2].upstream_model = "tiny-a";
    c.models[3].upstream_model = "tiny-a";
    start_gateway(c, 0.1);
  }

  void TearDown() override {
    if (gw) gw->stop(std::chrono::seconds(1));
    if (inner) inner->stop(std::chrono::seconds(1));
  }

  void start_gateway(const Config& c, double poll_s, int breaker_failures = 5) {
    GatewayOptions opts;
    opts.port = 0;
    opts.availability_poll_s = poll_s;
    opts.breaker_failures = breaker_failures;
    opts.retries = 0;
    auto serving = std::make_shared<std::atomic<const Gateway*>>(nullptr);
    Router router = [c, serving](const ChatRequest&) {
      const Gateway* g = serving->load();
      const Selection s = select_model(c, "general", {}, g != nullptr ? g->availability() : Availability{});
      return RouteDecision{"general", 1, s.model, s.fallbacks, s.reason, "rule", 0};
    };
    gw = std::make_unique<Gateway>(c, router, opts);
    serving->store(gw.get());
    gw->start();
  }

  json health() { return json::parse(request(gw->port(), "GET", "/health").body); }

  // Polls /health until `done` holds (bounded: the poll runs every 0.1 s).
  template <class Pred> json health_until(Pred done) {
    json h;
    for (int i = 0; i < 200; ++i) {
      h = health();
      if (done(h)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return h;
  }

  json route() {
    const Reply r = request(gw->port(), "POST", "/v1/route",
                            json{{"messages", {{{"role", "user"}, {"content", "hi"}}}}}.dump(),
                            {{"content-type", "application/json"}});
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  }

  std::string llama_url() const { return "http://127.0.0.1:" + std::to_string(llama_port); }
  std::string inner_url() const { return "http://127.0.0.1:" + std::to_string(inner->port()); }

  t::TempDir dir;
  int llama_port = 0;
  std::unique_ptr<t::Process> llama;
  std::unique_ptr<Gateway> inner, gw;
};

TEST_F(AvailabilityServers, ModelsABackendLacksAreSkipped) {
  const json h = health_until([&](const json& j) {
    return j["backends"][llama_url()]["polled"] == true && j["backends"][inner_url()]["polled"] == true;
  });
  const json& llama_b = h["backends"][llama_url()];
  ASSERT_EQ(llama_b["polled"], true) << h.dump(2);
  EXPECT_EQ(llama_b["reachable"], true);
  EXPECT_EQ(llama_b["provider"], "openai");
  EXPECT_NE(std::find(llama_b["installed"].begin(), llama_b["installed"].end(), "tiny-a"),
            llama_b["installed"].end())
      << llama_b.dump();
  const json& inner_b = h["backends"][inner_url()];
  EXPECT_EQ(inner_b["provider"], "ollama");
  EXPECT_NE(std::find(inner_b["installed"].begin(), inner_b["installed"].end(), "tiny-a"),
            inner_b["installed"].end())
      << inner_b.dump();
  EXPECT_EQ(llama_b["models"][0]["name"], "missing");
  EXPECT_EQ(llama_b["models"][0]["available"], false);
  EXPECT_EQ(llama_b["models"][0]["why"], "not installed on " + llama_url());

  const json d = route();
  EXPECT_EQ(d["model"], "llama") << d.dump();
  EXPECT_EQ(d["fallbacks"], json::array({"via-ollama"}));
  const std::string reason = d["reason"];
  EXPECT_NE(reason.find("skipped missing: unavailable (not installed on " + llama_url() + ")"),
            std::string::npos)
      << reason;
  EXPECT_NE(reason.find("skipped ollama-missing: unavailable (not installed on " + inner_url() + ")"),
            std::string::npos)
      << reason;

  // And the request is answered by the installed model.
  const Reply r = request(
      gw->port(), "POST", "/v1/chat/completions",
      json{{"model", "auto"}, {"max_tokens", 4}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}
          .dump(),
      {{"content-type", "application/json"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.at("x-tinyroute-model"), "llama");
}

TEST_F(AvailabilityServers, ABackendThatGoesDownIsSkippedAfterThePoll) {
  health_until([&](const json& j) { return j["backends"][llama_url()].value("reachable", false); });
  ASSERT_EQ(route()["model"], "llama");
  llama->stop();
  const json h =
      health_until([&](const json& j) { return !j["backends"][llama_url()].value("reachable", true); });
  ASSERT_EQ(h["backends"][llama_url()]["reachable"], false) << h.dump(2);
  EXPECT_TRUE(h["backends"][llama_url()].contains("error"));
  const json d = route();
  EXPECT_EQ(d["model"], "via-ollama") << d.dump();
  EXPECT_NE(d["reason"].get<std::string>().find("skipped llama: unavailable (" + llama_url() +
                                                " did not answer its model list at the last poll)"),
            std::string::npos)
      << d["reason"];
}

TEST_F(AvailabilityServers, ABackendWithAnOpenBreakerIsSkipped) {
  // Polling off: only the breaker speaks. The first model's server answers 500 to everything.
  gw->stop(std::chrono::seconds(1));
  BadUpstream broken("500");
  Config c = base_config();
  c.models = {model("broken", Provider::openai, broken.port()), model("llama", Provider::openai, llama_port)};
  c.models[1].upstream_model = "tiny-a";
  start_gateway(c, 0, 1);
  EXPECT_EQ(route()["model"], "broken");
  const Reply r = request(
      gw->port(), "POST", "/v1/chat/completions",
      json{{"model", "auto"}, {"max_tokens", 4}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}
          .dump(),
      {{"content-type", "application/json"}});
  EXPECT_EQ(r.status, 200) << r.body; // fell back to llama, and the breaker for `broken` opened
  EXPECT_EQ(health()["breakers"][broken_url(broken)], "open");
  const json d = route();
  EXPECT_EQ(d["model"], "llama") << d.dump();
  EXPECT_NE(d["reason"].get<std::string>().find("skipped broken: unavailable (circuit breaker open for " +
                                                broken_url(broken) + ")"),
            std::string::npos)
      << d["reason"];
  gw->stop(std::chrono::seconds(1));
  gw.reset();
}

} // namespace
