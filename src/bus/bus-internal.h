// Pieces of the dispatcher the tests reach directly: key names from patterns, the delivery script.
#pragma once

#include <string>

namespace tinyroute {

// `pattern` with every `placeholder` (e.g. "{agent}") replaced by `value`.
std::string bus_key(const std::string& pattern, const std::string& placeholder, const std::string& value);

// KEYS: inbox, delivered mark, stats hash, target streams...; ARGV: group, entry id, mark TTL (s),
// MAXLEN, stats field, field/value pairs... Writes every target and the mark, then XACKs; when the mark
// exists already it only XACKs. Returns 1 when it wrote, 0 for a duplicate.
extern const char* const kDeliverScript;

} // namespace tinyroute
