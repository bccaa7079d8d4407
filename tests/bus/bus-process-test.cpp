// `tinyroute bus` as real processes: SIGKILL mid-batch and restart, Redis restarting under it, two
// processes in one group, a Python agent (redis-py) writing the deployment's envelope and reading its own
// stream, --status, SIGTERM (graceful, and cancelling engine work in flight), SIGHUP reloads, and
// per-message delivery within a batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "http-client.h"
#include "message/schema-validate.h"
#include "redis-fixture.h"
#include "tinyroute/agent-message.h"

namespace tinyroute::test {
namespace {

using nlohmann::json;

// Every msg_id in the agents' streams with how often it arrived.
std::map<std::string, int> arrivals(RedisClient& c) {
  std::map<std::string, int> seen;
  for (const auto& a : kBusAgents)
    for (const auto& e : read_stream(c, "stream:agent:messages:" + a)) ++seen[e.at("msg_id")];
  return seen;
}

long long pending(RedisClient& c) {
  const RedisValue r = c.command({"XPENDING", "stream:tinyroute:inbox", "tinyroute"});
  return r.elements.empty() ? -1 : r.elements[0].integer;
}

// Many XADDs in one round trip; returns the msg_ids.
std::vector<std::string> publish(RedisClient& c, int count, const std::string& prefix,
                                 bool addressed = true) {
  std::vector<std::vector<std::string>> cmds;
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) {
    std::string id = prefix + "-" + std::to_string(i);
    std::vector<std::string> cmd = {"XADD", "stream:tinyroute:inbox", "*"};
    const std::string to = addressed ? kBusAgents[static_cast<std::size_t>(i) % kBusAgents.size()] : "";
    for (const auto& [k, v] : envelope_fields(id, to, "message " + std::to_string(i))) {
      cmd.push_back(k);
      cmd.push_back(v);
    }
    cmds.push_back(std::move(cmd));
    ids.push_back(std::move(id));
  }
  for (const auto& r : c.pipeline(cmds))
    if (r.is_error()) throw std::runtime_error(r.str);
  return ids;
}

void expect_exactly_once(RedisClient& c, const std::vector<std::string>& ids) {
  const auto seen = arrivals(c);
  EXPECT_EQ(seen.size(), ids.size());
  int twice = 0, missing = 0;
  for (const auto& id : ids) {
    const auto it = seen.find(id);
    if (it == seen.end()) {
      ++missing;
    } else if (it->second != 1) {
      ++twice;
    }
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(twice, 0);
}

class BusProcess : public ::testing::Test {
protected:
  RedisServer redis;
  std::unique_ptr<RedisClient> c = redis.client();
  TempDir dir;
  std::string config(const std::string& mode, const std::string& extra = "") {
    const std::string path = dir.file(mode + ".yaml");
    write_file(path, bus_config_yaml(redis.url(), mode, extra, mode == "model" ? tiny_model() : ""));
    return path;
  }
  std::unique_ptr<Process> start(const std::string& config_path, const std::string& log) {
    return std::make_unique<Process>(std::vector<std::string>{TINYROUTE_CLI, "bus", "--config", config_path},
                                     std::map<std::string, std::string>{}, dir.file(log));
  }
};

TEST_F(BusProcess, KilledMidBatchThenRestartedDeliversEachMessageOnce) {
  const std::string cfg = config("forward", "  batch: 500\n");
  const auto ids = publish(*c, 3000, "kill");
  auto first = start(cfg, "first.log");
  // Between reading a batch and acknowledging it, its entries are pending: kill there. The process is
  // frozen (SIGSTOP) and its last pipelined commands run before the state is read, so what is read is
  // the state it is killed in; a freeze that caught it between batches is thawed and tried again.
  ASSERT_TRUE(eventually([&] { return delivered_total(*c) >= 300; }, std::chrono::seconds(60)));
  long long before = 0, stranded = 0;
  for (int attempt = 0; attempt < 1000 && stranded == 0; ++attempt) {
    ::kill(first->pid(), SIGSTOP);
    // Redis still runs the commands the dispatcher had pipelined before the stop: wait until they are.
    before = -1;
    for (int i = 0; i < 100 && delivered_total(*c) != before; ++i) {
      before = delivered_total(*c);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stranded = pending(*c);
    if (stranded == 0) ::kill(first->pid(), SIGCONT);
  }
  first->stop(9); // SIGKILL: no chance to finish or acknowledge the batch in hand
  EXPECT_LT(before, 3000);
  ASSERT_GT(stranded, 0) << "never froze the dispatcher with a batch in hand";
  EXPECT_EQ(delivered_total(*c), before);
  auto second = start(cfg, "second.log");
  ASSERT_TRUE(
      eventually([&] { return delivered_total(*c) >= 3000 && pending(*c) == 0; }, std::chrono::seconds(120)))
      << "delivered " << delivered_total(*c) << " (before restart " << before << "), pending " << pending(*c);
  expect_exactly_once(*c, ids);
  EXPECT_EQ(c->command({"HGET", "tinyroute:bus:stats", "out"}).str, "3000");
  EXPECT_EQ(second->stop(15), 0);
  if (stranded > 0) {
    EXPECT_NE(read_file(dir.file("second.log")).find("claimed"), std::string::npos);
  }
}

TEST_F(BusProcess, RedisRestartLosesNothing) {
  const std::string cfg = config("forward", "  batch: 20\n");
  auto bus = start(cfg, "bus.log");
  auto ids = publish(*c, 500, "before");
  ASSERT_TRUE(eventually([&] { return delivered_total(*c) >= 100; }));
  c.reset();
  redis.restart(); // SIGKILL; the AOF (appendfsync always) brings everything back
  c = redis.client();
  const auto after = publish(*c, 500, "after");
  ids.insert(ids.end(), after.begin(), after.end());
  ASSERT_TRUE(
      eventually([&] { return delivered_total(*c) >= 1000 && pending(*c) == 0; }, std::chrono::seconds(120)))
      << "delivered " << delivered_total(*c) << ", pending " << pending(*c);
  expect_exactly_once(*c, ids);
  EXPECT_EQ(bus->stop(15), 0);
  EXPECT_NE(read_file(dir.file("bus.log")).find("reconnecting"), std::string::npos);
}

TEST_F(BusProcess, TwoProcessesInOneGroupDeliverEachMessageOnce) {
  const std::string cfg = config("forward", "  batch: 25\n");
  auto a = start(cfg, "a.log");
  auto b = start(cfg, "b.log");
  const auto ids = publish(*c, 2000, "pair");
  ASSERT_TRUE(
      eventually([&] { return delivered_total(*c) >= 2000 && pending(*c) == 0; }, std::chrono::seconds(120)));
  expect_exactly_once(*c, ids);
  const RedisValue consumers = c->command({"XINFO", "CONSUMERS", "stream:tinyroute:inbox", "tinyroute"});
  EXPECT_EQ(consumers.elements.size(), 2u);
  EXPECT_EQ(a->stop(15), 0);
  EXPECT_EQ(b->stop(15), 0);
}

// The model-routed process tests route and format every message with the model in child processes.
// Under ASan each generated token's buffers cost an mmap/munmap pair, which makes 40 messages take six
// minutes; the sanitizer build sends fewer (the same checks on each). The bounds are liveness limits
// (the test's 600 s timeout is the hard one), not speed targets.
#ifdef __SANITIZE_ADDRESS__
constexpr int kRoutedMessages = 10;
constexpr int kAgentMessages = 6;
constexpr int kSigtermMessages = 12;
#else
constexpr int kRoutedMessages = 40;
constexpr int kAgentMessages = 20;
constexpr int kSigtermMessages = 24;
#endif

TEST_F(BusProcess, TwoProcessesRouteABatchWithTheModelOnce) {
  const std::string cfg = config("model", "  batch: 8\n");
  auto a = start(cfg, "a.log");
  auto b = start(cfg, "b.log");
  const auto ids = publish(*c, kRoutedMessages, "routed", false);
  ASSERT_TRUE(eventually([&] { return delivered_total(*c) >= kRoutedMessages && pending(*c) == 0; },
                         std::chrono::seconds(480)))
      << read_file(dir.file("a.log"));
  expect_exactly_once(*c, ids);
  for (const auto& agent : kBusAgents)
    for (const auto& e : read_stream(*c, "stream:agent:messages:" + agent))
      EXPECT_TRUE(e.at("routed_by").starts_with("model")) << e.at("routed_by");
}

// The agent (python-agent.py) is a deployment agent written with redis-py's asyncio client: it XADDs the
// deployment's envelope to the inbox, then as "billing" reads its own stream in its consumer group
// (XREADGROUP) and XACKs each entry, until every message it addressed to billing has arrived.
TEST_F(BusProcess, PythonAgentMessagesArriveRoutedFormattedAndOnce) {
  const std::string python = BUS_PYTHON;
  if (!std::filesystem::exists(python)) {
    if (const char* ci = std::getenv("CI"); ci != nullptr && std::string(ci) == "true")
      FAIL() << "no " << python << " with CI=true: run scripts/python-env.sh";
    GTEST_SKIP() << "no build/venv (" << python << "): run scripts/python-env.sh (needs PyPI)";
  }
  const std::string cfg = config("model");
  auto bus = start(cfg, "bus.log");
  const auto [rc, out] = run_command({python, BUS_PYTHON_AGENT, std::to_string(redis.port()),
                                      "stream:tinyroute:inbox", std::to_string(kAgentMessages), "billing"});
  ASSERT_EQ(rc, 0) << out << read_file(dir.file("bus.log"));
  std::vector<std::string> ids, received;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("sent ")) ids.push_back(line.substr(5));
    if (line.starts_with("received ")) received.push_back(line.substr(9));
  }
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(kAgentMessages)) << out;
  ASSERT_TRUE(eventually([&] { return delivered_total(*c) >= kAgentMessages && pending(*c) == 0; },
                         std::chrono::seconds(480)))
      << read_file(dir.file("bus.log"));
  expect_exactly_once(*c, ids);
  for (const auto& agent : kBusAgents) {
    for (const auto& e : read_stream(*c, "stream:agent:messages:" + agent)) {
      const json v1 = json::parse(e.at("agent_message"));
      EXPECT_TRUE(validate_json(agent_message_schema(), v1).empty()) << v1.dump();
      EXPECT_EQ(v1["id"], e.at("msg_id"));
      EXPECT_EQ(v1["from"], "python-agent");
      EXPECT_EQ(v1["to"], agent);
      EXPECT_TRUE(json::parse(e.at("metadata")).contains("language"));
    }
  }
  EXPECT_EQ(xlen(*c, "stream:tinyroute:dead-letter"), 0);

