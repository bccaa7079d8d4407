// What the CLI tests share: the binary, a small config around a generated tiny model, a JSON parse
// of command output, and a blocking HTTP request.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "http-client.h"

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

// Labelled requests for `tinyroute train` on config_yaml's categories: 4 chat, 3 coding, 3 math
// (with --heldout-every 2, two, one and one are held out).
inline std::string training_jsonl() {
  const std::vector<std::pair<std::string, std::string>> examples = {
      {"Hi, how is your day going?", "chat"},
      {"Привет, что нового?", "chat"},
      {"Fix this segfault in my C code", "coding"},
      {"Напиши функцию сортировки на Go", "coding"},
      {"What is 17 * 23?", "math"},
      {"Реши уравнение x^2 = 16", "math"},
      {"Tell me a joke", "chat"},
      {"Refactor this Java class", "coding"},
      {"Integrate x^2 from 0 to 1", "math"},
      {"Good morning!", "chat"}};
  std::string lines;
  for (const auto& [text, label] : examples) lines += json{{"text", text}, {"label", label}}.dump() + "\n";
  return lines;
}

inline const std::vector<std::string> kAgents = {"billing", "devops", "triage"};

// config_yaml with three agents (devops takes only tasks and reports) and tight limits.
inline std::string agents_config_yaml(const std::string& model_path, int upstream_port) {
  return config_yaml(model_path, upstream_port) + "agent_routing:\n"
                                                  "  threshold: 0.35\n"
                                                  "  max_hops: 3\n"
                                                  "  max_message_bytes: 2048\n"
                                                  "agents:\n"
                                                  "  - name: billing\n"
                                                  "    description: Invoices, refunds and payments.\n"
                                                  "    skills: [refunds, invoices]\n"
                                                  "    examples: [\"Где мой счёт за март?\"]\n"
                                                  "    endpoint: http://127.0.0.1:9001/inbox\n"
                                                  "  - name: devops\n"
                                                  "    description: Deployments, servers and outages.\n"
                                                  "    skills: [kubernetes, on-call]\n"
                                                  "    examples: [\"prod is down\"]\n"
                                                  "    endpoint: http://127.0.0.1:9002/inbox\n"
                                                  "    accepts: [task, report]\n"
                                                  "  - name: triage\n"
                                                  "    description: Anything else, sent on to a person.\n"
                                                  "    endpoint: http://127.0.0.1:9003/inbox\n"
                                                  "    triage: true\n";
}

inline bool is_agent(const json& name) {
  return name.is_string() &&
         std::find(kAgents.begin(), kAgents.end(), name.get<std::string>()) != kAgents.end();
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

using Reply = tinyroute::test::HttpReply;

Reply http(int port, const std::string& method, const std::string& target, const std::string& body = "",
           const std::map<std::string, std::string>& headers = {});

} // namespace cli_test
