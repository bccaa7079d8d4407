// UTF-8 hygiene for text that people and agents send: messages may hold any bytes, JSON may not.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tinyroute {

// `text` with every byte that is not part of a well-formed UTF-8 sequence (overlong forms, surrogates
// and code points above U+10FFFF included) replaced by U+FFFD. Valid text comes back unchanged.
std::string sanitize_utf8(std::string_view text);

// The offset of the first byte of `text` that is not part of a well-formed UTF-8 sequence, or
// std::string_view::npos when all of it is valid.
std::size_t first_invalid_utf8(std::string_view text);

// Code points in valid UTF-8 text.
std::size_t utf8_length(std::string_view text);

// The longest prefix of valid UTF-8 `text` holding at most `max_code_points` code points.
std::string utf8_prefix(std::string_view text, std::size_t max_code_points);

} // namespace tinyroute
