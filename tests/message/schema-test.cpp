// The JSON Schema subset validator, the schema-derived grammar, truncated-JSON repair and UTF-8 hygiene.
#include <gtest/gtest.h>

#include <functional>

#include "core/utf8.h"
#include "message/schema-grammar.h"
#include "message/schema-validate.h"
#include "tinyroute/agent-message.h"

namespace tinyroute {
namespace {

using nlohmann::json;

json valid_envelope() {
  AgentMessage m;
  m.id = "0b8f4c2e-3d1a-4f5b-9c7d-1e2f3a4b5c6d";
  m.from = "user";
  m.to = "billing";
  m.kind = "task";
  m.intent = "pay_invoice";
  m.priority = "high";
  m.summary = "Pay the March invoice.";
  m.language = "en";
  m.correlation_id = m.id;
  m.created_at = "2025-03-01T10:00:00.000Z";
  m.body = "please pay the march invoice";
  return agent_message_json(m);
}

TEST(SchemaValidate, ShippedSchemaAcceptsAWellFormedEnvelope) {
  const auto problems = validate_json(agent_message_schema(), valid_envelope());
  EXPECT_TRUE(problems.empty()) << problems.front();
}

TEST(SchemaValidate, RejectsEachKindOfViolation) {
  struct Case {
    const char* name;
    std::function<void(json&)> change;
    const char* expect; // in the first problem
  };
  const std::vector<Case> cases = {
      {"extra property", [](json& j) { j["extra"] = 1; }, "$: property 'extra' is not allowed"},
      {"missing required", [](json& j) { j.erase("body"); }, "required property 'body' is missing"},
      {"bad enum", [](json& j) { j["priority"] = "asap"; }, "$.priority: \"asap\" is not one of"},
      {"wrong type", [](json& j) { j["trace"]["hop_count"] = "1"; }, "$.trace.hop_count: expected"},
      {"negative hop", [](json& j) { j["trace"]["hop_count"] = -1; }, "below the minimum"},
      {"null not allowed", [](json& j) { j["to"] = nullptr; }, "$.to: expected"},
      {"too long", [](json& j) { j["intent"] = std::string(65, 'x'); }, "$.intent: longer than 64"},
      {"empty intent", [](json& j) { j["intent"] = ""; }, "$.intent: shorter than 1"},
      {"too many items",
       [](json& j) {
         j["entities"]["files"] = {"a", "b", "c", "d", "e"};
       },
       "more than 4"},
      {"bad uuid", [](json& j) { j["id"] = "not-a-uuid"; }, "$.id: \"not-a-uuid\" is not a uuid"},
      {"bad date-time", [](json& j) { j["created_at"] = "2025-03-01 10:00"; }, "is not a date-time"},
      {"bad date", [](json& j) { j["deadline"] = "2025-13-01"; }, "$.deadline: \"2025-13-01\" is not a date"},
      {"nested extra", [](json& j) { j["entities"]["places"] = json::array(); }, "'places' is not allowed"},
  };
  for (const auto& c : cases) {
    json j = valid_envelope();
    c.change(j);
    const auto problems = validate_json(agent_message_schema(), j);
    ASSERT_FALSE(problems.empty()) << c.name;
    EXPECT_NE(problems.front().find(c.expect), std::string::npos) << c.name << ": " << problems.front();
  }
  // Length counts characters, not bytes: 64 Cyrillic letters (128 bytes) fit.
  json j = valid_envelope();
  std::string cyr;
  for (int i = 0; i < 64; ++i) cyr += "ж";
  j["intent"] = cyr;
  EXPECT_TRUE(validate_json(agent_message_schema(), j).empty());
  // A nullable field takes null and a date.
  j["deadline"] = "2025-03-31";
  j["reply_to"] = "msg-1";
  EXPECT_TRUE(validate_json(agent_message_schema(), j).empty());
}

TEST(SchemaValidate, UnsupportedKeywordIsReported) {
  const json schema = {{"type", "string"}, {"pattern", "^a"}};
  const auto problems = validate_json(schema, "abc");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("'pattern' is not supported"), std::string::npos);
}

TEST(SchemaValidate, EnumerationsMatchTheLibrary) {
  const json& p = agent_message_schema()["properties"];
  EXPECT_EQ(p["kind"]["enum"].get<std::vector<std::string>>(), message_kinds());
  EXPECT_EQ(p["priority"]["enum"].get<std::vector<std::string>>(), message_priorities());
  EXPECT_EQ(p["language"]["enum"].get<std::vector<std::string>>(), message_languages());
  EXPECT_EQ(agent_message_schema()["additionalProperties"], false);
}

TEST(SchemaGrammar, DerivesBoundedRulesFromTheSchema) {
  const json& p = agent_message_schema()["properties"];
  const json schema = {
      {"type", "object"},
      {"properties", {{"intent", p["intent"]}, {"deadline", p["deadline"]}, {"kind", p["kind"]}}}};
  const std::string g = gbnf_from_schema(schema, {"intent", "deadline", "kind"});
  EXPECT_NE(g.find("char{1,64}"), std::string::npos) << g;
  EXPECT_NE(g.find("| \"null\""), std::string::npos) << g;
  EXPECT_NE(g.find("\"\\\"task\\\"\""), std::string::npos) << g;
  EXPECT_LT(g.find("intent"), g.find("deadline"));
  EXPECT_THROW(gbnf_from_schema({{"type", "object"}, {"properties", {{"n", {{"type", "integer"}}}}}}, {"n"}),
               Error);
}

TEST(SchemaGrammar, RepairsTruncatedJson) {
  struct Case {
    std::string text;
    json expect;
  };
  const std::vector<Case> cases = {
      {R"({"intent":"pay","summary":"Pay the inv)", {{"intent", "pay"}, {"summary", "Pay the inv"}}},
      {R"({"intent":"pay","summ)", {{"intent", "pay"}}},
      {R"({"intent":"pay","summary":)", {{"intent", "pay"}}},
      {R"({"intent":"pay","deadline":nu)", {{"intent", "pay"}}},
      {R"({"intent":"a\)", {{"intent", "a"}}},
      {R"({"e":{"people":["Ann","Bo)", {{"e", {{"people", {"Ann", "Bo"}}}}}},
      {R"({"e":{"people":["Ann"],)", {{"e", {{"people", {"Ann"}}}}}},
      {"{\"intent\":\"\xD0", {{"intent", ""}}}, // a cut UTF-8 sequence is dropped, not kept broken
      {R"({"intent":"done"})", {{"intent", "done"}}},
      {"{", json::object()},
  };
  for (const auto& c : cases) {
    const auto got = repair_truncated_json(c.text);
    ASSERT_TRUE(got.has_value()) << c.text;
    EXPECT_EQ(*got, c.expect) << c.text;
  }
  EXPECT_FALSE(repair_truncated_json("").has_value());
  EXPECT_FALSE(repair_truncated_json("nonsense").has_value());
}

TEST(Utf8, InvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(sanitize_utf8("plain ascii"), "plain ascii");
  EXPECT_EQ(sanitize_utf8("Привет 🚀"), "Привет 🚀");
  EXPECT_EQ(sanitize_utf8("a\xFF"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                 // overlong '/'
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); // a surrogate
  EXPECT_EQ(sanitize_utf8("\xD0"), "\xEF\xBF\xBD");                                 // cut sequence
  EXPECT_EQ(sanitize_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));         // NUL is valid UTF-8
  EXPECT_EQ(utf8_length("жжж"), 3u);
  EXPECT_EQ(utf8_prefix("жжж", 2), "жж");
}

} // namespace
} // namespace tinyroute
