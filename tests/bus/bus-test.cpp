// The dispatcher in-process against a real redis-server: delivery, routing, idempotence, dead letters,
// hop limit, presence, metrics and status.
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include <unistd.h>

#include "bus/deployment-envelope.h"
#include "busy-engine.h"
#include "message/schema-validate.h"
#include "redis-fixture.h"
#include "tinyroute/agent-message.h"
#include "tinyroute/bus.h"
#include "tinyroute/classify.h"
#include "tinyroute/from-config.h"

namespace tinyroute::test {
namespace {

using nlohmann::json;

// A dispatcher on its own thread, stopped and joined with the object.
class RunningBus {
public:
  RunningBus(const Config& config, std::shared_ptr<Engine> engine = nullptr)
      : bus_(std::make_unique<BusDispatcher>(config, std::move(engine))), thread_([this] { bus_->run(); }) {}
  ~RunningBus() {
    bus_->stop();
    thread_.join();
  }
  BusDispatcher& operator*() { return *bus_; }
  BusDispatcher* operator->() { return bus_.get(); }

private:
  std::unique_ptr<BusDispatcher> bus_;
  std::thread thread_;
};

long long pending(RedisClient& c) {
  const RedisValue r = c.command({"XPENDING", "stream:tinyroute:inbox", "tinyroute"});
  return r.elements.empty() ? -1 : r.elements[0].integer;
}

std::string stream_of(const std::string& agent) {
  return "stream:agent:messages:" + agent;
}

class Bus : public ::testing::Test {
protected:
  RedisServer redis;
  std::unique_ptr<RedisClient> c = redis.client();
  Config config(const std::string& mode, const std::string& extra = "", const std::string& model = "") {
    return parse_config(bus_config_yaml(redis.url(), mode, extra, model), "bus.yaml");
  }
  // The config's internal model on one thread (the tests run several processes at once).
  static std::shared_ptr<Engine> tiny_engine(const Config& cfg) {
    EngineParams p = engine_params_from(cfg.internal_model);
    p.n_threads = 1;
    return std::make_shared<Engine>(p);
  }
};

TEST_F(Bus, AddressedMessagesArriveOnceInBothEnvelopes) {
  RunningBus bus(config("forward"));
  xadd(*c, envelope_fields("11111111-1111-4111-8111-111111111111", "billing", "Refund order 42", "ASK"));
  xadd(*c, envelope_fields("22222222-2222-4222-8222-222222222222", "devops", "Restart api-1"));
  xadd(*c, envelope_fields("33333333-3333-4333-8333-333333333333", "*", "Release at 18:00", "PING"));
  ASSERT_TRUE(eventually([&] { return delivered_total(*c) == 5 && pending(*c) == 0; }));
  EXPECT_EQ(xlen(*c, stream_of("billing")), 2);
  EXPECT_EQ(xlen(*c, stream_of("devops")), 2);
  EXPECT_EQ(xlen(*c, stream_of("triage")), 1);
  const auto billing = read_stream(*c, stream_of("billing"));
  const auto& first = billing.front();
  EXPECT_EQ(first.at("msg_id"), "11111111-1111-4111-8111-111111111111");
  EXPECT_EQ(first.at("to_agent"), "billing");
  EXPECT_EQ(first.at("verb"), "ASK");
  EXPECT_EQ(first.at("payload"), "Refund order 42");
  EXPECT_EQ(first.at("hop_count"), "1");
  EXPECT_EQ(first.at("routed_by"), "sender");
  const json v1 = json::parse(first.at("agent_message"));
  EXPECT_TRUE(validate_json(agent_message_schema(), v1).empty()) << v1.dump();
  EXPECT_EQ(v1["id"], "11111111-1111-4111-8111-111111111111");
  EXPECT_EQ(v1["to"], "billing");
  EXPECT_EQ(v1["kind"], "question");
  EXPECT_EQ(v1["trace"]["correlation_id"], "conv-11111111-1111-4111-8111-111111111111");
  EXPECT_EQ(v1["trace"]["hop_count"], 1);
  EXPECT_EQ(billing.back().at("to_agent"), "*");
  EXPECT_EQ(billing.back().at("routed_by"), "broadcast");
  EXPECT_EQ(bus->counters().out, 5);
  EXPECT_EQ(c->command({"HGET", "tinyroute:bus:stats", "out"}).str, "5");
}

TEST_F(Bus, UnaddressedMessagesGoToTheTriageAgentWithoutTheModel) {
  RunningBus bus(config("forward"));
  xadd(*c, envelope_fields("44444444-4444-4444-8444-444444444444", "", "Something odd happened"));
  xadd(*c, {{"text", "free text from a person"}});
  ASSERT_TRUE(eventually([&] { return xlen(*c, stream_of("triage")) == 2; }));
  for (const auto& e : read_stream(*c, stream_of("triage"))) EXPECT_EQ(e.at("routed_by"), "triage");
}

TEST_F(Bus, UnaddressedMessagesAreRoutedAndFormattedFromOneAnalyzePass) {
  const Config cfg = config("model", "", tiny_model());
  const auto engine = tiny_engine(cfg);
  RunningBus bus(cfg, engine);
  xadd(*c,
       envelope_fields("55555555-5555-4555-8555-555555555555", "",
                       "Where is my invoice for March? Answer by 2026-12-20, see invoice_march.pdf", "ASK"));
  xadd(*c, envelope_fields("66666666-6666-4666-8666-666666666666", "auto", "Prod is down, restart it"));
  xadd(*c, {{"text", "Переведи этот текст"}, {"from", "alice"}});
  AgentMessage loose;
  loose.id = "77777777-7777-4777-8777-777777777777";
  loose.from = "planner";
  loose.to = "auto";
  loose.kind = "question";
  loose.intent = "ask_status";
  loose.priority = "high";
  loose.language = "en";
  loose.correlation_id = "c7";
  loose.created_at = "2026-03-01T12:00:00Z";
  loose.body = "Is the release on track?";
  xadd(*c, {{"agent_message", agent_message_json(loose).dump()}});
  ASSERT_TRUE(
      eventually([&] { return delivered_total(*c) == 4 && pending(*c) == 0; }, std::chrono::seconds(120)));
  std::set<std::string> ids;
  for (const auto& agent : kBusAgents) {
    for (const auto& e : read_stream(*c, stream_of(agent))) {
      SCOPED_TRACE(e.at("msg_id"));
      ids.insert(e.at("msg_id"));
      EXPECT_EQ(e.at("to_agent"), agent);
      EXPECT_TRUE(e.at("routed_by").starts_with("model")) << e.at("routed_by");
      const json v1 = json::parse(e.at("agent_message"));
      EXPECT_TRUE(validate_json(agent_message_schema(), v1).empty()) << v1.dump();
      EXPECT_EQ(v1["to"], agent);
      const json meta = json::parse(e.at("metadata"));
      for (const char* k : {"category", "language", "urgency", "needs_tools", "complexity"})
        EXPECT_TRUE(meta.contains(k)) << k;
      // devops accepts only tasks and reports: a question never lands there.
      if (agent == "devops") {
        EXPECT_NE(v1["kind"], "question");
      }
      if (e.at("msg_id") == loose.id) {
        EXPECT_EQ(v1["kind"], "question");
        EXPECT_EQ(v1["priority"], "high"); // the sender's own envelope wins over the model
      } else { // formatted here: the enumerated fields are the analyze pass's, the rest the rules'
        EXPECT_EQ(v1["priority"], meta["urgency"]);
        EXPECT_EQ(v1["language"], meta["language"]);
        EXPECT_EQ(v1["intent"], "unspecified"); // no bus.generate: nothing is generated
        EXPECT_EQ(v1["summary"], "");
        EXPECT_TRUE(meta.contains("extracted"));
        EXPECT_FALSE(meta.contains("generated"));
        if (e.at("payload") == "Переведи этот текст") { // free text: no verb, the pass decides the kind
          EXPECT_EQ(v1["kind"], meta["kind"]);
        } else {
          EXPECT_FALSE(meta.contains("kind")); // a verb names the kind: the pass does not ask it
        }
      }
      if (e.at("msg_id") == "55555555-5555-4555-8555-555555555555") {
        EXPECT_EQ(v1["kind"], "question"); // ASK
        EXPECT_EQ(v1["deadline"], "2026-12-20");
        EXPECT_EQ(v1["entities"]["files"], json::array({"invoice_march.pdf"}));
        EXPECT_EQ(v1["entities"]["dates"], json::array({"2026-12-20"}));
        EXPECT_EQ(meta["extracted"]["deadline"], "2026-12-20");
      }
    }
  }
  EXPECT_EQ(ids.size(), 4u);
  // Engine requests: one analyze pass per message, the kind of the free text in its own pass, and no
  // generation at all.
  EXPECT_EQ(engine->stats().requests, 4u);
  EXPECT_EQ(engine->stats().generate_requests, 0u);
  EXPECT_EQ(bus->counters().generated, 0);
  EXPECT_TRUE(ids.contains("55555555-5555-4555-8555-555555555555"));
  EXPECT_NE(bus->metrics_text().find("tinyroute_bus_routing_latency_ms_count 4"), std::string::npos)
      << bus->metrics_text();
}

// internal_model.deadline_ms bounds the bus's wait for the model as it bounds serve's routing: with the
// engine busy, a message the model has not decided in time goes by an agent rule, else to triage; the
// envelope is still complete (the rules' entities), and the metric counts it.
TEST_F(Bus, AMessageTheModelCannotDecideInTimeGoesByTheRulesElseToTriage) {
  std::string yaml = bus_config_yaml(redis.url(), "model", "", tiny_model());
  yaml.replace(yaml.find("  parallel: 8\n"), 14, "  parallel: 1\n  deadline_ms: 1\n");
  yaml += "rules:\n  - keywords: [invoice]\n    agent: billing\n";
  const Config cfg = parse_config(yaml, "bus.yaml");
  const auto engine = tiny_engine(cfg);
  RunningBus bus(cfg, engine); // its prefixes are decoded here, before the engine is made busy
  // One request at a time, and a forced 3,000-token answer holding the engine until the test cancels
  // it: the analyze passes queue behind it whatever the machine's speed.
  const CancelToken busy_cancel;
  auto busy = keep_engine_busy(*engine, 3000, busy_cancel);
  xadd(*c, envelope_fields("88888888-8888-4888-8888-888888888888", "", "Where is the invoice? Due 2026-12-20",
                           "ASK"));
  xadd(*c, envelope_fields("99999999-9999-4999-8999-999999999999", "", "Prod is down, restart it"));
  ASSERT_TRUE(
      eventually([&] { return delivered_total(*c) == 2 && pending(*c) == 0; }, std::chrono::seconds(120)));
  const auto billing = read_stream(*c, stream_of("billing"));
  const auto triage = read_stream(*c, stream_of("triage"));
  ASSERT_EQ(billing.size(), 1u);
  ASSERT_EQ(triage.size(), 1u);
  EXPECT_EQ(billing[0].at("routed_by"), "deadline:rule");
  EXPECT_EQ(triage[0].at("routed_by"), "deadline:triage");
  for (const auto* e : {&billing[0], &triage[0]}) {
    const json meta = json::parse(e->at("metadata"));
    EXPECT_EQ(meta["deadline_missed"], true);
    EXPECT_TRUE(meta.contains("extracted"));
    const json v1 = json::parse(e->at("agent_message"));
    EXPECT_TRUE(validate_json(agent_message_schema(), v1).empty()) << v1.dump();
  }
  EXPECT_EQ(json::parse(billing[0].at("metadata"))["source"], "rule");
  EXPECT_EQ(json::parse(triage[0].at("metadata"))["source"], "default");
  EXPECT_EQ(json::parse(billing[0].at("agent_message"))["deadline"], "2026-12-20");
  EXPECT_EQ(bus->counters().deadline_missed, 2);
  EXPECT_NE(bus->metrics_text().find("tinyroute_bus_deadline_missed_total 2"), std::string::npos);
  busy_cancel.cancel();
  EXPECT_THROW(busy.get(), Error); // still decoding its answer: the messages never waited for it
}

// bus.generate names billing only: a message to devops is delivered from its analyze pass alone, with no
// generate request ever sent for it; billing's gets its summary (and only the fields asked).
TEST_F(Bus, AMessageNeedingNoGenerationIsDeliveredWithoutAGenerateRequest) {
  const Config cfg =
      config("model", "  generate:\n    agents:\n      billing: {fields: [summary], max_tokens: 12}\n",
             tiny_model());
  const auto engine = tiny_engine(cfg);
  RunningBus bus(cfg, engine);
  xadd(*c, envelope_fields("88888888-8888-4888-8888-888888888881", "devops", "Restart api-1 by 2026-12-09"));
  ASSERT_TRUE(
      eventually([&] { return delivered_total(*c) == 1 && pending(*c) == 0; }, std::chrono::seconds(60)));
  EXPECT_EQ(engine->stats().generate_requests, 0u);
  EXPECT_EQ(engine->stats().requests, 1u); // its analyze pass
  EXPECT_EQ(bus->counters().generated, 0);
  const auto devops = read_stream(*c, stream_of("devops"));
  ASSERT_EQ(devops.size(), 1u);
  const json v1 = json::parse(devops.front().at("agent_message"));
  EXPECT_TRUE(validate_json(agent_message_schema(), v1).empty()) << v1.dump();
  EXPECT_EQ(v1["deadline"], "2026-12-09");
  EXPECT_EQ(v1["summary"], "");
  EXPECT_FALSE(json::parse(devops.front().at("metadata")).contains("generated"));

  xadd(*c, envelope_fields("88888888-8888-4888-8888-888888888882", "billing", "Refund invoice 42 for Anna"));
  xadd(*c, envelope_fields("88888888-8888-4888-8888-888888888883", "devops", "Scale the api to 4 pods"));
  ASSERT_TRUE(
      eventually([&] { return delivered_total(*c) == 3 && pending(*c) == 0; }, std::chrono::seconds(60)));
  EXPECT_EQ(engine->stats().generate_requests, 1u); // billing's only
  EXPECT_EQ(bus->counters().generated, 1);
  const auto billing = read_stream(*c, stream_of("billing"));
  ASSERT_EQ(billing.size(), 1u);
  const json meta = json::parse(billing.front().at("metadata"));
  EXPECT_EQ(meta["generated"], json::array({"summary"}));
  EXPECT_LE(meta["generated_tokens"].get<int>(), 12);
  const json b1 = json::parse(billing.front().at("agent_message"));
  EXPECT_TRUE(validate_json(agent_message_schema(), b1).empty()) << b1.dump();
  EXPECT_EQ(b1["intent"], "unspecified"); // not asked for
  for (const auto& e : read_stream(*c, stream_of("devops")))
    EXPECT_FALSE(json::parse(e.at("metadata")).contains("generated"));
  EXPECT_NE(bus->metrics_text().find("tinyroute_bus_generated_total 1"), std::string::npos);
}

// The deployment's correlation id is the conversation: its messages are routed with the earlier turns
// (the engine keeps the sequence), a message without one stands alone.
TEST_F(Bus, MessagesSharingACorrelationIdAreRoutedAsOneConversation) {
  const Config cfg = config("model", "", tiny_model());
  RunningBus bus(cfg, tiny_engine(cfg));
  const std::vector<std::string> texts = {"Where is my invoice for March?", "It was for order 42",
                                          "Please send it again to my new address"};
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    ids.push_back("8888888" + std::to_string(i) + "-8888-4888-8888-888888888888");
    auto fields = envelope_fields(ids.back(), "", texts[i]);
    for (auto& [k, v] : fields)
      if (k == "correlation_id") v = "thread-7";
    xadd(*c, fields);
  }
  auto alone = envelope_fields("99999999-9999-4999-8999-999999999999", "", "Restart the api");
  std::erase_if(alone, [](const auto& f) { return f.first == "correlation_id"; });
  xadd(*c, alone);
  auto own =
      envelope_fields("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "", "Rotate the keys"); // its own correlation
  for (auto& [k, v] : own)
    if (k == "correlation_id") v = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
  xadd(*c, own);
  ASSERT_TRUE(
      eventually([&] { return delivered_total(*c) == 5 && pending(*c) == 0; }, std::chrono::seconds(120)));
  std::map<std::string, json> metadata; // msg_id -> metadata
  for (const auto& agent : kBusAgents)
    for (const auto& e : read_stream(*c, stream_of(agent)))
      metadata[e.at("msg_id")] = json::parse(e.at("metadata"));
  ASSERT_EQ(metadata.size(), 5u);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    SCOPED_TRACE(ids[i]);
    EXPECT_EQ(metadata[ids[i]].value("conversation_turns", 0), static_cast<int>(i) + 1);
    EXPECT_EQ(metadata[ids[i]].value("conversation_source", ""), i == 0 ? "new" : "continued");
  }
  EXPECT_FALSE(metadata["99999999-9999-4999-8999-999999999999"].contains("conversation_turns"));
  EXPECT_FALSE(metadata["aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"].contains("conversation_turns"));
}

// A conversation message that waits for its recipient is analyzed again at every retry; it stays one
// turn of its conversation (its msg_id names the turn), so the next message sees the right history.
TEST_F(Bus, AConversationMessageRetriedWhileItsRecipientIsAwayStaysOneTurn) {
  c->command({"SET", "agent:alive:billing", "1", "EX", "120"});
  const Config cfg = config("model", "  presence: true\n  dead_agent: wait\n", tiny_model());
  RunningBus bus(cfg, tiny_engine(cfg));
  const std::vector<std::pair<std::string, std::string>> sent = {
      {"billing", "Where is my invoice for March?"},
      {"devops", "Also the api is down"},
      {"billing", "Thanks"}};
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    ids.push_back("7777777" + std::to_string(i) + "-7777-4777-8777-777777777777");
    auto fields = envelope_fields(ids.back(), sent[i].first, sent[i].second);
    for (auto& [k, v] : fields)
      if (k == "correlation_id") v = "thread-9";
    xadd(*c, fields);
    if (i == 1) { // devops is away: its message is read and retried before it comes back
      ASSERT_TRUE(eventually([&] { return bus->counters().waiting >= 3; }, std::chrono::seconds(120)));
      c->command({"SET", "agent:alive:devops", "1", "EX", "120"});
    }
    ASSERT_TRUE(
        eventually([&] { return delivered_total(*c) == static_cast<long long>(i) + 1 && pending(*c) == 0; },
                   std::chrono::seconds(120)));
  }
  std::map<std::string, json> metadata; // msg_id -> metadata
  for (const auto& agent : {"billing", "devops"})
    for (const auto& e : read_stream(*c, stream_of(agent)))
      metadata[e.at("msg_id")] = json::parse(e.at("metadata"));
  ASSERT_EQ(metadata.size(), 3u);
  for (std::size_t i = 0; i < ids.size(); ++i)
    EXPECT_EQ(metadata[ids[i]].value("conversation_turns", 0), static_cast<int>(i) + 1) << ids[i];
  EXPECT_EQ(metadata[ids[1]].value("conversation_source", ""),
            "replayed"); // the retries saw its first window
  EXPECT_EQ(metadata[ids[2]].value("conversation_source", ""), "continued");
}

