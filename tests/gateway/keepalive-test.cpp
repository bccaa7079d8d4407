// Upstream keep-alive: forwards reuse idle connections to a plain-HTTP backend, a connection the
// backend closed while idle is replaced without failing the request, and `upstream_keepalive: 0`
// connects per request. The backend is a real nginx whose access log records the connection serial
// number of every request it served.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "test-support.h"
#include "tinyroute/gateway.h"
#include "upstreams.h"

namespace {

using namespace tinyroute;
using namespace tinyroute::test::gw;
namespace t = tinyroute::test;

// What an OpenAI-compatible server streams for a one-word answer (the gateway always asks for a stream);
// nginx turns the \n escapes into newlines.
const std::string kAnswer =
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,)"
    R"("delta":{"role":"assistant","content":"pong"},"finish_reason":null}]}\n\n)"
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,)"
    R"("delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n)";

std::string nginx_binary() { // Debian installs it in /usr/sbin, which is not on every PATH
  return std::ifstream("/usr/sbin/nginx").good() ? "/usr/sbin/nginx" : "nginx";
}

// nginx answering every request with a fixed chat completion; `keepalive` is its http-level
// keep-alive setup (e.g. "keepalive_timeout 200ms;").
class Nginx {
public:
  explicit Nginx(const std::string& keepalive) : port_(t::free_port()) {
    const std::string d = dir_.path();
    t::write_file(d + "/nginx.conf",
                  "worker_processes 1;\ndaemon off;\npid " + d + "/nginx.pid;\nerror_log " + d +
                      "/error.log warn;\nevents { worker_connections 256; }\nhttp {\n"
                      "  log_format conn '$connection';\n  access_log " +
                      d + "/access.log conn;\n  client_body_temp_path " + d + ";\n  " + keepalive +
                      "\n  server {\n    listen 127.0.0.1:" + std::to_string(port_) +
                      ";\n    location / { default_type text/event-stream; return 200 '" + kAnswer +
                      "'; }\n  }\n}\n");
    process_ = std::make_unique<t::Process>(
        std::vector<std::string>{nginx_binary(), "-c", d + "/nginx.conf", "-p", d},
        std::map<std::string, std::string>{}, d + "/stderr.log");
    if (!t::wait_for_port(port_, std::chrono::seconds(10)))
      throw std::runtime_error("nginx did not start: " + t::read_file(d + "/stderr.log"));
  }
  int port() const { return port_; }
  // The connection serial number of each request served so far. nginx writes a request's log line
  // only after it has sent the answer, so the client can see the answer first: wait (bounded) until
  // `expected` lines are there, then return what the log holds.
  std::vector<std::string> connections(std::size_t expected) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
      std::ifstream in(dir_.path() + "/access.log");
      std::vector<std::string> out;
      for (std::string line; std::getline(in, line);) out.push_back(line);
      if (out.size() >= expected || std::chrono::steady_clock::now() > deadline) return out;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

private:
  t::TempDir dir_;
  int port_;
  std::unique_ptr<t::Process> process_;
};

struct PassthroughGateway {
  PassthroughGateway(int upstream_port, int keepalive, int threads = 1) {
    Config c = base_config();
    c.models = {model("upstream", Provider::openai, upstream_port)};
    GatewayOptions opts;
    opts.port = 0;
    opts.retries = 0;
    opts.upstream_keepalive = keepalive;
    opts.threads = threads;
    gw = std::make_unique<Gateway>(
        c, [](const ChatRequest&) { return RouteDecision{"general", 1, "upstream", {}, "test", "rule", 0}; },
        opts);
    gw->start();
  }
  ~PassthroughGateway() { gw->stop(std::chrono::milliseconds(200)); }
  Reply chat() const {
    return request(gw->port(), "POST", "/v1/chat/completions",
                   R"({"model":"upstream","messages":[{"role":"user","content":"ping"}]})",
                   {{"content-type", "application/json"}});
  }
  std::unique_ptr<Gateway> gw;
};

std::size_t distinct(const std::vector<std::string>& v) {
  return std::set<std::string>(v.begin(), v.end()).size();
}