  // What the agent read is what billing's stream holds, each entry once, the addressed ones (every 4th
  // message, see python-agent.py) among them; and every entry it read is acknowledged.
  std::map<std::string, int> in_stream;
  for (const auto& e : read_stream(*c, "stream:agent:messages:billing")) ++in_stream[e.at("msg_id")];
  std::set<std::string> read_once(received.begin(), received.end());
  EXPECT_EQ(read_once.size(), received.size()) << out;
  for (const auto& id : received) EXPECT_EQ(in_stream[id], 1) << id;
  for (std::size_t i = 3; i < ids.size(); i += 4) EXPECT_TRUE(read_once.contains(ids[i])) << ids[i];
  const RedisValue agent_pending = c->command({"XPENDING", "stream:agent:messages:billing", "python-agent"});
  ASSERT_FALSE(agent_pending.elements.empty());
  EXPECT_EQ(agent_pending.elements[0].integer, 0);
  const RedisValue groups = c->command({"XINFO", "GROUPS", "stream:agent:messages:billing"});
  ASSERT_EQ(groups.elements.size(), 1u);
}

TEST_F(BusProcess, StatusCommandAndGracefulStop) {
  const std::string cfg = config("forward");
  auto bus = start(cfg, "bus.log");
  publish(*c, 30, "status");
  ASSERT_TRUE(eventually([&] { return delivered_total(*c) >= 30 && pending(*c) == 0; }));
  const auto [rc, out] = run_command({TINYROUTE_CLI, "bus", "--status", "--json", "--config", cfg});
  ASSERT_EQ(rc, 0) << out;
  const json s = json::parse(out.substr(out.find('{')));
  EXPECT_EQ(s["stats"]["out"], 30);
  EXPECT_EQ(s["group_info"]["pending"], 0);
  const auto [trc, text] = run_command({TINYROUTE_CLI, "bus", "--status", "--config", cfg});
  EXPECT_EQ(trc, 0);
  EXPECT_NE(text.find("30 out"), std::string::npos) << text;
  EXPECT_EQ(bus->stop(15), 0); // SIGTERM: finishes the batch in hand and exits 0
  EXPECT_NE(read_file(dir.file("bus.log")).find("stopped:"), std::string::npos);
  const std::string nobus = dir.file("nobus.yaml");
  std::string yaml = bus_config_yaml(redis.url(), "forward");
  write_file(nobus, yaml.substr(0, yaml.find("bus:")));
  const auto [nrc, nout] = run_command({TINYROUTE_CLI, "bus", "--config", nobus});
  EXPECT_EQ(nrc, 1);
  EXPECT_NE(nout.find("no bus section"), std::string::npos) << nout;
}