// In model mode a message delivered before is recognised before any model work is spent on it.
TEST_F(Bus, ADuplicateCostsNoModelWork) {
  const Config cfg = config("model", "", tiny_model());
  const auto engine = tiny_engine(cfg);
  RunningBus bus(cfg, engine);
  const auto fields =
      envelope_fields("66666666-0000-4000-8000-000000000001", "", "Where is my invoice?", "ASK");
  xadd(*c, fields);
  ASSERT_TRUE(
      eventually([&] { return delivered_total(*c) == 1 && pending(*c) == 0; }, std::chrono::seconds(120)));
  const std::uint64_t requests = engine->stats().requests;
  EXPECT_GT(requests, 0u);
  xadd(*c, fields); // the producer sent it again
  ASSERT_TRUE(eventually([&] { return bus->counters().duplicates == 1 && pending(*c) == 0; }));
  EXPECT_EQ(engine->stats().requests, requests);
  EXPECT_EQ(delivered_total(*c), 1);
  EXPECT_EQ(c->command({"HGET", "tinyroute:bus:stats", "duplicates"}).str, "1");
}

TEST_F(Bus, RedeliveredEntryWritesNoDuplicate) {
  const Config cfg = config("forward");
  const std::string id = "88888888-8888-4888-8888-888888888888";
  {
    RunningBus bus(cfg);
    xadd(*c, envelope_fields(id, "billing", "Refund order 7"));
    ASSERT_TRUE(eventually([&] { return xlen(*c, stream_of("billing")) == 1 && pending(*c) == 0; }));
  }
  // A consumer that read the same message again and died before acknowledging it, and a producer
  // that sent it twice.
  xadd(*c, envelope_fields(id, "billing", "Refund order 7"));
  const RedisValue ghost = c->command(
      {"XREADGROUP", "GROUP", "tinyroute", "ghost", "COUNT", "10", "STREAMS", "stream:tinyroute:inbox", ">"});
  ASSERT_FALSE(ghost.is_nil());
  xadd(*c, envelope_fields(id, "billing", "Refund order 7"));
  EXPECT_EQ(pending(*c), 1);
  RunningBus bus(cfg);
  ASSERT_TRUE(eventually([&] { return pending(*c) == 0 && bus->counters().duplicates == 2; }));
  EXPECT_EQ(xlen(*c, stream_of("billing")), 1);
  EXPECT_GE(bus->counters().claimed, 1);
  EXPECT_EQ(c->command({"HGET", "tinyroute:bus:stats", "duplicates"}).str, "2");
}

