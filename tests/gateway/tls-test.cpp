// https:// upstreams: a real TLS server on 127.0.0.1 with a throwaway self-signed certificate made at
// test time by the openssl CLI. Trusted through TINYROUTE_CA_FILE the request goes through; without
// it the certificate cannot be verified and the 502 lists the attempt with that reason.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

#include "test-support.h"
#include "tinyroute/error.h"
#include "tinyroute/gateway.h"
#include "upstreams.h"

namespace {

using namespace tinyroute;
using namespace tinyroute::test::gw;
namespace t = tinyroute::test;
namespace ssl = asio::ssl;

// Answers every request with a short complete OpenAI-style SSE stream, over TLS.
class TlsUpstream {
public:
  TlsUpstream(const std::string& cert, const std::string& key)
      : ctx_(ssl::context::tls_server), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    ctx_.use_certificate_chain_file(cert);
    ctx_.use_private_key_file(key, ssl::context::pem);
    thread_ = std::thread([this] { serve(); });
  }
  ~TlsUpstream() {
    stop_ = true;
    beast::error_code ec;
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  int port() const { return acceptor_.local_endpoint().port(); }
  int answered() const { return answered_; }
  std::string last_host() const {
    std::lock_guard lock(mutex_);
    return host_;
  }

private:
  void serve() {
    while (!stop_) {
      tcp::socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      beast::ssl_stream<tcp::socket> stream(std::move(socket), ctx_);
      stream.handshake(ssl::stream_base::server, ec);
      if (ec) continue; // the client refused our certificate
      beast::flat_buffer buf;
      http::request<http::string_body> req;
      http::read(stream, buf, req, ec);
      if (ec) continue;
      {
        std::lock_guard lock(mutex_);
        host_ = std::string(req[http::field::host]);
      }
      http::response<http::string_body> res{http::status::ok, 11};
      res.set(http::field::content_type, "text/event-stream");
      res.body() =
          "data: " + json{{"choices", {{{"index", 0}, {"delta", {{"content", "secure hello"}}}}}}}.dump() +
          "\n\ndata: " +
          json{{"choices", {{{"index", 0}, {"delta", json::object()}, {"finish_reason", "stop"}}}}}.dump() +
          "\n\ndata: [DONE]\n\n";
      res.keep_alive(false);
      res.prepare_payload();
      ++answered_; // before the write: the test may look as soon as the answer is through
      http::write(stream, res, ec);
      stream.shutdown(ec);
    }
  }
  asio::io_context io_;
  ssl::context ctx_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  mutable std::mutex mutex_;
  std::string host_;
};

class GatewayTls : public ::testing::Test {
protected:
  void SetUp() override {
    if (!std::filesystem::exists("/usr/bin/openssl")) GTEST_SKIP() << "the openssl CLI is not installed";
    cert_ = dir_.file("cert.pem");
    key_ = dir_.file("key.pem");
    auto [rc, out] = t::run_command({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                     "-keyout", key_, "-out", cert_, "-days", "1", "-subj", "/CN=127.0.0.1",
                                     "-addext", "subjectAltName=IP:127.0.0.1"});
    ASSERT_EQ(rc, 0) << out;
    upstream_ = std::make_unique<TlsUpstream>(cert_, key_);
    saved_ = std::getenv("TINYROUTE_CA_FILE") ? std::getenv("TINYROUTE_CA_FILE") : "";
  }
  void TearDown() override {
    if (saved_.empty())
      ::unsetenv("TINYROUTE_CA_FILE");
    else
      ::setenv("TINYROUTE_CA_FILE", saved_.c_str(), 1);
  }

  std::unique_ptr<Gateway> gateway() {
    Config c = base_config();
    ModelConfig m = model("secure", Provider::openai, upstream_->port());
    m.base_url = "https://127.0.0.1:" + std::to_string(upstream_->port()) + "/v1";
    c.models = {m};
    GatewayOptions opts;
    opts.port = 0;
    opts.retries = 0;
    opts.first_byte_timeout_s = 5;
    auto gw = std::make_unique<Gateway>(c, nullptr, opts);
    gw->start();
    return gw;
  }

  t::TempDir dir_;
  std::string cert_, key_, saved_;
  std::unique_ptr<TlsUpstream> upstream_;
};

const std::string body = R"({"model":"secure","messages":[{"role":"user","content":"hi"}],"max_tokens":4})";

TEST_F(GatewayTls, TrustedThroughTheCaFileTheRequestGoesThrough) {
  ::setenv("TINYROUTE_CA_FILE", cert_.c_str(), 1);
  auto gw = gateway();
  auto r = request(gw->port(), "POST", "/v1/chat/completions", body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j()["choices"][0]["message"]["content"], "secure hello") << r.body;
  EXPECT_EQ(upstream_->answered(), 1);
  EXPECT_EQ(upstream_->last_host(), "127.0.0.1:" + std::to_string(upstream_->port()));
  // And streamed, through the Anthropic front.
  auto s = request(
      gw->port(), "POST", "/v1/messages",
      R"({"model":"secure","max_tokens":4,"stream":true,"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(s.status, 200) << s.body;
  EXPECT_NE(s.body.find("secure hello"), std::string::npos) << s.body;
  EXPECT_NE(s.body.find("message_stop"), std::string::npos) << s.body;
  gw->stop(std::chrono::milliseconds(200));
}

TEST_F(GatewayTls, AnUntrustedCertificateIsA502SayingItCouldNotBeVerified) {
  ::unsetenv("TINYROUTE_CA_FILE"); // the system store does not know our throwaway certificate
  auto gw = gateway();
  auto r = request(gw->port(), "POST", "/v1/chat/completions", body);
  EXPECT_EQ(r.status, 502) << r.body;
  const std::string message = r.j()["error"]["message"];
  EXPECT_NE(message.find("secure: TLS to 127.0.0.1"), std::string::npos) << message;
  EXPECT_NE(message.find("certificate could not be verified"), std::string::npos) << message;
  EXPECT_NE(message.find("self-signed"), std::string::npos) << message;
  EXPECT_NE(message.find("TINYROUTE_CA_FILE"), std::string::npos) << message;
  EXPECT_EQ(upstream_->answered(), 0);
  gw->stop(std::chrono::milliseconds(200));
}

TEST_F(GatewayTls, AnUnreadableCaFileIsRefusedWhenTheGatewayIsMade) {
  ::setenv("TINYROUTE_CA_FILE", dir_.file("missing.pem").c_str(), 1);
  try {
    gateway();
    FAIL() << "a CA file that cannot be read must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.pem"), std::string::npos) << e.what();
  }
}

} // namespace
