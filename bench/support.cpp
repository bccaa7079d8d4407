#include "support.h"

#include <arpa/inet.h>
#include <csignal>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace tinyroute::bench {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

HttpClient::~HttpClient() {
  if (fd_ >= 0) ::close(fd_);
}

void HttpClient::connect_() {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) throw std::runtime_error("socket failed");
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port_));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect failed");
  }
}

int HttpClient::request(const std::string& method, const std::string& path, const std::string& payload,
                        std::string& body) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (fd_ < 0) connect_();
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n";
    if (!payload.empty())
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(payload.size()) + "\r\n";
    req += "\r\n" + payload;
    bool ok = ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
    std::string in;
    char buf[65536];
    size_t header_end = std::string::npos;
    long content_length = -1;
    while (ok) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        ok = false;
        break;
      }
      in.append(buf, static_cast<size_t>(n));
      if (header_end == std::string::npos) {
        header_end = in.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        std::string head = in.substr(0, header_end);
        std::transform(head.begin(), head.end(), head.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        const size_t at = head.find("content-length:");
        if (at == std::string::npos) throw std::runtime_error("response without content-length");
        content_length = std::stol(head.substr(at + 15));
      }
      if (in.size() >= header_end + 4 + static_cast<size_t>(content_length)) break;
    }
    if (!ok) { // the server closed an idle keep-alive connection: reconnect once
      ::close(fd_);
      fd_ = -1;
      if (attempt == 0 && in.empty()) continue;
      throw std::runtime_error("connection lost");
    }
    body = in.substr(header_end + 4, static_cast<size_t>(content_length));
    return std::stoi(in.substr(9, 3));
  }
  throw std::runtime_error("unreachable");
}

Child::Child(const std::vector<std::string>& argv, const std::string& log_path, bool pipe_stdout) {
  int fds[2] = {-1, -1};
  if (pipe_stdout && ::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log >= 0) {
      ::dup2(log, 2);
      if (!pipe_stdout) ::dup2(log, 1);
    }
    if (pipe_stdout) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (pipe_stdout) {
    ::close(fds[1]);
    out_fd_ = fds[0];
  }
}

Child::~Child() {
  if (out_fd_ >= 0) ::close(out_fd_);
  if (!waited_ && pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::string Child::read_line() {
  for (;;) {
    const size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    char b[4096];
    const ssize_t n = ::read(out_fd_, b, sizeof b);
    if (n <= 0) return std::exchange(buf_, {});
    buf_.append(b, static_cast<size_t>(n));
  }
}

int Child::wait() {
  int st = 0;
  ::waitpid(pid_, &st, 0);
  waited_ = true;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

void wait_healthy(int port, const Child& child, double timeout_s) {
  const double until = now_ms() + timeout_s * 1000;
  while (now_ms() < until) {
    int st = 0;
    if (::waitpid(child.pid(), &st, WNOHANG) == child.pid()) throw std::runtime_error("server exited");
    try {
      HttpClient c(port);
      std::string body;
      if (c.request("GET", "/health", "", body) == 200) return;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("server not healthy in time");
}

std::map<std::string, long> proc_memory(const std::string& pid) {
  std::ifstream f("/proc/" + pid + "/status");
  std::map<std::string, long> m;
  std::string line;
  while (std::getline(f, line)) {
    for (const char* key : {"VmRSS", "VmHWM", "RssAnon", "RssFile"}) {
      const std::string k = std::string(key) + ":";
      if (line.rfind(k, 0) == 0) m[key] = std::stol(line.substr(k.size()));
    }
  }
  return m;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot write " + path);
  f << j.dump(1) << "\n";
}

} // namespace tinyroute::bench
