// Gateway API keys: 401 without a known key (in each protocol's error shape), 403 for a model the key
// may not use — named or chosen by routing — and /health open to all.
#include <gtest/gtest.h>

#include <cstdlib>

#include "test-support.h"
#include "tinyroute/error.h"
#include "tinyroute/gateway.h"
#include "upstreams.h"

namespace {

using namespace tinyroute;
using namespace tinyroute::test::gw;
namespace t = tinyroute::test;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class GatewayAuth : public ::testing::Test {
protected:
  void SetUp() override {
    Config c = base_config();
    c.models = {model("cheap", Provider::openai, quick_.port()),
                model("pricey", Provider::openai, quick_.port())};
    GatewayOptions opts;
    opts.port = 0;
    opts.retries = 0;
    opts.api_keys = {{"sk-all", {"*"}}, {"sk-cheap", {"cheap"}}};
    gw_ = std::make_unique<Gateway>(
        c,
        [](const ChatRequest& r) {
          const bool hard = last_user_text(r).find("hard") != std::string::npos;
          return RouteDecision{"general", 1, hard ? "pricey" : "cheap", {}, "test", "rule", 0};
        },
        opts);
    gw_->start();
  }
  void TearDown() override { gw_->stop(std::chrono::milliseconds(200)); }
  int port() const { return gw_->port(); }

