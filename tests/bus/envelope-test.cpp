// The deployment's envelope <-> agent-message.v1: both round trips lossless on a table of messages,
// and every malformed field refused with the field's name.
#include <gtest/gtest.h>

#include "bus/deployment-envelope.h"
#include "message/schema-validate.h"
#include "tinyroute/error.h"

namespace tinyroute {
namespace {

using nlohmann::json;

DeploymentEnvelope envelope(std::string id, std::string from, std::string to, std::string verb,
                            std::string payload, std::optional<std::string> corr, bool response,
                            std::string ts, int hops = 0) {
  DeploymentEnvelope e;
  e.msg_id = std::move(id);
  e.from_agent = std::move(from);
  e.to_agent = std::move(to);
  e.verb = std::move(verb);
  e.payload = std::move(payload);
  e.correlation_id = std::move(corr);
  e.requires_response = response;
  e.timestamp = std::move(ts);
  e.hop_count = hops;
  return e;
}

const std::vector<DeploymentEnvelope>& deployment_table() {
  static const std::vector<DeploymentEnvelope> t = {
      envelope("7d3f6c1e-2b4a-4c8e-9f10-0a1b2c3d4e5f", "planner", "coder", "TELL", "Implement the login form",
               "conv-1", false, "2026-03-01T12:00:00Z"),
      envelope("0b8e5a7c-1111-4222-8333-444455556666", "alice", "*", "PING", "",
               "0b8e5a7c-1111-4222-8333-444455556666", false, "2026-03-01T12:00:00.123456+00:00"),
      envelope("a1b2c3d4-e5f6-4789-8abc-def012345678", "qa", "", "ASK", "Где мой счёт за март?", "thread-9",
               true, "2026-12-31T23:59:59.999Z", 3),
      envelope("ffffffff-ffff-4fff-bfff-ffffffffffff", "monitor", "devops", "OBSERVE",
               "{\"cpu\": 97, \"host\": \"db-1\"}", "alerts", false, "2026-06-15T08:30:00+00:00", 1),
      envelope("12345678-90ab-4cde-8f01-234567890abc", "ops", "billing", "ASK", "refund #42?\nline two\ttab",
               "c", true, "2026-01-01T00:00:00Z", 7),
  };
  return t;
}

TEST(BusEnvelope, DeploymentToAgentMessageAndBackIsLossless) {
  for (const auto& e : deployment_table()) {
    SCOPED_TRACE(e.msg_id);
    const AgentMessage m = agent_message_from(e);
    EXPECT_TRUE(validate_json(agent_message_schema(), agent_message_json(m)).empty());
    DeploymentEnvelope back = deployment_from(m);
    ASSERT_TRUE(back.agent_message.has_value()); // the v1 extension travels along
    back.agent_message.reset();
    EXPECT_EQ(back, e);
    // Through the stream's field encoding too.
    std::map<std::string, std::string> fields;
    for (const auto& [k, v] : deployment_fields(deployment_from(m))) fields[k] = v;
    DeploymentEnvelope wire = parse_deployment_fields(fields);
    wire.agent_message.reset();
    EXPECT_EQ(wire, e);
    DeploymentEnvelope as_json = parse_deployment_json(deployment_json(e));
    EXPECT_EQ(as_json, e);
  }
}

TEST(BusEnvelope, AgentMessageToDeploymentAndBackIsLossless) {
  std::vector<AgentMessage> table;
  AgentMessage m;
  m.id = "7d3f6c1e-2b4a-4c8e-9f10-0a1b2c3d4e5f";
  m.from = "planner";
  m.to = "coder";
  m.kind = "handoff"; // no verb of its own: goes out as TELL and comes back as handoff
  m.intent = "take_over_ticket";
  m.priority = "urgent";
  m.summary = "Planner hands the login ticket to the coder.";
  m.entities = {{"Alice"}, {"2026-03-02"}, {"auth-service"}, {"login.tsx"}};
  m.deadline = "2026-03-02";
  m.language = "en";
  m.reply_to = "lead"; // not the sender
  m.correlation_id = "conv-1";
  m.hop_count = 2;
  m.created_at = "2026-03-01T12:00:00.000Z";
  m.body = "Please take over LOGIN-12";
  table.push_back(m);
  m.kind = "question";
  m.reply_to = "planner";
  m.deadline.reset();
  m.language = "ru";
  m.body = "Когда релиз?";
  table.push_back(m);
  m.kind = "notification";
  m.reply_to.reset();
  m.to = "*";
  m.entities = {};
  table.push_back(m);
  m.kind = "report";
  m.to = "auto";
  table.push_back(m);
  for (const auto& original : table) {
    SCOPED_TRACE(original.kind);
    const DeploymentEnvelope e = deployment_from(original);
    EXPECT_EQ(agent_message_json(agent_message_from(e)), agent_message_json(original));
    std::map<std::string, std::string> fields;
    for (const auto& [k, v] : deployment_fields(e)) fields[k] = v;
    EXPECT_EQ(agent_message_json(agent_message_from(parse_deployment_fields(fields))),
              agent_message_json(original));
  }
}

TEST(BusEnvelope, VerbsMapToKindsOneToOne) {
  for (const auto& verb : deployment_verbs()) EXPECT_EQ(verb_for_kind(kind_for_verb(verb)), verb);
  EXPECT_EQ(kind_for_verb("ASK"), "question");
  EXPECT_EQ(verb_for_kind("handoff"), "TELL");
}

TEST(BusEnvelope, IdThatIsNotAUuidGetsAStableOne) {
  DeploymentEnvelope e = deployment_table().front();
  e.msg_id = "msg-000042";
  const AgentMessage a = agent_message_from(e), b = agent_message_from(e);
  EXPECT_TRUE(is_uuid(a.id));
  EXPECT_EQ(a.id, b.id);
  e.msg_id = "msg-000043";
  EXPECT_NE(agent_message_from(e).id, a.id);
}

TEST(BusEnvelope, TimestampWithoutZoneIsUtc) {
  std::map<std::string, std::string> f = {{"msg_id", "m1"},
                                          {"from_agent", "a"},
                                          {"verb", "PING"},
                                          {"payload", "x"},
                                          {"timestamp", "2026-03-01T12:00:00.5"}};
  EXPECT_EQ(parse_deployment_fields(f).timestamp, "2026-03-01T12:00:00.5Z");
}

TEST(BusEnvelope, MalformedFieldsAreRefusedByName) {
  const std::map<std::string, std::string> good = {
      {"msg_id", "m1"}, {"from_agent", "a"},  {"to_agent", "b"},
      {"verb", "TELL"}, {"payload", "hello"}, {"timestamp", "2026-03-01T12:00:00Z"}};
  EXPECT_NO_THROW(parse_deployment_fields(good));
  const std::vector<std::tuple<std::string, std::string, std::string>> table = {
      {"verb", "SHOUT", "verb"},
      {"verb", "tell", "verb"},
      {"msg_id", "", "msg_id"},
      {"from_agent", "", "from_agent"},
      {"timestamp", "yesterday", "timestamp"},
      {"timestamp", "", "timestamp"},
      {"requires_response", "maybe", "requires_response"},
      {"hop_count", "-1", "hop_count"},
      {"hop_count", "two", "hop_count"},
      {"to_agent", std::string(200, 'x'), "to_agent"},
      {"agent_message", "{not json", "agent_message"},
  };
  for (const auto& [field, value, named] : table) {
    SCOPED_TRACE(field + "=" + value);
    auto f = good;
    f[field] = value;
    try {
      parse_deployment_fields(f);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find(named), std::string::npos) << e.what();
    }
  }
  auto no_payload = good;
  no_payload.erase("payload");
  EXPECT_THROW(parse_deployment_fields(no_payload), Error);
  EXPECT_THROW(parse_agent_message(json{{"schema", "agent-message.v1"}}), Error);
}

} // namespace
} // namespace tinyroute
