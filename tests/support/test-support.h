// Shared test helpers: generated models, free loopback ports, real child processes.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace tinyroute::test {

// Path of a generated tiny llama-architecture model (seeded random weights, Llama SPM vocabulary,
// TinyLlama chat template). Generated on first use with tinyroute-mkmodel; cached per seed.
std::string tiny_model(int seed = 1);

// Runs tinyroute-mkmodel with extra arguments into `out`; throws on failure.
void make_model(const std::string& out, const std::vector<std::string>& args);

// A temporary directory removed when the object dies.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();
// Waits until something accepts connections on 127.0.0.1:port; false on timeout.
bool wait_for_port(int port, std::chrono::milliseconds timeout);

// Polls `done` until it holds or `limit` passes (tests waiting on another thread or process stay bounded).
template <typename F> bool eventually(F done, std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// A real child process (fork + exec), killed (SIGTERM, then SIGKILL) when the object dies.
class Process {
public:
  Process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
          const std::string& log_path = "");
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  int pid() const { return pid_; }
  bool running();
  // Sends `sig` and waits up to `timeout`; returns the exit status (or -signal), SIGKILL after timeout.
  int stop(int sig = 15, std::chrono::milliseconds timeout = std::chrono::seconds(10));

private:
  int pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

// Runs a command to completion; returns {exit code, combined stdout+stderr}.
std::pair<int, std::string> run_command(const std::vector<std::string>& argv);

} // namespace tinyroute::test
