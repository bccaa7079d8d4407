// HTTP/1.1 messages with a known body, written by hand into one contiguous buffer: one allocation and
// one send per message, where Beast's message and serializer allocate each header field and gather
// many small buffers. Used on the proxying hot path (a response sent whole, a request to an upstream);
// streamed responses and all parsing stay with Beast.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tinyroute::gateway {

using WireHeaders = std::vector<std::pair<std::string, std::string>>;

// A whole response: status line (`version` 10 or 11), "Server: tinyroute" (unless `headers` name a
// server), `headers`, Connection when
// it differs from the version's default, Content-Length, then `body` unless `head_only` (the answer to
// HEAD keeps the length of the GET answer). A header name given twice keeps its last value; names the
// writer owns (Content-Length, Connection, Transfer-Encoding) are ignored in `headers`. CR and LF in a
// value become spaces: a value can never end the head early.
std::string response_wire(int status, unsigned version, const WireHeaders& headers, bool keep_alive,
                          std::string_view body, bool head_only);

// A whole HTTP/1.1 request with Host and "User-Agent: tinyroute" (unless `headers` have them), `headers`
// (same rules as above) and
// Content-Length when there is a body or the method carries one.
std::string request_wire(std::string_view method, std::string_view target, std::string_view host,
                         const WireHeaders& headers, std::string_view body);

} // namespace tinyroute::gateway
