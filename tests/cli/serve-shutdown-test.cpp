// serve stopping with engine work in flight: once the drain is over, each endpoint's engine work is
// cancelled and its client gets a 503 "shutting down" in the OpenAI error shape, instead of the stop
// waiting for the model. Real engine (generated model), real serve endpoints, real HTTP on loopback.
// The engine runs one request at a time behind a forced 3,000-token generation that only the test
// ends, so the request is always still queued when the gateway stops, whatever the machine's speed.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "busy-engine.h"
#include "http-client.h"
#include "serve/live-router.h"
#include "serve/native-endpoints.h"
#include "serve/route-request.h"
#include "test-support.h"
#include "tinyroute/error.h"
#include "tinyroute/from-config.h"
#include "tinyroute/gateway.h"

namespace tinyroute {
namespace {

using nlohmann::json;

Config serve_config() {
  return parse_config("internal_model:\n  model: " + test::tiny_model() +
                          "\n  threads: 1\n  context: 8192\n  parallel: 1\n  max_query_tokens: 128\n"
                          "categories:\n"
                          "  - name: chat\n    description: Casual conversation and greetings.\n"
                          "  - name: coding\n    description: Writing, reviewing or debugging source code.\n"
                          "models:\n  - name: big\n    provider: openai\n    base_url: http://127.0.0.1:9\n"
                          "    categories: [chat, coding]\n"
                          "default_category: chat\n"
                          "agents:\n"
                          "  - name: billing\n    description: Invoices, refunds and payments.\n"
                          "    endpoint: http://127.0.0.1:9001/inbox\n"
                          "  - name: triage\n    description: Anything else.\n"
                          "    endpoint: http://127.0.0.1:9003/inbox\n    triage: true\n",
                      "serve.yaml");
}

TEST(ServeShutdown, EngineWorkStillRunningAfterTheDrainIsCancelledAndAnswered503) {
  const Config config = serve_config();
  EngineParams params = engine_params_from(config.internal_model);
  params.n_threads = 1;
  auto engine = std::make_shared<Engine>(params);
  auto live = std::make_shared<serve::LiveRouter>();
  live->set(serve::make_served(engine, config, std::make_shared<DecisionCache>(DecisionCacheOptions{}),
                               std::make_shared<ConversationStore>(ConversationOptions{})));
  const Router router = [live, engine, config](const ChatRequest& request) {
    return serve::route_request(*live->get().analyzer, *engine, config, request, {});
  };

  struct Case {
    const char* path;
    json body;
  };
  const std::vector<Case> cases = {
      {"/v1/route", {{"messages", {{{"role", "user"}, {"content", "my invoice is wrong"}}}}}},
      {"/v1/classify", {{"text", "fix this segfault in my parser"}}},
      {"/v1/analyze", {{"text", "fix this segfault in my parser"}, {"conversation", "c1"}}},
      {"/v1/agents/route", {{"text", "refund order 42"}}},
      {"/v1/agents/messages", {{"text", "please refund order 42 by Friday"}}},
      {"/v1/metadata", {{"text", "please refund order 42 by Friday"}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    GatewayOptions options;
    options.port = 0;
    auto gateway = std::make_unique<Gateway>(config, router, options);
    serve::add_native_endpoints(*gateway, live, [] { return Availability{}; });
    gateway->start();

    const CancelToken busy_cancel;
    auto busy = test::keep_engine_busy(*engine, 3000, busy_cancel, Priority::high);
    ASSERT_TRUE(test::eventually([&] { return engine->stats().active == 1; }, std::chrono::seconds(60)));
    auto reply = std::async(std::launch::async, [&] {
      return test::http_request(gateway->port(), "POST", c.path, c.body.dump());
    });
    // The request's engine work waits behind the forced generation.
    ASSERT_TRUE(test::eventually([&] { return engine->stats().queued >= 1; }, std::chrono::seconds(60)));
    const auto finished_before = engine->stats().requests;

    gateway->stop(std::chrono::milliseconds(0));
    if (reply.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      busy_cancel.cancel();
      gateway.reset(); // closes the client's connection, so everything unwinds
      FAIL() << "the stopped gateway left the request waiting for the engine";
    }
    const test::HttpReply r = reply.get();
    EXPECT_EQ(r.status, 503) << r.body;
    const json error = r.j()["error"];
    EXPECT_EQ(error["type"], "shutting_down") << r.body;
    EXPECT_NE(error["message"].get<std::string>().find("shutting down"), std::string::npos) << r.body;
    // The generation holding the engine is still decoding: the request was cancelled, not answered late.
    EXPECT_EQ(busy.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
    EXPECT_EQ(engine->stats().active, 1);
    EXPECT_GE(engine->stats().requests, finished_before + 1); // the cancelled request completed
    busy_cancel.cancel();
    EXPECT_THROW(busy.get(), Error);
  }
  // The engine serves the next request normally.
  const ClassifyResult after = serve::classify_request(*live->get().analyzer, "hello there");
  EXPECT_FALSE(after.category.empty());
}

} // namespace
} // namespace tinyroute
