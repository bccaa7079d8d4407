// What the bus tests share: a real redis-server on 127.0.0.1 (free port, its own directory, AOF on),
// a client to it, and configs with three agents and a bus section pointing at it.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bus/redis-client.h"
#include "test-support.h"
#include "tinyroute/config.h"

namespace tinyroute::test {

// redis-server started by the test and stopped with it. restart() keeps the port and the data
// directory, so what the AOF holds survives.
class RedisServer {
public:
  // `extra`: more redis-server arguments (ACL users, a unix socket); `password` for the fixture's own client;
  // `port`: where it listens (0: a free one).
  explicit RedisServer(std::vector<std::string> extra = {}, std::string password = "", int port = 0)
      : port_(port > 0 ? port : free_port()), extra_(std::move(extra)), password_(std::move(password)) {
    start();
  }
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  void start() {
    std::vector<std::string> argv = {"/usr/bin/redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--dir",
                                     dir_.path(),
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "yes",
                                     "--appendfsync",
                                     "always",
                                     "--protected-mode",
                                     "no"};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    process_ = std::make_unique<Process>(argv, std::map<std::string, std::string>{}, dir_.file("redis.log"));
    if (!wait_for_port(port_, std::chrono::seconds(20)))
      throw std::runtime_error("redis-server did not start");
    // The AOF is loaded before the port answers commands with data; wait until it does.
    for (int i = 0; i < 200; ++i) {
      try {
        RedisClient c(endpoint(), std::chrono::seconds(2));
        const RedisValue r = c.command({"PING"});
        if (r.str == "PONG" || (r.is_error() && !r.str.starts_with("LOADING"))) return; // NOAUTH: up too
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("redis-server does not answer PING");
  }
  void kill() { process_->stop(9); }
  int pid() const { return process_->pid(); }
  void restart() {
    kill();
    start();
  }
  RedisEndpoint endpoint() const {
    RedisEndpoint e;
    e.port = port_;
    e.password = password_;
    return e;
  }
  std::unique_ptr<RedisClient> client() const {
    return std::make_unique<RedisClient>(endpoint(), std::chrono::seconds(10));
  }

private:
  int port_;
  std::vector<std::string> extra_;
  std::string password_;
  TempDir dir_;
  std::unique_ptr<Process> process_;
};

inline const std::vector<std::string> kBusAgents = {"billing", "devops", "triage"};

// Three agents (devops takes only tasks and reports) and a bus section; `bus_extra` adds bus keys.
inline std::string bus_config_yaml(const std::string& redis_url, const std::string& mode,
                                   const std::string& bus_extra = "", const std::string& model = "") {
  return "internal_model:\n  model: " + (model.empty() ? std::string("tinyllama-1.1b-chat") : model) +
         "\n  threads: 1\n  context: 4096\n  parallel: 8\n"
         "categories:\n  - name: chat\n    description: Everyday requests.\n"
         "  - name: coding\n    description: Writing or debugging code.\n"
         "models:\n  - name: big\n    provider: openai\n    base_url: http://127.0.0.1:9\n"
         "    categories: [chat, coding]\n"
         "default_category: chat\n"
         "agent_routing:\n  max_hops: 4\n  max_message_bytes: 4096\n"
         "agents:\n"
         "  - name: billing\n    description: Invoices, refunds and payments.\n"
         "    skills: [refunds, invoices]\n    endpoint: http://127.0.0.1:9001/inbox\n"
         "  - name: devops\n    description: Deployments, servers and outages.\n"
         "    skills: [kubernetes, on-call]\n    endpoint: http://127.0.0.1:9002/inbox\n    accepts: [task, "
         "report]\n"
         "  - name: triage\n    description: Anything else.\n"
         "    endpoint: http://127.0.0.1:9003/inbox\n    triage: true\n"
         "bus:\n  redis: " +
         redis_url + "\n  mode: " + mode +
         "\n  block_ms: 200\n  claim_idle_ms: 500\n  claim_interval_ms: 300\n" + bus_extra;
}

// A stream's entries as field maps (with "_id" = the entry id), oldest first.
inline std::vector<std::map<std::string, std::string>> read_stream(RedisClient& c, const std::string& key) {
  std::vector<std::map<std::string, std::string>> out;
  const RedisValue r = c.command({"XRANGE", key, "-", "+"});
  for (const auto& e : r.elements) {
    std::map<std::string, std::string> fields = {{"_id", e.elements[0].str}};
    const auto& kv = e.elements[1].elements;
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2) fields[kv[i].str] = kv[i + 1].str;
    out.push_back(std::move(fields));
  }
  return out;
}

inline long long xlen(RedisClient& c, const std::string& key) {
  return c.command({"XLEN", key}).integer;
}

// Entries in every agent's stream; `prefix` is the agent_stream pattern without its {agent}.
inline long long delivered_total(RedisClient& c, const std::string& prefix = "stream:agent:messages:") {
  long long n = 0;
  for (const auto& a : kBusAgents) n += xlen(c, prefix + a);
  return n;
}

// XADD of a deployment envelope (flat fields) to the inbox.
inline std::string xadd(RedisClient& c, const std::vector<std::pair<std::string, std::string>>& fields,
                        const std::string& stream = "stream:tinyroute:inbox") {
  std::vector<std::string> cmd = {"XADD", stream, "*"};
  for (const auto& [k, v] : fields) {
    cmd.push_back(k);
    cmd.push_back(v);
  }
  const RedisValue r = c.command(cmd);
  if (r.is_error()) throw std::runtime_error("XADD: " + r.str);
  return r.str;
}

inline std::vector<std::pair<std::string, std::string>> envelope_fields(const std::string& msg_id,
                                                                        const std::string& to,
                                                                        const std::string& payload,
                                                                        const std::string& verb = "TELL") {
  return {{"msg_id", msg_id},
          {"from_agent", "planner"},
          {"to_agent", to},
          {"verb", verb},
          {"payload", payload},
          {"correlation_id", "conv-" + msg_id},
          {"requires_response", "false"},
          {"timestamp", "2026-03-01T12:00:00Z"}};
}

} // namespace tinyroute::test
