#include "gateway/request-json.h"

#include <cmath>
#include <cstdio>
#include <unordered_set>
#include <vector>

#include "core/utf8.h"
#include "gateway/chat.h"

namespace tinyroute::gateway {

namespace {

// "line 3, column 14" for a byte offset into `text` (0-based offset, 1-based line and column).
std::string where(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(offset - line_start + 1);
}

// The token that starts at `offset`, for "unexpected '...'" (the library's last token can hold what came
// before it).
std::string token_at(std::string_view text, std::size_t offset) {
  if (offset >= text.size()) return {};
  std::size_t end = offset + 1;
  const auto stops = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ':' || c == '[' || c == ']' ||
           c == '{' || c == '}' || c == '"';
  };
  if (!stops(text[offset])) {
    while (end < text.size() && end - offset < 24 && !stops(text[end])) ++end;
  }
  return std::string(text.substr(offset, end - offset));
}

// What went wrong, in our own words; the library's message is only used to tell the cases apart.
std::string describe_syntax_error(const std::string& library_text, const std::string& last_token,
                                  const std::string& token) {
  const auto has = [&](const char* s) { return library_text.find(s) != std::string::npos; };
  if (has("unexpected end of input")) return "the JSON ends before it is complete";
  if (has("control character")) return "a string holds an unescaped control character (write it as \\u00XX)";
  if (has("after backslash")) return "a string holds an unknown escape after a backslash";
  if (has("must be followed by 4 hex digits")) return "a \\u escape needs four hexadecimal digits";
  if (has("surrogate")) return "a \\u escape holds an unpaired UTF-16 surrogate";
  if (has("ill-formed UTF-8")) return "a string holds bytes that are not UTF-8";
  if (has("invalid number")) return "a number is malformed (" + quote_input(last_token, 40) + ")";
  if (token.empty()) return "unexpected input";
  return "unexpected '" + quote_input(token, 40) + "'";
}

// Builds the DOM with nlohmann's own builder and adds the checks a request body needs.
class StrictSax {
public:
  using Dom = nlohmann::detail::json_sax_dom_parser<nlohmann::json>;

  StrictSax(nlohmann::json& root, std::string_view text, const JsonLimits& limits)
      : dom_(root, false), text_(text), limits_(limits) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(nlohmann::json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(nlohmann::json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(nlohmann::json::number_float_t v, const std::string& s) {
    if (!std::isfinite(v)) return fail(out_of_range(s));
    return dom_.number_float(v, s);
  }
  bool string(std::string& v) { return dom_.string(v); }
  bool binary(nlohmann::json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) {
    if (!enter()) return false;
    keys_.emplace_back();
    return dom_.start_object(n);
  }
  bool key(std::string& k) {
    if (!keys_.back().insert(k).second) {
      return fail("the key \"" + quote_input(k, 60) +
                  "\" appears twice in one object; send each key once (which one counts would be a guess)");
    }
    return dom_.key(k);
  }
  bool end_object() {
    keys_.pop_back();
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (!enter()) return false;
    return dom_.start_array(n);
  }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) {
    if (!error_.empty()) return false;
    // `position` counts the bytes read, so the offending byte is the one before it.
    const std::size_t offset = position > 0 ? position - 1 : 0;
    if (ex.id == 406) return fail(out_of_range(last_token) + " (at " + where(text_, offset) + ")");
    return fail(describe_syntax_error(ex.what(), last_token, token_at(text_, offset)) + " at " +
                where(text_, offset));
  }

  const std::string& error() const { return error_; }

private:
  bool enter() {
    if (++depth_ > limits_.max_depth) {
      return fail("the JSON nests deeper than " + std::to_string(limits_.max_depth) +
                  " levels, the limit for request bodies");
    }
    return true;
  }
  static std::string out_of_range(const std::string& number) {
    return "the number " + quote_input(number, 40) +
           " is out of range (JSON numbers here must fit a double, about ±1.8e308)";
  }
  bool fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  Dom dom_;
  std::string_view text_;
  JsonLimits limits_;
  std::size_t depth_ = 0;
  std::vector<std::unordered_set<std::string>> keys_; // per open object
  std::string error_;
};

} // namespace

nlohmann::json parse_request_json(std::string_view body, const JsonLimits& limits) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
    bad_request("the request body is empty; send a JSON object");
  // JSON text is UTF-8 (RFC 8259): say so plainly, with where, before the parser finds it.
  if (const std::size_t bad = first_invalid_utf8(body); bad != std::string_view::npos) {
    char byte[8];
    std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned char>(body[bad]));
    bad_request("the request body is not valid UTF-8: byte " + std::string(byte) + " at " + where(body, bad) +
                " (JSON text must be UTF-8)");
  }
  nlohmann::json root;
  StrictSax sax(root, body, limits);
  const bool ok =
      nlohmann::json::sax_parse(body.begin(), body.end(), &sax, nlohmann::json::input_format_t::json,
                                true /* strict: nothing may follow the value */);
  if (!ok || !sax.error().empty()) {
    bad_request("the request body is not valid JSON: " +
                (sax.error().empty() ? std::string("it could not be read") : sax.error()));
  }
  return root;
}

std::string quote_input(std::string_view text, std::size_t max_bytes) {
  return truncate(sanitize_utf8(text), max_bytes);
}

std::string dump_for_client(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace tinyroute::gateway
