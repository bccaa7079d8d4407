// Gateway::add_json_endpoint: extra JSON endpoints served next to the built-in ones, with their errors
// in the OpenAI error shape and the right 4xx/5xx. Real Gateway on loopback, real HTTP requests.
#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <future>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "http-client.h"
#include "test-support.h"
#include "tinyroute/error.h"
#include "tinyroute/gateway.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;
using namespace tinyroute;

using Reply = tinyroute::test::HttpReply;

Reply request(int port, const std::string& method, const std::string& target, const std::string& body = "") {
  return tinyroute::test::http_request(port, method, target, body);
}

Config small_config() {
  Config c;
  c.internal_model.name = "tinyllama-1.1b-chat";
  c.internal_model.model = "/models/tiny.gguf";
  c.default_category = "general";
  c.categories = {{"general", "anything", {}}};
  return c;
}

class JsonEndpointTest : public ::testing::Test {
protected:
  void SetUp() override {
    GatewayOptions o;
    o.port = 0;
    gw = std::make_unique<Gateway>(small_config(), nullptr, o);
    gw->add_json_endpoint("post", "/v1/echo", [this](const json& body) {
      network_thread_seen = network_thread_seen || std::this_thread::get_id() == test_thread;
      if (body.is_object() && body.contains("fail")) {
        const std::string kind = body["fail"];
        if (kind == "arg") throw Error(ErrorCode::invalid_argument, "'text' must be a string");
        if (kind == "candidate") throw Error(ErrorCode::no_candidate, "nothing can answer");
        throw std::runtime_error("boom");
      }
      return json{{"echo", body}};
    });
    gw->add_json_endpoint("GET", "/v1/ping", [](const json& body) {
      return json{{"null_body", body.is_null()}};
    });
    gw->start();
  }
  int port() const { return gw->port(); }

  std::thread::id test_thread = std::this_thread::get_id();
  std::atomic<bool> network_thread_seen{false};
  std::unique_ptr<Gateway> gw;
};

TEST_F(JsonEndpointTest, AnswersWithTheHandlersJson) {
  auto r = request(port(), "POST", "/v1/echo", R"({"text":"hi"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_EQ(r.j()["echo"]["text"], "hi");
  auto g = request(port(), "GET", "/v1/ping");
  EXPECT_EQ(g.status, 200);
  EXPECT_EQ(g.j()["null_body"], true);
  EXPECT_FALSE(network_thread_seen);
}

TEST_F(JsonEndpointTest, ErrorsUseTheOpenAIShapeAndStatus) {
  auto bad_json = request(port(), "POST", "/v1/echo", "{not json");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_TRUE(bad_json.j()["error"]["message"].is_string());

  auto arg = request(port(), "POST", "/v1/echo", R"({"fail":"arg"})");
  EXPECT_EQ(arg.status, 400);
  EXPECT_EQ(arg.j()["error"]["message"], "'text' must be a string");
  EXPECT_EQ(arg.j()["error"]["type"], "invalid_request_error");

  EXPECT_EQ(request(port(), "POST", "/v1/echo", R"({"fail":"candidate"})").status, 503);
  // A bug in a handler is a 500 whose text stays in the log: an exception's message is not for clients.
  auto boom = request(port(), "POST", "/v1/echo", R"({"fail":"other"})");
  EXPECT_EQ(boom.status, 500);
  EXPECT_EQ(boom.j()["error"]["message"].get<std::string>().find("boom"), std::string::npos) << boom.body;
  EXPECT_NE(boom.j()["error"]["message"].get<std::string>().find("the server log has the details"),
            std::string::npos)
      << boom.body;
  // A handler that reads a field without checking its type is the client's 400, not a 500.
  auto typed = request(port(), "POST", "/v1/echo", R"({"fail":5})");
  EXPECT_EQ(typed.status, 400) << typed.body;
  EXPECT_EQ(typed.j()["error"]["message"].get<std::string>().find("json.exception"), std::string::npos)
      << typed.body;

  auto wrong = request(port(), "GET", "/v1/echo");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers["allow"], "POST");
  auto missing = request(port(), "POST", "/v1/nothing", "{}");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.j()["error"]["message"].get<std::string>().find("/v1/echo"), std::string::npos);
  // The gateway is still healthy after every failure.
  EXPECT_EQ(request(port(), "GET", "/health").status, 200);
}

// A handler still running when stop()'s drain ends sees its request's cancel token fire; the Error it
// throws then is answered (503, "shutting_down") before the connections close, and the gateway's stop
// does not wait for the handler beyond that.
TEST(JsonEndpointStop, AHandlerRunningAfterTheDrainIsCancelledAndAnswers503) {
  GatewayOptions o;
  o.port = 0;
  Gateway gw(small_config(), nullptr, o);
  std::atomic<bool> entered{false};
  std::atomic<bool> cancelled_seen{false};
  gw.add_json_endpoint("POST", "/v1/slow", [&](const json&, const JsonRequestContext& ctx) -> json {
    entered = true;
    // Waits for the cancel (bounded: a broken stop answers 200 after a minute and fails below).
    for (int i = 0; i < 60000 && !ctx.cancel.cancelled(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!ctx.cancel.cancelled()) return json{{"cancelled", false}};
    cancelled_seen = true;
    throw Error(ErrorCode::cancelled, "the request was cancelled");
  });
  gw.start();
  auto reply = std::async(std::launch::async, [&] { return request(gw.port(), "POST", "/v1/slow", "{}"); });
  ASSERT_TRUE(tinyroute::test::eventually([&] { return entered.load(); }));
  gw.stop(std::chrono::milliseconds(50));
  const Reply r = reply.get();
  EXPECT_TRUE(cancelled_seen);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.j()["error"]["type"], "shutting_down") << r.body;
  // The client reads why, never the library's own text.
  EXPECT_NE(r.j()["error"]["message"].get<std::string>().find("shutting down"), std::string::npos) << r.body;
  EXPECT_EQ(r.j()["error"]["message"].get<std::string>().find("the request was cancelled"),
            std::string::npos);
  // Started again, the gateway gives its requests a fresh token.
  entered = false;
  cancelled_seen = false;
  gw.start();
  auto again = std::async(std::launch::async, [&] { return request(gw.port(), "POST", "/v1/slow", "{}"); });
  ASSERT_TRUE(tinyroute::test::eventually([&] { return entered.load(); }));
  EXPECT_FALSE(cancelled_seen);
  gw.stop(std::chrono::milliseconds(0));
  EXPECT_EQ(again.get().status, 503);
}

TEST_F(JsonEndpointTest, RefusesDuplicatesAndLateAdds) {
  auto dummy = [](const json&) { return json::object(); };
  EXPECT_THROW(gw->add_json_endpoint("POST", "/v1/other", dummy), Error); // already serving
  Gateway fresh(small_config(), nullptr, {});
  EXPECT_THROW(fresh.add_json_endpoint("POST", "/health", dummy), Error);
  EXPECT_THROW(fresh.add_json_endpoint("POST", "no-slash", dummy), Error);
  fresh.add_json_endpoint("POST", "/v1/x", dummy);
  EXPECT_THROW(fresh.add_json_endpoint("GET", "/v1/x", dummy), Error);
}

} // namespace
