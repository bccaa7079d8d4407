// Transport: a Beast HTTP/1.1 server on Asio coroutines (one coroutine per connection, no thread per
// connection; connections are spread round robin over single-threaded io_contexts, as nginx spreads
// them over its workers, so a request never waits on a strand or hops between threads), keep-alive,
// header/body size limits, a deadline for reading each request (a client that trickles its request is cut off
// and its connection freed) and a chunked streaming writer for SSE / NDJSON. Protocol knowledge lives in the
// handler; this file only moves bytes.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

namespace tinyroute::gateway {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method; // upper case, e.g. POST
  std::string target; // path without the query string
  std::string query;
  std::map<std::string, std::string> headers; // lower-case names
  std::string body;
  bool body_too_large = false; // the body was over the limit and was not read; answer 413
  // The request could not be parsed (bad Content-Length, a header over the limit, ...): answer
  // `malformed_status` with `malformed` as the message; the connection is closed afterwards.
  int malformed_status = 0;
  std::string malformed;
};

struct ServerLimits {
  std::size_t max_body_bytes = 8 << 20;
  std::size_t max_header_bytes = 16 * 1024;
  double request_read_timeout_s = 30; // first byte to last byte of one request (slow clients)
  double keep_alive_idle_s = 60;      // waiting for the next request on an open connection
};

// What a handler writes to. Either one send(), or begin_stream() + write_chunk()* + end_stream().
// Writes throw boost::system::system_error when the client went away.
class ResponseWriter {
public:
  virtual ~ResponseWriter() = default;
  virtual boost::asio::awaitable<void> send(int status, const Headers& headers, std::string body) = 0;
  virtual boost::asio::awaitable<void> begin_stream(int status, const Headers& headers) = 0;
  virtual boost::asio::awaitable<void> write_chunk(std::string_view bytes) = 0;
  virtual boost::asio::awaitable<void> end_stream() = 0;
  virtual bool started() const = 0; // any byte of the response was sent
};

// One request read from `wire` exactly as the server reads one from a connection (Beast's parser under
// `limits`); a wire that ends before the request does is malformed (400). The server's own reads and
// this share the conversion, so the fuzz target for it exercises what clients reach.
HttpRequest parse_http_request(std::string_view wire, const ServerLimits& limits = {});

using Handler = std::function<boost::asio::awaitable<void>(HttpRequest&, ResponseWriter&)>;

class HttpServer {
public:
  // Each io_context in `contexts` must be run by exactly one thread: a connection lives on one of them
  // (round robin) and its coroutine is not guarded by a strand. The listening socket is on the first.
  HttpServer(std::vector<boost::asio::io_context*> contexts, const std::string& host, int port,
             ServerLimits limits, Handler handler);
  ~HttpServer();
  int port() const;
  void start();          // spawns the accept loop
  void stop_accepting(); // closes the listening socket; open connections finish their request
  std::size_t active_requests() const;

  struct State;

private:
  std::shared_ptr<State> state_;
};

} // namespace tinyroute::gateway
