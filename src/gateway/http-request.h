// Reading one HTTP/1.1 request: Beast's parser under the server's limits, and the conversion of what it
// read into an HttpRequest (or the 4xx reason it could not be read). Kept apart from the transport's
// coroutines, so the parsing can be built and fuzzed on its own.
#pragma once

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "gateway/http-server.h"

namespace tinyroute::gateway {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

void apply_limits(RequestParser& parser, const ServerLimits& limits);

// What the handler sees of one read: the request, or why it could not be read (`ec` is the read's
// error, already known not to be a timeout or a closed connection).
HttpRequest to_request(const RequestParser& parser, const boost::beast::error_code& ec,
                       const ServerLimits& limits);

} // namespace tinyroute::gateway
