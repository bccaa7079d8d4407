// An async HTTP/1.1 client for upstream model servers (Beast, coroutines) that hands the response body
// over piece by piece, so a streamed answer is never buffered whole. Three timeouts: connect, first
// byte (the response head), idle (between body pieces). https:// URLs use TLS: SNI, the peer's
// certificate verified against the given CA store and checked against the host name.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

namespace tinyroute::gateway {

class ConnectionPool;

struct ClientTimeouts {
  double connect_s = 5;
  double first_byte_s = 120;
  double idle_s = 60;
};

struct ClientRequest {
  std::string method = "POST";
  std::string url; // http://host:port/path or https://host:port/path
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Thrown for failures before the response head: the forwarder may retry or fall back.
struct ConnectError : std::runtime_error {
  enum class Kind { failed, timed_out, untrusted };
  explicit ConnectError(const std::string& message, Kind kind_ = Kind::failed)
      : std::runtime_error(message), kind(kind_) {}
  Kind kind; // timed_out: connect or first byte; untrusted: the TLS certificate was refused
};

// A client TLS context that verifies peers: against `ca_file` (PEM) when given, else
// $TINYROUTE_CA_FILE when set, else the system CA store. Throws Error(io) if the file cannot be used.
std::shared_ptr<boost::asio::ssl::context> make_client_tls(const std::string& ca_file = "");

class HttpClientCall {
public:
  // `tls` is used for https:// URLs (nullptr: one is made per call with make_client_tls()). With a
  // `pool`, an http:// call starts on an idle keep-alive connection when there is one and hands its
  // connection back when the response was read to the end; the pool must outlive the call.
  HttpClientCall(boost::asio::any_io_executor executor, ClientTimeouts timeouts,
                 std::shared_ptr<boost::asio::ssl::context> tls = nullptr, ConnectionPool* pool = nullptr);
  ~HttpClientCall();
  HttpClientCall(const HttpClientCall&) = delete;
  HttpClientCall& operator=(const HttpClientCall&) = delete;

  // Connects, sends the request and reads the response head. Returns the status code. Throws
  // ConnectError (refused, unresolvable, timed out, malformed head).
  boost::asio::awaitable<int> open(const ClientRequest& request);
  // The next piece of the body, or nullopt at its end. Throws std::runtime_error on read error / idle
  // timeout (the upstream died mid-answer).
  boost::asio::awaitable<std::optional<std::string>> read_some();
  // The rest of the body (for error responses), capped at `limit` bytes.
  boost::asio::awaitable<std::string> read_rest(std::size_t limit = 64 * 1024);
  std::string header(const std::string& name) const;

  struct State;

private:
  std::unique_ptr<State> state_;
};

} // namespace tinyroute::gateway