TEST_F(Bus, InvalidEntriesAreDeadLetteredWithTheErrorAndAcknowledged) {
  RunningBus bus(config("forward"));
  auto with = [](std::vector<std::pair<std::string, std::string>> f, const std::string& key,
                 const std::string& v) {
    for (auto& [k, val] : f)
      if (k == key) val = v;
    return f;
  };
  const auto base = envelope_fields("99999999-9999-4999-8999-999999999999", "billing", "hello");
  const std::vector<std::pair<std::vector<std::pair<std::string, std::string>>, std::string>> table = {
      {with(base, "verb", "SHOUT"), "verb"},
      {with(base, "to_agent", "nobody"), "not a configured agent"},
      {with(base, "timestamp", "yesterday"), "timestamp"},
      {with(base, "requires_response", "perhaps"), "requires_response"},
      {{{"colour", "blue"}}, "holds no message"},
      {{{"agent_message", "{\"schema\": \"agent-message.v1\"}"}}, "agent-message.v1"},
      {with(base, "payload", std::string(5000, 'x')), "max_message_bytes"},
      {[&] {
         auto f = base;
         f.emplace_back("hop_count", "4");
         return f;
       }(),
       "hop limit exceeded"},
  };
  for (const auto& [fields, why] : table) xadd(*c, fields);
  auto ok = base;
  ok.emplace_back("hop_count", "3"); // the last hop allowed: delivered with hop_count 4
  xadd(*c, ok);
  ASSERT_TRUE(eventually([&] {
    return xlen(*c, "stream:tinyroute:dead-letter") == static_cast<long long>(table.size()) &&
           pending(*c) == 0;
  }));
  const auto dead = read_stream(*c, "stream:tinyroute:dead-letter");
  for (std::size_t i = 0; i < table.size(); ++i) {
    SCOPED_TRACE(table[i].second);
    EXPECT_NE(dead[i].at("error").find(table[i].second), std::string::npos) << dead[i].at("error");
    EXPECT_FALSE(dead[i].at("inbox_id").empty());
    EXPECT_TRUE(json::parse(dead[i].at("entry")).is_object());
  }
  ASSERT_TRUE(eventually([&] { return xlen(*c, stream_of("billing")) == 1; }));
  EXPECT_EQ(read_stream(*c, stream_of("billing")).front().at("hop_count"), "4");
  EXPECT_EQ(bus->counters().dead_lettered, static_cast<long long>(table.size()));
}

