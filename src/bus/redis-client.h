// A blocking Redis connection (hiredis) owned by one thread: URL or unix socket, ACL user and password
// from the environment, replies copied into plain values. Connection failures throw Error(io); Redis
// error replies come back as values (RedisValue::Type::error) for the caller to judge.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

struct redisContext;

namespace tinyroute {

struct RedisEndpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_path; // set: connect to this socket instead of host:port
  int db = 0;
  std::string username; // empty: AUTH with the password alone (or no AUTH without one)
  std::string password;
};

// redis://HOST[:PORT][/DB] or unix:///PATH[?db=N]; user and password from the named variables (unset
// or empty: none). Throws Error(invalid_argument) for anything else.
RedisEndpoint parse_redis_url(const std::string& url, const std::string& username_env = "",
                              const std::string& password_env = "");

struct RedisValue {
  enum class Type { nil, integer, string, status, error, array };
  Type type = Type::nil;
  long long integer = 0;
  std::string str; // string, status and error replies
  std::vector<RedisValue> elements;

  bool is_error() const { return type == Type::error; }
  bool is_nil() const { return type == Type::nil; }
};

class RedisClient {
public:
  // Connects, authenticates and selects the database; throws Error(io) when any of it fails.
  RedisClient(RedisEndpoint endpoint, std::chrono::milliseconds timeout);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  RedisValue command(const std::vector<std::string>& args);
  // Sends every command, then reads every reply (one round trip).
  std::vector<RedisValue> pipeline(const std::vector<std::vector<std::string>>& commands);

  const RedisEndpoint& endpoint() const { return endpoint_; }

private:
  [[noreturn]] void fail(const std::string& what);
  RedisEndpoint endpoint_;
  std::unique_ptr<redisContext, void (*)(redisContext*)> ctx_;
};

} // namespace tinyroute
