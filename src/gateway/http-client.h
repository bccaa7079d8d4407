// An async HTTP/1.1 client for upstream model servers (Beast, coroutines) that hands the response body
// over piece by piece, so a streamed answer is never buffered whole. Three timeouts: connect, first
// byte (the response head), idle (between body pieces).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace tinyroute::gateway {

struct ClientTimeouts {
  double connect_s = 5;
  double first_byte_s = 120;
  double idle_s = 60;
};

struct ClientRequest {
  std::string method = "POST";
  std::string url; // http://host:port/path
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Thrown for failures before the response head: the forwarder may retry or fall back.
struct ConnectError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class HttpClientCall {
public:
  explicit HttpClientCall(boost::asio::any_io_executor executor, ClientTimeouts timeouts);
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