TEST_F(Bus, MessagesForADeadAgentGoToTriage) {
  c->command({"SET", "agent:alive:billing", "1", "EX", "60"});
  c->command({"SET", "agent:alive:triage", "1", "EX", "60"});
  RunningBus bus(config("forward", "  presence: true\n  dead_agent: triage\n"));
  xadd(*c, envelope_fields("aaaaaaaa-0000-4000-8000-000000000001", "devops", "Restart api-1"));
  xadd(*c, envelope_fields("aaaaaaaa-0000-4000-8000-000000000002", "billing", "Refund"));
  xadd(*c, envelope_fields("aaaaaaaa-0000-4000-8000-000000000003", "*", "All hands", "PING"));
  ASSERT_TRUE(eventually([&] { return delivered_total(*c) == 4 && pending(*c) == 0; }));
  EXPECT_EQ(xlen(*c, stream_of("devops")), 0);
  const auto triage = read_stream(*c, stream_of("triage"));
  ASSERT_EQ(triage.size(), 2u);
  EXPECT_EQ(triage[0].at("msg_id"), "aaaaaaaa-0000-4000-8000-000000000001");
  EXPECT_EQ(triage[0].at("routed_by"), "presence:triage");
  EXPECT_EQ(xlen(*c, stream_of("billing")), 2);
}

