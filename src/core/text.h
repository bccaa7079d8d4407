// Small text helpers every layer shares: ASCII case and whitespace, lists, suggestions, file stems.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tinyroute::text {

std::string lower(std::string_view s);
std::string_view trim_view(std::string_view s);
std::string trim(std::string_view s);
// ASCII case-insensitive, without copies: the internal-model checks run for every gateway request.
bool iequals(std::string_view a, std::string_view b);
bool ends_with_ci(std::string_view s, std::string_view suffix);
std::string quoted(std::string_view s);
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");
std::size_t edit_distance(std::string_view a, std::string_view b);
// "; did you mean "models"?" for a near miss, so typos point at their fix.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& known);
// The base name without .gguf.
std::string_view stem_view(std::string_view path);
std::string file_stem(std::string_view path);
bool has_path_separator(std::string_view s);
// ASCII case-insensitive substring search.
bool contains_ci(std::string_view text, std::string_view needle);

} // namespace tinyroute::text
