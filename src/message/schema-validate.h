// A validator for the subset of JSON Schema (draft 2020-12) that tinyroute's schemas use: type (one or
// a list, so "null" can be allowed), enum, const, required, properties, additionalProperties (false or
// a schema), items, minItems/maxItems, minLength/maxLength (code points), minimum/maximum and format
// (date-time, date, uuid). Annotations ($schema, $id, title, description) are ignored; any other
// keyword is reported, so a schema cannot silently rely on something this validator skips.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tinyroute {

// Every problem as "$.path: what"; empty when `value` is valid.
std::vector<std::string> validate_json(const nlohmann::json& schema, const nlohmann::json& value);

// The format checks on their own (RFC 3339 date-time with a zone, YYYY-MM-DD date, RFC 4122 UUID).
bool is_date_time(const std::string& s);
bool is_date(const std::string& s);
bool is_uuid(const std::string& s);

} // namespace tinyroute