// A generated model several times the tiny one's compute (8 layers, width 256), so a batch's
// generations (asked for with bus.generate) take many decodes: what a stop has to cancel.
std::string slow_model(const TempDir& dir) {
  const std::string path = dir.file("slow.gguf");
  make_model(path, {"--preset", "tiny", "--seed", "3", "--n-layer", "8", "--n-embd", "256", "--n-ff", "768",
                    "--n-head", "4", "--n-head-kv", "4"});
  return path;
}

TEST_F(BusProcess, SigtermCancelsEngineWorkAndTheRestartDeliversEachMessageOnce) {
  const std::string cfg = dir.file("slow.yaml");
  // A fixed consumer name: the restarted process reads its own pending entries first. Claiming is off
  // for the test's length, so nothing but that read can deliver what the stop left pending.
  std::string yaml = bus_config_yaml(
      redis.url(), "model",
      "  batch: 8\n  consumer: restartable\n  generate:\n    fields: [intent, summary]\n", slow_model(dir));
  yaml.replace(yaml.find("claim_idle_ms: 500"), std::string("claim_idle_ms: 500").size(),
               "claim_idle_ms: 3600000");
  write_file(cfg, yaml);
  const auto ids = publish(*c, kSigtermMessages, "sigterm", false);
  auto first = start(cfg, "first.log");
  ASSERT_TRUE(eventually([&] { return pending(*c) > 0 || !first->running(); }, std::chrono::seconds(300)));
  ASSERT_TRUE(first->running()) << read_file(dir.file("first.log"));
  // Freeze it with entries read and not acknowledged (their model work in flight), then stop it.
  long long stranded = 0;
  for (int attempt = 0; attempt < 1000 && stranded == 0; ++attempt) {
    ::kill(first->pid(), SIGSTOP);
    std::this_thread::sleep_for(std::chrono::milliseconds(50)); // commands it had sent are run
    stranded = pending(*c);
    if (stranded == 0) ::kill(first->pid(), SIGCONT);
  }
  ASSERT_GT(stranded, 0) << "never froze the dispatcher with entries in flight";
  ::kill(first->pid(), SIGTERM);
  ::kill(first->pid(), SIGCONT);
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = first->stop(15, std::chrono::seconds(5)); // bounded wait; SIGKILL (-9) past it
  const double exit_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  RecordProperty("exit_after_sigterm_s", std::to_string(exit_s));
  const std::string log = read_file(dir.file("first.log"));
  EXPECT_EQ(rc, 0) << log;
  // The engine's cancel path was taken: work in flight was cancelled, not finished.
  EXPECT_NE(log.find("entries cancelled; they stay pending"), std::string::npos) << log;
  const long long left = pending(*c);
  EXPECT_GT(left, 0) << "the cancelled entries stay pending in the group";
  EXPECT_LT(delivered_total(*c), kSigtermMessages);

  auto second = start(cfg, "second.log");
  ASSERT_TRUE(eventually([&] { return delivered_total(*c) >= kSigtermMessages && pending(*c) == 0; },
                         std::chrono::seconds(300)))
      << "delivered " << delivered_total(*c) << ", pending " << pending(*c)
      << read_file(dir.file("second.log"));
  expect_exactly_once(*c, ids);
  EXPECT_EQ(c->command({"HGET", "tinyroute:bus:stats", "out"}).str, std::to_string(kSigtermMessages));
  const RedisValue consumers = c->command({"XINFO", "CONSUMERS", "stream:tinyroute:inbox", "tinyroute"});
  EXPECT_EQ(consumers.elements.size(), 1u); // the restart read its own pending entries, nobody claimed
  EXPECT_EQ(second->stop(15, std::chrono::seconds(30)), 0);
}

