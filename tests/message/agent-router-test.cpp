// AgentRouter: exact agreement with LabelScorer's brute-force twin, the triage default, set-up errors.
#include <gtest/gtest.h>

#include <cmath>

#include "message-fixture.h"
#include "tinyroute/agent-router.h"

namespace tinyroute {
namespace {

// CLINC150-like requests (not from its splits), English and Russian, plus out-of-scope ones.
const std::vector<std::string> kRequests = {
    "what's the routing number on my checking account",
    "my card got declined at the store, why",
    "book a table for two at an italian place tonight",
    "remind me to call mom at six",
    "how much gas is left in my car",
    "Переведи 200 долларов на сберегательный счёт",
    "what is the weather like in paris tomorrow",
    "who is the best basketball player of all time",
    "",
};

TEST(AgentRouter, AgreesWithBruteForceReference) {
  Engine engine(test::message_engine_params());
  const Config config = test::clinc_config();
  AgentRouter router(engine, config);
  ASSERT_EQ(router.scorer().labels().size(), 11u);
  EXPECT_EQ(router.triage_agent(), "triage");
  for (const auto& text : kRequests) {
    const AgentRoute fast = router.route_agent(text).get();
    const AgentRoute slow = router.route_agent_reference(text);
    ASSERT_EQ(fast.distribution.size(), slow.distribution.size());
    double sum = 0;
    for (size_t i = 0; i < fast.distribution.size(); ++i) {
      EXPECT_EQ(fast.distribution[i].first, config.agents[i].name);
      EXPECT_NEAR(fast.distribution[i].second, slow.distribution[i].second, 1e-3) << text;
      sum += fast.distribution[i].second;
    }
    EXPECT_NEAR(sum, 1.0, 1e-9);
    EXPECT_EQ(fast.top_agent, slow.top_agent) << text;
    EXPECT_EQ(fast.agent, slow.agent) << text;
    EXPECT_NE(config.find_agent(fast.agent), nullptr);
    EXPECT_EQ(fast.uncertain, fast.confidence < config.agent_routing.threshold);
    EXPECT_EQ(fast.agent, fast.uncertain ? "triage" : fast.top_agent);
    EXPECT_EQ(fast.source, fast.uncertain ? "default" : "model");
    EXPECT_GT(fast.query_tokens, 0);
  }
}

TEST(AgentRouter, ThresholdDecidesBetweenModelAndTriage) {
  Engine engine(test::message_engine_params());
  const AgentRouter always_triage(engine, test::team_config("agent_routing: {threshold: 1.0}\n"));
  const AgentRouter never_triage(engine, test::team_config("agent_routing: {threshold: 0.0}\n"));
  for (const auto& text : kRequests) {
    const AgentRoute a = always_triage.route_agent(text).get();
    EXPECT_EQ(a.agent, "triage");
    EXPECT_TRUE(a.uncertain);
    EXPECT_EQ(a.source, "default");
    const AgentRoute b = never_triage.route_agent(text).get();
    EXPECT_EQ(b.agent, b.top_agent);
    EXPECT_FALSE(b.uncertain);
    EXPECT_EQ(b.source, "model");
  }
}

TEST(AgentRouter, PromptListsAgentsWithSkillsAndExamples) {
  Engine engine(test::message_engine_params());
  const AgentRouter router(engine, test::team_config());
  const std::string& prefix = router.scorer().prefix_text();
  EXPECT_NE(prefix.find("billing: Invoices, refunds and payments. Skills: refunds, invoices."),
            std::string::npos)
      << prefix;
  EXPECT_NE(prefix.find("Где мой счёт за март?"), std::string::npos);
  EXPECT_EQ(router.scorer().options().prefix_name, "route_agent");
}

TEST(AgentRouter, NeedsAnAgentsSection) {
  Engine engine(test::message_engine_params());
  Config config = test::team_config();
  config.agents.clear();
  try {
    AgentRouter router(engine, config);
    FAIL() << "accepted a config without agents";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
  }
}

} // namespace
} // namespace tinyroute
