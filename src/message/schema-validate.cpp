#include "message/schema-validate.h"

#include <algorithm>
#include <regex>
#include <set>

#include "core/utf8.h"

namespace tinyroute {

namespace {

using nlohmann::json;

bool has_type(const json& value, const std::string& type) {
  if (type == "null") return value.is_null();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "string") return value.is_string();
  if (type == "boolean") return value.is_boolean();
  if (type == "integer") return value.is_number_integer() || value.is_number_unsigned();
  if (type == "number") return value.is_number();
  return false;
}

void check(const json& schema, const json& value, const std::string& path, std::vector<std::string>& out) {
  static const std::set<std::string> kKnown = {
      "$schema", "$id",      "title",    "description", "type",
      "enum",    "const",    "required", "properties",  "additionalProperties",
      "items",   "minItems", "maxItems", "minLength",   "maxLength",
      "minimum", "maximum",  "format"};
  const auto fail = [&](const std::string& what) { out.push_back(path + ": " + what); };
  for (const auto& [key, unused] : schema.items()) {
    if (!kKnown.contains(key)) fail("schema keyword '" + key + "' is not supported by this validator");
  }
  if (const auto t = schema.find("type"); t != schema.end()) {
    const std::vector<std::string> types =
        t->is_array() ? t->get<std::vector<std::string>>() : std::vector<std::string>{t->get<std::string>()};
    if (std::none_of(types.begin(), types.end(), [&](const auto& ty) { return has_type(value, ty); })) {
      fail("expected " + json(types).dump() + ", got " + std::string(value.type_name()));
      return; // the other keywords would only repeat the type problem
    }
  }
  if (const auto e = schema.find("enum"); e != schema.end()) {
    if (std::find(e->begin(), e->end(), value) == e->end())
      fail(value.dump() + " is not one of " + e->dump());
  }
  if (const auto c = schema.find("const"); c != schema.end() && *c != value) fail("must be " + c->dump());

  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    const std::size_t n = utf8_length(s);
    if (const auto m = schema.find("maxLength"); m != schema.end() && n > m->get<std::size_t>())
      fail("longer than " + m->dump() + " characters (" + std::to_string(n) + ")");
    if (const auto m = schema.find("minLength"); m != schema.end() && n < m->get<std::size_t>())
      fail("shorter than " + m->dump() + " characters");
    if (const auto f = schema.find("format"); f != schema.end()) {
      const std::string format = f->get<std::string>();
      const bool ok = format == "date-time" ? is_date_time(s)
                      : format == "date"    ? is_date(s)
                      : format == "uuid"    ? is_uuid(s)
                                            : false;
      if (!ok) fail(value.dump() + " is not a " + format);
    }
  }
  if (value.is_number()) {
    const double v = value.get<double>();
    if (const auto m = schema.find("minimum"); m != schema.end() && v < m->get<double>())
      fail("below the minimum " + m->dump());
    if (const auto m = schema.find("maximum"); m != schema.end() && v > m->get<double>())
      fail("above the maximum " + m->dump());
  }
  if (value.is_array()) {
    if (const auto m = schema.find("maxItems"); m != schema.end() && value.size() > m->get<std::size_t>())
      fail("more than " + m->dump() + " items");
    if (const auto m = schema.find("minItems"); m != schema.end() && value.size() < m->get<std::size_t>())
      fail("fewer than " + m->dump() + " items");
    if (const auto items = schema.find("items"); items != schema.end()) {
      for (std::size_t i = 0; i < value.size(); ++i)
        check(*items, value[i], path + "[" + std::to_string(i) + "]", out);
    }
  }
  if (value.is_object()) {
    static const json kEmpty = json::object();
    const auto p = schema.find("properties");
    const json& props = p != schema.end() ? *p : kEmpty;
    if (const auto r = schema.find("required"); r != schema.end()) {
      for (const auto& key : *r) {
        if (!value.contains(key.get<std::string>()))
          fail("required property '" + key.get<std::string>() + "' is missing");
      }
    }
    const auto extra = schema.find("additionalProperties");
    for (const auto& [key, v] : value.items()) {
      if (const auto sub = props.find(key); sub != props.end()) {
        check(*sub, v, path + "." + key, out);
      } else if (extra != schema.end()) {
        if (extra->is_boolean() && !extra->get<bool>()) {
          fail("property '" + key + "' is not allowed");
        } else if (extra->is_object()) {
          check(*extra, v, path + "." + key, out);
        }
      }
    }
  }
}

} // namespace

std::vector<std::string> validate_json(const nlohmann::json& schema, const nlohmann::json& value) {
  std::vector<std::string> out;
  check(schema, value, "$", out);
  return out;
}

bool is_date_time(const std::string& s) {
  static const std::regex re(
      R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d))");
  return std::regex_match(s, re);
}

bool is_date(const std::string& s) {
  static const std::regex re(R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))");
  return std::regex_match(s, re);
}

bool is_uuid(const std::string& s) {
  static const std::regex re(
      R"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})");
  return std::regex_match(s, re);
}

} // namespace tinyroute
