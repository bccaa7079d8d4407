// Grammar-constrained generation from a JSON Schema's shape.
//
// gbnf_from_schema turns the subset of JSON Schema tinyroute uses for generated fields into a GBNF
// grammar for compact JSON: objects with every listed property in a fixed order, strings of at most
// maxLength characters (escapes limited to \" \\ \n \t, so every output parses), arrays of at most
// maxItems items, "date" strings as YYYY-MM-DD, and "null" where the type list allows it. Lengths are
// bounded by the grammar; the token budget bounds the rest, and repair_truncated_json recovers what
// was complete when the budget ran out.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tinyroute {

// `schema` must be an object schema; `order` lists the properties to generate, in that order (nested
// objects use their properties' own order). Throws Error(internal) on a shape it cannot express.
std::string gbnf_from_schema(const nlohmann::json& schema, const std::vector<std::string>& order);

// The longest prefix of `text` (JSON generated under such a grammar, maybe cut off mid-way) that can be
// closed into a JSON object: an open string is closed, a dangling key or comma dropped, open arrays and
// objects closed. nullopt when not even "{" survives.
std::optional<nlohmann::json> repair_truncated_json(const std::string& text);

} // namespace tinyroute
