// A real HTTP/1.1 file server on 127.0.0.1 for pull tests (Boost.Beast, synchronous, one thread per
// connection). Serves one body at /model.gguf with Range support, plus modes that misbehave the way
// real servers and networks do.
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility> (GCC 12, C++20).
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tinyroute::test {

class FileServer {
public:
  enum class Mode {
    normal,       // 200, or 206 for "Range: bytes=N-"
    drop_after,   // send the headers and `limit` body bytes, then close the connection
    stall,        // send the headers and `limit` body bytes, then go silent until stopped
    ignore_range, // always 200 with the whole file
    wrong_bytes,  // like normal, but every byte is different
    status,       // answer every request with `status`
  };

  explicit FileServer(std::string body) : body_(std::move(body)) {
    wrong_ = body_;
    for (char& c : wrong_) c = static_cast<char>(~static_cast<unsigned char>(c));
    namespace ip = boost::asio::ip;
    acceptor_.open(ip::tcp::v4());
    acceptor_.set_option(ip::tcp::acceptor::reuse_address(true));
    acceptor_.bind({ip::make_address_v4("127.0.0.1"), 0}); // the kernel picks a free port
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~FileServer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    // Wake the blocking accept() with a connection of our own; it sees `stopping_` and returns.
    try {
      boost::asio::io_context io;
      boost::asio::ip::tcp::socket s(io);
      s.connect({boost::asio::ip::make_address_v4("127.0.0.1"), static_cast<unsigned short>(port_)});
    } catch (...) {
    }
    accept_thread_.join();
    for (auto& t : connections_) t.join();
  }

  FileServer(const FileServer&) = delete;
  FileServer& operator=(const FileServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path = "/model.gguf") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  void set_mode(Mode mode, uint64_t limit = 0, int status = 0) {
    std::lock_guard lock(mu_);
    mode_ = mode;
    limit_ = limit;
    status_ = status;
  }
  // Requests seen so far, redirects included.
  int requests() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(ranges_.size());
  }
  // The Range header of each request in order ("" when it had none).
  std::vector<std::string> ranges() const {
    std::lock_guard lock(mu_);
    return ranges_;
  }
  void reset_counts() {
    std::lock_guard lock(mu_);
    ranges_.clear();
  }

private:
  void accept_loop() {
    for (;;) {
      boost::asio::ip::tcp::socket sock(io_);
      boost::system::error_code ec;
      acceptor_.accept(sock, ec);
      std::lock_guard lock(mu_);
      if (stopping_) return;
      if (ec) continue;
      connections_.emplace_back([this, s = std::move(sock)]() mutable { serve(std::move(s)); });
    }
  }

  void serve(boost::asio::ip::tcp::socket sock) {
    namespace http = boost::beast::http;
    boost::system::error_code ec;
    // Never hang a test on a client that connects and says nothing.
    timeval tv{10, 0};
    ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    boost::beast::flat_buffer buf;
    http::request<http::empty_body> req;
    http::read(sock, buf, req, ec);
    if (ec) return;

    Mode mode;
    uint64_t limit;
    int status;
    const std::string range(req[http::field::range]);
    {
      std::lock_guard lock(mu_);
      ranges_.push_back(range);
      mode = mode_;
      limit = limit_;
      status = status_;
    }

    http::response<http::empty_body> res;
    res.version(11);
    res.set(http::field::server, "tinyroute-test");
    res.set(http::field::connection, "close");
    const std::string target(req.target());
    if (target.starts_with("/redirect/")) {
      res.result(http::status::found);
      res.set(http::field::location, target.substr(std::string("/redirect").size()));
      res.content_length(0);
      http::write(sock, res, ec);
      return close(sock);
    }
    if (mode == Mode::status) {
      send_whole(sock, res, static_cast<http::status>(status), "no such thing\n");
      return close(sock);
    }
    const std::string& content = mode == Mode::wrong_bytes ? wrong_ : body_;
    uint64_t from = 0;
    if (mode != Mode::ignore_range && range.starts_with("bytes=")) {
      from = std::stoull(range.substr(6)); // curl sends "bytes=N-"
      if (from >= content.size()) {
        res.set(http::field::content_range, "bytes */" + std::to_string(content.size()));
        send_whole(sock, res, http::status::range_not_satisfiable, "");
        return close(sock);
      }
      res.result(http::status::partial_content);
      res.set(http::field::content_range, "bytes " + std::to_string(from) + "-" +
                                              std::to_string(content.size() - 1) + "/" +
                                              std::to_string(content.size()));
    } else {
      res.result(http::status::ok);
    }
    res.set(http::field::accept_ranges, "bytes");
    res.set(http::field::content_type, "application/octet-stream");
    res.content_length(content.size() - from);
    http::response_serializer<http::empty_body> sr(res);
    http::write_header(sock, sr, ec);
    if (ec) return;
    uint64_t n = content.size() - from;
    if (mode == Mode::drop_after || mode == Mode::stall) n = std::min(n, limit);
    boost::asio::write(sock, boost::asio::buffer(content.data() + from, n), ec);
    if (mode == Mode::stall) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(20), [this] { return stopping_; });
    }
    close(sock);
  }

  static void send_whole(boost::asio::ip::tcp::socket& sock,
                         boost::beast::http::response<boost::beast::http::empty_body>& head,
                         boost::beast::http::status status, const std::string& body) {
    namespace http = boost::beast::http;
    http::response<http::string_body> res(head.base());
    res.result(status);
    res.body() = body;
    res.prepare_payload();
    boost::system::error_code ec;
    http::write(sock, res, ec);
  }

  // A graceful close: the client receives everything sent before the FIN.
  static void close(boost::asio::ip::tcp::socket& sock) {
    boost::system::error_code ec;
    sock.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
    sock.close(ec);
  }

  std::string body_;
  std::string wrong_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_{io_};
  int port_ = 0;
  std::thread accept_thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  Mode mode_ = Mode::normal;
  uint64_t limit_ = 0;
  int status_ = 0;
  std::vector<std::string> ranges_;
  std::vector<std::thread> connections_;
};

} // namespace tinyroute::test
