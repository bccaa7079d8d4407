#include "gateway/http-client.h"

#include "gateway/connection-pool.h"
#include "gateway/http-wire.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tinyroute/error.h"

namespace tinyroute::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

namespace {

std::chrono::milliseconds ms(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

struct Url {
  bool tls = false;
  std::string host, port, target;
};

Url parse_url(const std::string& url) {
  Url u;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    u.tls = true;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    throw Error(ErrorCode::invalid_argument, "upstream URL '" + url + "' is not http:// or https://");
  }
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = hostport.rfind(':');
  const auto bracket = hostport.find(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    u.host = hostport.substr(0, colon);
    u.port = hostport.substr(colon + 1);
  } else {
    u.host = hostport;
    u.port = u.tls ? "443" : "80";
  }
  if (u.host.size() > 2 && u.host.front() == '[') u.host = u.host.substr(1, u.host.size() - 2);
  return u;
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Why OpenSSL refused the peer, in words (e.g. "self-signed certificate").
std::string verify_problem(SSL* ssl) {
  const long result = SSL_get_verify_result(ssl);
  return result == X509_V_OK ? "" : X509_verify_cert_error_string(result);
}

} // namespace

std::shared_ptr<ssl::context> make_client_tls(const std::string& ca_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_verify_mode(ssl::verify_peer);
  std::string file = ca_file;
  if (file.empty()) {
    if (const char* env = std::getenv("TINYROUTE_CA_FILE"); env != nullptr) file = env;
  }
  beast::error_code ec;
  if (!file.empty()) {
    ctx->load_verify_file(file, ec);
    if (ec) {
      throw Error(ErrorCode::io, "cannot load the CA file '" + file + "' (TINYROUTE_CA_FILE): " +
                                     ec.message() + "; give a PEM file with the certificates to trust");
    }
  } else {
    ctx->set_default_verify_paths(ec);
    if (ec) throw Error(ErrorCode::io, "cannot load the system CA store: " + ec.message());
  }
  return ctx;
}

struct HttpClientCall::State {
  State(asio::any_io_executor ex, ClientTimeouts t, std::shared_ptr<ssl::context> c, ConnectionPool* p)
      : executor(ex), resolver(ex), timeouts(t), tls(std::move(c)), pool(p) {
    reset_parser();
  }
  asio::any_io_executor executor;
  tcp::resolver resolver;
  ClientTimeouts timeouts;
  std::shared_ptr<ssl::context> tls;
  ConnectionPool* pool;
  std::string pool_key; // host:port@context when the connection may go back to the pool
  // Exactly one of these: plain TCP for http://, TLS over TCP for https://.
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::buffer_body>> parser;
  bool eof = false;
  bool broken = false; // a read failed: the connection is in an unknown state

  void reset_parser() {
    buffer.clear();
    parser.emplace();
    // Not boost::none: Beast 1.74 compares Content-Length against an empty optional and fails.
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
  }

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  // Runs `op(stream)` on whichever stream this call uses.
  template <class Op> auto with_stream(Op&& op) { return secure ? op(*secure) : op(*plain); }

