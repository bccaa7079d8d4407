// No 5xx for bad input, anywhere: a real `tinyroute serve` (internal model, a real llama-server as the
// answer model) gets each class of bad body on every endpoint it serves, then a few thousand seeded
// mutations of valid requests. Every answer to bad input is a 4xx in the endpoint's own error format
// (OpenAI, Anthropic or Ollama), valid JSON, with a message that is the gateway's own words.
//
// The endpoint list is read from the server itself (the 404 answer names every served path, from the
// gateway's table), so endpoints added later are covered without touching this file.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/utf8.h"
#include "http-client.h"
#include "test-support.h"

namespace {

namespace t = tinyroute::test;
using nlohmann::json;
using Reply = t::HttpReply;

constexpr std::size_t kBodyLimit = 256 * 1024; // the server's gateway.max_body_bytes in this test

std::string config_yaml(const std::string& model_path, int upstream_port) {
  const std::string base = "http://127.0.0.1:" + std::to_string(upstream_port);
  return "internal_model:\n  model: " + model_path +
         "\n  threads: 1\n  context: 2048\n  parallel: 2\n"
         "gateway:\n  max_body_bytes: " +
         std::to_string(kBodyLimit) +
         "\n"
         "categories:\n"
         "  - name: chat\n    description: Casual conversation and greetings.\n"
         "    examples: [\"Hi! How are you?\"]\n"
         "  - name: coding\n    description: Writing or debugging source code.\n"
         "models:\n"
         "  - name: big\n    provider: openai\n    base_url: " +
         base +
         "\n    upstream_model: tiny\n    context_window: 4096\n    categories: [chat, coding]\n"
         "  - name: olla\n    provider: ollama\n    base_url: " +
         base + "\n    context_window: 4096\n    categories: [coding]\n" + "default_category: chat\n";
}

// Which error format a path answers in: the gateway's rule (Ollama's surface under /api/ and /,
// Anthropic's under /v1/messages, OpenAI's everywhere else).
enum class Protocol { openai, anthropic, ollama };
Protocol protocol_of(const std::string& path) {
  if (path == "/" || path.rfind("/api/", 0) == 0) return Protocol::ollama;
  if (path.rfind("/v1/messages", 0) == 0) return Protocol::anthropic;
  return Protocol::openai;
}

// The problem with an error answer, or "" when it is a proper 4xx in the path's format.
std::string check_error(const std::string& path, const Reply& r) {
  if (r.status < 400 || r.status > 499) return "status " + std::to_string(r.status) + " is not a 4xx";
  if (tinyroute::first_invalid_utf8(r.body) != std::string::npos) return "the body is not valid UTF-8";
  const json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "the body is not a JSON object";
  std::string message;
  switch (protocol_of(path)) {
  case Protocol::openai: {
    const json& e = j.value("error", json());
    if (!e.is_object() || !e.value("message", json()).is_string() || !e.value("type", json()).is_string() ||
        !e.contains("param") || !e.contains("code"))
      return "not OpenAI's {\"error\":{message,type,param,code}}";
    message = e["message"];
    break;
  }
  case Protocol::anthropic: {
    const json& e = j.value("error", json());
    if (j.value("type", "") != "error" || !e.is_object() || !e.value("type", json()).is_string() ||
        !e.value("message", json()).is_string())
      return "not Anthropic's {\"type\":\"error\",\"error\":{type,message}}";
    message = e["message"];
    break;
  }
  case Protocol::ollama:
    if (!j.value("error", json()).is_string()) return "not Ollama's {\"error\":\"...\"}";
    message = j["error"];
    break;
  }
  if (message.empty()) return "the message is empty";
  for (const char* internal : {"json.exception", "[json", "parse_error", "type_error", "out_of_range.",
                               "basic_string", "std::", "what()", "terminate"}) {
    if (message.find(internal) != std::string::npos)
      return "the message shows internal text (" + std::string(internal) + "): " + message;
  }
  return "";
}

Reply post(int port, const std::string& path, const std::string& body) {
  return t::http_request(port, "POST", path, body);
}

class BadInput : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    if (std::string(TINYROUTE_LLAMA_SERVER).empty()) return;
    dir_ = new t::TempDir();
    const int llama_port = t::free_port();
    llama_ =
        new t::Process({TINYROUTE_LLAMA_SERVER, "-m", t::tiny_model(2), "--port", std::to_string(llama_port),
                        "--host", "127.0.0.1", "-c", "4096", "-np", "2", "-t", "1"},
                       {}, dir_->file("llama-server.log"));
    ASSERT_TRUE(t::wait_for_port(llama_port, std::chrono::seconds(120)))
        << t::read_file(dir_->file("llama-server.log"));
    const std::string config = dir_->file("tinyroute.yaml");
    t::write_file(config, config_yaml(t::tiny_model(), llama_port));
    port_ = t::free_port();
    serve_ = new t::Process({TINYROUTE_CLI, "serve", "--config", config, "--port", std::to_string(port_)}, {},
                            dir_->file("serve.log"));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline && serve_->running()) {
      try {
        if (t::http_request(port_, "GET", "/health").status == 200) break;
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(serve_->running()) << t::read_file(dir_->file("serve.log"));
  }
  static void TearDownTestSuite() {
    delete serve_;
    delete llama_;
    delete dir_;
    serve_ = llama_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (std::string(TINYROUTE_LLAMA_SERVER).empty()) GTEST_SKIP() << "llama-server is not built";
    ASSERT_NE(serve_, nullptr);
  }
  static std::string log() { return t::read_file(dir_->file("serve.log")); }

  // Every path the server serves, from its own 404 answer ("...; tinyroute serves /a, /b, ...").
  static std::vector<std::string> served_paths() {
    const Reply r = t::http_request(port_, "GET", "/no-such-endpoint");
    const json j = json::parse(r.body, nullptr, false);
    std::string message = j.is_object() && j["error"].is_object() ? j["error"].value("message", "") : "";
    const std::string marker = "tinyroute serves ";
    const auto at = message.find(marker);
    std::vector<std::string> paths;
    if (at == std::string::npos) return paths;
    std::string list = message.substr(at + marker.size());
    for (std::size_t start = 0; start <= list.size();) {
      const std::size_t comma = std::min(list.find(", ", start), list.size());
      paths.push_back(list.substr(start, comma - start));
      start = comma + 2;
    }
    return paths;
  }

  static inline t::TempDir* dir_ = nullptr;
  static inline t::Process* llama_ = nullptr;
  static inline t::Process* serve_ = nullptr;
  static inline int port_ = 0;
};