TEST_F(Bus, MessagesForADeadAgentWaitUntilItIsAlive) {
  RunningBus bus(config("forward", "  presence: true\n  dead_agent: wait\n"));
  xadd(*c, envelope_fields("bbbbbbbb-0000-4000-8000-000000000001", "devops", "Restart api-1"));
  ASSERT_TRUE(eventually([&] { return bus->counters().waiting >= 2; })); // read, then retried after claim
  EXPECT_EQ(delivered_total(*c), 0);
  EXPECT_EQ(pending(*c), 1);
  c->command({"SET", "agent:alive:devops", "1", "EX", "60"});
  ASSERT_TRUE(eventually([&] { return xlen(*c, stream_of("devops")) == 1 && pending(*c) == 0; }));
}

TEST_F(Bus, MetricsAndStatusReportTheBus) {
  const Config cfg = config("forward");
  RunningBus bus(cfg);
  xadd(*c, envelope_fields("cccccccc-0000-4000-8000-000000000001", "billing", "one"));
  xadd(*c, {{"nothing", "here"}});
  ASSERT_TRUE(eventually([&] { return bus->counters().out == 1 && bus->counters().dead_lettered == 1; }));
  const std::string m = bus->metrics_text();
  for (const char* line : {"tinyroute_bus_messages_in_total 2", "tinyroute_bus_messages_out_total 1",
                           "tinyroute_bus_dead_lettered_total 1", "tinyroute_bus_connected 1",
                           "tinyroute_bus_group_lag", "tinyroute_bus_delivery_latency_ms_count 1"})
    EXPECT_NE(m.find(line), std::string::npos) << line << "\n" << m;
  const json s = bus_status(cfg);
  EXPECT_EQ(s["inbox_length"], 2);
  EXPECT_EQ(s["dead_letter_length"], 1);
  EXPECT_EQ(s["stats"]["out"], 1);
  EXPECT_EQ(s["group_info"]["pending"], 0);
  EXPECT_EQ(s["agents"][0]["length"], 1);
  // The same as text, from the command line.
  TempDir dir;
  write_file(dir.file("bus.yaml"), bus_config_yaml(redis.url(), "forward"));
  const auto [rc, text] = run_command({TINYROUTE_CLI, "bus", "--status", "--config", dir.file("bus.yaml")});
  EXPECT_EQ(rc, 0) << text;
  for (const char* part : {"lag 0, pending 0", "(2 entries)", "1 out, 1 dead-lettered"})
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
}

