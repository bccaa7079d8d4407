#include "gateway/http-client.h"

#include <chrono>
#include <limits>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "tinyroute/error.h"

namespace tinyroute::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

namespace {

std::chrono::milliseconds ms(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

struct Url {
  std::string host, port, target;
};

Url parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind("https://", 0) == 0) {
    throw Error(ErrorCode::invalid_argument, "upstream URL '" + url +
                                                 "' uses https, which this build's gateway cannot speak yet; "
                                                 "put a TLS-terminating proxy in front or use http://");
  }
  if (url.rfind(scheme, 0) != 0)
    throw Error(ErrorCode::invalid_argument, "upstream URL '" + url + "' is not http://");
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  Url u;
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    u.host = hostport.substr(0, colon);
    u.port = hostport.substr(colon + 1);
  } else {
    u.host = hostport;
    u.port = "80";
  }
  if (u.host.size() > 2 && u.host.front() == '[') u.host = u.host.substr(1, u.host.size() - 2);
  return u;
}

} // namespace

struct HttpClientCall::State {
  State(asio::any_io_executor ex, ClientTimeouts t) : resolver(ex), stream(ex), timeouts(t) {}
  tcp::resolver resolver;
  beast::tcp_stream stream;
  ClientTimeouts timeouts;
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  bool eof = false;
};

HttpClientCall::HttpClientCall(asio::any_io_executor executor, ClientTimeouts timeouts)
    : state_(std::make_unique<State>(executor, timeouts)) {
  // Not boost::none: Beast 1.74 compares Content-Length against an empty optional and fails.
  state_->parser.body_limit(std::numeric_limits<std::uint64_t>::max());
}

HttpClientCall::~HttpClientCall() {
  beast::error_code ignored;
  state_->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  state_->stream.close();
}

awaitable<int> HttpClientCall::open(const ClientRequest& request) {
  auto& s = *state_;
  Url url = parse_url(request.url);
  beast::error_code rec;
  auto results =
      co_await s.resolver.async_resolve(url.host, url.port, asio::redirect_error(use_awaitable, rec));
  if (rec) throw ConnectError("cannot resolve " + url.host + ": " + rec.message());
  s.stream.expires_after(ms(s.timeouts.connect_s));
  beast::error_code cec;
  auto ep = co_await s.stream.async_connect(results, asio::redirect_error(use_awaitable, cec));
  (void)ep;
  if (cec) throw ConnectError("cannot connect to " + url.host + ":" + url.port + ": " + cec.message());

  http::request<http::string_body> req{http::string_to_verb(request.method), url.target, 11};
  req.set(http::field::host, url.host + ":" + url.port);
  req.set(http::field::user_agent, "tinyroute");
  for (const auto& [k, v] : request.headers) req.set(k, v);
  req.body() = request.body;
  req.prepare_payload();
  s.stream.expires_after(ms(s.timeouts.first_byte_s));
  beast::error_code wec;
  auto wn = co_await http::async_write(s.stream, req, asio::redirect_error(use_awaitable, wec));
  (void)wn;
  if (wec) throw ConnectError("cannot send request to " + request.url + ": " + wec.message());
  beast::error_code hec;
  auto hn = co_await http::async_read_header(s.stream, s.buffer, s.parser,
                                             asio::redirect_error(use_awaitable, hec));
  (void)hn;
  if (hec) {
    throw ConnectError(hec == beast::error::timeout
                           ? "no response from " + request.url + " within " +
                                 std::to_string(s.timeouts.first_byte_s) + "s"
                           : "no response from " + request.url + ": " + hec.message());
  }
  co_return static_cast<int>(s.parser.get().result_int());
}

awaitable<std::optional<std::string>> HttpClientCall::read_some() {
  auto& s = *state_;
  if (s.eof || s.parser.is_done()) co_return std::nullopt;
  char buf[16 * 1024];
  s.parser.get().body().data = buf;
  s.parser.get().body().size = sizeof(buf);
  s.stream.expires_after(ms(s.timeouts.idle_s));
  beast::error_code ec;
  auto n =
      co_await http::async_read_some(s.stream, s.buffer, s.parser, asio::redirect_error(use_awaitable, ec));
  (void)n;
  if (ec == http::error::need_buffer) ec = {};
  if (ec) {
    s.eof = true;
    if (ec == beast::error::timeout)
      throw std::runtime_error("upstream went quiet for " + std::to_string(s.timeouts.idle_s) + "s");
    throw std::runtime_error("upstream connection broke: " + ec.message());
  }
  std::size_t got = sizeof(buf) - s.parser.get().body().size;
  if (s.parser.is_done()) s.eof = got == 0;
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
  auto it = state_->parser.get().find(name);
  return it == state_->parser.get().end() ? std::string() : std::string(it->value());
}

} // namespace tinyroute::gateway
