#include "gateway/http-server.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "gateway/http-request.h"
#include "gateway/http-wire.h"
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

constexpr auto write_timeout = std::chrono::seconds(60);

struct Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  bool busy = false; // a request is being handled (only touched on the connection's thread)
};

class BeastWriter final : public ResponseWriter {
public:
  BeastWriter(beast::tcp_stream& stream, unsigned version, bool keep_alive, bool head)
      : stream_(stream), version_(version), keep_alive_(keep_alive), head_(head) {}

  awaitable<void> send(int status, const Headers& headers, std::string body) override {
    // One buffer, one write: the common, non-streamed answer is the hot path of a proxy.
    const std::string wire = response_wire(status, version_, headers, keep_alive_, body, head_);
    started_ = true;
    stream_.expires_after(write_timeout);
    co_await asio::async_write(stream_, asio::buffer(wire), use_awaitable);
    done_ = true;
  }

  awaitable<void> begin_stream(int status, const Headers& headers) override {
    header_.emplace(static_cast<http::status>(status), version_);
    header_->set(http::field::server, "tinyroute");
    for (const auto& [k, v] : headers) header_->set(k, v);
    header_->keep_alive(keep_alive_);
    header_->chunked(true);
    serializer_.emplace(*header_);
    started_ = true;
    stream_.expires_after(write_timeout);
    co_await http::async_write_header(stream_, *serializer_, use_awaitable);
  }

  awaitable<void> write_chunk(std::string_view bytes) override {
    if (bytes.empty()) co_return;
    stream_.expires_after(write_timeout);
    co_await asio::async_write(stream_, http::make_chunk(asio::const_buffer(bytes.data(), bytes.size())),
                               use_awaitable);
  }

  awaitable<void> end_stream() override {
    stream_.expires_after(write_timeout);
    co_await asio::async_write(stream_, http::make_chunk_last(), use_awaitable);
    done_ = true;
  }

  bool started() const override { return started_; }
  bool done() const { return done_; }

private:
  beast::tcp_stream& stream_;
  unsigned version_;
  bool keep_alive_;
  bool head_;
  bool started_ = false;
  bool done_ = false;
  std::optional<http::response<http::empty_body>> header_;
  std::optional<http::response_serializer<http::empty_body>> serializer_;
};

} // namespace

struct HttpServer::State : std::enable_shared_from_this<HttpServer::State> {
  State(std::vector<asio::io_context*> c, ServerLimits l, Handler h)
      : contexts(std::move(c)), acceptor(*contexts.front()), limits(l), handler(std::move(h)) {}

  std::vector<asio::io_context*> contexts;
  std::size_t next_context = 0; // only touched by the accept loop
  tcp::acceptor acceptor;
  ServerLimits limits;
  Handler handler;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> active{0};
  std::mutex mutex;
  std::set<std::shared_ptr<Connection>> connections;

  awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      beast::error_code ec;
      // The connection's socket, and so its coroutine, belong to the next context in turn.
      auto& context = *contexts[next_context++ % contexts.size()];
      auto socket = co_await acceptor.async_accept(context, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (stopping || ec == asio::error::operation_aborted) co_return;
        spdlog::warn("gateway: accept failed: {}", ec.message());
        continue;
      }
      auto conn = std::make_shared<Connection>(std::move(socket));
      {
        std::lock_guard lock(mutex);
        connections.insert(conn);
      }
      auto executor = conn->stream.get_executor();
      asio::co_spawn(executor, session(conn), [self, conn](std::exception_ptr) {
        std::lock_guard lock(self->mutex);
        self->connections.erase(conn);
      });
    }
  }

  awaitable<void> session(std::shared_ptr<Connection> conn) {
    auto self = shared_from_this();
    beast::flat_buffer buffer;
    bool linger = false; // the last request was refused unread (too large, malformed)
    for (;;) {
      if (stopping) break;
      RequestParser parser;
      apply_limits(parser, limits);
      beast::error_code ec;
      if (buffer.size() == 0) {
        // An idle keep-alive connection may wait a while for its next request ...
        conn->stream.expires_after(ms(limits.keep_alive_idle_s));
        auto got = co_await conn->stream.async_read_some(buffer.prepare(4096),
                                                         asio::redirect_error(use_awaitable, ec));
        if (ec) break;
        buffer.commit(got);
      }
      // ... but once it started, the whole request must arrive in time: a client that trickles bytes
      // must not hold a connection (and its memory) forever.
      conn->stream.expires_after(ms(limits.request_read_timeout_s));
      auto n =
          co_await http::async_read(conn->stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      (void)n;
      bool too_large = ec == http::error::body_limit;
      if (ec == beast::error::timeout) {
        spdlog::info("gateway: a client did not send its request within {}s; closing the connection",
                     limits.request_read_timeout_s);
        break;
      }
      if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
          ec == asio::error::operation_aborted || stopping) {
        break; // client closed (or we are stopping): nothing to answer
      }
      conn->busy = true;
      active++;
      HttpRequest req = to_request(parser, ec, limits);
      const int malformed_status = req.malformed_status;
      const auto& msg = parser.get();
      const bool keep_alive = !too_large && malformed_status == 0 && msg.keep_alive() && !stopping;
      BeastWriter writer(conn->stream, malformed_status != 0 ? 11 : msg.version(), keep_alive,
                         malformed_status == 0 && msg.method() == http::verb::head);
      bool ok = true;
      try {
        co_await handler(req, writer);
      } catch (const std::exception& e) {
        // A write failed (client gone) or the handler broke; the connection cannot be trusted further.
        spdlog::debug("gateway: connection ended: {}", e.what());
        ok = false;
      }
      active--;
      conn->busy = false;
      linger = too_large || malformed_status != 0;
      if (!ok || !writer.done() || !keep_alive) break;
    }
    beast::error_code ignored;
    if (linger) {
      // The client may still be sending what we refused to read: closing with unread bytes would reset
      // the connection and could destroy our answer before it is read. Half-close, then drain briefly.
      conn->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      conn->stream.expires_after(std::chrono::seconds(1));
      std::size_t drained = 0;
      char sink[4096];
      while (drained < (1u << 20)) {
        beast::error_code dec;
        drained += co_await conn->stream.async_read_some(asio::buffer(sink),
                                                         asio::redirect_error(use_awaitable, dec));
        if (dec) break;
      }
    }
    conn->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    conn->stream.close();
  }
};

HttpServer::HttpServer(std::vector<asio::io_context*> contexts, const std::string& host, int port,
                       ServerLimits limits, Handler handler) {
  if (contexts.empty() || contexts.front() == nullptr)
    throw Error(ErrorCode::invalid_argument, "gateway: the HTTP server needs at least one io_context");
  state_ = std::make_shared<State>(std::move(contexts), limits, std::move(handler));
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec)
    throw Error(ErrorCode::invalid_argument, "gateway: bad listen host '" + host + "': " + ec.message());
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  auto& acc = state_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw Error(ErrorCode::io, "gateway: cannot listen on " + host + ":" + std::to_string(port) + ": " +
                                   ec.message() + " (is another server using the port?)");
  }
}

HttpServer::~HttpServer() = default;

int HttpServer::port() const {
  return state_->acceptor.local_endpoint().port();
}

void HttpServer::start() {
  asio::co_spawn(state_->acceptor.get_executor(), state_->accept_loop(), asio::detached);
}

void HttpServer::stop_accepting() {
  state_->stopping = true;
  auto state = state_;
  asio::post(state->acceptor.get_executor(), [state] {
    beast::error_code ignored;
    state->acceptor.close(ignored);
  });
  // Idle keep-alive connections would otherwise wait for their next request.
  std::lock_guard lock(state->mutex);
  for (const auto& conn : state->connections) {
    asio::post(conn->stream.get_executor(), [conn] {
      if (!conn->busy) conn->stream.cancel();
    });
  }
}

std::size_t HttpServer::active_requests() const {
  return state_->active;
}

} // namespace tinyroute::gateway