  BadUpstream quick_{"ok"};
  std::unique_ptr<Gateway> gw_;
};

std::string chat(const std::string& model, const std::string& text = "hi") {
  return json{{"model", model}, {"max_tokens", 4}, {"messages", {{{"role", "user"}, {"content", text}}}}}
      .dump();
}

TEST_F(GatewayAuth, MissingOrUnknownKeyIs401InEachProtocolsShape) {
  for (const HeaderList& headers :
       {HeaderList{}, HeaderList{{"authorization", "Bearer sk-wrong"}}, HeaderList{{"x-api-key", "sk-al"}},
        HeaderList{{"authorization", "sk-all"}}}) {
    SCOPED_TRACE(headers.empty() ? "no key" : headers[0].second);
    auto o = request(port(), "POST", "/v1/chat/completions", chat("cheap"), headers);
    EXPECT_EQ(o.status, 401) << o.body;
    EXPECT_EQ(o.j()["error"]["type"], "authentication_error") << o.body;
    EXPECT_EQ(o.headers["www-authenticate"], "Bearer");
    auto a = request(port(), "POST", "/v1/messages", chat("cheap"), headers);
    EXPECT_EQ(a.status, 401);
    EXPECT_EQ(a.j()["type"], "error");
    EXPECT_EQ(a.j()["error"]["type"], "authentication_error");
    auto l = request(port(), "POST", "/api/chat", chat("cheap"), headers);
    EXPECT_EQ(l.status, 401);
    EXPECT_TRUE(l.j()["error"].is_string()) << l.body;
    for (const char* path : {"/v1/models", "/api/tags", "/metrics"}) {
      EXPECT_EQ(request(port(), "GET", path, "", headers).status, 401) << path;
    }
    EXPECT_EQ(request(port(), "POST", "/v1/route", chat("auto"), headers).status, 401);
    // Whatever was sent never comes back in the answer.
    if (!headers.empty()) {
      EXPECT_EQ(o.body.find(headers[0].second), std::string::npos) << o.body;
    }
  }
  EXPECT_EQ(request(port(), "GET", "/health").status, 200); // open: load balancers probe it
}

TEST_F(GatewayAuth, AValidKeyPassesByBearerOrXApiKey) {
  auto o =
      request(port(), "POST", "/v1/chat/completions", chat("pricey"), {{"authorization", "Bearer sk-all"}});
  EXPECT_EQ(o.status, 200) << o.body;
  auto a = request(port(), "POST", "/v1/messages", chat("cheap"), {{"x-api-key", "sk-cheap"}});
  EXPECT_EQ(a.status, 200) << a.body;
  auto m = request(port(), "GET", "/metrics", "", {{"authorization", "Bearer sk-cheap"}});
  EXPECT_EQ(m.status, 200);
}

TEST_F(GatewayAuth, AModelTheKeyMayNotUseIs403NamedOrRouted) {
  const HeaderList cheap_key = {{"authorization", "Bearer sk-cheap"}};
  auto named = request(port(), "POST", "/v1/chat/completions", chat("pricey"), cheap_key);
  EXPECT_EQ(named.status, 403) << named.body;
  EXPECT_EQ(named.j()["error"]["type"], "permission_error");
  EXPECT_NE(named.body.find("pricey"), std::string::npos);
  auto anthropic = request(port(), "POST", "/v1/messages", chat("pricey"), {{"x-api-key", "sk-cheap"}});
  EXPECT_EQ(anthropic.status, 403);
  EXPECT_EQ(anthropic.j()["error"]["type"], "permission_error");
  // "auto" is allowed as such; what counts is the model routing picks.
  auto easy = request(port(), "POST", "/v1/chat/completions", chat("auto", "easy one"), cheap_key);
  EXPECT_EQ(easy.status, 200) << easy.body;
  EXPECT_EQ(easy.headers["x-tinyroute-model"], "cheap");
  auto hard = request(port(), "POST", "/v1/chat/completions", chat("auto", "a hard one"), cheap_key);
  EXPECT_EQ(hard.status, 403) << hard.body;
  EXPECT_NE(hard.body.find("routing chose 'pricey'"), std::string::npos) << hard.body;
  // The model list shows what the key may use.
  auto models = request(port(), "GET", "/v1/models", "", cheap_key);
  EXPECT_NE(models.body.find("\"cheap\""), std::string::npos);
  EXPECT_EQ(models.body.find("\"pricey\""), std::string::npos) << models.body;
  auto all = request(port(), "GET", "/v1/models", "", {{"authorization", "Bearer sk-all"}});
  EXPECT_NE(all.body.find("\"pricey\""), std::string::npos);
}

TEST(GatewayOptionsFrom, KeysComeFromTheEnvironment) {
  const std::string yaml = R"(internal_model: {model: tinyllama-1.1b-chat}
categories: [{name: general, description: anything}]
models:
  - {name: cheap, provider: openai, base_url: "http://127.0.0.1:1", categories: [general]}
default_category: general
gateway:
  listen: "127.0.0.1:9123"
  max_body_bytes: 4096
  api_keys:
    - {key_env: TR_TEST_KEY_A, models: ["*"]}
    - key_env: TR_TEST_KEY_B
      models: [cheap]
)";
  Config c = parse_config(yaml, "gw.yaml");
  ::setenv("TR_TEST_KEY_A", "alpha-secret", 1);
  ::unsetenv("TR_TEST_KEY_B");
  try {
    gateway_options_from(c);
    FAIL() << "an unset key variable must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::config_invalid);
    EXPECT_NE(
        std::string(e.what()).find("gw.yaml:11: gateway.api_keys: the environment variable TR_TEST_KEY_B"),
        std::string::npos)
        << e.what();
    EXPECT_EQ(std::string(e.what()).find("alpha-secret"), std::string::npos);
  }
  ::setenv("TR_TEST_KEY_B", "beta-secret", 1);
  GatewayOptions o = gateway_options_from(c);
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 9123);
  EXPECT_EQ(o.max_body_bytes, 4096u);
  ASSERT_EQ(o.api_keys.size(), 2u);
  EXPECT_EQ(o.api_keys["alpha-secret"], std::vector<std::string>{"*"});
  EXPECT_EQ(o.api_keys["beta-secret"], std::vector<std::string>{"cheap"});
  ::unsetenv("TR_TEST_KEY_A");
  ::unsetenv("TR_TEST_KEY_B");
}

} // namespace
