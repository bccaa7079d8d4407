// What the CLI tests share: the binary, a small config around a generated tiny model, a JSON parse
// of command output, and a blocking HTTP request.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "test-support.h"

namespace cli_test {

using nlohmann::json;
namespace t = tinyroute::test;

inline const std::vector<std::string> kCategories = {"chat", "coding", "math"};

// The config every test starts from; answer models point at `upstream_port` (nothing need listen).
inline std::string config_yaml(const std::string& model_path, int upstream_port,
                               const std::string& chat_description = "Casual conversation and greetings.") {
  const std::string base = "http://127.0.0.1:" + std::to_string(upstream_port);
  return "internal_model:\n"
         "  model: " +
         model_path +
         "\n"
         "  threads: 1\n"
         "  context: 2048\n"
         "  parallel: 4\n"
         "categories:\n"
         "  - name: chat\n"
         "    description: " +
         chat_description +
         "\n"
         "    examples: [\"Hi! How are you?\", \"Привет! Как дела?\"]\n"
         "  - name: coding\n"
         "    description: Writing, reviewing or debugging source code.\n"
         "    examples: [\"Write a Python function\", \"Напиши функцию на C++\"]\n"
         "  - name: math\n"
         "    description: Calculations and equations.\n"
         "models:\n"
         "  - name: big\n"
         "    provider: openai\n"
         "    base_url: " +
         base +
         "\n"
         "    upstream_model: tiny\n"
         "    categories: [chat, coding, math]\n"
         "  - name: spare\n"
         "    provider: openai\n"
         "    base_url: " +
         base +
         "\n"
         "    categories: [coding]\n"
         "fallbacks:\n"
         "  chat: [spare]\n"
         "default_category: chat\n";
}

inline std::pair<int, std::string> tinyroute(std::vector<std::string> args) {
  args.insert(args.begin(), TINYROUTE_CLI);
  return t::run_command(args);
}

inline json parse_or_fail(const std::string& out) {
  json j = json::parse(out, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error("not JSON:\n" + out);
  return j;
}

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers; // lower-case names
  std::string body;
  json j() const { return json::parse(body, nullptr, false); }
};

Reply http(int port, const std::string& method, const std::string& target, const std::string& body = "");

} // namespace cli_test