TEST_F(BusProcess, SighupReloadsTheBusSectionAndRefusesABadConfig) {
  const std::string cfg = dir.file("reload.yaml");
  write_file(cfg, bus_config_yaml(redis.url(), "forward", "  batch: 20\n"));
  auto bus = start(cfg, "bus.log");
  auto ids = publish(*c, 5, "before");
  ASSERT_TRUE(eventually([&] { return delivered_total(*c) >= 5; })) << read_file(dir.file("bus.log"));

  // A bad file: refused with its file:line error, and the running config keeps working.
  write_file(cfg, bus_config_yaml(redis.url(), "forward", "  batch: 0\n"));
  ::kill(bus->pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return read_file(dir.file("bus.log")).find("reload refused") != std::string::npos;
  })) << read_file(dir.file("bus.log"));
  std::string log = read_file(dir.file("bus.log"));
  EXPECT_NE(log.find(cfg + ":"), std::string::npos) << log; // FILE:LINE
  EXPECT_NE(log.find("batch"), std::string::npos) << log;
  const auto during = publish(*c, 5, "during");
  ids.insert(ids.end(), during.begin(), during.end());
  ASSERT_TRUE(eventually([&] { return delivered_total(*c) >= 10 && pending(*c) == 0; }))
      << read_file(dir.file("bus.log"));

  // A good one: the bus section's keys apply from the next batch (here: the agents' streams); a key
  // that needs a restart (the group) keeps its running value and the log says so.
  write_file(cfg, bus_config_yaml(redis.url(), "forward",
                                  "  batch: 20\n  agent_stream: stream:v2:{agent}\n  group: other\n"));
  ::kill(bus->pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return read_file(dir.file("bus.log")).find("reloaded the bus section") != std::string::npos;
  })) << read_file(dir.file("bus.log"));
  log = read_file(dir.file("bus.log"));
  EXPECT_NE(log.find("bus.group changed"), std::string::npos) << log;
  publish(*c, 6, "after");
  const auto v2_total = [&] { return delivered_total(*c, "stream:v2:"); };
  ASSERT_TRUE(eventually([&] { return v2_total() >= 6 && pending(*c) == 0; }))
      << read_file(dir.file("bus.log"));
  EXPECT_EQ(v2_total(), 6);
  expect_exactly_once(*c, ids); // the old streams hold the ten from before, once each
  const RedisValue groups = c->command({"XINFO", "GROUPS", "stream:tinyroute:inbox"});
  EXPECT_EQ(groups.elements.size(), 1u); // still the group it started in
  EXPECT_EQ(bus->stop(15), 0);
}

