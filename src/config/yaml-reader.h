// The config's YAML, read with its line numbers: typed values, mappings checked for unknown and
// repeated keys, and every problem collected with its line so one run reports them all.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "core/text.h"
#include "tinyroute/error.h"

namespace tinyroute::config_yaml {

using namespace tinyroute::text;

// ---- problem collection ----------------------------------------------------------------------

struct Problem {
  int line = 0;
  std::string path; // key path; empty for whole-document problems
  std::string what;
  bool forbidden = false; // the internal model used as an answer model
};

class Report {
public:
  void add(int line, std::string path, std::string what, bool forbidden = false) {
    problems_.push_back({line, std::move(path), std::move(what), forbidden});
  }
  bool empty() const { return problems_.empty(); }

  [[noreturn]] void raise(const std::string& source) {
    std::stable_sort(problems_.begin(), problems_.end(),
                     [](const Problem& a, const Problem& b) { return a.line < b.line; });
    bool forbidden = false;
    std::string message;
    for (const auto& p : problems_) {
      if (!message.empty()) message += '\n';
      message += source + ":" + std::to_string(p.line) + ": ";
      if (!p.path.empty()) message += p.path + ": ";
      message += p.what;
      forbidden = forbidden || p.forbidden;
    }
    throw Error(forbidden ? ErrorCode::internal_model_forbidden : ErrorCode::config_invalid, message);
  }

private:
  std::vector<Problem> problems_;
};

// ---- typed reading of YAML nodes -------------------------------------------------------------

int line_of(const YAML::Node& node, int fallback = 0);

std::string describe(const YAML::Node& node);

std::string child_path(const std::string& path, std::string_view key);

std::string index_path(const std::string& path, std::size_t i);

// A mapping's values by key, plus where the mapping is (for "missing key" messages).
struct Section {
  std::string path;
  int line = 0;
  bool ok = false; // it was a mapping
  std::map<std::string, YAML::Node> fields;
};

// A string from a list, with where it was written.
struct Item {
  std::string value;
  std::string path;
  int line = 0;
};

class Reader {
public:
  explicit Reader(Report& report) : report_(report) {}

  Report& report() { return report_; }

  // Reads a mapping, reporting keys outside `keys` (typo protection) and keys given twice.
  Section section(const YAML::Node& node, const std::string& path, int line,
                  const std::vector<std::string>& keys) {
    Section s{path, line_of(node, line), false, {}};
    if (!node.IsMap()) {
      report_.add(s.line, path, "expected a mapping (key: value lines), got " + describe(node));
      return s;
    }
    s.ok = true;
    for (auto it = node.begin(); it != node.end(); ++it) {
      // By value: yaml-cpp's iterator hands out a temporary pair, and Nodes are cheap handles.
      const YAML::Node key = it->first;
      const int key_line = line_of(key, s.line);
      if (!key.IsScalar()) {
        report_.add(key_line, path, "keys must be plain words, got " + describe(key));
        continue;
      }
      const std::string& name = key.Scalar();
      if (std::find(keys.begin(), keys.end(), name) == keys.end()) {
        report_.add(key_line, child_path(path, name),
                    "unknown key" + did_you_mean(name, keys) + " (allowed here: " + join(keys) + ")");
        continue;
      }
      if (s.fields.contains(name)) {
        report_.add(key_line, child_path(path, name),
                    "given twice (first at line " + std::to_string(line_of(s.fields[name], s.line)) +
                        "); keep one");
        continue;
      }
      s.fields.emplace(name, it->second);
    }
    return s;
  }

  // The value of `key`, or nothing when absent (reported if required) or empty (always reported).
  std::optional<YAML::Node> value(const Section& s, const std::string& key, bool required,
                                  std::string_view hint = "") {
    const auto it = s.fields.find(key);
    if (it == s.fields.end()) {
      if (required && s.ok) {
        report_.add(s.line, child_path(s.path, key),
                    "required key is missing" + (hint.empty() ? "" : " (" + std::string(hint) + ")"));
      }
      return std::nullopt;
    }
    if (it->second.IsNull()) {
      report_.add(line_of(it->second, s.line), child_path(s.path, key),
                  "has no value" +
                      (hint.empty() ? "; remove the key or give it one" : " (" + std::string(hint) + ")"));
      return std::nullopt;
    }
    return it->second;
  }

