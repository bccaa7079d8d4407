// Test-side helpers for the gateway tests that run real parts: a llama-server on the generated tiny model,
// and the official SDK clients under node (tests/gateway/node, `make node-deps`).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test-support.h"
#include "upstreams.h"

namespace tinyroute::test::gw {

// A llama-server on the tiny model with `extra` arguments; `port` gets its port. When it does not become
// healthy, `skip` says why (with its log).
inline std::unique_ptr<Process> start_llama_server(const std::vector<std::string>& extra, int& port,
                                                   const std::string& log, std::string& skip) {
  port = free_port();
  std::vector<std::string> argv = {TINYROUTE_LLAMA_SERVER,
                                   "--port",
                                   std::to_string(port),
                                   "--host",
                                   "127.0.0.1",
                                   "-m",
                                   tiny_model(),
                                   "-t",
                                   "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto process = std::make_unique<Process>(argv, std::map<std::string, std::string>{}, log);
  for (int i = 0; i < 600; ++i) {
    if (wait_for_port(port, std::chrono::milliseconds(100))) {
      try {
        if (request(port, "GET", "/health").status == 200) return process;
      } catch (const std::exception&) {
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  skip = "llama-server did not become healthy: " + read_file(log);
  return process;
}

// Whether the SDK clients are installed (`make node-deps`).
inline bool node_clients_installed(const std::string& node_dir) {
  return std::filesystem::exists(node_dir + "/node_modules");
}

// Runs node_dir/script with `args`; its JSON lines keyed by "kind", and its whole output in `out`.
inline std::map<std::string, nlohmann::json> run_node(const std::string& node_dir, const std::string& script,
                                                      const std::vector<std::string>& args,
                                                      std::string* out = nullptr) {
  std::string node = "/usr/bin/node"; // run_command execs without a PATH search
  std::istringstream path(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin");
  for (std::string dir; std::getline(path, dir, ':');) {
    if (std::filesystem::exists(dir + "/node")) {
      node = dir + "/node";
      break;
    }
  }
  std::vector<std::string> argv = {node, node_dir + "/" + script};
  argv.insert(argv.end(), args.begin(), args.end());
  auto [rc, text] = run_command(argv);
  EXPECT_EQ(rc, 0) << text;
  std::map<std::string, nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("kind")) lines[j["kind"]] = j;
  }
  if (out != nullptr) *out = text;
  return lines;
}

} // namespace tinyroute::test::gw