// Within one batch, a message is delivered when its own work is done. The first entry is a loose
// message for billing, which bus.generate asks a summary for (analysis, then a generation: many
// decodes); the seven after it are agent-message.v1 envelopes, already formatted (the analysis only:
// a sender's own envelope is never generated for). All go to billing, so billing's stream holds them
// in the order they were written: the seven first, although the loose one was read before them.
TEST_F(BusProcess, ShortMessagesOfABatchAreDeliveredBeforeALongOne) {
  const std::string cfg = dir.file("latency.yaml");
  write_file(cfg, bus_config_yaml(
                      redis.url(), "model",
                      "  batch: 8\n  generate:\n    agents:\n      billing: {fields: [intent, summary]}\n",
                      slow_model(dir)));
  xadd(*c, envelope_fields("long-one", "billing", "Please summarise the refund dispute for invoice 4411."));
  std::vector<std::string> short_ids;
  for (int i = 0; i < 7; ++i) {
    AgentMessage m;
    m.id = "00000000-0000-4000-8000-00000000000" + std::to_string(i);
    m.from = "planner";
    m.to = "billing";
    m.kind = "task";
    m.intent = "refund";
    m.priority = "normal";
    m.summary = "Refund number " + std::to_string(i);
    m.language = "en";
    m.correlation_id = m.id;
    m.created_at = "2026-03-01T12:00:00.000Z";
    m.body = "Refund order " + std::to_string(i);
    xadd(*c, {{"agent_message", agent_message_json(m).dump()}});
    short_ids.push_back(m.id);
  }
  auto bus = start(cfg, "bus.log"); // started after the writes: the first read takes all eight
  ASSERT_TRUE(eventually([&] { return xlen(*c, "stream:agent:messages:billing") >= 8 && pending(*c) == 0; },
                         std::chrono::seconds(300)))
      << read_file(dir.file("bus.log"));
  const auto billing = read_stream(*c, "stream:agent:messages:billing");
  ASSERT_EQ(billing.size(), 8u);
  std::vector<std::string> order;
  for (const auto& e : billing) order.push_back(e.at("msg_id"));
  EXPECT_EQ(order.back(), "long-one") << "delivered in the order: " << testing::PrintToString(order);
  for (const auto& id : short_ids)
    EXPECT_NE(std::find(order.begin(), order.end() - 1, id), order.end() - 1) << id;
  EXPECT_EQ(bus->stop(15, std::chrono::seconds(30)), 0);
}

