// `tinyroute serve` with rules, as a real process: every decision reports its source (rule, model,
// cache, explicit) in /v1/route, /v1/analyze, the x-tinyroute-decision-source header and
// tinyroute_decisions_total; `tinyroute status` prints backends, models, queue and those counts.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "cli-common.h"

namespace cli_test {

Reply http(int port, const std::string& method, const std::string& target, const std::string& body,
           const std::map<std::string, std::string>& headers) {
  return tinyroute::test::http_request(port, method, target, body, {headers.begin(), headers.end()});
}

namespace {

TEST(ServeRules, EveryDecisionReportsItsSourceAndStatusShowsThem) {
  t::TempDir dir;
  const std::string config = dir.file("tinyroute.yaml");
  const std::string log = dir.file("serve.log");
  const int upstream = t::free_port(); // nothing listens: forwarding fails, the decision is still reported
  std::string yaml = config_yaml(t::tiny_model(), upstream);
  yaml.replace(yaml.find("  parallel: 4\n"), 0, "  threshold: 0\n"); // the model always decides
  t::write_file(config, yaml + "rules:\n"
                               "  - keywords: [код, code]\n"
                               "    category: coding\n"
                               "  - regex: '^\\s*привет\\W*$'\n"
                               "    category: chat\n");
  const int port = t::free_port();
  t::Process serve({TINYROUTE_CLI, "serve", "--config", config, "--port", std::to_string(port)}, {}, log);
  ASSERT_TRUE(t::wait_healthy(port, serve)) << t::read_file(log);

  auto route = [&](const std::string& text) {
    const Reply r =
        http(port, "POST", "/v1/route", json{{"messages", {{{"role", "user"}, {"content", text}}}}}.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return r.j();
  };
  const json by_rule = route("Почему этот КОД падает?");
  EXPECT_EQ(by_rule["source"], "rule") << by_rule.dump();
  EXPECT_EQ(by_rule["category"], "coding");
  EXPECT_EQ(by_rule["model"], "big");
  EXPECT_NE(by_rule["reason"].get<std::string>().find("rules[0] \"код\""), std::string::npos)
      << by_rule.dump();
  EXPECT_EQ(route("  ПРИВЕТ!  ")["source"], "rule");
  EXPECT_EQ(route("how are you doing today")["source"], "model");
  EXPECT_EQ(route("How are you   doing today")["source"], "cache");

  const Reply a = http(port, "POST", "/v1/analyze", R"({"text":"Напиши код сортировки"})");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.j()["decision_source"], "rule") << a.body;
  EXPECT_EQ(a.j()["category"]["category"], "coding") << a.body;
  EXPECT_EQ(a.j()["category"]["source"], "rule") << a.body;

  // The header comes with the answer, and with the error when the upstream is down.
  const Reply chat = http(port, "POST", "/v1/chat/completions",
                          R"({"model":"auto","messages":[{"role":"user","content":"review my code"}]})");
  EXPECT_GE(chat.status, 500) << chat.body;
  EXPECT_EQ(chat.headers.at("x-tinyroute-decision-source"), "rule");
  EXPECT_EQ(chat.headers.at("x-tinyroute-category"), "coding");
  const Reply named = http(port, "POST", "/v1/chat/completions",
                           R"({"model":"big","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(named.headers.at("x-tinyroute-decision-source"), "explicit");

  const std::string metrics = http(port, "GET", "/metrics").body;
  for (const char* line :
       {"tinyroute_decisions_total{source=\"rule\"} 3", "tinyroute_decisions_total{source=\"model\"} 1",
        "tinyroute_decisions_total{source=\"cache\"} 1", "tinyroute_decisions_total{source=\"explicit\"} 1"})
    EXPECT_NE(metrics.find(line), std::string::npos) << line << "\n" << metrics;

  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  const auto [rc, out] = t::run_command({TINYROUTE_CLI, "status", "--url", url});
  EXPECT_EQ(rc, 0) << out;
  for (const char* part : {"backends", "http://127.0.0.1:", "big", "spare", "not polled", "queue",
                           "decisions by source", "rule: 3", "model: 1", "cache: 1", "explicit: 1"})
    EXPECT_NE(out.find(part), std::string::npos) << part << "\n" << out;

  const auto [jrc, jout] = t::run_command({TINYROUTE_CLI, "status", "--json", "--url", url + "/"});
  ASSERT_EQ(jrc, 0) << jout;
  const json j = json::parse(jout, nullptr, false);
  EXPECT_EQ(j["decisions"]["rule"], 3) << jout;
  const std::string backend = "http://127.0.0.1:" + std::to_string(upstream);
  EXPECT_EQ(j["health"]["backends"][backend]["models"][0]["name"], "big") << jout;
  EXPECT_EQ(j["health"]["backends"][backend]["polled"], false) << jout;
  EXPECT_TRUE(j["bus"].is_null()) << "this serve runs no bus";
  EXPECT_EQ(out.find("\nbus\n"), std::string::npos) << out;

  EXPECT_EQ(serve.stop(SIGTERM, std::chrono::seconds(20)), 0) << t::read_file(log);
  const auto [drc, dout] = t::run_command({TINYROUTE_CLI, "status", "--url", url, "--timeout", "2"});
  EXPECT_EQ(drc, 1) << dout;
  EXPECT_NE(dout.find("cannot reach " + url + "/health"), std::string::npos) << dout;
}

// With internal_model.deadline_ms set, serving starts before the instruction prefixes are decoded:
// routing answers by the rules (and the default category) at once, the native endpoints wait for the
// model, and then the model decides.
TEST(ServeRules, WithADeadlineServingStartsWhileTheModelWarmsUp) {
  t::TempDir dir;
  const std::string config = dir.file("tinyroute.yaml");
  const std::string log = dir.file("serve.log");
  std::string yaml = config_yaml(t::tiny_model(), t::free_port());
  yaml.replace(yaml.find("  parallel: 4\n"), 0, "  threshold: 0\n  deadline_ms: 600000\n");
  t::write_file(config, yaml + "rules:\n  - keywords: [код]\n    category: coding\n");
  const int port = t::free_port();
  t::Process serve({TINYROUTE_CLI, "serve", "--config", config, "--port", std::to_string(port)}, {}, log);
  ASSERT_TRUE(t::wait_healthy(port, serve)) << t::read_file(log);
  auto route = [&](const std::string& text) {
    const Reply r =
        http(port, "POST", "/v1/route", json{{"messages", {{{"role", "user"}, {"content", text}}}}}.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return r.j();
  };
  EXPECT_EQ(route("где ошибка в коде?")["source"], "rule");
  const json early = route("how are you doing today");
  EXPECT_TRUE(early["source"] == "model" || early["source"] == "default") << early.dump();
  if (early["source"] == "default") {
    EXPECT_EQ(early["category"], "chat");
    EXPECT_NE(early["reason"].get<std::string>().find("warming up"), std::string::npos) << early.dump();
  }
  const Reply a =
      http(port, "POST", "/v1/analyze", R"({"text":"how are you doing today"})"); // waits for the model
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_NE(t::read_file(log).find("internal model ready"), std::string::npos) << t::read_file(log);
  const json later = route("what a lovely day it is");
  EXPECT_EQ(later["source"], "model") << later.dump();
  EXPECT_EQ(serve.stop(SIGTERM, std::chrono::seconds(20)), 0) << t::read_file(log);
}

TEST(ServeRules, AWarmUpFailureStopsTheServerWithExitOne) {
  t::TempDir dir;
  const std::string config = dir.file("tinyroute.yaml");
  const std::string log = dir.file("serve.log");
  std::string yaml = config_yaml(t::tiny_model(), t::free_port());
  // Too small a context for the instruction prefixes: the model loads, warming it up fails.
  yaml.replace(yaml.find("  context: 2048\n"), 16, "  context: 128\n  batch: 64\n  deadline_ms: 100\n");
  t::write_file(config, yaml);
  const int port = t::free_port();
  t::Process serve({TINYROUTE_CLI, "serve", "--config", config, "--port", std::to_string(port)}, {}, log);
  int status = 0;
  for (int i = 0; i < 600 && serve.running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_FALSE(serve.running()) << t::read_file(log);
  status = serve.stop();
  EXPECT_EQ(status, 1) << t::read_file(log);
  EXPECT_NE(t::read_file(log).find("warming up the internal model failed"), std::string::npos)
      << t::read_file(log);
}

} // namespace
} // namespace cli_test
