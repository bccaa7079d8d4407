// Several `tinyroute serve` processes on one real redis-server (shared_state): the messages of
// interleaved conversations alternate between two processes, one of them is killed (SIGKILL) half-way,
// and every decision is the one a single process without Redis makes; a repeated request is a decision
// cache hit on whichever process gets it; Redis down or frozen only costs the shared state.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <sstream>

#include "http-client.h"
#include "redis-fixture.h"

namespace tinyroute::test {
namespace {

using nlohmann::json;

std::string serve_config(const std::string& shared_state) {
  return "internal_model:\n  model: " + tiny_model() +
         "\n  threads: 1\n  context: 2048\n  parallel: 4\n  conversation_tokens: 256\n"
         "  max_query_tokens: 128\n"
         "categories:\n"
         "  - name: chat\n    description: Casual conversation and greetings.\n"
         "  - name: coding\n    description: Writing, reviewing or debugging source code.\n"
         "  - name: math\n    description: Calculations and equations.\n"
         "models:\n  - name: big\n    provider: openai\n    base_url: http://127.0.0.1:9\n"
         "    categories: [chat, coding, math]\n"
         "default_category: chat\n"
         "agents:\n"
         "  - name: billing\n    description: Invoices, refunds and payments.\n"
         "    endpoint: http://127.0.0.1:9001/inbox\n"
         "  - name: devops\n    description: Deployments, servers and outages.\n"
         "    endpoint: http://127.0.0.1:9002/inbox\n"
         "  - name: triage\n    description: Anything else.\n    endpoint: http://127.0.0.1:9003/inbox\n"
         "    triage: true\n" +
         shared_state;
}

std::string shared_section(const std::string& url) {
  return "shared_state:\n  redis: " + url + "\n  prefix: test:serve\n  timeout_ms: 200\n";
}

bool healthy(int port) {
  try {
    return http_request(port, "GET", "/health").status == 200;
  } catch (const std::exception&) {
    return false;
  }
}

class Serve {
public:
  Serve(const TempDir& dir, const std::string& name, const std::string& yaml)
      : port_(free_port()), log_(dir.file(name + ".log")) {
    const std::string config = dir.file(name + ".yaml");
    write_file(config, yaml);
    process_ = std::make_unique<Process>(
        std::vector<std::string>{TINYROUTE_CLI, "serve", "--config", config, "--port", std::to_string(port_)},
        std::map<std::string, std::string>{}, log_);
    if (!eventually([&] { return !process_->running() || healthy(port_); }, std::chrono::seconds(60)) ||
        !process_->running())
      throw std::runtime_error("serve did not start: " + read_file(log_));
  }
  json post(const std::string& path, const json& body) const {
    const HttpReply r = http_request(port_, "POST", path, body.dump());
    if (r.status != 200)
      throw std::runtime_error(path + " answered " + std::to_string(r.status) + ": " + r.body);
    return r.j();
  }
  // A counter or gauge from /metrics (-1 when absent).
  double metric(const std::string& name) const {
    std::istringstream lines(http_request(port_, "GET", "/metrics").body);
    for (std::string line; std::getline(lines, line);)
      if (line.starts_with(name + " ")) return std::stod(line.substr(name.size() + 1));
    return -1;
  }
  Process& process() { return *process_; }
  const std::string& log() const { return log_; }

private:
  int port_;
  std::string log_;
  std::unique_ptr<Process> process_;
};

constexpr int kConversations = 8;
constexpr int kTurns = 4;

// Conversation c's turn t: topics that drift, so earlier turns matter to the decisions.
std::string message(int c, int t) {
  static const char* topics[] = {"the invoice for order", "the deploy of service",    "the integral of x^",
                                 "a refund for ticket",   "the kubernetes node",      "a greeting to team",
                                 "the failing unit test", "payment declined for card"};
  static const char* asks[] = {"please look at", "and now also check", "what about", "finally, summarise"};
  return std::string(asks[t]) + " " + topics[(c + t) % kConversations] + " " + std::to_string(c * 10 + t);
}

json analyze_turn(const Serve& s, int c, int t) {
  return s.post("/v1/analyze", {{"conversation", "conv-" + std::to_string(c)},
                                {"message_id", std::to_string(c) + "-" + std::to_string(t)},
                                {"text", message(c, t)}});
}

// The decisions of an analyze answer, and their confidences.
void expect_same_decisions(const json& got, const json& want, const std::string& where) {
  EXPECT_EQ(got["category"]["category"], want["category"]["category"]) << where;
  EXPECT_EQ(got["agent"]["agent"], want["agent"]["agent"]) << where;
  EXPECT_EQ(got["conversation"]["turns"], want["conversation"]["turns"]) << where;
  EXPECT_NEAR(got["category"]["confidence"].get<double>(), want["category"]["confidence"].get<double>(), 1e-3)
      << where;
  ASSERT_EQ(got["fields"].size(), want["fields"].size()) << where;
  for (const auto& [name, f] : want["fields"].items()) {
    EXPECT_EQ(got["fields"][name]["value"], f["value"]) << where << " " << name;
    EXPECT_NEAR(got["fields"][name]["confidence"].get<double>(), f["confidence"].get<double>(), 1e-3)
        << where << " " << name;
  }
}

class SharedStateServe : public ::testing::Test {
protected:
  RedisServer redis;
  TempDir dir;
};

TEST_F(SharedStateServe, TwoProcessesDecideEveryConversationMessageAsOneDoesEvenWhenOneIsKilled) {
  // One process, no Redis: every message, conversations interleaved.
  std::map<std::pair<int, int>, json> want;
  {
    Serve one(dir, "one", serve_config(""));
    for (int t = 0; t < kTurns; ++t)
      for (int c = 0; c < kConversations; ++c) want[{c, t}] = analyze_turn(one, c, t);
    EXPECT_EQ(one.process().stop(SIGTERM), 0);
  }
  Serve a(dir, "a", serve_config(shared_section(redis.url())));
  auto b = std::make_unique<Serve>(dir, "b", serve_config(shared_section(redis.url())));
  int on_b = 0;
  for (int t = 0; t < kTurns; ++t) {
    if (t == kTurns / 2) b->process().stop(SIGKILL); // mid-way: the rest of every conversation goes to a
    for (int c = 0; c < kConversations; ++c) {
      // Each conversation alternates between the processes while both are up.
      const bool to_b = t < kTurns / 2 && (c + t) % 2 == 1;
      on_b += to_b ? 1 : 0;
      const json got = analyze_turn(to_b ? *b : a, c, t);
      expect_same_decisions(got, want[{c, t}],
                            "conversation " + std::to_string(c) + " turn " + std::to_string(t));
      if (t > 0) {
        EXPECT_TRUE(got["conversation"]["source"] == "continued" ||
                    got["conversation"]["source"] == "rebuilt");
      }
    }
  }
  EXPECT_EQ(on_b, kConversations * kTurns / 4);
  EXPECT_EQ(a.metric("tinyroute_conversation_shared_fallbacks_total"), 0);
  // A redelivered message (same id) on the survivor is the same decision, not a new turn.
  const json again = analyze_turn(a, 1, 1);
  EXPECT_EQ(again["conversation"]["source"], "replayed");
  expect_same_decisions(again, want[{1, 1}], "replayed");
}

TEST_F(SharedStateServe, ARepeatedRequestHitsTheDecisionCacheWhicheverProcessServedItFirst) {
  Serve a(dir, "a", serve_config(shared_section(redis.url())));
  Serve b(dir, "b", serve_config(shared_section(redis.url())));
  const Serve* servers[] = {&a, &b};
  for (int i = 0; i < 6; ++i) {
    const std::string text = "route me please, request number " + std::to_string(i);
    const json body = {{"messages", {{{"role", "user"}, {"content", text}}}}};
    const json first = servers[i % 2]->post("/v1/route", body);
    EXPECT_NE(first["source"], "cache") << first;
    const json second = servers[(i + 1) % 2]->post("/v1/route", body);
    EXPECT_EQ(second["source"], "cache") << second;
    EXPECT_EQ(second["category"], first["category"]);
    EXPECT_EQ(second["model"], first["model"]);
    // /v1/analyze reads the same cache: every decision, from the other process.
    const json analyzed = servers[i % 2]->post("/v1/analyze", {{"text", text}});
    EXPECT_EQ(analyzed["decision_source"], "cache") << analyzed;
  }
  EXPECT_EQ(a.metric("tinyroute_decision_cache_hits_total"), 6);
  EXPECT_EQ(b.metric("tinyroute_decision_cache_hits_total"), 6);
  EXPECT_EQ(a.metric("tinyroute_decision_cache_shared_fallbacks_total"), 0);
  // The gauge is what Redis said at this process's last store: b stored last, after all six.
  EXPECT_EQ(b.metric("tinyroute_decision_cache_entries"), 6);
  // Under another config (another hash) the same text is not a hit.
  Serve other(dir, "other", "# another config\n" + serve_config(shared_section(redis.url())));
  const json third = other.post(
      "/v1/route", {{"messages", {{{"role", "user"}, {"content", "route me please, request number 0"}}}}});
  EXPECT_NE(third["source"], "cache");
}

TEST_F(SharedStateServe, RedisDownOrFrozenIsDecidedWithoutItAndCounted) {
  Serve s(dir, "s", serve_config(shared_section(redis.url())));
  const json body = {{"messages", {{{"role", "user"}, {"content", "is this cached"}}}}};
  s.post("/v1/route", body);
  ASSERT_EQ(s.post("/v1/route", body)["source"], "cache");

  ::kill(redis.pid(), SIGSTOP);
  auto t0 = std::chrono::steady_clock::now();
  const json frozen = s.post("/v1/route", body);
  EXPECT_NE(frozen["source"], "cache"); // the model decided
  const json turn = s.post("/v1/analyze", {{"conversation", "c"}, {"text", "hello while frozen"}});
  EXPECT_EQ(turn["conversation"]["turns"], 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  ::kill(redis.pid(), SIGCONT);
  redis.kill();
  const json down = s.post("/v1/analyze", {{"conversation", "c"}, {"text", "and while down"}});
  EXPECT_EQ(down["conversation"]["turns"], 2) << "the process's own copy of the window";
  EXPECT_GE(s.metric("tinyroute_decision_cache_shared_fallbacks_total"), 1);
  EXPECT_GE(s.metric("tinyroute_conversation_shared_fallbacks_total"), 1);
  EXPECT_NE(read_file(s.log()).find("deciding without it"), std::string::npos);

  redis.start(); // back: the cache answers again after the back-off
  EXPECT_TRUE(
      eventually([&] { return s.post("/v1/route", body)["source"] == "cache"; }, std::chrono::seconds(15)));
  EXPECT_EQ(s.process().stop(SIGTERM), 0);
}

} // namespace
} // namespace tinyroute::test
