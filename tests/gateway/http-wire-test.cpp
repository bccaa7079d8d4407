// The hand-written HTTP messages of the proxying hot path: whatever the inputs, the bytes parse as one
// complete HTTP message (checked with Beast's parser, a real one), with the fields and body they should
// have and nothing after them.
#include <gtest/gtest.h>

#include <ostream>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "gateway/http-wire.h"

namespace {

namespace http = boost::beast::http;
using tinyroute::gateway::request_wire;
using tinyroute::gateway::response_wire;
using tinyroute::gateway::WireHeaders;

// Parses `wire` as exactly one message; fails the test when it is not complete or has bytes left over.
template <bool isRequest>
http::message<isRequest, http::string_body> parse(const std::string& wire, bool head_response = false) {
  http::parser<isRequest, http::string_body> parser;
  parser.eager(true);
  if constexpr (!isRequest) parser.skip(head_response);
  boost::beast::error_code ec;
  const std::size_t used = parser.put(boost::asio::buffer(wire), ec);
  EXPECT_FALSE(ec) << ec.message() << " in:\n" << wire;
  EXPECT_TRUE(parser.is_done()) << wire;
  EXPECT_EQ(used, wire.size()) << "bytes after the message:\n" << wire;
  return parser.release();
}

TEST(HttpWire, ResponseHasStatusFieldsLengthAndBody) {
  const WireHeaders headers = {{"content-type", "application/json"}, {"x-tinyroute-model", "llama"}};
  const auto res = parse<false>(response_wire(200, 11, headers, true, R"({"ok":true})", false));
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.version(), 11u);
  EXPECT_EQ(res.reason(), "OK");
  EXPECT_EQ(res[http::field::server], "tinyroute");
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_EQ(res["x-tinyroute-model"], "llama");
  EXPECT_EQ(res[http::field::content_length], "11");
  EXPECT_EQ(res.body(), R"({"ok":true})");
  EXPECT_TRUE(res.keep_alive());
}

TEST(HttpWire, ConnectionFollowsTheVersionDefaults) {
  EXPECT_FALSE(parse<false>(response_wire(200, 11, {}, false, "x", false)).keep_alive());
  EXPECT_TRUE(parse<false>(response_wire(200, 11, {}, true, "x", false)).keep_alive());
  const auto old_close = parse<false>(response_wire(200, 10, {}, false, "x", false));
  EXPECT_EQ(old_close.version(), 10u);
  EXPECT_FALSE(old_close.keep_alive());
  EXPECT_TRUE(parse<false>(response_wire(200, 10, {}, true, "x", false)).keep_alive());
}

TEST(HttpWire, HeadAnswerKeepsTheLengthButHasNoBody) {
  const std::string wire = response_wire(200, 11, {}, true, "twelve bytes", true);
  const auto res = parse<false>(wire, true);
  EXPECT_EQ(res[http::field::content_length], "12");
  EXPECT_EQ(wire.substr(wire.size() - 4), "\r\n\r\n") << "the head must be all there is";
}

TEST(HttpWire, ErrorStatusesHaveTheirReason) {
  for (const int status : {400, 401, 403, 404, 413, 429, 431, 500, 502, 503, 504}) {
    const auto res = parse<false>(response_wire(status, 11, {}, true, "{}", false));
    EXPECT_EQ(res.result_int(), static_cast<unsigned>(status));
    EXPECT_EQ(res.reason(), http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status))));
  }
}

TEST(HttpWire, ALineBreakInAValueCannotEndTheHead) {
  const WireHeaders headers = {{"x-tinyroute-category", "chat\r\nSet-Cookie: stolen=1\r\n\r\nHTTP/1.1 200"}};
  const auto res = parse<false>(response_wire(200, 11, headers, true, "ok", false));
  EXPECT_EQ(res.count(http::field::set_cookie), 0u);
  EXPECT_EQ(res.body(), "ok");
  EXPECT_NE(std::string(res["x-tinyroute-category"]).find("Set-Cookie"), std::string::npos)
      << "the value is kept, only its line breaks are gone";
}

TEST(HttpWire, ARepeatedNameKeepsItsLastValueAndWriterFieldsCannotBeOverridden) {
  const WireHeaders headers = {{"content-type", "text/plain"},
                               {"Content-Type", "application/json"},
                               {"content-length", "999"},
                               {"connection", "close"},
                               {"transfer-encoding", "chunked"}};
  const auto res = parse<false>(response_wire(200, 11, headers, true, "{}", false));
  EXPECT_EQ(res.count(http::field::content_type), 1u);
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_EQ(res[http::field::content_length], "2");
  EXPECT_EQ(res.count(http::field::transfer_encoding), 0u);
  EXPECT_TRUE(res.keep_alive());
  EXPECT_EQ(res.body(), "{}");
}

TEST(HttpWire, RequestHasHostAgentLengthAndBody) {
  const WireHeaders headers = {{"content-type", "application/json"}, {"authorization", "Bearer k"}};
  const auto req =
      parse<true>(request_wire("POST", "/v1/chat/completions", "127.0.0.1:8080", headers, R"({"a":1})"));
  EXPECT_EQ(req.method(), http::verb::post);
  EXPECT_EQ(req.target(), "/v1/chat/completions");
  EXPECT_EQ(req.version(), 11u);
  EXPECT_EQ(req[http::field::host], "127.0.0.1:8080");
  EXPECT_EQ(req[http::field::user_agent], "tinyroute");
  EXPECT_EQ(req[http::field::authorization], "Bearer k");
  EXPECT_EQ(req[http::field::content_length], "7");
  EXPECT_EQ(req.body(), R"({"a":1})");
}

TEST(HttpWire, AGetWithoutBodyHasNoLengthAndAnEmptyPostHasZero) {
  const auto get = parse<true>(request_wire("GET", "/v1/models", "h", {}, ""));
  EXPECT_EQ(get.count(http::field::content_length), 0u);
  const auto post = parse<true>(request_wire("POST", "/x", "h", {}, ""));
  EXPECT_EQ(post[http::field::content_length], "0");
}

TEST(HttpWire, GivenHostAndAgentReplaceTheDefaults) {
  const WireHeaders headers = {{"Host", "api.example.com"}, {"user-agent", "agent/2"}};
  const auto req = parse<true>(request_wire("GET", "/", "127.0.0.1:1", headers, ""));
  EXPECT_EQ(req.count(http::field::host), 1u);
  EXPECT_EQ(req[http::field::host], "api.example.com");
  EXPECT_EQ(req.count(http::field::user_agent), 1u);
  EXPECT_EQ(req[http::field::user_agent], "agent/2");
}

} // namespace
