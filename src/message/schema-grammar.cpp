#include "message/schema-grammar.h"

#include <algorithm>

#include "tinyroute/error.h"

namespace tinyroute {

namespace {

using nlohmann::json;

// Rules shared by every derived grammar.
constexpr const char* kCommon =
    "char ::= [^\"\\\\\\x00-\\x1f\\x7f] | \"\\\\\" [\"\\\\nt]\n"
    "date ::= \"\\\"\" [0-9] [0-9] [0-9] [0-9] \"-\" ( \"0\" [1-9] | \"1\" [0-2] ) \"-\" "
    "( \"0\" [1-9] | [12] [0-9] | \"3\" [01] ) \"\\\"\"\n";

std::string literal(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::vector<std::string> types_of(const json& schema) {
  const auto t = schema.find("type");
  if (t == schema.end()) throw Error(ErrorCode::internal, "schema grammar: a property has no type");
  return t->is_array() ? t->get<std::vector<std::string>>() : std::vector<std::string>{t->get<std::string>()};
}

class Builder {
public:
  std::string rules;

  // Returns a GBNF expression for `schema`, adding named rules as needed.
  std::string expr(const json& schema, const std::string& name, const std::vector<std::string>* order) {
    std::vector<std::string> types = types_of(schema);
    const bool nullable = std::find(types.begin(), types.end(), "null") != types.end();
    std::erase(types, "null");
    if (types.size() != 1)
      throw Error(ErrorCode::internal, "schema grammar: " + name + " needs one non-null type");
    std::string body;
    if (const auto e = schema.find("enum"); e != schema.end()) {
      for (const auto& v : *e) body += (body.empty() ? "" : " | ") + literal(v.dump());
      body = "( " + body + " )";
    } else if (types[0] == "string") {
      if (schema.value("format", "") == "date") {
        body = "date";
      } else {
        const auto lo = schema.value("minLength", 0);
        const auto hi = schema.value("maxLength", 0);
        if (hi <= 0) throw Error(ErrorCode::internal, "schema grammar: " + name + " needs maxLength");
        body = "\"\\\"\" char{" + std::to_string(lo) + "," + std::to_string(hi) + "} \"\\\"\"";
      }
    } else if (types[0] == "array") {
      const auto max_items = schema.value("maxItems", 0);
      if (max_items <= 0 || !schema.contains("items"))
        throw Error(ErrorCode::internal, "schema grammar: " + name + " needs items and maxItems");
      const std::string item = rule(name + "-item", expr(schema["items"], name + "-item", nullptr));
      body = "\"[\" ( " + item + " ( \",\" " + item + " ){0," + std::to_string(max_items - 1) + "} )? \"]\"";
    } else if (types[0] == "object") {
      std::vector<std::string> keys;
      if (order) {
        keys = *order;
      } else {
        for (const auto& [k, unused] : schema.at("properties").items()) keys.push_back(k);
      }
      body = "\"{\"";
      for (std::size_t i = 0; i < keys.size(); ++i) {
        const json& sub = schema.at("properties").at(keys[i]);
        const std::string r = rule(name + "-" + keys[i], expr(sub, name + "-" + keys[i], nullptr));
        body += " " + literal((i ? "," : "") + json(keys[i]).dump() + ":") + " " + r;
      }
      body += " \"}\"";
    } else if (types[0] == "boolean") {
      body = "( \"true\" | \"false\" )";
    } else {
      throw Error(ErrorCode::internal,
                  "schema grammar: type " + types[0] + " of " + name + " is not supported");
    }
    return nullable ? "( " + body + " | \"null\" )" : body;
  }

  std::string rule(std::string name, const std::string& body) {
    std::replace(name.begin(), name.end(), '_', '-');
    rules += name + " ::= " + body + "\n";
    return name;
  }
};

} // namespace

std::string gbnf_from_schema(const nlohmann::json& schema, const std::vector<std::string>& order) {
  Builder b;
  const std::string root = b.expr(schema, "root", &order);
  return "root ::= " + root + "\n" + b.rules + kCommon;
}

std::optional<nlohmann::json> repair_truncated_json(const std::string& text) {
  // Cuts are tried from the longest prefix down; texts are a few hundred bytes, so this stays cheap.
  for (std::size_t cut = text.size() + 1; cut-- > 0;) {
    std::string s = text.substr(0, cut);
    std::string stack;
    bool in_string = false, escape = false;
    for (const char c : s) {
      if (in_string) {
        if (escape) {
          escape = false;
        } else if (c == '\\') {
          escape = true;
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        stack += c;
      } else if (c == '}' || c == ']') {
        if (!stack.empty()) stack.pop_back();
      }
    }
    if (stack.empty() && cut != text.size()) continue; // nothing open: only the whole text can parse
    if (escape) s.pop_back();
    if (in_string) s += '"';
    while (!s.empty() && (s.back() == ',' || s.back() == ':')) s.pop_back();
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) s += *it == '{' ? '}' : ']';
    json parsed = json::parse(s, nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) return parsed;
  }
  return std::nullopt;
}

} // namespace tinyroute