  // A pooled connection can go back only when its response was read exactly to the end.
  bool reusable() const {
    return pool != nullptr && plain && !pool_key.empty() && !broken && parser->is_done() &&
           parser->get().keep_alive() && buffer.size() == 0;
  }
};

namespace {

// A reused connection the server had already closed fails at once on write or on the response head;
// the request never reached the server, so it is sent again on a fresh connection.
bool closed_while_idle(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted;
}

awaitable<void> connect(HttpClientCall::State& s, const Url& url) {
  if (url.tls) {
    if (!s.tls) s.tls = make_client_tls();
    s.secure.emplace(s.executor, *s.tls);
  } else {
    s.plain.emplace(s.executor);
  }
  beast::error_code rec;
  auto results =
      co_await s.resolver.async_resolve(url.host, url.port, asio::redirect_error(use_awaitable, rec));
  if (rec) throw ConnectError("cannot resolve " + url.host + ": " + rec.message());
  s.lowest().expires_after(ms(s.timeouts.connect_s));
  beast::error_code cec;
  auto ep = co_await s.lowest().async_connect(results, asio::redirect_error(use_awaitable, cec));
  (void)ep;
  if (cec) {
    throw ConnectError("cannot connect to " + url.host + ":" + url.port + ": " + cec.message(),
                       cec == beast::error::timeout ? ConnectError::Kind::timed_out
                                                    : ConnectError::Kind::failed);
  }
  if (s.secure) {
    SSL* native = s.secure->native_handle();
    // SNI carries host names only (RFC 6066); the certificate is checked against the name or IP.
    if (!is_ip_literal(url.host)) { // SSL_set_tlsext_host_name, without the macro's C cast
      SSL_ctrl(native, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(url.host.c_str()));
    }
    s.secure->set_verify_callback(ssl::host_name_verification(url.host));
    beast::error_code hec;
    co_await s.secure->async_handshake(ssl::stream_base::client, asio::redirect_error(use_awaitable, hec));
    if (hec) {
      const std::string why = verify_problem(native);
      if (!why.empty()) {
        throw ConnectError(
            "TLS to " + url.host + ":" + url.port + ": the server's certificate could not be verified (" +
                why + "); if it is signed by a private CA, set TINYROUTE_CA_FILE to that CA's PEM file",
            ConnectError::Kind::untrusted);
      }
      throw ConnectError("TLS handshake with " + url.host + ":" + url.port + " failed: " + hec.message(),
                         hec == beast::error::timeout ? ConnectError::Kind::timed_out
                                                      : ConnectError::Kind::failed);
    }
  }
}

} // namespace

HttpClientCall::HttpClientCall(asio::any_io_executor executor, ClientTimeouts timeouts,
                               std::shared_ptr<ssl::context> tls, ConnectionPool* pool)
    : state_(std::make_unique<State>(executor, timeouts, std::move(tls), pool)) {}

HttpClientCall::~HttpClientCall() {
  auto& s = *state_;
  if (!s.plain && !s.secure) return;
  if (s.reusable()) {
    s.pool->give_back(s.pool_key, std::move(*s.plain));
    return;
  }
  // No TLS close_notify: the answer is complete or abandoned, and waiting on the peer helps nobody.
  beast::error_code ignored;
  s.lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
  s.lowest().close();
}

awaitable<int> HttpClientCall::open(const ClientRequest& request) {
  auto& s = *state_;
  Url url = parse_url(request.url);
  bool reused = false;
  if (!url.tls && s.pool != nullptr) {
    // A pooled socket belongs to the io_context (network thread) that opened it: it is only handed
    // to calls on that same context, so its completions never cross threads.
    s.pool_key =
        url.host + ":" + url.port + "@" +
        std::to_string(reinterpret_cast<std::uintptr_t>(&asio::query(s.executor, asio::execution::context)));
    if (auto idle = s.pool->take(s.pool_key)) {
      s.plain.emplace(std::move(*idle));
      reused = true;
    }
  }
  if (!reused) co_await connect(s, url);

  const bool default_port = url.port == (url.tls ? "443" : "80");
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host; // IPv6
  if (!default_port) host += ":" + url.port;
  const std::string wire = request_wire(request.method, url.target, host, request.headers, request.body);
  for (;;) {
    s.lowest().expires_after(ms(s.timeouts.first_byte_s));
    beast::error_code wec;
    auto wn = co_await s.with_stream([&](auto& stream) {
      return asio::async_write(stream, asio::buffer(wire), asio::redirect_error(use_awaitable, wec));
    });
    (void)wn;
    beast::error_code hec;
    if (!wec) {
      auto hn = co_await s.with_stream([&](auto& stream) {
        return http::async_read_header(stream, s.buffer, *s.parser, asio::redirect_error(use_awaitable, hec));
      });
      (void)hn;
    }
    if (reused && closed_while_idle(wec ? wec : hec)) {
      reused = false;
      beast::error_code ignored;
      s.plain->socket().close(ignored);
      s.plain.reset();
      s.reset_parser();
      co_await connect(s, url);
      continue;
    }
    if (wec) throw ConnectError("cannot send request to " + request.url + ": " + wec.message());
    if (hec) {
      const bool timed_out = hec == beast::error::timeout;
      throw ConnectError(timed_out ? "no response from " + request.url + " within " +
                                         std::to_string(s.timeouts.first_byte_s) + "s"
                                   : "no response from " + request.url + ": " + hec.message(),
                         timed_out ? ConnectError::Kind::timed_out : ConnectError::Kind::failed);
    }
    co_return static_cast<int>(s.parser->get().result_int());
  }
}

awaitable<std::optional<std::string>> HttpClientCall::read_some() {
  auto& s = *state_;
  if (s.eof || s.parser->is_done()) co_return std::nullopt;
  char buf[16 * 1024];
  s.parser->get().body().data = buf;
  s.parser->get().body().size = sizeof(buf);
  s.lowest().expires_after(ms(s.timeouts.idle_s));
  beast::error_code ec;
  auto n = co_await s.with_stream([&](auto& stream) {
    return http::async_read_some(stream, s.buffer, *s.parser, asio::redirect_error(use_awaitable, ec));
  });
  (void)n;
  if (ec == http::error::need_buffer) ec = {};
  if (ec == ssl::error::stream_truncated) {
    // A TLS peer that closed without close_notify: the end of a body that runs to the close.
    ec = {};
    s.parser->put_eof(ec);
  }
  if (ec) {
    s.eof = true;
    s.broken = true;
    if (ec == beast::error::timeout)
      throw std::runtime_error("upstream went quiet for " + std::to_string(s.timeouts.idle_s) + "s");
    throw std::runtime_error("upstream connection broke: " + ec.message());
  }
  std::size_t got = sizeof(buf) - s.parser->get().body().size;
  if (s.parser->is_done()) s.eof = got == 0;
  co_return std::string(buf, got);
}

awaitable<std::string> HttpClientCall::read_rest(std::size_t limit) {
  std::string out;
  try {
    while (out.size() < limit) {
      auto piece = co_await read_some();
      if (!piece) break;
      out += *piece;
    }
  } catch (const std::exception&) {
    // An error body that breaks off is still worth showing as far as it got.
  }
  co_return out;
}

std::string HttpClientCall::header(const std::string& name) const {
  auto it = state_->parser->get().find(name);
  return it == state_->parser->get().end() ? std::string() : std::string(it->value());
}

} // namespace tinyroute::gateway