TEST(UpstreamKeepAlive, SequentialForwardsShareOneConnection) {
  Nginx nginx("keepalive_timeout 60s;");
  PassthroughGateway g(nginx.port(), 8);
  for (int i = 0; i < 5; ++i) {
    const Reply r = g.chat();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("pong"), std::string::npos) << r.body;
  }
  const auto conns = nginx.connections(5);
  ASSERT_EQ(conns.size(), 5u);
  EXPECT_EQ(distinct(conns), 1u) << "every forward should have reused the first connection";
  const Reply metrics = request(g.gw->port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("tinyroute_upstream_connections_reused_total 4"), std::string::npos);
}

TEST(UpstreamKeepAlive, AConnectionTheBackendClosedWhileIdleIsReplacedTransparently) {
  Nginx nginx("keepalive_timeout 200ms;");
  PassthroughGateway g(nginx.port(), 8);
  for (int i = 0; i < 3; ++i) {
    const Reply r = g.chat();
    ASSERT_EQ(r.status, 200) << "request " << i << ": " << r.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(700)); // nginx closes the idle connection
  }
  const auto conns = nginx.connections(3);
  EXPECT_EQ(conns.size(), 3u) << "each request reached the backend exactly once";
  EXPECT_EQ(distinct(conns), 3u);
}

TEST(UpstreamKeepAlive, AConnectionClosedByTheBackendAfterItsAnswerIsNotReused) {
  Nginx nginx("keepalive_requests 2;"); // the 2nd answer on a connection says "Connection: close"
  PassthroughGateway g(nginx.port(), 8);
  for (int i = 0; i < 6; ++i) ASSERT_EQ(g.chat().status, 200) << "request " << i;
  const auto conns = nginx.connections(6);
  EXPECT_EQ(conns.size(), 6u);
  EXPECT_EQ(distinct(conns), 3u);
}

// Each network thread runs its own io_context, and a pooled socket is only reused on the thread that
// opened it. Client connections are spread round robin: six clients in turn over two threads leave
// one upstream connection per thread.
TEST(UpstreamKeepAlive, EachNetworkThreadReusesOnlyItsOwnConnections) {
  Nginx nginx("keepalive_timeout 60s;");
  PassthroughGateway g(nginx.port(), 8, 2);
  for (int i = 0; i < 6; ++i) {
    const Reply r = g.chat(); // a new client connection each time
    ASSERT_EQ(r.status, 200) << "request " << i << ": " << r.body;
  }
  const auto conns = nginx.connections(6);
  ASSERT_EQ(conns.size(), 6u);
  EXPECT_EQ(distinct(conns), 2u) << "one upstream connection per network thread";
  const Reply metrics = request(g.gw->port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("tinyroute_upstream_connections_reused_total 4"), std::string::npos)
      << metrics.body;
}

// Many clients at once over two network threads: every request is answered, and the pool stays within
// bounded: a thread opens at most one upstream connection per forward it runs at once.
TEST(UpstreamKeepAlive, ConcurrentClientsOverTwoThreadsAllGetAnswers) {
  Nginx nginx("keepalive_timeout 60s;");
  PassthroughGateway g(nginx.port(), 8, 2);
  constexpr int kClients = 8, kEach = 20;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        const Reply r = g.chat();
        if (r.status == 200 && r.body.find("pong") != std::string::npos) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * kEach);
  const auto conns = nginx.connections(kClients * kEach);
  EXPECT_EQ(conns.size(), static_cast<std::size_t>(kClients * kEach));
  EXPECT_LE(distinct(conns), static_cast<std::size_t>(kClients * 2))
      << "each thread opens at most one connection per forward it runs at once";
}

TEST(UpstreamKeepAlive, ZeroMeansOneConnectionPerForward) {
  Nginx nginx("keepalive_timeout 60s;");
  PassthroughGateway g(nginx.port(), 0);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(g.chat().status, 200);
  const auto conns = nginx.connections(4);
  EXPECT_EQ(conns.size(), 4u);
  EXPECT_EQ(distinct(conns), 4u);
}

} // namespace