// One body per class of bad input. Each is bad for every endpoint: the fields the endpoints read
// (model, messages, prompt, input, text, name, category) are all present and all wrong in the same way
// (where the class is about nested fields, the model is one no endpoint knows).
std::vector<std::pair<std::string, std::string>> bad_bodies() {
  const auto everywhere = [](const std::string& value) {
    return "{\"model\":" + value + ",\"messages\":[{\"role\":\"user\",\"content\":" + value +
           "}],\"prompt\":" + value + ",\"input\":" + value + ",\"text\":" + value + ",\"name\":" + value +
           ",\"category\":" + value + "}";
  };
  std::vector<std::pair<std::string, std::string>> b = {
      {"malformed UTF-8 in a string", everywhere("\"caf\xC3\"")},
      {"a lone continuation byte", everywhere("\"\x80\x80\"")},
      {"an encoded surrogate", everywhere("\"\xED\xA0\x80\"")},
      {"an overlong encoding", everywhere("\"\xC0\xAF\"")},
      {"invalid UTF-8 in a key", "{\"mo\xFF\":1}"},
      {"an escaped lone surrogate", everywhere("\"\\ud800\"")},
      {"1e400", everywhere("1e400")},
      {"-1e400", everywhere("-1e400")},
      {"a huge exponent", everywhere("1e999999999999")},
      {"2^64", everywhere("18446744073709551616")},
      {"a 300-digit integer", everywhere(std::string(300, '9'))},
      {"precision extremes", everywhere("0." + std::string(400, '0') + "1e-400")},
      {"duplicate keys", "{\"model\":\"big\",\"model\":\"auto\",\"messages\":[],\"messages\":[]}"},
      {"duplicate keys inside", "{\"x\":{\"a\":1,\"a\":2}}"},
      {"10,000 levels of arrays", std::string(10000, '[') + std::string(10000, ']')},
      {"10,000 levels of objects",
       [] {
         std::string s;
         for (int i = 0; i < 10000; ++i) s += "{\"a\":";
         return s + "1" + std::string(10000, '}');
       }()},
      {"a wide array", everywhere("[" +
                                  [] {
                                    std::string s = "0";
                                    for (int i = 0; i < 50000; ++i) s += ",0";
                                    return s;
                                  }() +
                                  "]")},
      {"a wide object",
       [] {
         std::string s = "{";
         for (int i = 0; i < 20000; ++i)
           s += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
         return s + ",\"model\":5,\"text\":5,\"input\":5,\"prompt\":5,\"name\":5,\"category\":5}";
       }()},
      {"an oversized string", everywhere("\"" + std::string(kBodyLimit + 1024, 'a') + "\"")},
      {"numbers where text belongs", everywhere("5")},
      {"objects where text belongs", everywhere("{\"a\":1}")},
      {"a string where an array belongs",
       "{\"model\":\"no-such-model\",\"messages\":\"hi\",\"tools\":\"x\",\"input\":{"
       "},\"text\":[],\"prompt\":{},\"name\":[],"
       "\"category\":[]}"},
      {"nested wrong types",
       "{\"model\":\"no-such-model\",\"messages\":[{\"role\":5,\"content\":[{\"type\":\"text\",\"text\":7}]}]"
       ","
       "\"tools\":[5],"
       "\"options\":\"x\",\"input\":[1,2],\"text\":true,\"prompt\":[],\"name\":{},\"category\":false}"},
      {"truncated JSON", "{\"model\":\"big\",\"messages\":[{\"role\":\"user\",\"content\":\"hi"},
      {"trailing garbage", "{\"model\":\"big\"} xyz"},
      {"an unescaped control character", everywhere("\"a\x01b\"")},
      {"not an object", "[1,2,3]"},
      {"null", "null"},
      {"an empty body", ""},
      {"not JSON at all", "\xFF\xFE\x00\x01"},
  };
  return b;
}

