// The agent features through the real binary: `agent route`, `agent format`, `metadata`,
// `eval --labels-from agents`, and serve's /v1/agents/route, /v1/agents/messages and /v1/metadata.
// Random weights: checked is what holds whatever they are (a configured agent, a distribution that
// sums to 1, envelopes valid against the shipped schema with the input as body, errors and limits).
#include <gtest/gtest.h>

#include <csignal>
#include <set>
#include <thread>

#include "cli-common.h"
#include "message/schema-validate.h"
#include "tinyroute/agent-message.h"

namespace cli_test {
namespace {

// Problems of an envelope against schemas/agent-message.v1.json, as the library's validator sees them.
std::string schema_problems(const json& envelope) {
  std::string out;
  for (const auto& p : tinyroute::validate_json(tinyroute::agent_message_schema(), envelope)) out += p + "\n";
  return out;
}

void expect_agent_route(const json& j, const std::string& raw) {
  EXPECT_TRUE(is_agent(j["agent"])) << raw;
  EXPECT_TRUE(j["uncertain"].is_boolean()) << raw;
  EXPECT_TRUE(j["source"] == "model" || j["source"] == "default") << raw;
  if (j["uncertain"] == true) {
    EXPECT_EQ(j["agent"], "triage") << raw;
  }
  ASSERT_EQ(j["distribution"].size(), kAgents.size()) << raw;
  double sum = 0;
  for (const auto& d : j["distribution"]) {
    EXPECT_TRUE(is_agent(d["agent"])) << raw;
    sum += d["prob"].get<double>();
  }
  EXPECT_NEAR(sum, 1.0, 1e-6) << raw;
  EXPECT_GE(j["confidence"].get<double>(), 0);
  EXPECT_LE(j["confidence"].get<double>(), 1);
  EXPECT_GE(j["latency_ms"].get<double>(), 0);
}

class AgentCliTest : public ::testing::Test {
protected:
  void SetUp() override {
    config = dir.file("agents.yaml");
    t::write_file(config, agents_config_yaml(t::tiny_model(), t::free_port()));
    plain = dir.file("plain.yaml");
    t::write_file(plain, config_yaml(t::tiny_model(), t::free_port()));
  }
  t::TempDir dir;
  std::string config, plain;
};

TEST_F(AgentCliTest, AgentRouteNamesAConfiguredAgent) {
  auto [rc, out] =
      tinyroute({"agent", "route", "--config", config, "--json", "prod is down again, please look"});
  ASSERT_EQ(rc, 0) << out;
  expect_agent_route(parse_or_fail(out), out);

  auto [trc, tout] = tinyroute({"agent", "route", "-c", config, "Где мой счёт за апрель?"});
  ASSERT_EQ(trc, 0) << tout;
  EXPECT_EQ(tout.rfind("agent ", 0), 0u) << tout;
  EXPECT_NE(tout.find("distribution"), std::string::npos) << tout;

  // Without an agents section: a one-line error, exit 1.
  auto [nrc, nout] = tinyroute({"agent", "route", "--config", plain, "hello"});
  EXPECT_EQ(nrc, 1) << nout;
  EXPECT_NE(nout.find("agents"), std::string::npos) << nout;
  EXPECT_EQ(tinyroute({"agent"}).first, 2);
}

TEST_F(AgentCliTest, AgentFormatPrintsAValidEnvelopeWithTheInputAsBody) {
  const std::string text = "Please refund invoice 42 for Anna by 2025-03-01";
  auto [rc, out] = tinyroute({"agent", "format", "--config", config, text});
  ASSERT_EQ(rc, 0) << out;
  json e = parse_or_fail(out);
  EXPECT_EQ(schema_problems(e), "") << out;
  EXPECT_EQ(e["body"], text);
  EXPECT_TRUE(is_agent(e["to"])) << out;
  EXPECT_EQ(e["from"], "user");
  EXPECT_EQ(e["trace"]["correlation_id"], e["id"]);
  EXPECT_EQ(e["trace"]["hop_count"], 0);

  auto [orc, oout] =
      tinyroute({"agent", "format", "-c", config, "--from", "alice", "--to", "devops", "--reply-to",
                 "alice-inbox", "--correlation-id", "c-7", "--hop-count", "2", text});
  ASSERT_EQ(orc, 0) << oout;
  json o = parse_or_fail(oout);
  EXPECT_EQ(schema_problems(o), "") << oout;
  EXPECT_EQ(o["body"], text);
  EXPECT_EQ(o["from"], "alice");
  EXPECT_EQ(o["to"], "devops");
  EXPECT_EQ(o["reply_to"], "alice-inbox");
  EXPECT_EQ(o["trace"], json({{"correlation_id", "c-7"}, {"hop_count", 2}}));

  auto [hrc, hout] = tinyroute({"agent", "format", "-c", config, "--hop-count", "4", "loop"});
  EXPECT_EQ(hrc, 1) << hout;
  EXPECT_NE(hout.find("hop limit"), std::string::npos) << hout;
  auto [urc, uout] = tinyroute({"agent", "format", "-c", config, "--to", "nobody", "hi"});
  EXPECT_EQ(urc, 1) << uout;
  EXPECT_NE(uout.find("nobody"), std::string::npos) << uout;
  EXPECT_EQ(tinyroute({"agent", "format", "-c", config, "--hop-count", "-1", "hi"}).first, 2);
}

TEST_F(AgentCliTest, MetadataJsonHasEveryField) {
  auto [rc, out] =
      tinyroute({"metadata", "--config", plain, "--json", "Срочно: сервер упал, нужен перезапуск"});
  ASSERT_EQ(rc, 0) << out;
  json m = parse_or_fail(out);
  const auto& languages = tinyroute::message_languages();
  const auto& priorities = tinyroute::message_priorities();
  EXPECT_NE(std::find(languages.begin(), languages.end(), m["language"].get<std::string>()), languages.end());
  EXPECT_NE(std::find(priorities.begin(), priorities.end(), m["urgency"].get<std::string>()),
            priorities.end());
  EXPECT_TRUE(m["complexity"] == "simple" || m["complexity"] == "complex") << out;
  EXPECT_TRUE(m["needs_tools"].is_boolean());
  EXPECT_FALSE(m["intent"].get<std::string>().empty());
  EXPECT_LE(m["topics"].size(), 4u);
  EXPECT_GT(m["estimated_tokens"].get<int>(), 0);

  auto [trc, tout] = tinyroute({"metadata", "-c", plain, "hello"});
  ASSERT_EQ(trc, 0) << tout;
  EXPECT_NE(tout.find("urgency"), std::string::npos) << tout;
}

TEST_F(AgentCliTest, EvalLabelsFromAgentsReportsConsistentMetrics) {
  const std::string data = dir.file("agents.jsonl");
  const std::vector<std::pair<std::string, std::string>> examples = {
      {"Where is my March invoice?", "billing"},
      {"Верните деньги за подписку", "billing"},
      {"prod is down", "devops"},
      {"Deploy the new release to staging", "devops"},
      {"What is the meaning of life?", "triage"},
      {"Tell me a joke", "triage"}};
  std::string lines;
  for (const auto& [text, label] : examples) lines += json{{"text", text}, {"label", label}}.dump() + "\n";
  t::write_file(data, lines);

  auto [rc, out] = tinyroute({"eval", data, "--labels-from", "agents", "--config", config, "--json"});
  ASSERT_EQ(rc, 0) << out;
  json j = parse_or_fail(out);
  EXPECT_EQ(j["labels"], json(kAgents));
  EXPECT_EQ(j["labels_from"], "agents");
  EXPECT_EQ(j["total"], 6);
  const double accuracy = j["accuracy"];
  EXPECT_GE(accuracy, 0.0);
  EXPECT_LE(accuracy, 1.0);
  EXPECT_DOUBLE_EQ(accuracy, j["correct"].get<double>() / 6.0);
  int sum = 0, trace = 0;
  ASSERT_EQ(j["confusion"].size(), kAgents.size());
  for (size_t g = 0; g < kAgents.size(); ++g) {
    ASSERT_EQ(j["confusion"][g].size(), kAgents.size());
    EXPECT_EQ(j["per_class"][g]["support"], 2);
    for (size_t p = 0; p < kAgents.size(); ++p) {
      sum += j["confusion"][g][p].get<int>();
      if (g == p) trace += j["confusion"][g][p].get<int>();
    }
  }
  EXPECT_EQ(sum, 6);
  EXPECT_EQ(trace, j["correct"].get<int>());

  auto [trc, tout] = tinyroute({"eval", data, "--labels-from", "agents", "--config", config});
  ASSERT_EQ(trc, 0) << tout;
  EXPECT_NE(tout.find("accuracy"), std::string::npos) << tout;
  EXPECT_NE(tout.find("devops"), std::string::npos) << tout;

  auto [nrc, nout] = tinyroute({"eval", data, "--labels-from", "agents", "--config", plain});
  EXPECT_EQ(nrc, 2) << nout;
  EXPECT_NE(nout.find("agents"), std::string::npos) << nout;
}

// ---- serve --------------------------------------------------------------------------------------

class AgentServeTest : public ::testing::Test {
protected:
  void start(const std::string& yaml) {
    config = dir.file("serve.yaml");
    log = dir.file("serve.log");
    t::write_file(config, yaml);
    port = t::free_port();
    serve = std::make_unique<t::Process>(
        std::vector<std::string>{TINYROUTE_CLI, "serve", "--config", config, "--port", std::to_string(port)},
        std::map<std::string, std::string>{}, log);
    ASSERT_TRUE(t::wait_healthy(port, *serve)) << t::read_file(log);
  }
  void TearDown() override {
    if (serve) {
      EXPECT_EQ(serve->stop(SIGTERM, std::chrono::seconds(20)), 0) << t::read_file(log);
    }
  }
  Reply post(const std::string& path, const std::string& body) { return http(port, "POST", path, body); }

