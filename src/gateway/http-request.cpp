#include "gateway/http-request.h"

#include <cctype>
#include <string>

#include <boost/asio/buffer.hpp>

namespace tinyroute::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

void apply_limits(RequestParser& parser, const ServerLimits& limits) {
  parser.body_limit(limits.max_body_bytes);
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
}

HttpRequest to_request(const RequestParser& parser, const beast::error_code& ec, const ServerLimits& limits) {
  HttpRequest req;
  const bool too_large = ec == http::error::body_limit;
  if (ec && !too_large) {
    // The bytes are not a request we can read: say so (4xx) and close, the stream is out of sync.
    req.malformed_status = ec == http::error::header_limit ? 431 : 400;
    req.malformed = ec == http::error::header_limit ? "the request headers are larger than the limit of " +
                                                          std::to_string(limits.max_header_bytes) + " bytes"
                                                    : "the request is not valid HTTP/1.1: " + ec.message();
  }
  const auto& msg = parser.get();
  req.method = std::string(msg.method_string());
  std::string target(msg.target());
  auto q = target.find('?');
  req.target = target.substr(0, q);
  if (q != std::string::npos) req.query = target.substr(q + 1);
  for (const auto& field : msg) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers[name] = std::string(field.value());
  }
  req.body_too_large = too_large;
  if (!too_large && req.malformed_status == 0) req.body = msg.body();
  return req;
}

HttpRequest parse_http_request(std::string_view wire, const ServerLimits& limits) {
  RequestParser parser;
  apply_limits(parser, limits);
  parser.eager(true);
  beast::error_code ec;
  std::size_t offset = 0;
  while (!ec && !parser.is_done() && offset < wire.size()) {
    const std::size_t used = parser.put(asio::buffer(wire.data() + offset, wire.size() - offset), ec);
    if (ec == http::error::need_more) {
      ec = {};
      if (used == 0) break; // the parser wants more than there is
    }
    offset += used;
  }
  if (!ec && !parser.is_done()) parser.put_eof(ec); // the connection ended here
  if (!ec && !parser.is_done()) ec = http::error::partial_message;
  return to_request(parser, ec, limits);
}

} // namespace tinyroute::gateway