TEST_F(BadInput, EveryBadInputClassGetsA4xxInTheProtocolsFormatOnEveryEndpoint) {
  const std::vector<std::string> paths = served_paths();
  ASSERT_GE(paths.size(), 10u) << "the 404 answer did not list the served paths";
  for (const char* expected : {"/v1/chat/completions", "/v1/messages", "/api/chat", "/api/generate",
                               "/api/embed", "/api/embeddings", "/api/show", "/v1/route", "/v1/classify"}) {
    EXPECT_NE(std::find(paths.begin(), paths.end(), expected), paths.end()) << expected << " is not listed";
  }
  for (const auto& path : paths) {
    for (const auto& [what, body] : bad_bodies()) {
      const Reply r = post(port_, path, body);
      EXPECT_EQ(check_error(path, r), "")
          << "POST " << path << " with " << what << " -> " << r.status << " " << r.body.substr(0, 400);
    }
  }
  EXPECT_TRUE(serve_->running()) << log();
}

TEST_F(BadInput, ParseErrorsSayWhatAndWhereInTheGatewaysOwnWords) {
  const Reply utf8 = post(port_, "/v1/chat/completions", "{\"model\":\"big\",\n \"x\":\"caf\xC3\"}");
  ASSERT_EQ(utf8.status, 400) << utf8.body;
  EXPECT_EQ(utf8.j()["error"]["message"],
            "the request body is not valid UTF-8: byte 0xC3 at line 2, column 10 (JSON text must be UTF-8)");
  const Reply big = post(port_, "/v1/messages", R"({"model":"big","max_tokens":1e400})");
  ASSERT_EQ(big.status, 400) << big.body;
  EXPECT_NE(big.j()["error"]["message"].get<std::string>().find("the number 1e400 is out of range"),
            std::string::npos)
      << big.body;
  const Reply deep = post(port_, "/api/chat", std::string(10000, '['));
  ASSERT_EQ(deep.status, 400) << deep.body;
  EXPECT_NE(deep.j()["error"].get<std::string>().find("deeper than 128 levels"), std::string::npos)
      << deep.body;
  const Reply dup = post(port_, "/v1/route", R"({"model":"big","model":"auto"})");
  ASSERT_EQ(dup.status, 400) << dup.body;
  EXPECT_NE(dup.j()["error"]["message"].get<std::string>().find("the key \"model\" appears twice"),
            std::string::npos)
      << dup.body;
  const Reply tokens =
      post(port_, "/v1/chat/completions",
           R"({"model":"big","max_tokens":4294967296,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_EQ(tokens.status, 400) << tokens.body;
  EXPECT_NE(tokens.j()["error"]["message"].get<std::string>().find("'max_tokens' is out of range"),
            std::string::npos)
      << tokens.body;
  const Reply large = post(port_, "/api/generate", std::string(kBodyLimit + 1, ' '));
  EXPECT_EQ(large.status, 413) << large.body;
  EXPECT_NE(large.j()["error"].get<std::string>().find(std::to_string(kBodyLimit) + " bytes"),
            std::string::npos)
      << large.body;
}

// Whatever a path or a header holds, quoting it in an error cannot break the answer.
TEST_F(BadInput, InvalidBytesInThePathOrHeadersAreQuotedSafely) {
  Reply r = t::http_request(port_, "GET", "/v1/\xFF\xC3(");
  EXPECT_EQ(check_error("/v1/x", r), "") << r.status << " " << r.body;
  EXPECT_NE(r.body.find("\xEF\xBF\xBD"), std::string::npos)
      << "the bad bytes are shown as U+FFFD: " << r.body;
  r = t::http_request(port_, "POST", "/v1/chat/completions", "{}", {{"X-Request-Priority", "hi\xFF\xFEgh"}});
  EXPECT_EQ(check_error("/v1/chat/completions", r), "") << r.status << " " << r.body;
  r = t::http_request(port_, "POST", "/api/chat", R"({"model":")" + std::string(5000, 'm') + "\xC3\"}");
  EXPECT_EQ(check_error("/api/chat", r), "") << r.status << " " << r.body;
  r = t::http_request(port_, "POST", "/api/chat",
                      R"({"model":")" + std::string(5000, 'm') +
                          R"(","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(check_error("/api/chat", r), "") << r.status << " " << r.body.substr(0, 300);
  EXPECT_LT(r.body.size(), 6000u) << "a quoted model name is bounded";
}

