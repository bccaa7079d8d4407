#include "bus/redis-client.h"

#include <hiredis/hiredis.h>

#include <charconv>
#include <cstdlib>

#include "tinyroute/error.h"

namespace tinyroute {

namespace {

std::string env_or_empty(const std::string& name) {
  if (name.empty()) return "";
  const char* v = std::getenv(name.c_str());
  return v ? v : "";
}

int parse_int(std::string_view text, const std::string& url, const char* what) {
  int v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0)
    throw Error(ErrorCode::invalid_argument,
                "redis URL " + url + ": bad " + what + " \"" + std::string(text) + "\"");
  return v;
}

RedisValue convert(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
  case REDIS_REPLY_INTEGER:
    v.type = RedisValue::Type::integer;
    v.integer = r->integer;
    break;
  case REDIS_REPLY_STRING:
    v.type = RedisValue::Type::string;
    v.str.assign(r->str, r->len);
    break;
  case REDIS_REPLY_STATUS:
    v.type = RedisValue::Type::status;
    v.str.assign(r->str, r->len);
    break;
  case REDIS_REPLY_ERROR:
    v.type = RedisValue::Type::error;
    v.str.assign(r->str, r->len);
    break;
  case REDIS_REPLY_ARRAY:
    v.type = RedisValue::Type::array;
    v.elements.reserve(r->elements);
    for (size_t i = 0; i < r->elements; ++i) v.elements.push_back(convert(r->element[i]));
    break;
  default:
    break; // nil
  }
  return v;
}

struct ReplyDeleter {
  void operator()(void* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<void, ReplyDeleter>;

void argv_of(const std::vector<std::string>& args, std::vector<const char*>& argv,
             std::vector<size_t>& lens) {
  argv.clear();
  lens.clear();
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
}

} // namespace

RedisEndpoint parse_redis_url(const std::string& url, const std::string& username_env,
                              const std::string& password_env) {
  RedisEndpoint ep;
  ep.username = env_or_empty(username_env);
  ep.password = env_or_empty(password_env);
  if (url.starts_with("unix://")) {
    std::string rest = url.substr(7);
    if (const auto q = rest.find("?db="); q != std::string::npos) {
      ep.db = parse_int(std::string_view(rest).substr(q + 4), url, "database");
      rest.resize(q);
    }
    if (rest.empty() || rest.front() != '/')
      throw Error(ErrorCode::invalid_argument, "redis URL " + url + ": use unix:///absolute/path.sock");
    ep.unix_path = rest;
    return ep;
  }
  if (!url.starts_with("redis://"))
    throw Error(ErrorCode::invalid_argument,
                "redis URL " + url + ": must start with redis:// or unix:// (e.g. redis://127.0.0.1:6379/0)");
  std::string rest = url.substr(8);
  if (rest.find('@') != std::string::npos)
    throw Error(ErrorCode::invalid_argument,
                "redis URL " + url + ": put the user and password in the environment, not the URL");
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    if (!db.empty()) ep.db = parse_int(db, url, "database");
    rest.resize(slash);
  }
  if (const auto colon = rest.rfind(':'); colon != std::string::npos && rest.find(']') == std::string::npos) {
    ep.port = parse_int(std::string_view(rest).substr(colon + 1), url, "port");
    rest.resize(colon);
  }
  if (!rest.empty()) ep.host = rest;
  return ep;
}

RedisClient::RedisClient(RedisEndpoint endpoint, std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)), ctx_(nullptr, redisFree) {
  const timeval tv{static_cast<time_t>(timeout.count() / 1000),
                   static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  const std::string where = endpoint_.unix_path.empty()
                                ? endpoint_.host + ":" + std::to_string(endpoint_.port)
                                : endpoint_.unix_path;
  redisContext* c = endpoint_.unix_path.empty()
                        ? redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, tv)
                        : redisConnectUnixWithTimeout(endpoint_.unix_path.c_str(), tv);
  if (c == nullptr) throw Error(ErrorCode::io, "redis " + where + ": cannot allocate a connection");
  ctx_.reset(c);
  if (c->err) throw Error(ErrorCode::io, "redis " + where + ": " + c->errstr);
  redisSetTimeout(c, tv);
  if (!endpoint_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!endpoint_.username.empty()) auth.push_back(endpoint_.username);
    auth.push_back(endpoint_.password);
    const RedisValue r = command(auth);
    if (r.is_error()) throw Error(ErrorCode::io, "redis " + where + ": AUTH refused: " + r.str);
  }
  if (endpoint_.db != 0) {
    const RedisValue r = command({"SELECT", std::to_string(endpoint_.db)});
    if (r.is_error())
      throw Error(ErrorCode::io,
                  "redis " + where + ": SELECT " + std::to_string(endpoint_.db) + ": " + r.str);
  }
}

RedisClient::~RedisClient() = default;

void RedisClient::fail(const std::string& what) {
  const std::string detail = ctx_ && ctx_->err ? ctx_->errstr : "no reply";
  throw Error(ErrorCode::io, "redis: " + what + ": " + detail);
}

RedisValue RedisClient::command(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv_of(args, argv, lens);
  ReplyPtr reply(redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!reply) fail(args.empty() ? "command" : args.front());
  return convert(static_cast<redisReply*>(reply.get()));
}

std::vector<RedisValue> RedisClient::pipeline(const std::vector<std::vector<std::string>>& commands) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& args : commands) {
    argv_of(args, argv, lens);
    if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), lens.data()) !=
        REDIS_OK)
      fail("pipeline");
  }
  std::vector<RedisValue> out;
  out.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) fail("pipeline");
    ReplyPtr reply(raw);
    out.push_back(convert(static_cast<redisReply*>(raw)));
  }
  return out;
}

} // namespace tinyroute
