// Test-side helpers for the gateway tests: a blocking raw HTTP client and small real upstream servers
// that misbehave on purpose.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "http-client.h"
#include "tinyroute/config.h"

namespace tinyroute::test::gw {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

using Reply = tinyroute::test::HttpReply;

// A plain blocking HTTP/1.1 request (the raw-protocol side of the tests).
inline Reply request(int port, const std::string& method, const std::string& target,
                     const std::string& body = "",
                     const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  return tinyroute::test::http_request(port, method, target, body, headers);
}

// A real little upstream that misbehaves on purpose: "500" answers every request with a 500 error,
// "break" starts an SSE answer and then drops the connection, "ok" answers quickly and completely,
// "silent" accepts and reads the request but never answers, "garbage" answers 200 with bytes that are
// neither JSON nor SSE, "stall" sends one SSE event and then goes quiet, "tool" answers every request
// with a streamed call of get_weather({"city":"Paris"}) (one connection at a time: a
// real server, but never the bottleneck; "silent" and "stall" hold a connection until the gateway
// gives up on it).
class BadUpstream {
public:
  explicit BadUpstream(std::string mode)
      : mode_(std::move(mode)), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { serve(); });
  }
  ~BadUpstream() {
    stop_ = true;
    beast::error_code ec;
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  int port() const { return acceptor_.local_endpoint().port(); }
  int hits() const { return hits_; }

private:
  void serve() {
    while (!stop_) {
      tcp::socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      beast::flat_buffer buf;
      http::request<http::string_body> req;
      http::read(socket, buf, req, ec);
      if (ec) continue;
      ++hits_;
      if (mode_ == "silent") {
        hold(socket);
      } else if (mode_ == "garbage") {
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "text/html");
        res.body() = "<html><body>502 Bad Gateway</body></html>\n\x01\x02 not json {{{";
        res.keep_alive(false);
        res.prepare_payload();
        http::write(socket, res, ec);
      } else if (mode_ == "500") {
        http::response<http::string_body> res{http::status::internal_server_error, 11};
        res.set(http::field::content_type, "application/json");
        res.body() = R"({"error":{"message":"the upstream fell over","type":"server_error"}})";
        res.keep_alive(false);
        res.prepare_payload();
        http::write(socket, res, ec);
      } else {
        std::string head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
        asio::write(socket, asio::buffer(head), ec);
        auto chunk = [&](const std::string& data) {
          char size[16];
          std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
          asio::write(socket, asio::buffer(std::string(size) + data + "\r\n"), ec);
        };
        if (mode_ == "tool") { // an OpenAI-compatible server's streamed tool call, in three pieces
          for (
              const char* piece :
              {R"({"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_w1","type":"function","function":{"name":"get_weather","arguments":""}}]}}]})",
               R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]})",
               R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]})",
               R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":20,"completion_tokens":9}})"})
            chunk("data: " + std::string(piece) + "\n\n");
          chunk("data: [DONE]\n\n");
          asio::write(socket, asio::buffer(std::string("0\r\n\r\n")), ec);
          socket.close(ec);
          continue;
        }
        if (mode_ == "stall") {
          chunk("data: " + json{{"choices", {{{"index", 0}, {"delta", {{"content", "Hello"}}}}}}}.dump() +
                "\n\n");
          hold(socket);
        }
        for (const char* word : {"Hello", " there"}) {
          chunk("data: " + json{{"choices", {{{"index", 0}, {"delta", {{"content", word}}}}}}}.dump() +
                "\n\n");
          if (mode_ == "break") std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (mode_ == "ok") { // a complete, quick answer
          chunk("data: " +
                json{{"choices", {{{"index", 0}, {"delta", json::object()}, {"finish_reason", "stop"}}}}}
                    .dump() +
                "\n\ndata: [DONE]\n\n");
          asio::write(socket, asio::buffer(std::string("0\r\n\r\n")), ec);
        }
      }
      socket.close(ec); // "break" dies mid-answer here
    }
  }
  // Waits, answering nothing, until the peer closes the connection or the server stops.
  void hold(tcp::socket& socket) {
    pollfd p{socket.native_handle(), POLLIN, 0};
    while (!stop_) {
      if (::poll(&p, 1, 20) > 0) {
        char c;
        if (::recv(socket.native_handle(), &c, 1, 0) <= 0) return;
      }
    }
  }
  std::string mode_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> hits_{0};
};

inline ModelConfig model(const std::string& name, Provider provider, int port) {
  ModelConfig m;
  m.name = name;
  m.provider = provider;
  m.base_url = "http://127.0.0.1:" + std::to_string(port);
  m.upstream_model = name;
  m.categories = {"general"};
  return m;
}

inline Config base_config() {
  Config c;
  c.internal_model.name = "tinyllama-1.1b-chat";
  c.internal_model.aliases = {"router-small"};
  c.internal_model.model = "/models/TinyLlama-1.1B-Chat-v1.0.Q4_K_M.gguf";
  c.default_category = "general";
  c.categories = {{"general", "anything", {}}};
  return c;
}

} // namespace tinyroute::test::gw