// serve's SIGHUP reload hands the new bus section to the dispatcher it runs.
TEST_F(BusProcess, ServeReloadsItsBusSectionOnSighup) {
  const std::string cfg = dir.file("serve-reload.yaml");
  write_file(cfg, bus_config_yaml(redis.url(), "forward", "", tiny_model()));
  const int port = free_port();
  Process serve({TINYROUTE_CLI, "serve", "--config", cfg, "--port", std::to_string(port)}, {},
                dir.file("serve.log"));
  ASSERT_TRUE(eventually([&] { return wait_for_port(port, std::chrono::milliseconds(100)); },
                         std::chrono::seconds(120)))
      << read_file(dir.file("serve.log"));
  const auto before = publish(*c, 3, "serve-before");
  ASSERT_TRUE(eventually([&] { return delivered_total(*c) >= 3 && pending(*c) == 0; }))
      << read_file(dir.file("serve.log"));
  write_file(cfg,
             bus_config_yaml(redis.url(), "forward", "  agent_stream: stream:v2:{agent}\n", tiny_model()));
  ::kill(serve.pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return read_file(dir.file("serve.log")).find("reloaded the bus section") != std::string::npos;
  })) << read_file(dir.file("serve.log"));
  publish(*c, 3, "serve-after");
  const auto v2_total = [&] { return delivered_total(*c, "stream:v2:"); };
  ASSERT_TRUE(eventually([&] { return v2_total() >= 3 && pending(*c) == 0; }))
      << read_file(dir.file("serve.log"));
  expect_exactly_once(*c, before);
  EXPECT_EQ(serve.stop(15, std::chrono::seconds(30)), 0) << read_file(dir.file("serve.log"));
}

TEST_F(BusProcess, ServeRunsTheBusAndReportsItInMetrics) {
  const std::string cfg = config("model");
  const int port = free_port();
  Process serve({TINYROUTE_CLI, "serve", "--config", cfg, "--port", std::to_string(port)}, {},
                dir.file("serve.log"));
  ASSERT_TRUE(eventually([&] { return wait_for_port(port, std::chrono::milliseconds(100)); },
                         std::chrono::seconds(120)))
      << read_file(dir.file("serve.log"));
  const auto ids = publish(*c, 5, "serve", false);
  ASSERT_TRUE(
      eventually([&] { return delivered_total(*c) >= 5 && pending(*c) == 0; }, std::chrono::seconds(120)))
      << read_file(dir.file("serve.log"));
  expect_exactly_once(*c, ids);
  const auto metrics = http_request(port, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("tinyroute_bus_messages_out_total 5"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("tinyroute_bus_routing_latency_ms_count 5"), std::string::npos);
  // `tinyroute status` shows the bus serve runs.
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  const auto [src, status] = run_command({TINYROUTE_CLI, "status", "--json", "--url", url});
  ASSERT_EQ(src, 0) << status;
  const json s = json::parse(status.substr(status.find('{')));
  EXPECT_EQ(s["bus"]["connected"], 1) << s.dump();
  EXPECT_EQ(s["bus"]["messages_out"], 5);
  EXPECT_EQ(s["bus"]["dead_lettered"], 0);
  EXPECT_TRUE(s["bus"]["group_lag"].is_number_integer());
  EXPECT_GT(s["bus"]["routing_ms_mean"].get<double>(), 0);
  const auto [trc, text] = run_command({TINYROUTE_CLI, "status", "--url", url});
  EXPECT_EQ(trc, 0);
  EXPECT_NE(text.find("bus\n  connected, 5 in, 5 out, 0 dead-lettered"), std::string::npos) << text;
  EXPECT_EQ(serve.stop(15, std::chrono::seconds(30)), 0) << read_file(dir.file("serve.log"));
}

} // namespace
} // namespace tinyroute::test