  std::optional<std::string> text(const YAML::Node& node, const std::string& path, int line,
                                  bool non_empty = true) {
    if (!node.IsScalar()) {
      report_.add(line_of(node, line), path, "expected a string, got " + describe(node));
      return std::nullopt;
    }
    std::string v = trim(node.Scalar());
    if (non_empty && v.empty()) {
      report_.add(line_of(node, line), path, "must not be empty");
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::string> text(const Section& s, const std::string& key, bool required,
                                  std::string_view hint = "", bool non_empty = true) {
    const auto v = value(s, key, required, hint);
    if (!v) return std::nullopt;
    return text(*v, child_path(s.path, key), s.line, non_empty);
  }

  std::optional<long long> integer(const Section& s, const std::string& key, bool required) {
    const auto v = value(s, key, required);
    if (!v) return std::nullopt;
    const std::string path = child_path(s.path, key);
    const int line = line_of(*v, s.line);
    // A quoted "10" is a string in YAML: reject it rather than guess.
    if (v->IsScalar() && v->Tag() != "!") {
      std::string_view digits = v->Scalar();
      if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
      long long out = 0;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
      if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty()) {
        if (out < std::numeric_limits<int>::min() || out > std::numeric_limits<int>::max()) {
          report_.add(line, path, v->Scalar() + " is too large");
          return std::nullopt;
        }
        return out;
      }
    }
    report_.add(line, path, "expected a whole number, got " + describe(*v));
    return std::nullopt;
  }

  // A positive int, e.g. a thread count or a context size.
  void positive(const Section& s, const std::string& key, int& out) {
    const auto v = integer(s, key, false);
    if (!v) return;
    if (*v <= 0) {
      report_.add(line_of(s.fields.at(key), s.line), child_path(s.path, key),
                  "must be a positive whole number, got " + std::to_string(*v));
      return;
    }
    out = static_cast<int>(*v);
  }

  std::optional<double> number(const Section& s, const std::string& key, bool required) {
    const auto v = value(s, key, required);
    if (!v) return std::nullopt;
    if (v->IsScalar() && v->Tag() != "!") {
      std::string_view digits = v->Scalar();
      if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
      double out = 0;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
      if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty() &&
          std::isfinite(out)) {
        return out;
      }
    }
    report_.add(line_of(*v, s.line), child_path(s.path, key), "expected a number, got " + describe(*v));
    return std::nullopt;
  }

  std::optional<bool> boolean(const Section& s, const std::string& key) {
    const auto v = value(s, key, false);
    if (!v) return std::nullopt;
    if (v->IsScalar() && v->Tag() != "!") {
      const std::string word = lower(v->Scalar());
      if (word == "true" || word == "yes" || word == "on") return true;
      if (word == "false" || word == "no" || word == "off") return false;
    }
    report_.add(line_of(*v, s.line), child_path(s.path, key), "expected true or false, got " + describe(*v));
    return std::nullopt;
  }

  // A list of non-empty strings; a single string is not accepted as a one-item list (it hides typos
  // such as `categories: coding, chat`).
  std::optional<std::vector<Item>> text_list(const YAML::Node& node, const std::string& path, int line) {
    if (!node.IsSequence()) {
      report_.add(line_of(node, line), path,
                  "expected a list (e.g. [a, b] or \"- a\" lines), got " + describe(node));
      return std::nullopt;
    }
    std::vector<Item> items;
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string item_path = index_path(path, i);
      const int item_line = line_of(node[i], line);
      if (auto v = text(node[i], item_path, item_line)) items.push_back({*v, item_path, item_line});
    }
    return items;
  }

  std::optional<std::vector<Item>> text_list(const Section& s, const std::string& key, bool required) {
    const auto v = value(s, key, required);
    if (!v) return std::nullopt;
    return text_list(*v, child_path(s.path, key), s.line);
  }

private:
  Report& report_;
};

} // namespace tinyroute::config_yaml
