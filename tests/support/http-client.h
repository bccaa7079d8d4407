// A blocking HTTP/1.1 request to a server on 127.0.0.1: the raw-protocol side of the gateway and
// serve tests. Header names in the reply are matched without regard to case, as HTTP defines them.
#pragma once

#include <chrono>
#include <exception>
#include <map>
#include <string>
#include <strings.h>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "test-support.h"

namespace tinyroute::test {

struct CaseInsensitiveLess {
  bool operator()(const std::string& a, const std::string& b) const {
    return ::strcasecmp(a.c_str(), b.c_str()) < 0;
  }
};

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string, CaseInsensitiveLess> headers;
  std::string body;
  nlohmann::json j() const { return nlohmann::json::parse(body, nullptr, false); }
};

inline HttpReply http_request(int port, const std::string& method, const std::string& target,
                              const std::string& body = "",
                              const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  if (method == "HEAD") parser.skip(true); // a HEAD answer has a Content-Length but never a body
  beast::error_code ec;
  http::read(stream, buf, parser, ec);
  HttpReply r;
  r.status = static_cast<int>(parser.get().result_int());
  for (const auto& f : parser.get()) r.headers[std::string(f.name_string())] = std::string(f.value());
  r.body = parser.get().body();
  return r;
}

// Waits until a server started as `process` answers GET /health on `port` with 200: false when the
// process exits first or `timeout` passes (the caller prints its log).
inline bool wait_healthy(int port, Process& process,
                         std::chrono::seconds timeout = std::chrono::seconds(90)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process.running()) return false;
    if (wait_for_port(port, std::chrono::milliseconds(100))) {
      try {
        if (http_request(port, "GET", "/health").status == 200) return true;
      } catch (const std::exception&) { // accepting, not yet answering
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

} // namespace tinyroute::test
