// The gateway under faults, each bounded in time: upstreams that never answer, answer garbage or stall
// mid-stream; clients that trickle their request or send broken heads. Real sockets on 127.0.0.1,
// no llama-server needed.
#include <gtest/gtest.h>

#include <atomic>

#include <chrono>
#include <thread>

#include "test-support.h"
#include "tinyroute/gateway.h"
#include "upstreams.h"

namespace {

using namespace tinyroute;
using namespace tinyroute::test::gw;
namespace t = tinyroute::test;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

const std::string hi = R"("messages":[{"role":"user","content":"hi"}],"max_tokens":4)";

// A gateway over the given upstreams with short timeouts; "auto" goes to `first` then `fallbacks`.
struct FaultGateway {
  FaultGateway(std::vector<ModelConfig> models, std::string first, std::vector<std::string> fallbacks,
               GatewayOptions opts = {}) {
    Config c = base_config();
    c.models = std::move(models);
    opts.port = 0;
    opts.connect_timeout_s = 1;
    opts.first_byte_timeout_s = 0.4;
    opts.idle_timeout_s = 0.4;
    opts.retries = 0;
    opts.breaker_failures = 1000;
    gw = std::make_unique<Gateway>(
        c,
        [first, fallbacks](const ChatRequest&) {
          return RouteDecision{"general", 1, first, fallbacks, "test", "rule", 0};
        },
        opts);
    gw->start();
  }
  ~FaultGateway() { gw->stop(std::chrono::milliseconds(200)); }
  int port() const { return gw->port(); }
  std::unique_ptr<Gateway> gw;
};

TEST(GatewayFaults, SilentBackendTimesOutAtFirstByteAndFallsBack) {
  BadUpstream silent("silent"), quick("ok");
  FaultGateway g(
      {model("silent", Provider::openai, silent.port()), model("quick", Provider::openai, quick.port())},
      "silent", {"quick"});
  const auto start = Clock::now();
  auto r = request(g.port(), "POST", "/v1/chat/completions", R"({"model":"auto",)" + hi + "}");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-tinyroute-model"], "quick");
  EXPECT_LT(seconds_since(start), 2.0);
  EXPECT_NE(
      g.gw->metrics_text().find("tinyroute_upstream_attempts_total{model=\"silent\",outcome=\"timeout\"} 1"),
      std::string::npos)
      << g.gw->metrics_text();
}

TEST(GatewayFaults, SilentBackendWithoutFallbackIs504ListingTheAttempt) {
  BadUpstream silent("silent");
  FaultGateway g({model("silent", Provider::openai, silent.port())}, "silent", {});
  for (const char* path : {"/v1/chat/completions", "/v1/messages"}) {
    SCOPED_TRACE(path);
    const auto start = Clock::now();
    auto r = request(g.port(), "POST", path, R"({"model":"silent",)" + hi + "}");
    const double took = seconds_since(start);
    EXPECT_EQ(r.status, 504) << r.body;
    const std::string message = r.j()["error"]["message"];
    EXPECT_NE(message.find("silent: no response from"), std::string::npos) << message;
    EXPECT_NE(message.find("within 0.4"), std::string::npos) << message;
    EXPECT_GE(took, 0.35);
    EXPECT_LT(took, 2.0);
  }
}

// A gateway destroyed while requests wait on an upstream on each of its network threads. The waiting
// coroutines hold sockets of several event loops (the listener on one, connections on all), and the
// teardown must not reach a loop's services after that loop is gone: ASan caught a use-after-free
// here once the network threads had an event loop each. The clients are released.
TEST(GatewayFaults, DestroyedWithRequestsInFlightOnEveryThreadShutsDownCleanly) {
  BadUpstream silent("silent");
  Config c = base_config();
  c.models = {model("silent", Provider::openai, silent.port())};
  GatewayOptions opts;
  opts.port = 0;
  opts.threads = 2;
  opts.retries = 0;
  opts.first_byte_timeout_s = 60; // the requests are still waiting when the gateway goes
  auto gw = std::make_unique<Gateway>(
      c, [](const ChatRequest&) { return RouteDecision{"general", 1, "silent", {}, "test", "rule", 0}; },
      opts);
  gw->start();
  const int port = gw->port();
  constexpr int kClients = 4; // round robin: two on each network thread
  std::atomic<int> released{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&] {
      (void)request(port, "POST", "/v1/chat/completions", R"({"model":"silent",)" + hi + "}");
      ++released;
    });
  }
  const std::string in_flight = "tinyroute_in_flight_requests " + std::to_string(kClients);
  for (int i = 0; i < 500 && gw->metrics_text().find(in_flight) == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_NE(gw->metrics_text().find(in_flight), std::string::npos) << gw->metrics_text();
  gw->stop(std::chrono::milliseconds(0));
  gw.reset();
  for (auto& t : clients) t.join();
  EXPECT_EQ(released.load(), kClients);
}