// Longer than every candidate's context window: the client's fault, named as such (not a 503).
TEST_F(BadInput, ATextBeyondEveryCandidatesContextIsA413NamingTheLimit) {
  // About 4 bytes a token: 40,000 bytes is ~10,000 tokens, more than the 4,096 of every model.
  const std::string text(40000, 'a');
  const json body = {{"model", "auto"}, {"messages", {{{"role", "user"}, {"content", text}}}}};
  const Reply r = post(port_, "/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 413) << r.body.substr(0, 400);
  EXPECT_EQ(r.j()["error"]["code"], "context_length_exceeded") << r.body.substr(0, 400);
  EXPECT_NE(r.j()["error"]["message"].get<std::string>().find("4096 tokens"), std::string::npos)
      << r.body.substr(0, 400);
  const Reply a = post(port_, "/v1/messages",
                       json{{"model", "auto"}, {"max_tokens", 8}, {"messages", body["messages"]}}.dump());
  EXPECT_EQ(a.status, 413) << a.body.substr(0, 400);
  EXPECT_EQ(check_error("/v1/messages", a), "") << a.body.substr(0, 400);
}

// A few thousand deterministic mutations of valid requests (byte flips, cut and repeated spans,
// invalid UTF-8, extreme numbers, deep nesting): never a 5xx, and the server stays up.
TEST_F(BadInput, SeededMutationsOfValidRequestsNeverGetA5xx) {
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"/v1/chat/completions",
       R"({"model":"big","max_tokens":2,"temperature":0.5,"messages":[{"role":"user","content":"hi"}]})"},
      {"/v1/chat/completions",
       R"({"model":"big","max_tokens":2,"stream":true,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}]})"},
      {"/v1/messages",
       R"({"model":"big","max_tokens":2,"system":"s","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]})"},
      {"/api/chat",
       R"({"model":"big","stream":false,"options":{"num_predict":2,"seed":1},"messages":[{"role":"user","content":"hi"}]})"},
      {"/api/generate", R"({"model":"big","prompt":"hi","stream":false,"options":{"num_predict":2}})"},
      {"/api/show", R"({"model":"big"})"},
      {"/api/embed", R"({"model":"big","input":["a","b"]})"},
      {"/api/embeddings", R"({"model":"big","prompt":"a"})"},
      {"/v1/route", R"({"messages":[{"role":"user","content":"write a function"}]})"},
      {"/v1/classify", R"({"text":"write a python function"})"},
      {"/v1/select", R"({"category":"coding","estimated_tokens":10})"},
  };
  const std::vector<std::string> splices = {"\xFF",       "\xC3",   "\xED\xA0\x80",
                                            "1e400",      "-1e400", "18446744073709551616",
                                            "[[[[[[[[",   "}}}",    "\"",
                                            "\\u0000",    "null",   "{\"a\":1,\"a\":2}",
                                            "9999999999", "-1",     "0.0000000000000000000001",
                                            "[]",         "{}"};
  std::mt19937 rng(21); // fixed: the same requests on every run
  const int kMutations = 2500;
  int served = 0;
  for (int i = 0; i < kMutations; ++i) {
    const auto& [path, seed] = seeds[rng() % seeds.size()];
    std::string body = seed;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const std::size_t at = rng() % body.size();
      switch (rng() % 6) {
      case 0: // flip a byte
        body[at] = static_cast<char>(rng() % 256);
        break;
      case 1: // cut a span
        body.erase(at, 1 + rng() % 8);
        break;
      case 2: // repeat a span
        body.insert(at, body.substr(at, 1 + rng() % 16));
        break;
      case 3: // splice in something nasty
        body.insert(at, splices[rng() % splices.size()]);
        break;
      case 4: { // replace a value after a colon with a nasty one
        const std::size_t colon = body.find(':', at);
        if (colon != std::string::npos) body.insert(colon + 1, splices[rng() % splices.size()]);
        break;
      }
      default: // swap two bytes
        std::swap(body[at], body[rng() % body.size()]);
        break;
      }
    }
    Reply r;
    try {
      r = post(port_, path, body);
    } catch (const std::exception& ex) {
      FAIL() << "mutation " << i << " to " << path << " broke the connection (" << ex.what() << "): " << body
             << "\n"
             << log();
    }
    ASSERT_LT(r.status, 500) << "mutation " << i << " to " << path << ": " << body << "\n-> " << r.body;
    if (r.status >= 400) {
      ASSERT_EQ(check_error(path, r), "")
          << "mutation " << i << " to " << path << ": " << body << "\n-> " << r.body;
    }
    served += r.status > 0;
  }
  EXPECT_EQ(served, kMutations);
  EXPECT_TRUE(serve_->running()) << log();
  EXPECT_EQ(t::http_request(port_, "GET", "/health").status, 200);
}

} // namespace
