#include "gateway/http-wire.h"

#include <ostream> // before Beast: status.ipp streams a string_view

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/status.hpp>

namespace tinyroute::gateway {

namespace {

namespace http = boost::beast::http;
using boost::beast::iequals;

bool owned_by_writer(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "connection") || iequals(name, "transfer-encoding");
}

// Whether a later header has the same name (it wins, as with Beast's set()).
bool replaced_later(const WireHeaders& headers, std::size_t i) {
  for (std::size_t j = i + 1; j < headers.size(); ++j) {
    if (iequals(headers[j].first, headers[i].first)) return true;
  }
  return false;
}

void append_field(std::string& wire, std::string_view name, std::string_view value) {
  wire.append(name);
  wire.append(": ");
  const std::size_t start = wire.size();
  wire.append(value);
  for (std::size_t k = start; k < wire.size(); ++k) {
    if (wire[k] == '\r' || wire[k] == '\n') wire[k] = ' ';
  }
  wire.append("\r\n");
}

void append_headers(std::string& wire, const WireHeaders& headers) {
  for (std::size_t i = 0; i < headers.size(); ++i) {
    if (owned_by_writer(headers[i].first) || replaced_later(headers, i)) continue;
    append_field(wire, headers[i].first, headers[i].second);
  }
}

bool has(const WireHeaders& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return true;
  }
  return false;
}

std::size_t headers_size(const WireHeaders& headers) {
  std::size_t n = 0;
  for (const auto& [k, v] : headers) n += k.size() + v.size() + 4;
  return n;
}

} // namespace

std::string response_wire(int status, unsigned version, const WireHeaders& headers, bool keep_alive,
                          std::string_view body, bool head_only) {
  std::string wire;
  wire.reserve(96 + headers_size(headers) + (head_only ? 0 : body.size()));
  wire.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  wire.append(std::to_string(status));
  wire.push_back(' ');
  const auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
  wire.append(reason.data(), reason.size());
  wire.append("\r\n");
  if (!has(headers, "server")) wire.append("Server: tinyroute\r\n");
  append_headers(wire, headers);
  // HTTP/1.1 keeps a connection open unless told otherwise, HTTP/1.0 closes it unless told otherwise.
  if (version == 10 && keep_alive) wire.append("Connection: keep-alive\r\n");
  if (version != 10 && !keep_alive) wire.append("Connection: close\r\n");
  append_field(wire, "Content-Length", std::to_string(body.size()));
  wire.append("\r\n");
  if (!head_only) wire.append(body);
  return wire;
}

std::string request_wire(std::string_view method, std::string_view target, std::string_view host,
                         const WireHeaders& headers, std::string_view body) {
  std::string wire;
  wire.reserve(96 + target.size() + host.size() + headers_size(headers) + body.size());
  wire.append(method);
  wire.push_back(' ');
  wire.append(target);
  wire.append(" HTTP/1.1\r\n");
  if (!has(headers, "host")) append_field(wire, "Host", host);
  if (!has(headers, "user-agent")) wire.append("User-Agent: tinyroute\r\n");
  append_headers(wire, headers);
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
    append_field(wire, "Content-Length", std::to_string(body.size()));
  wire.append("\r\n");
  wire.append(body);
  return wire;
}

} // namespace tinyroute::gateway