TEST(GatewayFaults, GarbageAnswerIsACleanErrorNotACrash) {
  BadUpstream garbage("garbage");
  FaultGateway g({model("garbage", Provider::openai, garbage.port()),
                  model("garbage-anthropic", Provider::anthropic, garbage.port()),
                  model("garbage-ollama", Provider::ollama, garbage.port())},
                 "garbage", {});
  for (const std::string name : {"garbage", "garbage-anthropic", "garbage-ollama"}) {
    for (const char* stream : {"false", "true"}) {
      SCOPED_TRACE(name + " stream=" + stream);
      auto r = request(g.port(), "POST", "/v1/chat/completions",
                       R"({"model":")" + name + R"(","stream":)" + stream + "," + hi + "}");
      EXPECT_EQ(r.status, 502) << r.body;
      auto j = r.j();
      ASSERT_TRUE(j.is_object() && j["error"]["message"].is_string()) << r.body;
      EXPECT_NE(j["error"]["message"].get<std::string>().find(name + ": "), std::string::npos) << r.body;
      // What came back is shown, so a proxy's error page in the way is easy to spot.
      EXPECT_NE(j["error"]["message"].get<std::string>().find("content-type 'text/html', starting '<html>"),
                std::string::npos)
          << r.body;
    }
  }
  EXPECT_EQ(request(g.port(), "GET", "/health").status, 200);
}

TEST(GatewayFaults, BackendStallingMidStreamEndsWithAnErrorEvent) {
  BadUpstream stall("stall");
  FaultGateway g({model("stall", Provider::openai, stall.port())}, "stall", {});
  const auto start = Clock::now();
  auto r = request(g.port(), "POST", "/v1/chat/completions", R"({"model":"stall","stream":true,)" + hi + "}");
  const double took = seconds_since(start);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("Hello"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"error\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("went quiet for 0.4"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("[DONE]"), std::string::npos) << r.body; // not dressed up as a finished answer
  EXPECT_GE(took, 0.35);
  EXPECT_LT(took, 2.0);
}

// Connects and sends `bytes`; then, every `trickle` (if nonzero), one more byte. Returns how long until
// the server closed the connection (or `give_up`).
double seconds_until_closed(int port, const std::string& bytes, std::chrono::milliseconds trickle,
                            std::chrono::seconds give_up = std::chrono::seconds(5)) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  asio::write(socket, asio::buffer(bytes));
  const auto start = Clock::now();
  pollfd p{socket.native_handle(), POLLIN, 0};
  while (Clock::now() - start < give_up) {
    if (::poll(&p, 1, trickle.count() > 0 ? static_cast<int>(trickle.count()) : 50) > 0) {
      char buf[4096];
      if (::recv(socket.native_handle(), buf, sizeof(buf), 0) <= 0) return seconds_since(start);
    } else if (trickle.count() > 0) {
      beast::error_code ec;
      asio::write(socket, asio::buffer("x", 1), ec);
      if (ec) return seconds_since(start);
    }
  }
  return seconds_since(start);
}

TEST(GatewayFaults, SlowClientIsCutOffAtTheRequestReadTimeout) {
  BadUpstream quick("ok");
  GatewayOptions opts;
  opts.request_read_timeout_s = 0.5;
  FaultGateway g({model("quick", Provider::openai, quick.port())}, "quick", {}, opts);
  const std::string head =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 100000\r\n\r\n{\"model\":";
  // Headers, then nothing more.
  double took = seconds_until_closed(g.port(), head, std::chrono::milliseconds(0));
  EXPECT_GE(took, 0.4);
  EXPECT_LT(took, 2.0);
  // A byte every 100 ms keeps the connection busy but must not keep it open past the deadline.
  took = seconds_until_closed(g.port(), head, std::chrono::milliseconds(100));
  EXPECT_GE(took, 0.3);
  EXPECT_LT(took, 2.0);
  // Headers trickled without ever ending.
  took = seconds_until_closed(g.port(), "GET /health HTTP/1.1\r\nX-Slow: ", std::chrono::milliseconds(100));
  EXPECT_LT(took, 2.0);
  // None of them reached a handler, and the server still answers.
  EXPECT_EQ(g.gw->metrics_text().find("tinyroute_requests_total{endpoint=\"/v1/chat/completions\""),
            std::string::npos);
  EXPECT_EQ(request(g.port(), "GET", "/health").status, 200);
}

// Sends raw bytes and reads one response (status 0 when the connection closed without one).
Reply raw(int port, const std::string& bytes) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  stream.expires_after(std::chrono::seconds(5));
  beast::error_code ec;
  asio::write(stream, asio::buffer(bytes), ec);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  http::read(stream, buf, parser, ec);
  Reply r;
  if (ec) return r;
  r.status = static_cast<int>(parser.get().result_int());
  for (const auto& f : parser.get()) r.headers[std::string(f.name_string())] = std::string(f.value());
  r.body = parser.get().body();
  return r;
}

TEST(GatewayFaults, BrokenRequestHeadsGetA4xxAndTheServerStaysUp) {
  BadUpstream quick("ok");
  FaultGateway g({model("quick", Provider::openai, quick.port())}, "quick", {});
  struct Row {
    const char* name;
    std::string bytes;
    int status;
  };
  const std::string post = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n";
  const std::vector<Row> table = {
      {"content-length not a number", post + "Content-Length: abc\r\n\r\n{}", 400},
      {"negative content-length", post + "Content-Length: -5\r\n\r\n{}", 400},
      {"two different content-lengths", post + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400},
      {"bad chunk size", post + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400},
      {"huge header", post + "X-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n", 431},
      {"header without colon", post + "NoColonHere\r\n\r\n", 400},
      {"not http at all", "HELLO THERE\r\n\r\n", 400},
  };
  for (const auto& row : table) {
    SCOPED_TRACE(row.name);
    auto r = raw(g.port(), row.bytes);
    EXPECT_EQ(r.status, row.status) << r.body;
    EXPECT_TRUE(r.j().is_object() && r.j()["error"]["message"].is_string()) << r.body;
    EXPECT_EQ(r.headers["Connection"], "close");
    EXPECT_EQ(request(g.port(), "GET", "/health").status, 200);
  }
}

} // namespace