TEST_F(Bus, UnreachableRedisIsRetriedUntilItComesUp) {
  const int port = free_port();
  Config cfg = config("forward");
  cfg.bus.redis = "redis://127.0.0.1:" + std::to_string(port);
  RunningBus bus(cfg);
  ASSERT_TRUE(eventually([&] { return bus->counters().connect_failures >= 2; })); // tried, and again
  EXPECT_NE(bus->metrics_text().find("tinyroute_bus_connected 0"), std::string::npos);
  EXPECT_THROW(bus_status(cfg), Error);
  // Redis appears where the config points: the same dispatcher connects and delivers.
  RedisServer late({}, "", port);
  ASSERT_TRUE(
      eventually([&] { return bus->metrics_text().find("tinyroute_bus_connected 1") != std::string::npos; }));
  auto client = late.client();
  xadd(*client, envelope_fields("cccccccc-0000-4000-8000-000000000001", "billing", "after the outage"));
  ASSERT_TRUE(eventually([&] { return xlen(*client, stream_of("billing")) == 1; }));
  EXPECT_EQ(bus->counters().reconnects, 0); // it never had a connection to lose
}

TEST(BusRedis, AclUserAndPasswordComeFromTheEnvironment) {
  // The default user is off: only "router" with its password may connect.
  RedisServer redis(
      {"--user", "default", "off", "--user", "router", "on", ">s3cret-pass", "~*", "&*", "+@all"});
  RedisEndpoint admin = redis.endpoint();
  admin.username = "router";
  admin.password = "s3cret-pass";
  RedisClient c(admin, std::chrono::seconds(5));
  ::setenv("BUS_ACL_TEST_USER", "router", 1);
  ::setenv("BUS_ACL_TEST_PASSWORD", "s3cret-pass", 1);
  ::setenv("BUS_ACL_TEST_WRONG", "nope", 1);
  Config cfg = parse_config(
      bus_config_yaml(redis.url(), "forward",
                      "  username_env: BUS_ACL_TEST_USER\n  password_env: BUS_ACL_TEST_PASSWORD\n"),
      "bus.yaml");
  {
    RunningBus bus(cfg);
    xadd(c, envelope_fields("dddddddd-0000-4000-8000-000000000001", "billing", "hello"));
    ASSERT_TRUE(eventually([&] { return xlen(c, stream_of("billing")) == 1; }));
  }
  // The wrong password: each attempt is refused, and the message waiting in the inbox stays there.
  cfg.bus.password_env = "BUS_ACL_TEST_WRONG";
  xadd(c, envelope_fields("dddddddd-0000-4000-8000-000000000002", "billing", "still waiting"));
  RunningBus refused(cfg);
  ASSERT_TRUE(eventually([&] { return refused->counters().connect_failures >= 2; }));
  EXPECT_EQ(refused->counters().in, 0);
  EXPECT_EQ(xlen(c, stream_of("billing")), 1);
  EXPECT_NE(refused->metrics_text().find("tinyroute_bus_connected 0"), std::string::npos);
  try {
    bus_status(cfg);
    ADD_FAILURE() << "connected with a wrong password";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("AUTH"), std::string::npos) << e.what();
  }
}

TEST(BusRedis, UnixSocket) {
  TempDir sock_dir;
  const std::string sock = sock_dir.file("redis.sock");
  RedisServer redis({"--unixsocket", sock, "--unixsocketperm", "700"});
  ASSERT_TRUE(eventually([&] { return ::access(sock.c_str(), F_OK) == 0; }));
  const Config cfg = parse_config(bus_config_yaml("unix://" + sock + "?db=0", "forward"), "bus.yaml");
  RunningBus bus(cfg);
  auto c = redis.client();
  xadd(*c, envelope_fields("eeeeeeee-0000-4000-8000-000000000001", "devops", "over the socket"));
  ASSERT_TRUE(eventually([&] { return xlen(*c, stream_of("devops")) == 1; }));
}

} // namespace
} // namespace tinyroute::test
