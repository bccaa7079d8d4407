// Small pieces the benchmark driver needs: a keep-alive HTTP/1.1 client for llama-server, child
// processes, /proc memory figures, percentiles and JSON-lines input. Benchmark-only code.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/percentile.h" // tinyroute::percentile, for every bench mode

namespace tinyroute::bench {

double now_ms(); // steady clock, milliseconds

// One persistent connection to 127.0.0.1:port (reconnects when the server closes it).
class HttpClient {
public:
  explicit HttpClient(int port) : port_(port) {}
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  // Returns the status code; the body goes to `body`. Throws std::runtime_error on socket errors.
  int request(const std::string& method, const std::string& path, const std::string& payload,
              std::string& body);

private:
  void connect_();
  int port_;
  int fd_ = -1;
};

// A child process (argv[0] is a path); stdout/stderr go to `log_path` unless `pipe_stdout`.
class Child {
public:
  Child(const std::vector<std::string>& argv, const std::string& log_path, bool pipe_stdout = false);
  ~Child(); // SIGTERM, then wait
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  // Reads one line from the child's stdout (pipe_stdout only); empty at EOF.
  std::string read_line();
  int wait(); // exit status

private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buf_;
  bool waited_ = false;
};

int free_port();
// Polls GET /health until 200 or timeout; throws on timeout or if the child died.
void wait_healthy(int port, const Child& child, double timeout_s);

// VmRSS, VmHWM, RssAnon, RssFile (kB) of a process ("self" or a pid).
std::map<std::string, long> proc_memory(const std::string& pid = "self");

std::vector<nlohmann::json> read_jsonl(const std::string& path);
void write_json(const std::string& path, const nlohmann::json& j);

} // namespace tinyroute::bench