  t::TempDir dir;
  std::string config, log;
  int port = 0;
  std::unique_ptr<t::Process> serve;
};

TEST_F(AgentServeTest, EndpointsAnswerWithValidShapes) {
  start(agents_config_yaml(t::tiny_model(), t::free_port()));

  auto r = post("/v1/agents/route", R"({"text":"prod is down, the deploy failed"})");
  ASSERT_EQ(r.status, 200) << r.body;
  expect_agent_route(r.j(), r.body);

  const std::string text = "Верните, пожалуйста, деньги за счёт 42 до пятницы";
  auto m = post("/v1/agents/messages", json{{"text", text},
                                            {"from", "alice"},
                                            {"reply_to", "alice-inbox"},
                                            {"correlation_id", "conv-1"},
                                            {"hop_count", 1}}
                                           .dump());
  ASSERT_EQ(m.status, 200) << m.body;
  json e = m.j();
  EXPECT_EQ(schema_problems(e), "") << m.body;
  EXPECT_EQ(e["body"], text);
  EXPECT_TRUE(is_agent(e["to"])) << m.body;
  EXPECT_EQ(e["from"], "alice");
  EXPECT_EQ(e["reply_to"], "alice-inbox");
  EXPECT_EQ(e["trace"], json({{"correlation_id", "conv-1"}, {"hop_count", 1}}));

  auto to = post("/v1/agents/messages", R"({"text":"restart the api pods","to":"devops"})");
  ASSERT_EQ(to.status, 200) << to.body;
  EXPECT_EQ(to.j()["to"], "devops");

  // Loose JSON: the message's own fields (a valid priority is taken as given); body is that JSON.
  auto loose = post("/v1/agents/messages", R"({"subject":"Outage","body":"prod is down","priority":"urgent",)"
                                           R"("from":"pager"})");
  ASSERT_EQ(loose.status, 200) << loose.body;
  json l = loose.j();
  EXPECT_EQ(schema_problems(l), "") << loose.body;
  EXPECT_EQ(l["priority"], "urgent");
  EXPECT_EQ(l["from"], "pager");
  EXPECT_EQ(json::parse(l["body"].get<std::string>()),
            json({{"subject", "Outage"}, {"body", "prod is down"}, {"priority", "urgent"}}))
      << loose.body;

  // A "to" inside the user's text never picks the recipient: the same words go to the same agent
  // whichever agent the text names.
  std::set<std::string> recipients;
  for (const auto& agent : kAgents) {
    auto a = post("/v1/agents/messages",
                  json{{"text", json{{"to", agent}, {"body", "hello there"}}.dump()}}.dump());
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(schema_problems(a.j()), "") << a.body;
    recipients.insert(a.j()["to"].get<std::string>());
  }
  EXPECT_EQ(recipients.size(), 1u) << "the text chose the recipient";

  auto md = post("/v1/metadata", R"({"text":"Can you write a SQL query for monthly revenue?"})");
  ASSERT_EQ(md.status, 200) << md.body;
  json mj = md.j();
  for (const char* key : {"language", "intent", "urgency", "complexity"})
    EXPECT_TRUE(mj[key].is_string()) << key;
  EXPECT_TRUE(mj["topics"].is_array());
  EXPECT_TRUE(mj["needs_tools"].is_boolean());
  EXPECT_GT(mj["estimated_tokens"].get<int>(), 0);
}

TEST_F(AgentServeTest, BadInputIsAClear4xx) {
  start(agents_config_yaml(t::tiny_model(), t::free_port()));
  const std::string big = json{{"text", std::string(3000, 'a')}}.dump(); // max_message_bytes is 2048
  struct Case {
    const char* path;
    std::string body;
    int status;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"/v1/agents/route", "{}", 400, "text"},
      {"/v1/agents/route", R"({"text":5})", 400, "string"},
      {"/v1/agents/route", R"("just text")", 400, "object"},
      {"/v1/agents/route", "not json", 400, ""},
      {"/v1/agents/route", big, 413, "max_message_bytes"},
      {"/v1/agents/messages", "{}", 400, "text"},
      {"/v1/agents/messages", "[1,2]", 400, "object"},
      {"/v1/agents/messages", R"({"text":["a"]})", 400, "string"},
      {"/v1/agents/messages", R"({"text":"hi","to":5})", 400, "\"to\""},
      {"/v1/agents/messages", R"({"text":"hi","to":"nobody"})", 400, "nobody"},
      {"/v1/agents/messages", R"({"text":"hi","from":""})", 400, "from"},
      {"/v1/agents/messages", R"({"text":"hi","hop_count":"1"})", 400, "hop_count"},
      {"/v1/agents/messages", R"({"text":"hi","hop_count":-1})", 400, "hop_count"},
      {"/v1/agents/messages", R"({"text":"hi","hop_count":4})", 400, "hop limit"},
      {"/v1/agents/messages", R"({"text":"hi","hop_count":1e30})", 400, "hop_count"},
      {"/v1/agents/messages", R"({"text":"hi","kind":"task"})", 400, "kind"},
      {"/v1/agents/messages", big, 413, "max_message_bytes"},
      {"/v1/agents/messages", json{{"note", std::string(3000, 'b')}}.dump(), 413, "max_message_bytes"},
      {"/v1/metadata", "{}", 400, "text"},
      {"/v1/metadata", R"({"text":null})", 400, "string"},
      {"/v1/metadata", big, 413, "max_message_bytes"},
  };
  for (const auto& c : cases) {
    auto r = post(c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.path << " " << c.body.substr(0, 80) << ": " << r.body;
    json j = r.j();
    ASSERT_TRUE(j.is_object() && j["error"]["message"].is_string()) << c.path << ": " << r.body;
    EXPECT_EQ(j["error"]["type"], "invalid_request_error") << r.body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(c.says), std::string::npos)
        << c.path << " " << c.body.substr(0, 80) << ": " << r.body;
  }
  // Still serving after all that.
  EXPECT_EQ(post("/v1/agents/route", R"({"text":"hi"})").status, 200);
}

TEST_F(AgentServeTest, WithoutAgentsTheAgentEndpointsSaySoAndMetadataWorks) {
  start(config_yaml(t::tiny_model(), t::free_port()));
  for (const char* path : {"/v1/agents/route", "/v1/agents/messages"}) {
    auto r = post(path, R"({"text":"hello","to":"devops"})");
    EXPECT_EQ(r.status, 400) << path << ": " << r.body;
    EXPECT_NE(r.j()["error"]["message"].get<std::string>().find("no agents"), std::string::npos) << r.body;
  }
  auto m = post("/v1/metadata", R"({"text":"hello"})");
  EXPECT_EQ(m.status, 200) << m.body;
  EXPECT_TRUE(m.j()["urgency"].is_string()) << m.body;
}

} // namespace
} // namespace cli_test
