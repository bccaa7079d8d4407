// The config's bus section: defaults, every key read, and each mistake reported with file:line.
#include <gtest/gtest.h>

#include "redis-fixture.h"
#include "tinyroute/error.h"

namespace tinyroute::test {
namespace {

TEST(BusConfig, DefaultsAndKeysAreRead) {
  const Config plain = parse_config(bus_config_yaml("redis://127.0.0.1:6379", "model"), "bus.yaml");
  ASSERT_TRUE(plain.bus.enabled);
  EXPECT_EQ(plain.bus.agent_stream, "stream:agent:messages:{agent}");
  EXPECT_EQ(plain.bus.presence_key, "agent:alive:{agent}");
  EXPECT_EQ(plain.bus.mode, BusMode::model);
  EXPECT_EQ(plain.bus.block_ms, 200);
  const Config c = parse_config(bus_config_yaml("unix:///run/redis.sock?db=2", "forward",
                                                "  inbox: in\n  group: g\n  consumer: c1\n"
                                                "  agent_stream: \"agents:{agent}:inbox\"\n"
                                                "  dead_letter: dlq\n  presence: true\n  dead_agent: wait\n"
                                                "  maxlen: 500\n  batch: 8\n  dedup_ttl_s: 60\n"
                                                "  password_env: MY_REDIS_PASSWORD\n"),
                                "bus.yaml");
  EXPECT_EQ(c.bus.redis, "unix:///run/redis.sock?db=2");
  EXPECT_EQ(c.bus.mode, BusMode::forward);
  EXPECT_EQ(c.bus.inbox, "in");
  EXPECT_EQ(c.bus.agent_stream, "agents:{agent}:inbox");
  EXPECT_TRUE(c.bus.presence);
  EXPECT_EQ(c.bus.dead_agent, DeadAgentPolicy::wait);
  EXPECT_EQ(c.bus.maxlen, 500);
  EXPECT_EQ(c.bus.password_env, "MY_REDIS_PASSWORD");
  EXPECT_FALSE(
      parse_config(
          bus_config_yaml("redis://x", "model").substr(0, bus_config_yaml("redis://x", "model").find("bus:")),
          "nobus.yaml")
          .bus.enabled);
}

TEST(BusConfig, MistakesNameFileLineAndKey) {
  const std::vector<std::pair<std::string, std::string>> table = {
      {"  maxlen: 0\n", "bus.maxlen"},
      {"  dead_agent: drop\n", "bus.dead_agent"},
      {"  agent_stream: \"stream:agents\"\n", "{agent}"},
      {"  presence_key: alive\n", "{agent}"},
      {"  delivered_key: seen\n", "{id}"},
      {"  password_env: \"not a name\"\n", "bus.password_env"},
      {"  bacth: 4\n", "bus.bacth: unknown key"},
  };
  for (const auto& [extra, expected] : table) {
    SCOPED_TRACE(extra);
    try {
      parse_config(bus_config_yaml("redis://127.0.0.1:6379", "model", extra), "bus.yaml");
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::config_invalid);
      const std::string what = e.what();
      EXPECT_NE(what.find("bus.yaml:"), std::string::npos) << what;
      EXPECT_NE(what.find(expected), std::string::npos) << what;
    }
  }
  for (const std::string url : {"http://127.0.0.1:6379", "redis://user:secret@127.0.0.1:6379"}) {
    EXPECT_THROW(parse_config(bus_config_yaml(url, "model"), "bus.yaml"), Error) << url;
  }
  EXPECT_THROW(parse_config(bus_config_yaml("redis://127.0.0.1", "fast"), "bus.yaml"), Error);
  std::string one_category = bus_config_yaml("redis://127.0.0.1", "model");
  one_category.erase(one_category.find("  - name: coding"),
                     one_category.find("models:") - one_category.find("  - name: coding"));
  try {
    parse_config(one_category, "bus.yaml");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bus.mode: model routes with analyze()"), std::string::npos)
        << e.what();
  }
}

TEST(BusConfig, GenerationIsOffUnlessAskedPerAgentOrForAll) {
  const Config plain = parse_config(bus_config_yaml("redis://127.0.0.1:6379", "model"), "bus.yaml");
  EXPECT_TRUE(plain.bus.generate.fields.empty());
  EXPECT_TRUE(plain.bus.generation_for("billing").fields.empty());
  const Config c =
      parse_config(bus_config_yaml("redis://127.0.0.1:6379", "model",
                                   "  generate:\n    fields: [summary, intent]\n    max_tokens: 40\n"
                                   "    agents:\n      billing: {fields: [summary]}\n"
                                   "      devops: {fields: [], max_tokens: 16}\n"),
                   "bus.yaml");
  EXPECT_EQ(c.bus.generation_for("triage").fields, (std::vector<std::string>{"intent", "summary"}));
  EXPECT_EQ(c.bus.generation_for("*").max_tokens, 40);
  EXPECT_EQ(c.bus.generation_for("billing").fields, (std::vector<std::string>{"summary"}));
  EXPECT_EQ(c.bus.generation_for("billing").max_tokens, 40); // not given: the section's
  EXPECT_TRUE(c.bus.generation_for("devops").fields.empty());
  EXPECT_EQ(c.bus.generation_for("devops").max_tokens, 16);
}

TEST(BusConfig, GenerationMistakesNameFileLineAndKey) {
  const std::vector<std::pair<std::string, std::string>> table = {
      {"  generate:\n    fields: [topics]\n", "bus.generate.fields[0]: \"topics\" is not a generated field"},
      {"  generate:\n    fields: [summary, summary]\n", "bus.generate.fields[1]: \"summary\" is given twice"},
      {"  generate:\n    fields: summary\n", "bus.generate.fields: expected a list"},
      {"  generate:\n    max_tokens: 2\n", "bus.generate.max_tokens: must be 8 to 512"},
      {"  generate:\n    agents:\n      billling: {fields: [summary]}\n",
       "bus.generate.agents.billling: unknown key; did you mean"},
      {"  generate:\n    agents:\n      billing: {fields: [summary], tokens: 9}\n",
       "bus.generate.agents.billing.tokens: unknown key"},
      {"  generate:\n    sumary: true\n", "bus.generate.sumary: unknown key"},
  };
  for (const auto& [extra, expected] : table) {
    SCOPED_TRACE(extra);
    const std::string yaml = bus_config_yaml("redis://127.0.0.1:6379", "model", extra);
    // The line of the entry's last line, where each mistake above is written.
    const std::string line = std::to_string(std::count(yaml.begin(), yaml.end(), '\n'));
    try {
      parse_config(yaml, "bus.yaml");
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::config_invalid);
      const std::string what = e.what();
      EXPECT_NE(what.find("bus.yaml:" + line), std::string::npos) << what;
      EXPECT_NE(what.find(expected), std::string::npos) << what;
    }
  }
  try {
    parse_config(bus_config_yaml("redis://127.0.0.1:6379", "forward", "  generate:\n    fields: [summary]\n"),
                 "bus.yaml");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bus.generate: generation needs the internal model"),
              std::string::npos)
        << e.what();
  }
}

TEST(BusConfig, RedisUrlsParse) {
  const RedisEndpoint a = parse_redis_url("redis://10.0.0.5:6380/3");
  EXPECT_EQ(a.host, "10.0.0.5");
  EXPECT_EQ(a.port, 6380);
  EXPECT_EQ(a.db, 3);
  const RedisEndpoint b = parse_redis_url("unix:///tmp/r.sock?db=1");
  EXPECT_EQ(b.unix_path, "/tmp/r.sock");
  EXPECT_EQ(b.db, 1);
  ::setenv("BUS_TEST_USER", "router", 1);
  ::setenv("BUS_TEST_PASS", "s3cret", 1);
  const RedisEndpoint c = parse_redis_url("redis://localhost", "BUS_TEST_USER", "BUS_TEST_PASS");
  EXPECT_EQ(c.username, "router");
  EXPECT_EQ(c.password, "s3cret");
  EXPECT_EQ(c.port, 6379);
  EXPECT_THROW(parse_redis_url("redis://host:port"), Error);
  EXPECT_THROW(parse_redis_url("unix://relative.sock"), Error);
}

} // namespace
} // namespace tinyroute::test
