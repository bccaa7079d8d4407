// The front and backend adapters without a server or a socket, each protocol both ways:
//  - fronts (OpenAI chat completions, Anthropic messages, Ollama /api/chat and /api/generate, Responses,
//    OpenAI embeddings): a realistic client body parses into the canonical request, a bad one is a 4xx in
//    the protocol's error shape, a whole answer renders as the protocol's JSON, and a stream of events
//    renders as the protocol's SSE or NDJSON, read back here and checked in order;
//  - backends (OpenAI-compatible, Anthropic, Ollama): the upstream HTTP request (URL, auth headers, body),
//    and a realistic upstream stream decoded into events, the same whether it comes whole, split at any
//    byte or a byte at a time; malformed bytes become a clean error event;
//  - a small matrix: one conversation parsed by each front reaches each backend with the same messages
//    and sampling parameters.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat-events.h"
#include "gateway/backend-anthropic.h"
#include "gateway/backend-ollama.h"
#include "gateway/backend-openai.h"
#include "gateway/chat.h"
#include "gateway/front-embeddings.h"
#include "tinyroute/error.h"

namespace {

using namespace tinyroute;
using namespace tinyroute::gateway;
using namespace tinyroute::gateway::test;
using nlohmann::json;

// ---- shared helpers ------------------------------------------------------------------------------

const FrontAdapter& openai_front() {
  static const auto f = make_openai_front();
  return *f;
}
const FrontAdapter& anthropic_front() {
  static const auto f = make_anthropic_front();
  return *f;
}
const FrontAdapter& ollama_chat_front() {
  static const auto f = make_ollama_chat_front();
  return *f;
}
const FrontAdapter& ollama_generate_front() {
  static const auto f = make_ollama_generate_front();
  return *f;
}
const FrontAdapter& responses_front() {
  static const auto f = make_responses_front();
  return *f;
}

// One line per event, every field that matters: vectors of these compare and print well.
std::string describe(const ChatEvent& e) {
  switch (e.kind) {
  case ChatEvent::Kind::text:
    return "text " + e.text;
  case ChatEvent::Kind::tool_call:
    return "call #" + std::to_string(e.tool_index) + " id=" + e.tool_id + " name=" + e.tool_name +
           " args=" + e.tool_arguments;
  case ChatEvent::Kind::finish:
    return "finish " + e.finish_reason;
  case ChatEvent::Kind::usage:
    return "usage " + std::to_string(e.prompt_tokens) + "/" + std::to_string(e.completion_tokens);
  case ChatEvent::Kind::error:
    return "error[" + e.error_type + "] " + e.text;
  }
  return "?";
}
std::vector<std::string> describe(const std::vector<ChatEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(describe(e));
  return out;
}

// The events of `pieces` fed in order to a fresh decoder, then end().
std::vector<ChatEvent> decode(const BackendAdapter& backend, const std::vector<std::string_view>& pieces) {
  auto decoder = backend.decoder();
  std::vector<ChatEvent> out;
  for (auto piece : pieces) {
    for (auto& e : decoder->feed(piece)) out.push_back(std::move(e));
  }
  for (auto& e : decoder->end()) out.push_back(std::move(e));
  return out;
}

// The twin property: `bytes` whole, split in two at every byte boundary, and a byte at a time all give
// the same events. Returns the events of the whole.
std::vector<std::string> decode_any_split(const BackendAdapter& backend, std::string_view bytes) {
  const auto whole = describe(decode(backend, {bytes}));
  for (std::size_t at = 0; at <= bytes.size(); ++at) {
    const auto split = describe(decode(backend, {bytes.substr(0, at), bytes.substr(at)}));
    EXPECT_EQ(split, whole) << "split at byte " << at;
    if (split != whole) break; // one report is enough
  }
  std::vector<std::string_view> bytewise;
  for (std::size_t at = 0; at < bytes.size(); ++at) bytewise.push_back(bytes.substr(at, 1));
  EXPECT_EQ(describe(decode(backend, bytewise)), whole) << "a byte at a time";
  return whole;
}

// SSE as written by a front: blocks of "event: NAME\n"? "data: JSON\n" ended by a blank line, nothing
// else. Read strictly, without the gateway's own parser.
struct Sse {
  std::string event;
  std::string raw; // the data line
  json data;       // null for [DONE]
};
std::vector<Sse> parse_sse(const std::string& text) {
  std::vector<Sse> out;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto end = text.find("\n\n", at);
    if (end == std::string::npos) {
      ADD_FAILURE() << "an SSE block without its blank line: " << text.substr(at);
      break;
    }
    const std::string block = text.substr(at, end - at);
    at = end + 2;
    Sse s;
    std::size_t line_at = 0;
    int data_lines = 0;
    while (line_at <= block.size()) {
      auto nl = block.find('\n', line_at);
      if (nl == std::string::npos) nl = block.size();
      const std::string line = block.substr(line_at, nl - line_at);
      line_at = nl + 1;
      if (line.rfind("event: ", 0) == 0) {
        s.event = line.substr(7);
      } else if (line.rfind("data: ", 0) == 0) {
        s.raw = line.substr(6);
        ++data_lines;
      } else {
        ADD_FAILURE() << "an SSE line that is neither event: nor data: " << line;
      }
    }
    EXPECT_EQ(data_lines, 1) << block;
    s.data = s.raw == "[DONE]" ? json() : json::parse(s.raw);
    out.push_back(std::move(s));
  }
  return out;
}

// NDJSON as written by the Ollama front: one JSON object per line, every line ended by \n.
std::vector<json> parse_ndjson(const std::string& text) {
  std::vector<json> out;
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "the last line is not ended";
  std::size_t at = 0;
  while (at < text.size()) {
    auto nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(at, nl - at);
    at = nl + 1;
    EXPECT_FALSE(line.empty()) << "an empty NDJSON line";
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

std::string run_stream(const FrontAdapter& front, const ChatRequest& request, const std::string& model,
                       const std::vector<ChatEvent>& events, bool finish = true) {
  auto stream = front.stream(request, model);
  std::string out = stream->start();
  for (const auto& e : events) out += stream->event(e);
  if (finish) out += stream->finish();
  return out;
}

ChatResult fold(const std::vector<ChatEvent>& events) {
  ChatResult r;
  for (const auto& e : events) accumulate(r, e);
  return r;
}

// `parse` must refuse `body` with a 4xx FrontError whose message contains `named`; returns it.
template <class Parse> FrontError refused(Parse parse, const json& body, const std::string& named) {
  try {
    parse(body);
  } catch (const FrontError& e) {
    EXPECT_GE(e.status, 400) << body.dump();
    EXPECT_LT(e.status, 500) << body.dump();
    EXPECT_NE(std::string(e.what()).find(named), std::string::npos)
        << body.dump() << "\n  refused with: " << e.what() << "\n  expected it to name: " << named;
    return e;
  }
  ADD_FAILURE() << "accepted: " << body.dump();
  return FrontError(0, "", "");
}

void refused_all(const FrontAdapter& front, const json& base,
                 const std::vector<std::pair<json, std::string>>& patches) {
  for (const auto& [patch, named] : patches) {
    json body = base;
    body.merge_patch(patch);
    const FrontError e = refused([&](const json& b) { return front.parse(b); }, body, named);
    EXPECT_EQ(e.status, 400) << body.dump();
    EXPECT_EQ(e.type, "invalid_request_error") << body.dump();
  }
}

ModelConfig model_config(Provider provider, const std::string& base_url, const std::string& key_env = "") {
  ModelConfig m;
  m.name = "big";
  m.provider = provider;
  m.base_url = base_url;
  m.upstream_model = "upstream-name";
  m.api_key_env = key_env;
  return m;
}

// The value of header `name` (lower case), or nullopt; fails if it is given twice.
std::optional<std::string> header(const ClientRequest& req, const std::string& name) {
  std::optional<std::string> value;
  for (const auto& [k, v] : req.headers) {
    if (k != name) continue;
    EXPECT_FALSE(value.has_value()) << "header " << name << " given twice";
    value = v;
  }
  return value;
}

// A key in the environment for the duration of a test.
struct ScopedEnv {
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  const char* name_;
};

const json weather_schema = {
    {"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}, {"required", {"city"}}};

// ---- OpenAI chat completions front ---------------------------------------------------------------

const json openai_body = json::parse(R"({
  "model": "auto",
  "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "developer", "content": "Answer in French."},
    {"role": "user", "name": "ana", "content": [
      {"type": "text", "text": "What is in this picture?"},
      {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/AA=="}},
      {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}]},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    {"role": "assistant", "content": "Il fait beau."},
    {"role": "user", "content": "Merci"}
  ],
  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
             "strict": true}}],
  "tool_choice": "required",
  "parallel_tool_calls": false,
  "temperature": 0.2, "top_p": 0.95, "max_tokens": 100, "max_completion_tokens": 50, "stop": "\n\n",
  "seed": 7, "presence_penalty": 0.1, "frequency_penalty": 0.3,
  "stream": true, "stream_options": {"include_usage": true},
  "user": "u-1",
  "response_format": {"type": "json_object"},
  "logit_bias": {"50256": -100}
})");

TEST(OpenAIFront, ParsesARealisticChatCompletionsBody) {
  const ChatRequest r = openai_front().parse(openai_body);
  EXPECT_EQ(r.protocol, "openai");
  EXPECT_EQ(r.model, "auto");
  ASSERT_EQ(r.messages.size(), 7u);
  const std::vector<std::string> roles = {"system", "system",    "user", "assistant",
                                          "tool",   "assistant", "user"};
  for (std::size_t i = 0; i < roles.size(); ++i) EXPECT_EQ(r.messages[i].role, roles[i]) << i;
  EXPECT_EQ(text_of(r.messages[0]), "You are terse.");
  EXPECT_EQ(text_of(r.messages[1]), "Answer in French."); // developer is a system message

  const ChatMessage& user = r.messages[2];
  EXPECT_EQ(user.name, "ana");
  ASSERT_EQ(user.content.size(), 3u);
  EXPECT_EQ(user.content[0].kind, ContentPart::Kind::text);
  EXPECT_EQ(user.content[0].text, "What is in this picture?");
  EXPECT_EQ(user.content[1].kind, ContentPart::Kind::image);
  EXPECT_EQ(user.content[1].media_type, "image/jpeg");
  EXPECT_EQ(user.content[1].data, "/9j/AA==");
  EXPECT_TRUE(user.content[1].url.empty());
  EXPECT_EQ(user.content[2].kind, ContentPart::Kind::image);
  EXPECT_EQ(user.content[2].url, "https://example.com/cat.png");

  const ChatMessage& call = r.messages[3];
  EXPECT_TRUE(call.content.empty());
  ASSERT_EQ(call.tool_calls.size(), 1u);
  EXPECT_EQ(call.tool_calls[0].id, "call_1");
  EXPECT_EQ(call.tool_calls[0].name, "get_weather");
  EXPECT_EQ(call.tool_calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(r.messages[4].tool_call_id, "call_1");
  EXPECT_EQ(text_of(r.messages[4]), "sunny");

  ASSERT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.tools[0].name, "get_weather");
  EXPECT_EQ(r.tools[0].description, "Weather for a city");
  EXPECT_EQ(r.tools[0].parameters, weather_schema);
  EXPECT_EQ(r.tools[0].strict, true);
  EXPECT_EQ(r.tool_choice.mode, "required");
  EXPECT_EQ(r.parallel_tool_calls, false);

  const SamplingParams& s = r.sampling;
  EXPECT_EQ(s.temperature, 0.2);
  EXPECT_EQ(s.top_p, 0.95);
  EXPECT_EQ(s.max_tokens, 50) << "max_completion_tokens wins over the deprecated max_tokens";
  EXPECT_EQ(s.stop, std::vector<std::string>{"\n\n"});
  EXPECT_EQ(s.seed, 7);
  EXPECT_EQ(s.presence_penalty, 0.1);
  EXPECT_EQ(s.frequency_penalty, 0.3);
  EXPECT_FALSE(s.top_k.has_value());

  EXPECT_TRUE(r.stream);
  EXPECT_EQ(r.front_state["include_usage"], true);
  EXPECT_EQ(r.user, "u-1");
  EXPECT_EQ(r.format, "json");
  EXPECT_EQ(r.extras, json({{"logit_bias", {{"50256", -100}}}})) << "an untranslated field is kept as sent";

  // The defaults and the other spellings: no stream, stop as an array, a tool named by tool_choice.
  const ChatRequest plain = openai_front().parse(
      {{"model", "m"},
       {"messages", {{{"role", "user"}, {"content", "hi"}}}},
       {"max_tokens", 9},
       {"stop", {"a", "b"}},
       {"tools", openai_body["tools"]},
       {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}});
  EXPECT_FALSE(plain.stream);
  EXPECT_EQ(plain.sampling.max_tokens, 9);
  EXPECT_EQ(plain.sampling.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(plain.tool_choice.mode, "function");
  EXPECT_EQ(plain.tool_choice.name, "get_weather");
  EXPECT_FALSE(plain.parallel_tool_calls.has_value());
  EXPECT_TRUE(plain.format.is_null());
  EXPECT_TRUE(plain.extras.empty());
  EXPECT_FALSE(plain.front_state.contains("include_usage"));
}

TEST(OpenAIFront, ABadBodyIsA400InOpenAIsErrorShape) {
  const json base = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  refused_all(
      openai_front(), base,
      {
          {{{"model", nullptr}}, "'model' is required"},
          {{{"messages", json::array()}}, "'messages' is required"},
          {{{"messages", {{{"role", "robot"}, {"content", "hi"}}}}}, "'messages[0].role'"},
          {{{"messages", {{{"role", "user"}, {"content", 5}}}}}, "'messages[0].content'"},
          {{{"messages", {{{"role", "user"}, {"content", {{{"type", "audio"}}}}}}}},
           "'messages[0].content[0].type'"},
          {{{"messages",
             {{{"role", "user"},
               {"content", {{{"type", "image_url"}, {"image_url", {{"url", "data:image/png,AAAA"}}}}}}}}}},
           "base64"},
          {{{"messages", {{{"role", "assistant"}, {"tool_calls", {{{"id", "c"}}}}}}}},
           "'messages[0].tool_calls[0].function' is required"},
          {{{"temperature", "hot"}}, "'temperature' must be a number"},
          {{{"max_tokens", 10000000000LL}}, "'max_tokens' is out of range"},
          {{{"stream", "yes"}}, "'stream' must be true or false"},
          {{{"tools", {{{"type", "retrieval"}}}}}, "'tools[0].type'"},
          {{{"tool_choice", "required"}}, "'tool_choice' asks for a tool call"},
          {{{"response_format", {{"type", "xml"}}}}, "'response_format.type'"},
          {{{"n", 2}}, "'n' is not supported"},
          {{{"logprobs", true}}, "'logprobs' is not supported"},
      });
  refused([](const json& b) { return openai_front().parse(b); }, json::array({base}), "JSON object");

  const json e = openai_front().error(400, "invalid_request_error", "'model' is required");
  EXPECT_EQ(e, json::parse(R"({"error": {"message": "'model' is required", "type": "invalid_request_error",
                                          "param": null, "code": "invalid_request_error"}})"));
  EXPECT_EQ(openai_front().error(403, "internal_model_forbidden", "no")["error"]["code"],
            "internal_model_forbidden");
  EXPECT_EQ(openai_front().param_name("format"), "response_format");
}

TEST(OpenAIFront, RendersAChatCompletion) {
  const ChatRequest r = openai_front().parse(openai_body);
  const ChatResult res =
      fold({text_event("Let me "), text_event("check."), call_event(0, "call_9", "get_weather", "{\"ci"),
            call_event(0, "", "", "ty\":\"Rome\"}"), usage_event(42, 17), finish_event("tool_calls")});
  const json out = openai_front().render(res, r, "big");
  EXPECT_EQ(out["object"], "chat.completion");
  EXPECT_EQ(out["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_TRUE(out["created"].is_number_integer());
  EXPECT_EQ(out["model"], "big");
  ASSERT_EQ(out["choices"].size(), 1u);
  const json& choice = out["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_EQ(choice["message"],
            json::parse(R"({"role": "assistant", "content": "Let me check.", "tool_calls": [
      {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]})"));
  EXPECT_EQ(out["usage"],
            json::parse(R"({"prompt_tokens": 42, "completion_tokens": 17, "total_tokens": 59})"));

  // Tool calls without text: content is null, as OpenAI sends it. No finish reason at all: "stop".
  const json calls_only = openai_front().render(fold({call_event(0, "c", "f", "{}")}), r, "big");
  EXPECT_TRUE(calls_only["choices"][0]["message"]["content"].is_null());
  EXPECT_EQ(calls_only["choices"][0]["finish_reason"], "stop");
  const json text_only = openai_front().render(fold({text_event("hi"), finish_event("length")}), r, "big");
  EXPECT_EQ(text_only["choices"][0]["message"], json({{"role", "assistant"}, {"content", "hi"}}));
  EXPECT_EQ(text_only["choices"][0]["finish_reason"], "length");
}

TEST(OpenAIFront, StreamsChunksThenUsageThenDone) {
  const ChatRequest r = openai_front().parse(openai_body); // include_usage: true
  const std::vector<ChatEvent> events = {text_event("Let me "),
                                         text_event("check."),
                                         call_event(0, "call_9", "get_weather", "{\"city\""),
                                         call_event(0, "", "", ":\"Rome\"}"),
                                         usage_event(42, 17),
                                         finish_event("tool_calls")};
  const auto sse = parse_sse(run_stream(openai_front(), r, "big", events));
  ASSERT_EQ(sse.size(), 8u);
  for (const auto& s : sse) EXPECT_TRUE(s.event.empty()) << "OpenAI streams have no event names";
  const std::string id = sse[0].data["id"];
  EXPECT_EQ(id.rfind("chatcmpl-", 0), 0u);
  for (std::size_t i = 0; i + 1 < sse.size(); ++i) {
    EXPECT_EQ(sse[i].data["id"], id) << i;
    EXPECT_EQ(sse[i].data["object"], "chat.completion.chunk") << i;
    EXPECT_EQ(sse[i].data["model"], "big") << i;
    EXPECT_EQ(sse[i].data["created"], sse[0].data["created"]) << i;
  }
  auto delta = [&](std::size_t i) { return sse[i].data["choices"][0]["delta"]; };
  auto finish = [&](std::size_t i) { return sse[i].data["choices"][0]["finish_reason"]; };
  EXPECT_EQ(delta(0), json({{"role", "assistant"}, {"content", ""}}));
  std::string text;
  for (std::size_t i = 0; i < 6; ++i) {
    if (i < 5) {
      EXPECT_TRUE(finish(i).is_null()) << i;
    }
    if (delta(i).contains("content")) text += delta(i)["content"].get<std::string>();
  }
  EXPECT_EQ(text, "Let me check.") << "the deltas add up to the text";
  EXPECT_EQ(delta(1), json({{"content", "Let me "}}));
  EXPECT_EQ(delta(3), json::parse(R"({"tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                                       "function": {"name": "get_weather", "arguments": "{\"city\""}}]})"));
  EXPECT_EQ(delta(4),
            json::parse(R"({"tool_calls": [{"index": 0, "function": {"arguments": ":\"Rome\"}"}}]})"));
  EXPECT_EQ(delta(5), json::object());
  EXPECT_EQ(finish(5), "tool_calls");
  // The usage chunk (asked for with stream_options) has no choices; [DONE] ends the stream.
  EXPECT_EQ(sse[6].data["choices"], json::array());
  EXPECT_EQ(sse[6].data["usage"],
            json::parse(R"({"prompt_tokens": 42, "completion_tokens": 17, "total_tokens": 59})"));
  EXPECT_EQ(sse[7].raw, "[DONE]");

  // Without stream_options there is no usage chunk.
  json body = openai_body;
  body.erase("stream_options");
  const auto plain = parse_sse(run_stream(openai_front(), openai_front().parse(body), "big", events));
  ASSERT_EQ(plain.size(), 7u);
  EXPECT_EQ(plain[5].data["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(plain[6].raw, "[DONE]");
  for (const auto& s : plain) EXPECT_FALSE(s.data.contains("usage"));

  // An error ends the stream with an error object (finish() is not called after one).
  const auto broken =
      parse_sse(run_stream(openai_front(), r, "big", {text_event("a"), upstream_error("gone")}, false));
  ASSERT_EQ(broken.size(), 3u);
  EXPECT_EQ(broken[2].data,
            json::parse(R"({"error": {"message": "gone", "type": "upstream_error", "param": null,
                                                     "code": null}})"));
}

// ---- Anthropic messages front --------------------------------------------------------------------

const json anthropic_body = json::parse(R"({
  "model": "claude-x", "max_tokens": 256,
  "system": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": " Answer in French."}],
  "messages": [
    {"role": "user", "content": [
      {"type": "text", "text": "What is this?"},
      {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/AA=="}},
      {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}]},
    {"role": "assistant", "content": [
      {"type": "thinking", "thinking": "hmm", "signature": "sig"},
      {"type": "text", "text": "Let me look."},
      {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
    {"role": "user", "content": [
      {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
      {"type": "text", "text": "And tomorrow?"}]}
  ],
  "tools": [{"name": "get_weather", "description": "Weather for a city",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
  "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
  "temperature": 0.2, "top_p": 0.95, "top_k": 40, "stop_sequences": ["END"],
  "metadata": {"user_id": "u-1"},
  "stream": true,
  "thinking": {"type": "enabled", "budget_tokens": 1024}
})");

TEST(AnthropicFront, ParsesARealisticMessagesBody) {
  const ChatRequest r = anthropic_front().parse(anthropic_body);
  EXPECT_EQ(r.protocol, "anthropic");
  EXPECT_EQ(r.model, "claude-x");
  ASSERT_EQ(r.messages.size(), 5u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(text_of(r.messages[0]), "You are terse. Answer in French.");

  const ChatMessage& user = r.messages[1];
  EXPECT_EQ(user.role, "user");
  ASSERT_EQ(user.content.size(), 3u);
  EXPECT_EQ(user.content[0].text, "What is this?");
  EXPECT_EQ(user.content[1].kind, ContentPart::Kind::image);
  EXPECT_EQ(user.content[1].media_type, "image/jpeg");
  EXPECT_EQ(user.content[1].data, "/9j/AA==");
  EXPECT_EQ(user.content[2].kind, ContentPart::Kind::image);
  EXPECT_EQ(user.content[2].url, "https://example.com/cat.png");

  const ChatMessage& assistant = r.messages[2];
  EXPECT_EQ(assistant.role, "assistant");
  EXPECT_EQ(text_of(assistant), "Let me look.") << "thinking blocks are dropped";
  ASSERT_EQ(assistant.tool_calls.size(), 1u);
  EXPECT_EQ(assistant.tool_calls[0].id, "toolu_1");
  EXPECT_EQ(assistant.tool_calls[0].name, "get_weather");
  EXPECT_EQ(json::parse(assistant.tool_calls[0].arguments), json({{"city", "Paris"}}));

  // A tool_result block becomes a tool message of its own, before the rest of its user turn.
  EXPECT_EQ(r.messages[3].role, "tool");
  EXPECT_EQ(r.messages[3].tool_call_id, "toolu_1");
  EXPECT_EQ(text_of(r.messages[3]), "sunny");
  EXPECT_EQ(r.messages[4].role, "user");
  EXPECT_EQ(text_of(r.messages[4]), "And tomorrow?");

  ASSERT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.tools[0].name, "get_weather");
  EXPECT_EQ(r.tools[0].parameters, weather_schema);
  EXPECT_EQ(r.tool_choice.mode, "required"); // any
  EXPECT_EQ(r.parallel_tool_calls, false);   // disable_parallel_tool_use
  const SamplingParams& s = r.sampling;
  EXPECT_EQ(s.max_tokens, 256);
  EXPECT_EQ(s.temperature, 0.2);
  EXPECT_EQ(s.top_p, 0.95);
  EXPECT_EQ(s.top_k, 40);
  EXPECT_EQ(s.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.user, "u-1");
  EXPECT_TRUE(r.stream);
  EXPECT_EQ(r.extras, json({{"thinking", {{"type", "enabled"}, {"budget_tokens", 1024}}}}));

  const ChatRequest plain =
      anthropic_front().parse({{"model", "m"},
                               {"max_tokens", 8},
                               {"system", "Be brief."},
                               {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                               {"tools", anthropic_body["tools"]},
                               {"tool_choice", {{"type", "tool"}, {"name", "get_weather"}}}});
  EXPECT_FALSE(plain.stream);
  ASSERT_EQ(plain.messages.size(), 2u);
  EXPECT_EQ(text_of(plain.messages[0]), "Be brief.");
  EXPECT_EQ(plain.tool_choice.mode, "function");
  EXPECT_EQ(plain.tool_choice.name, "get_weather");
  EXPECT_FALSE(plain.parallel_tool_calls.has_value());
}

TEST(AnthropicFront, ABadBodyIsA400InAnthropicsErrorShape) {
  const json base = {
      {"model", "m"}, {"max_tokens", 8}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  refused_all(
      anthropic_front(), base,
      {
          {{{"max_tokens", nullptr}}, "'max_tokens' is required"},
          {{{"model", ""}}, "'model' is required"},
          {{{"messages", {{{"role", "system"}, {"content", "hi"}}}}}, "'messages[0].role'"},
          {{{"messages", {{{"role", "user"}}}}}, "'messages[0].content' is required"},
          {{{"messages", {{{"role", "user"}, {"content", {{{"type", "document"}}}}}}}},
           "'messages[0].content[0].type'"},
          {{{"messages",
             {{{"role", "user"}, {"content", {{{"type", "image"}, {"source", {{"type", "file"}}}}}}}}}},
           "'messages[0].content[0].source.type'"},
          {{{"tools", {{{"type", "web_search_20250305"}, {"name", "web_search"}}}}}, "'tools[0].type'"},
          {{{"tool_choice", {{"type", "whatever"}}}}, "'tool_choice.type'"},
          {{{"tool_choice", {{"type", "any"}}}}, "'tool_choice' asks for a tool call"},
          {{{"metadata", {{"session", "s"}}}}, "'metadata.session'"},
          {{{"stop_sequences", "END"}}, "'stop_sequences' must be an array"},
          {{{"top_k", 1.5}}, "'top_k' must be an integer"},
      });
  const json e = anthropic_front().error(400, "invalid_request_error", "'max_tokens' is required");
  EXPECT_EQ(e, json::parse(R"({"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": "'max_tokens' is required"}})"));
  EXPECT_EQ(anthropic_front().param_name("stop"), "stop_sequences");
  EXPECT_EQ(anthropic_front().param_name("user"), "metadata.user_id");
}

TEST(AnthropicFront, RendersAMessage) {
  const ChatRequest r = anthropic_front().parse(anthropic_body);
  const json out = anthropic_front().render(
      fold({text_event("Let me "), text_event("check."),
            call_event(0, "toolu_9", "get_weather", "{\"city\":"), call_event(0, "", "", "\"Rome\"}"),
            usage_event(42, 17), finish_event("tool_calls")}),
      r, "big");
  EXPECT_EQ(out["type"], "message");
  EXPECT_EQ(out["role"], "assistant");
  EXPECT_EQ(out["id"].get<std::string>().rfind("msg_", 0), 0u);
  EXPECT_EQ(out["model"], "big");
  EXPECT_EQ(out["content"], json::parse(R"([{"type": "text", "text": "Let me check."},
      {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Rome"}}])"));
  EXPECT_EQ(out["stop_reason"], "tool_use");
  EXPECT_TRUE(out["stop_sequence"].is_null());
  EXPECT_EQ(out["usage"], json({{"input_tokens", 42}, {"output_tokens", 17}}));

  // The finish reasons in Anthropic's words; a tool-only answer has no text block, an empty one has one.
  EXPECT_EQ(
      anthropic_front().render(fold({text_event("x"), finish_event("length")}), r, "big")["stop_reason"],
      "max_tokens");
  EXPECT_EQ(anthropic_front().render(fold({text_event("x"), finish_event("stop")}), r, "big")["stop_reason"],
            "end_turn");
  const json calls_only = anthropic_front().render(fold({call_event(0, "", "f", "not json")}), r, "big");
  ASSERT_EQ(calls_only["content"].size(), 1u);
  EXPECT_EQ(calls_only["content"][0]["type"], "tool_use");
  EXPECT_EQ(calls_only["content"][0]["id"].get<std::string>().rfind("toolu_", 0), 0u) << "an id is made up";
  EXPECT_EQ(calls_only["content"][0]["input"], json::object()) << "arguments that are not JSON become {}";
  EXPECT_EQ(anthropic_front().render(fold({}), r, "big")["content"],
            json::parse(R"([{"type": "text", "text": ""}])"));
}

TEST(AnthropicFront, StreamsTheMessageEventsInOrder) {
  const ChatRequest r = anthropic_front().parse(anthropic_body);
  const auto sse = parse_sse(run_stream(
      anthropic_front(), r, "big",
      {text_event("Let me "), text_event("check."), call_event(0, "toolu_9", "get_weather", ""),
       call_event(0, "", "", "{\"city\":"), call_event(0, "", "", "\"Rome\"}"),
       call_event(1, "toolu_10", "get_time", "{}"), usage_event(42, 17), finish_event("tool_calls")}));
  std::vector<std::string> names;
  for (const auto& s : sse) {
    EXPECT_EQ(s.event, s.data["type"]) << "the event name is the data's type";
    names.push_back(s.event);
  }
  const std::vector<std::string> expected = {
      "message_start",      "content_block_start", "content_block_delta", "content_block_delta",
      "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",
      "content_block_stop", "content_block_start", "content_block_delta", "content_block_stop",
      "message_delta",      "message_stop"};
  ASSERT_EQ(names, expected);

  const json& start = sse[0].data["message"];
  EXPECT_EQ(start["id"].get<std::string>().rfind("msg_", 0), 0u);
  EXPECT_EQ(start["role"], "assistant");
  EXPECT_EQ(start["model"], "big");
  EXPECT_EQ(start["content"], json::array());
  EXPECT_TRUE(start["stop_reason"].is_null());

  EXPECT_EQ(sse[1].data["index"], 0);
  EXPECT_EQ(sse[1].data["content_block"], json({{"type", "text"}, {"text", ""}}));
  std::string text;
  for (std::size_t i : {2u, 3u}) {
    EXPECT_EQ(sse[i].data["index"], 0);
    EXPECT_EQ(sse[i].data["delta"]["type"], "text_delta");
    text += sse[i].data["delta"]["text"].get<std::string>();
  }
  EXPECT_EQ(text, "Let me check.") << "the deltas add up to the text";
  EXPECT_EQ(sse[4].data["index"], 0);

  EXPECT_EQ(sse[5].data, json::parse(R"({"type": "content_block_start", "index": 1, "content_block":
      {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}})"));
  std::string args;
  for (std::size_t i : {6u, 7u}) {
    EXPECT_EQ(sse[i].data["index"], 1);
    EXPECT_EQ(sse[i].data["delta"]["type"], "input_json_delta");
    args += sse[i].data["delta"]["partial_json"].get<std::string>();
  }
  EXPECT_EQ(json::parse(args), json({{"city", "Rome"}}));
  EXPECT_EQ(sse[8].data["index"], 1);
  EXPECT_EQ(sse[9].data["index"], 2);
  EXPECT_EQ(sse[9].data["content_block"]["name"], "get_time");
  EXPECT_EQ(sse[10].data["delta"]["partial_json"], "{}");
  EXPECT_EQ(sse[11].data["index"], 2);

  EXPECT_EQ(sse[12].data["delta"], json::parse(R"({"stop_reason": "tool_use", "stop_sequence": null})"));
  EXPECT_EQ(sse[12].data["usage"], json({{"input_tokens", 42}, {"output_tokens", 17}}));
  EXPECT_EQ(sse[13].data, json({{"type", "message_stop"}}));

  // An error is Anthropic's error event.
  const auto broken =
      parse_sse(run_stream(anthropic_front(), r, "big", {text_event("a"), upstream_error("gone")}, false));
  ASSERT_FALSE(broken.empty());
  EXPECT_EQ(broken.back().event, "error");
  EXPECT_EQ(broken.back().data,
            json::parse(R"({"type": "error", "error": {"type": "api_error", "message": "gone"}})"));
}

// ---- Ollama /api/chat and /api/generate fronts ---------------------------------------------------

const json ollama_body = json::parse(R"({
  "model": "llama3.2",
  "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is this?", "images": ["iVBORw0KGgo="]},
    {"role": "assistant", "content": "", "tool_calls": [
      {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "tool_name": "get_weather", "content": "sunny"},
    {"role": "user", "content": "Thanks"}
  ],
  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
  "options": {"temperature": 0.2, "top_p": 0.95, "top_k": 40, "num_predict": 128, "stop": ["END"], "seed": 7,
              "presence_penalty": 0.1, "frequency_penalty": 0.3, "num_ctx": 8192, "mirostat": 2},
  "format": "json",
  "keep_alive": "5m",
  "think": false,
  "stream": false
})");

TEST(OllamaChatFront, ParsesARealisticChatBody) {
  const ChatRequest r = ollama_chat_front().parse(ollama_body);
  EXPECT_EQ(r.protocol, "ollama");
  EXPECT_EQ(r.model, "llama3.2");
  ASSERT_EQ(r.messages.size(), 5u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(text_of(r.messages[0]), "You are terse.");
  const ChatMessage& user = r.messages[1];
  ASSERT_EQ(user.content.size(), 2u);
  EXPECT_EQ(user.content[0].text, "What is this?");
  EXPECT_EQ(user.content[1].kind, ContentPart::Kind::image);
  EXPECT_EQ(user.content[1].data, "iVBORw0KGgo=");
  EXPECT_EQ(user.content[1].media_type, "image/png");
  const ChatMessage& assistant = r.messages[2];
  ASSERT_EQ(assistant.tool_calls.size(), 1u);
  EXPECT_FALSE(assistant.tool_calls[0].id.empty()) << "Ollama calls have no id: one is made up";
  EXPECT_EQ(assistant.tool_calls[0].name, "get_weather");
  EXPECT_EQ(json::parse(assistant.tool_calls[0].arguments), json({{"city", "Paris"}}));
  EXPECT_EQ(r.messages[3].role, "tool");
  EXPECT_EQ(r.messages[3].name, "get_weather");
  EXPECT_EQ(text_of(r.messages[3]), "sunny");
  ASSERT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.tools[0].parameters, weather_schema);

  const SamplingParams& s = r.sampling;
  EXPECT_EQ(s.temperature, 0.2);
  EXPECT_EQ(s.top_p, 0.95);
  EXPECT_EQ(s.top_k, 40);
  EXPECT_EQ(s.max_tokens, 128);
  EXPECT_EQ(s.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(s.seed, 7);
  EXPECT_EQ(s.presence_penalty, 0.1);
  EXPECT_EQ(s.frequency_penalty, 0.3);
  EXPECT_EQ(r.format, "json");
  EXPECT_FALSE(r.stream);
  // The options without a canonical meaning stay Ollama's; how to run the model is a hint.
  EXPECT_EQ(r.extras, json({{"options", {{"mirostat", 2}}}, {"think", false}}));
  EXPECT_EQ(r.hints, json({{"options", {{"num_ctx", 8192}}}, {"keep_alive", "5m"}}));

  // Ollama streams unless told not to; num_predict -1 is "no limit".
  const ChatRequest plain = ollama_chat_front().parse({{"model", "m"},
                                                       {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                                       {"options", {{"num_predict", -1}}}});
  EXPECT_TRUE(plain.stream);
  EXPECT_FALSE(plain.sampling.max_tokens.has_value());
  EXPECT_TRUE(plain.extras.empty());
  EXPECT_TRUE(plain.hints.empty());
}

TEST(OllamaChatFront, ABadBodyIsA400InOllamasErrorShape) {
  const json base = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  refused_all(
      ollama_chat_front(), base,
      {
          {{{"model", nullptr}}, "'model' is required"},
          {{{"messages", nullptr}}, "'messages' is required"},
          {{{"messages", {{{"role", "robot"}, {"content", "hi"}}}}}, "'messages[0].role'"},
          {{{"messages", {{{"role", "user"}, {"content", "hi"}, {"images", {1}}}}}}, "'messages[0].images'"},
          {{{"messages", {{{"role", "assistant"}, {"tool_calls", {{{"name", "f"}}}}}}}},
           "'messages[0].tool_calls[0].function' is required"},
          {{{"options", {{"temperature", "hot"}}}}, "'options.temperature' must be a number"},
          {{{"options", {{"top_k", 1.5}}}}, "'options.top_k' must be an integer"},
          {{{"format", "yaml"}}, "'format'"},
          {{{"think", 5}}, "'think'"},
          {{{"logprobs", true}}, "'logprobs' is not supported"},
          {{{"tools", {{{"type", "function"}}}}}, "'tools[0].function' is required"},
      });
  const json e = ollama_chat_front().error(400, "invalid_request_error", "'model' is required");
  EXPECT_EQ(e, json({{"error", "'model' is required"}, {"type", "invalid_request_error"}}));
  EXPECT_EQ(ollama_chat_front().param_name("seed"), "options.seed");
}

TEST(OllamaChatFront, RendersAChatAnswer) {
  const ChatRequest r = ollama_chat_front().parse(ollama_body);
  const json out = ollama_chat_front().render(fold({text_event("Let me "), text_event("check."),
                                                    call_event(0, "c", "get_weather", "{\"city\":\"Rome\"}"),
                                                    usage_event(42, 17), finish_event("tool_calls")}),
                                              r, "big");
  EXPECT_EQ(out["model"], "big");
  EXPECT_TRUE(out["created_at"].is_string());
  EXPECT_EQ(out["message"], json::parse(R"({"role": "assistant", "content": "Let me check.",
      "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]})"));
  EXPECT_EQ(out["done"], true);
  EXPECT_EQ(out["done_reason"], "stop") << "Ollama says stop after tool calls too";
  EXPECT_EQ(out["prompt_eval_count"], 42);
  EXPECT_EQ(out["eval_count"], 17);
  EXPECT_FALSE(out.contains("response"));
  const json cut = ollama_chat_front().render(fold({text_event("x"), finish_event("length")}), r, "big");
  EXPECT_EQ(cut["done_reason"], "length");
  EXPECT_FALSE(cut["message"].contains("tool_calls"));
}

TEST(OllamaChatFront, StreamsNdjsonEndingWithDone) {
  const ChatRequest r = ollama_chat_front().parse(ollama_body);
  const auto lines = parse_ndjson(run_stream(
      ollama_chat_front(), r, "big",
      {text_event("Let me "), text_event("check."), call_event(0, "c", "get_weather", "{\"city\":"),
       call_event(0, "", "", "\"Rome\"}"), usage_event(42, 17), finish_event("tool_calls")}));
  ASSERT_EQ(lines.size(), 4u);
  std::string text;
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(lines[i]["model"], "big");
    EXPECT_EQ(lines[i]["done"], false);
    EXPECT_EQ(lines[i]["message"]["role"], "assistant");
    text += lines[i]["message"]["content"].get<std::string>();
  }
  EXPECT_EQ(text, "Let me check.") << "the lines add up to the text";
  // Ollama sends a tool call whole, in one line before the last.
  EXPECT_EQ(lines[2]["done"], false);
  EXPECT_EQ(lines[2]["message"], json::parse(R"({"role": "assistant", "content": "",
      "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]})"));
  EXPECT_EQ(lines[3]["done"], true);
  EXPECT_EQ(lines[3]["done_reason"], "stop");
  EXPECT_EQ(lines[3]["message"]["content"], "");
  EXPECT_EQ(lines[3]["prompt_eval_count"], 42);
  EXPECT_EQ(lines[3]["eval_count"], 17);

  const auto broken = parse_ndjson(
      run_stream(ollama_chat_front(), r, "big", {text_event("a"), upstream_error("gone")}, false));
  ASSERT_EQ(broken.size(), 2u);
  EXPECT_EQ(broken[1], json({{"error", "gone"}}));
  EXPECT_EQ(ollama_chat_front().stream_content_type(), "application/x-ndjson");
}

TEST(OllamaChatFront, ToolResultsAnswerTheirCallsById) {
  // Ollama's calls carry no id and its results name none: the front pairs them, so that OpenAI and
  // Anthropic backends (which need the pairing) can take the conversation.
  const ChatRequest r = ollama_chat_front().parse(json::parse(R"({"model": "m", "messages": [
    {"role": "user", "content": "Weather and time in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
      {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
      {"function": {"name": "get_time", "arguments": {"tz": "CET"}}}]},
    {"role": "tool", "tool_name": "get_time", "content": "9:00"},
    {"role": "tool", "tool_name": "get_weather", "content": "sunny"},
    {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {}}}]},
    {"role": "tool", "content": "rain"},
    {"role": "tool", "content": "a result for no call"}]})"));
  ASSERT_EQ(r.messages.size(), 7u);
  ASSERT_EQ(r.messages[1].tool_calls.size(), 2u);
  EXPECT_EQ(r.messages[1].tool_calls[0].id, "call_0");
  EXPECT_EQ(r.messages[1].tool_calls[1].id, "call_1");
  EXPECT_EQ(r.messages[2].tool_call_id, "call_1") << "paired by tool_name";
  EXPECT_EQ(r.messages[3].tool_call_id, "call_0");
  ASSERT_EQ(r.messages[4].tool_calls.size(), 1u);
  EXPECT_EQ(r.messages[4].tool_calls[0].id, "call_2") << "ids are unique in the conversation";
  EXPECT_EQ(r.messages[5].tool_call_id, "call_2") << "no tool_name: the next unanswered call";
  EXPECT_EQ(r.messages[6].tool_call_id, "");

  const json b = json::parse(openai_backend().request(model_config(Provider::openai, "http://h"), r).body);
  EXPECT_EQ(b["messages"][2], json({{"role", "tool"}, {"content", "9:00"}, {"tool_call_id", "call_1"}}));
  EXPECT_EQ(b["messages"][5]["tool_call_id"], "call_2");
  // An Ollama backend gets the conversation as it came: tool_name, no ids.
  const json o = json::parse(ollama_backend().request(model_config(Provider::ollama, "http://h"), r).body);
  EXPECT_EQ(o["messages"][2], json({{"role", "tool"}, {"content", "9:00"}, {"tool_name", "get_time"}}));
  EXPECT_EQ(o["messages"][5], json({{"role", "tool"}, {"content", "rain"}}));
}

TEST(OllamaGenerateFront, ParsesAPromptWithItsSystemAndImages) {
  const ChatRequest r = ollama_generate_front().parse(json::parse(R"({"model": "llama3.2",
      "prompt": "Why is the sky blue?", "system": "Be brief.", "images": ["iVBORw0KGgo="],
      "options": {"num_predict": 64, "temperature": 0.1, "stop": ["\n"]}, "max_tokens": 999, "stream": false})"));
  EXPECT_EQ(r.protocol, "ollama");
  EXPECT_EQ(r.model, "llama3.2");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(text_of(r.messages[0]), "Be brief.");
  EXPECT_EQ(r.messages[1].role, "user");
  ASSERT_EQ(r.messages[1].content.size(), 2u);
  EXPECT_EQ(r.messages[1].content[0].text, "Why is the sky blue?");
  EXPECT_EQ(r.messages[1].content[1].data, "iVBORw0KGgo=");
  EXPECT_EQ(r.sampling.max_tokens, 64) << "options.num_predict wins over max_tokens";
  EXPECT_EQ(r.sampling.temperature, 0.1);
  EXPECT_EQ(r.sampling.stop, std::vector<std::string>{"\n"});
  EXPECT_FALSE(r.stream);
  EXPECT_TRUE(r.category.empty());
  EXPECT_TRUE(r.extras.empty()) << r.extras.dump();

  // The MLX-server dialect: a category instead of a model, a top-level max_tokens.
  const ChatRequest c =
      ollama_generate_front().parse({{"category", "coding"}, {"prompt", "x"}, {"max_tokens", 32}});
  EXPECT_EQ(c.model, "auto");
  EXPECT_EQ(c.category, "coding");
  EXPECT_EQ(c.sampling.max_tokens, 32);
  EXPECT_TRUE(c.stream);
  ASSERT_EQ(c.messages.size(), 1u);
}

TEST(OllamaGenerateFront, ABadBodyIsA400InOllamasErrorShape) {
  const json base = {{"model", "m"}, {"prompt", "hi"}};
  refused_all(ollama_generate_front(), base,
              {
                  {{{"prompt", nullptr}}, "'prompt' is required"},
                  {{{"prompt", 5}}, "'prompt' must be a string"},
                  {{{"model", nullptr}}, "'model' is required"},
                  {{{"raw", true}}, "'raw' is not supported"},
                  {{{"suffix", "}"}}, "'suffix' is not supported"},
                  {{{"context", {1, 2}}}, "'context' is not supported"},
                  {{{"max_tokens", 0}}, "'max_tokens' must be a positive integer"},
                  {{{"images", "iVBO"}}, "'images' must be an array"},
              });
  EXPECT_EQ(ollama_generate_front().error(404, "model_not_found", "no such model"),
            json({{"error", "no such model"}, {"type", "model_not_found"}}));
}

TEST(OllamaGenerateFront, RendersAndStreamsAResponseField) {
  const ChatRequest r = ollama_generate_front().parse({{"model", "m"}, {"prompt", "hi"}});
  const json out = ollama_generate_front().render(
      fold({text_event("Rayleigh "), text_event("scattering."), usage_event(5, 3)}), r, "big");
  EXPECT_EQ(out["response"], "Rayleigh scattering.");
  EXPECT_FALSE(out.contains("message"));
  EXPECT_EQ(out["done"], true);
  EXPECT_EQ(out["done_reason"], "stop");
  EXPECT_EQ(out["prompt_eval_count"], 5);
  EXPECT_EQ(out["eval_count"], 3);

  const auto lines =
      parse_ndjson(run_stream(ollama_generate_front(), r, "big",
                              {text_event("Rayleigh "), text_event("scattering."),
                               call_event(0, "c", "f", "{}"), usage_event(5, 3), finish_event("length")}));
  ASSERT_EQ(lines.size(), 3u) << "no tool-call line in /api/generate";
  EXPECT_EQ(lines[0], json({{"model", "big"},
                            {"created_at", lines[0]["created_at"]},
                            {"response", "Rayleigh "},
                            {"done", false}}));
  EXPECT_EQ(lines[0]["response"].get<std::string>() + lines[1]["response"].get<std::string>(),
            "Rayleigh scattering.");
  EXPECT_EQ(lines[2]["done"], true);
  EXPECT_EQ(lines[2]["response"], "");
  EXPECT_EQ(lines[2]["done_reason"], "length");
  EXPECT_EQ(lines[2]["eval_count"], 3);
}

// ---- Responses front (its own tests: front-responses-test.cpp) -------------------------------------

TEST(ResponsesFront, ABadBodyIsA400InOpenAIsErrorShapeAndAPlainAnswerCompletes) {
  const FrontError e =
      refused([](const json& b) { return responses_front().parse(b); },
              {{"model", "m"}, {"input", "hi"}, {"seed", 1}}, "Unrecognized request argument supplied: seed");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(responses_front().error(e.status, e.type, e.what()),
            json::parse(R"({"error": {"message": "Unrecognized request argument supplied: seed",
                 "type": "invalid_request_error", "param": null, "code": "invalid_request_error"}})"));
  refused([](const json& b) { return responses_front().parse(b); }, {{"model", "m"}}, "'input' is required");

  const ChatRequest r = responses_front().parse({{"model", "m"}, {"input", "hi"}, {"stream", true}});
  const std::vector<ChatEvent> events = {text_event("Hel"), text_event("lo"), usage_event(3, 2),
                                         finish_event("stop")};
  const json out = responses_front().render(fold(events), r, "big");
  EXPECT_EQ(out["status"], "completed");
  ASSERT_EQ(out["output"].size(), 1u);
  EXPECT_EQ(out["output"][0]["content"][0]["text"], "Hello");
  EXPECT_EQ(out["usage"]["total_tokens"], 5);
  const auto sse = parse_sse(run_stream(responses_front(), r, "big", events));
  std::string text;
  for (const auto& s : sse) {
    if (s.event == "response.output_text.delta") text += s.data["delta"].get<std::string>();
  }
  EXPECT_EQ(text, "Hello");
  EXPECT_EQ(sse.back().event, "response.completed");
  EXPECT_EQ(sse.back().data["response"]["output"][0]["content"], out["output"][0]["content"])
      << "the stream's last Response carries what render() gives";
}

// ---- OpenAI embeddings front ---------------------------------------------------------------------

TEST(EmbeddingsFront, ParsesInputsAndPassesThroughDimensionsAndUser) {
  const OpenAIEmbeddings one = parse_openai_embeddings({{"model", "embed"}, {"input", "hello"}});
  EXPECT_EQ(one.model, "embed");
  EXPECT_EQ(one.request.inputs, std::vector<std::string>{"hello"});
  EXPECT_FALSE(one.base64);
  EXPECT_TRUE(one.request.passthrough.empty());

  const OpenAIEmbeddings many = parse_openai_embeddings({{"model", "auto"},
                                                         {"input", {"a", "b"}},
                                                         {"dimensions", 256},
                                                         {"user", "u-1"},
                                                         {"encoding_format", "base64"}});
  EXPECT_EQ(many.request.inputs, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(many.request.passthrough, json({{"dimensions", 256}, {"user", "u-1"}}));
  EXPECT_TRUE(many.base64);
}

TEST(EmbeddingsFront, ABadBodyIsA400) {
  const json base = {{"model", "embed"}, {"input", "hello"}};
  const auto parse = [](const json& b) { return parse_openai_embeddings(b); };
  for (const auto& [patch, named] : std::vector<std::pair<json, std::string>>{
           {{{"model", nullptr}}, "'model' is required"},
           {{{"input", nullptr}}, "'input' is required"},
           {{{"input", {1, 2, 3}}}, "token ids"},
           {{{"input", {{1, 2}, {3}}}}, "token ids"},
           {{{"input", json::array()}}, "must not be an empty array"},
           {{{"input", {"a", ""}}}, "'input[1]' must not be empty"},
           {{{"dimensions", 0}}, "'dimensions' must be a positive integer"},
           {{{"encoding_format", "int8"}}, "'encoding_format'"},
           {{{"truncate", true}}, "Unrecognized request argument supplied: truncate"},
       }) {
    json body = base;
    body.merge_patch(patch);
    const FrontError e = refused(parse, body, named);
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.type, "invalid_request_error");
  }
}

TEST(EmbeddingsFront, RendersFloatsOrLittleEndianFloat32Base64) {
  EmbedResult result;
  result.embeddings = {json::array({1.0, -2.5}), json::array({0.0, 0.5})};
  result.prompt_tokens = 7;
  const json floats = render_openai_embeddings(result, "embed", false);
  EXPECT_EQ(floats, json::parse(R"({"object": "list", "model": "embed",
      "data": [{"object": "embedding", "index": 0, "embedding": [1.0, -2.5]},
               {"object": "embedding", "index": 1, "embedding": [0.0, 0.5]}],
      "usage": {"prompt_tokens": 7, "total_tokens": 7}})"));
  const json b64 = render_openai_embeddings(result, "embed", true);
  EXPECT_EQ(b64["data"][0]["embedding"], "AACAPwAAIMA="); // 00 00 80 3f  00 00 20 c0
  EXPECT_EQ(b64["data"][1]["embedding"], "AAAAAAAAAD8=");
  EXPECT_EQ(float32_base64(json::array()), "");
}

// ---- backends: the upstream request -----------------------------------------------------------

// A canonical request with something of everything, as a front would have parsed it.
ChatRequest full_request(const std::string& protocol) {
  ChatRequest r;
  r.protocol = protocol;
  r.model = "auto";
  ContentPart jpeg;
  jpeg.kind = ContentPart::Kind::image;
  jpeg.media_type = "image/jpeg";
  jpeg.data = "/9j/AA==";
  ContentPart remote;
  remote.kind = ContentPart::Kind::image;
  remote.url = "https://example.com/cat.png";
  r.messages = {
      {"system", {{ContentPart::Kind::text, "You are terse.", "", "", ""}}, {}, "", ""},
      {"user", {{ContentPart::Kind::text, "What is this?", "", "", ""}, jpeg, remote}, {}, "", "ana"},
      {"assistant",
       {},
       {{"call_1", "get_weather", R"({"city":"Paris"})"}, {"call_2", "get_time", R"({"tz":"CET"})"}},
       "",
       ""},
      {"tool", {{ContentPart::Kind::text, "sunny", "", "", ""}}, {}, "call_1", "get_weather"},
      {"tool", {{ContentPart::Kind::text, "9:00", "", "", ""}}, {}, "call_2", "get_time"},
      {"system", {{ContentPart::Kind::text, "Answer in French.", "", "", ""}}, {}, "", ""},
      {"user", {{ContentPart::Kind::text, "Thanks", "", "", ""}}, {}, "", ""},
  };
  r.sampling.temperature = 0.2;
  r.sampling.top_p = 0.95;
  r.sampling.top_k = 40;
  r.sampling.max_tokens = 128;
  r.sampling.stop = {"END"};
  r.tools = {{"get_weather", "Weather for a city", weather_schema, std::nullopt}};
  r.tool_choice = {"function", "get_weather"};
  r.parallel_tool_calls = false;
  r.stream = true;
  return r;
}

TEST(OpenAIBackend, AsksForAStreamedChatCompletionWithABearerKey) {
  ScopedEnv key("TINYROUTE_ADAPTERS_TEST_KEY", "sk-test-1");
  ChatRequest r = full_request("openai");
  r.sampling.seed = 7;
  r.sampling.presence_penalty = 0.1;
  r.sampling.frequency_penalty = 0.3;
  r.user = "u-1";
  r.format = weather_schema;
  r.format_name = "weather";
  r.format_strict = true;
  r.tools[0].strict = true;
  r.extras = {{"logit_bias", {{"50256", -100}}}};
  const ClientRequest req = openai_backend().request(
      model_config(Provider::openai, "https://api.example.com/v1/", "TINYROUTE_ADAPTERS_TEST_KEY"), r);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://api.example.com/v1/chat/completions");
  EXPECT_EQ(header(req, "content-type"), "application/json");
  EXPECT_EQ(header(req, "accept"), "text/event-stream");
  EXPECT_EQ(header(req, "authorization"), "Bearer sk-test-1");
  EXPECT_FALSE(header(req, "x-api-key"));

  const json b = json::parse(req.body);
  EXPECT_EQ(b["model"], "upstream-name");
  EXPECT_EQ(b["stream"], true);
  EXPECT_EQ(b["stream_options"], json({{"include_usage", true}})) << "usage is always asked for";
  EXPECT_EQ(b["messages"], json::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "name": "ana", "content": [
      {"type": "text", "text": "What is this?"},
      {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/AA=="}},
      {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
      {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\":\"CET\"}"}}]},
    {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
    {"role": "tool", "content": "9:00", "tool_call_id": "call_2"},
    {"role": "system", "content": "Answer in French."},
    {"role": "user", "content": "Thanks"}])"));
  EXPECT_EQ(b["temperature"], 0.2);
  EXPECT_EQ(b["top_p"], 0.95);
  EXPECT_EQ(b["top_k"], 40);
  EXPECT_EQ(b["max_tokens"], 128);
  EXPECT_EQ(b["stop"], json({"END"}));
  EXPECT_EQ(b["seed"], 7);
  EXPECT_EQ(b["presence_penalty"], 0.1);
  EXPECT_EQ(b["frequency_penalty"], 0.3);
  EXPECT_EQ(b["user"], "u-1");
  EXPECT_EQ(b["tools"], json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Weather for a city", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": true}}])"));
  EXPECT_EQ(b["tool_choice"], json::parse(R"({"type": "function", "function": {"name": "get_weather"}})"));
  EXPECT_EQ(b["parallel_tool_calls"], false);
  EXPECT_EQ(b["response_format"],
            json({{"type", "json_schema"},
                  {"json_schema", {{"name", "weather"}, {"schema", weather_schema}, {"strict", true}}}}));
  EXPECT_EQ(b["logit_bias"], json({{"50256", -100}})) << "an OpenAI extra reaches an OpenAI backend";
  EXPECT_TRUE(openai_backend().unsupported(r).empty());

  // A base URL without /v1, no upstream name, no key, "json" format, another protocol's extras.
  ModelConfig local = model_config(Provider::openai, "http://127.0.0.1:8080");
  local.upstream_model.clear();
  r.format = "json";
  r.protocol = "anthropic";
  r.extras = {{"thinking", {{"type", "enabled"}}}};
  const ClientRequest plain = openai_backend().request(local, r);
  EXPECT_EQ(plain.url, "http://127.0.0.1:8080/v1/chat/completions");
  EXPECT_FALSE(header(plain, "authorization"));
  const json pb = json::parse(plain.body);
  EXPECT_EQ(pb["model"], "big");
  EXPECT_EQ(pb["response_format"], json({{"type", "json_object"}}));
  EXPECT_FALSE(pb.contains("thinking")) << "another protocol's extras never reach the body";
  EXPECT_EQ(openai_backend().unsupported(r), std::vector<std::string>{"thinking"});
}

TEST(Backends, AKeyNamedButUnsetIsAnErrorNamingTheVariableNotAValue) {
  ::unsetenv("TINYROUTE_ADAPTERS_UNSET_KEY");
  for (Provider p : {Provider::openai, Provider::anthropic, Provider::ollama}) {
    try {
      backend_for(p).request(model_config(p, "http://127.0.0.1:1", "TINYROUTE_ADAPTERS_UNSET_KEY"),
                             full_request("openai"));
      ADD_FAILURE() << "sent without its key";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("$TINYROUTE_ADAPTERS_UNSET_KEY"), std::string::npos) << e.what();
    }
  }
}

TEST(AnthropicBackend, AsksForAStreamedMessageWithAnApiKeyAndVersion) {
  ScopedEnv key("TINYROUTE_ADAPTERS_TEST_KEY", "sk-ant-1");
  ChatRequest r = full_request("anthropic");
  r.user = "u-1";
  r.extras = {{"thinking", {{"type", "enabled"}, {"budget_tokens", 1024}}}};
  const ClientRequest req = anthropic_backend().request(
      model_config(Provider::anthropic, "https://api.anthropic.com", "TINYROUTE_ADAPTERS_TEST_KEY"), r);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://api.anthropic.com/v1/messages");
  EXPECT_EQ(header(req, "content-type"), "application/json");
  EXPECT_EQ(header(req, "x-api-key"), "sk-ant-1");
  EXPECT_EQ(header(req, "anthropic-version"), "2023-06-01");
  EXPECT_FALSE(header(req, "authorization")) << "Anthropic takes the key in x-api-key only";

  const json b = json::parse(req.body);
  EXPECT_EQ(b["model"], "upstream-name");
  EXPECT_EQ(b["stream"], true);
  EXPECT_FALSE(b.contains("stream_options"));
  // Every system message, wherever it was, becomes the one top-level system prompt.
  EXPECT_EQ(b["system"], "You are terse.\n\nAnswer in French.");
  EXPECT_EQ(b["messages"], json::parse(R"([
    {"role": "user", "content": [
      {"type": "text", "text": "What is this?"},
      {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/AA=="}},
      {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}]},
    {"role": "assistant", "content": [
      {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
      {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {"tz": "CET"}}]},
    {"role": "user", "content": [
      {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
      {"type": "tool_result", "tool_use_id": "call_2", "content": "9:00"}]},
    {"role": "user", "content": [{"type": "text", "text": "Thanks"}]}])"));
  EXPECT_EQ(b["max_tokens"], 128);
  EXPECT_EQ(b["temperature"], 0.2);
  EXPECT_EQ(b["top_p"], 0.95);
  EXPECT_EQ(b["top_k"], 40);
  EXPECT_EQ(b["stop_sequences"], json({"END"}));
  EXPECT_FALSE(b.contains("stop"));
  EXPECT_EQ(b["tools"], json::parse(R"([{"name": "get_weather", "description": "Weather for a city",
      "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])"));
  EXPECT_EQ(b["tool_choice"],
            json::parse(R"({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true})"));
  EXPECT_EQ(b["metadata"], json({{"user_id", "u-1"}}));
  EXPECT_EQ(b["thinking"], r.extras["thinking"]) << "an Anthropic extra reaches an Anthropic backend";
  EXPECT_TRUE(anthropic_backend().unsupported(r).empty());

  // max_tokens is required by the Messages API: 4096 when the client gave none. required -> any.
  ChatRequest bare = full_request("openai");
  bare.sampling.max_tokens.reset();
  bare.tool_choice = {"required", ""};
  bare.parallel_tool_calls.reset();
  const ClientRequest plain =
      anthropic_backend().request(model_config(Provider::anthropic, "http://h/v1/"), bare);
  EXPECT_EQ(plain.url, "http://h/v1/messages");
  EXPECT_FALSE(header(plain, "x-api-key"));
  const json pb = json::parse(plain.body);
  EXPECT_EQ(pb["max_tokens"], 4096);
  EXPECT_EQ(pb["tool_choice"], json({{"type", "any"}}));
  EXPECT_FALSE(pb.contains("metadata"));

  // What the Messages API has no field for is named, never dropped.
  bare.sampling.seed = 1;
  bare.sampling.frequency_penalty = 0.5;
  bare.format = "json";
  bare.extras = {{"logit_bias", json::object()}};
  bare.tools[0].strict = true;
  EXPECT_EQ(anthropic_backend().unsupported(bare),
            (std::vector<std::string>{"logit_bias", "seed", "frequency_penalty", "format", "tools.strict"}));
}

TEST(OllamaBackend, AsksForAStreamedChatWithOptions) {
  ChatRequest r = full_request("ollama");
  r.tool_choice = {};
  r.parallel_tool_calls.reset();
  r.sampling.seed = 7;
  r.format = "json";
  r.extras = {{"think", false}, {"options", {{"mirostat", 2}}}};
  r.hints = {{"options", {{"num_ctx", 8192}}}, {"keep_alive", "5m"}};
  const ClientRequest req =
      ollama_backend().request(model_config(Provider::ollama, "http://127.0.0.1:11434/"), r);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "http://127.0.0.1:11434/api/chat");
  EXPECT_EQ(header(req, "content-type"), "application/json");
  EXPECT_FALSE(header(req, "authorization"));
  EXPECT_FALSE(header(req, "x-api-key"));

  const json b = json::parse(req.body);
  EXPECT_EQ(b["model"], "upstream-name");
  EXPECT_EQ(b["stream"], true);
  // Ollama takes inline images only: the https:// one is not sent, and unsupported() does not name it
  // (what the code does today; a refusal would be the gateway's way).
  EXPECT_EQ(b["messages"], json::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is this?", "images": ["/9j/AA=="]},
    {"role": "assistant", "content": "", "tool_calls": [
      {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
      {"function": {"name": "get_time", "arguments": {"tz": "CET"}}}]},
    {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    {"role": "tool", "content": "9:00", "tool_name": "get_time"},
    {"role": "system", "content": "Answer in French."},
    {"role": "user", "content": "Thanks"}])"));
  EXPECT_EQ(b["options"], json::parse(R"({"mirostat": 2, "num_ctx": 8192, "temperature": 0.2, "top_p": 0.95,
      "top_k": 40, "num_predict": 128, "stop": ["END"], "seed": 7})"));
  EXPECT_EQ(b["format"], "json");
  EXPECT_EQ(b["keep_alive"], "5m");
  EXPECT_EQ(b["think"], false);
  EXPECT_EQ(b["tools"], json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Weather for a city", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])"));
  EXPECT_FALSE(b.contains("tool_choice"));
  EXPECT_TRUE(ollama_backend().unsupported(r).empty());

  // With a key: Bearer, as Ollama's cloud takes it. tool_choice none: the tools are not offered.
  ScopedEnv key("TINYROUTE_ADAPTERS_TEST_KEY", "ollama-key");
  r.tool_choice = {"none", ""};
  const ClientRequest keyed = ollama_backend().request(
      model_config(Provider::ollama, "https://ollama.example.com", "TINYROUTE_ADAPTERS_TEST_KEY"), r);
  EXPECT_EQ(header(keyed, "authorization"), "Bearer ollama-key");
  EXPECT_FALSE(json::parse(keyed.body).contains("tools"));

  // What Ollama's chat API cannot carry is named.
  ChatRequest other = full_request("openai"); // tool_choice function, parallel_tool_calls false
  other.user = "u-1";
  other.extras = {{"logit_bias", json::object()}};
  EXPECT_EQ(ollama_backend().unsupported(other),
            (std::vector<std::string>{"logit_bias", "tool_choice", "parallel_tool_calls", "user"}));
}

TEST(Backends, AnUpstreamErrorBodyGivesItsHumanMessage) {
  EXPECT_EQ(openai_backend().error_message(
                R"({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})"),
            "Incorrect API key provided");
  EXPECT_EQ(anthropic_backend().error_message(
                R"({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})"),
            "Overloaded");
  EXPECT_EQ(
      ollama_backend().error_message(R"({"error": "model \"llama9\" not found, try pulling it first"})"),
      "model \"llama9\" not found, try pulling it first");
  EXPECT_EQ(openai_backend().error_message(R"({"message": "Bad gateway"})"), "Bad gateway");
  EXPECT_EQ(ollama_backend().error_message("<html>502 Bad Gateway</html>"), "<html>502 Bad Gateway</html>");
  const std::string long_body(1000, 'x');
  EXPECT_EQ(anthropic_backend().error_message(long_body), std::string(300, 'x') + "...");
}

TEST(AnthropicBackend, AnEmptyTextBesideToolCallsIsDropped) {
  // Ollama's clients send content "" with tool calls; the Messages API refuses an empty text block.
  ChatRequest r;
  r.protocol = "ollama";
  r.messages = {
      {"user", {{ContentPart::Kind::text, "Weather in Paris?", "", "", ""}}, {}, "", ""},
      {"assistant",
       {{ContentPart::Kind::text, "", "", "", ""}},
       {{"call_0", "get_weather", R"({"city":"Paris"})"}},
       "",
       ""},
      {"tool", {{ContentPart::Kind::text, "sunny", "", "", ""}}, {}, "call_0", "get_weather"},
      {"assistant", {{ContentPart::Kind::text, "", "", "", ""}}, {}, "", ""},
  };
  const json b =
      json::parse(anthropic_backend().request(model_config(Provider::anthropic, "http://h"), r).body);
  EXPECT_EQ(b["messages"][1]["content"], json::parse(R"([{"type": "tool_use", "id": "call_0",
      "name": "get_weather", "input": {"city": "Paris"}}])"));
  // A turn with nothing else keeps its one block: what it says is the client's to fix, not dropped here.
  EXPECT_EQ(b["messages"][3]["content"], json::parse(R"([{"type": "text", "text": ""}])"));
}

// ---- backends: the upstream stream ----------------------------------------------------------------

std::string sse_data(const std::string& data) {
  return "data: " + data + "\n\n";
}

const std::string openai_stream =
    sse_data(
        R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})") +
    ": keep-alive\n\n" +
    sse_data(
        R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{"content":"Let me "},"logprobs":null,"finish_reason":null}]})") +
    sse_data(
        R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{"content":"check \u00e9\ud83d\ude00."},"finish_reason":null}]})") +
    sse_data(
        R"({"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]})") +
    sse_data(
        R"({"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]})") +
    sse_data(
        R"({"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]})") +
    sse_data(
        R"({"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":null}]})") +
    sse_data(R"({"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})") +
    sse_data(
        R"({"id":"c1","choices":[],"usage":{"prompt_tokens":42,"completion_tokens":17,"total_tokens":59}})") +
    "data: [DONE]\n\n";

const std::vector<std::string> openai_stream_events = {
    "text Let me ",
    "text check \u00e9\U0001F600.",
    "call #0 id=call_a name=get_weather args=",
    "call #0 id= name= args={\"city\":",
    "call #0 id= name= args=\"Paris\"}",
    "call #1 id=call_b name=get_time args={}",
    "usage 42/17",
    "finish tool_calls", // at the end: usage may follow the finish chunk
};

std::string crlf(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

TEST(OpenAIBackend, DecodesAStreamTheSameWhateverTheSplit) {
  EXPECT_EQ(decode_any_split(openai_backend(), openai_stream), openai_stream_events);
  EXPECT_EQ(decode_any_split(openai_backend(), crlf(openai_stream)), openai_stream_events) << "CRLF lines";
  // The answer folds to the text, both calls whole, the reason and the usage.
  std::vector<ChatEvent> events = decode(openai_backend(), {openai_stream});
  const ChatResult res = fold(events);
  EXPECT_EQ(res.text, "Let me check \u00e9\U0001F600.");
  ASSERT_EQ(res.tool_calls.size(), 2u);
  EXPECT_EQ(res.tool_calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(res.finish_reason, "tool_calls");
  EXPECT_EQ(res.prompt_tokens, 42);
  EXPECT_FALSE(res.failed);
}

TEST(OpenAIBackend, MalformedOrCutStreamsGiveACleanErrorEvent) {
  const std::string hello = sse_data(R"({"choices":[{"index":0,"delta":{"content":"Hi"}}]})");
  const std::string stop = sse_data(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})");
  // [DONE] alone is enough to end an answer; no finish reason means stop.
  EXPECT_EQ(decode_any_split(openai_backend(), hello + "data: [DONE]\n\n"),
            (std::vector<std::string>{"text Hi", "finish stop"}));
  EXPECT_EQ(decode_any_split(openai_backend(), hello + stop),
            (std::vector<std::string>{"text Hi", "finish stop"}));
  EXPECT_EQ(
      decode_any_split(openai_backend(), hello),
      (std::vector<std::string>{
          "text Hi", "error[upstream_error] the upstream closed the stream before the answer was complete"}));
  EXPECT_EQ(
      decode_any_split(openai_backend(), hello + "data: {\"choices\":[{\"delta\n\n" + stop),
      (std::vector<std::string>{
          "text Hi", "error[upstream_error] upstream sent a malformed stream chunk: {\"choices\":[{\"delta",
          "finish stop"}));
  EXPECT_EQ(
      decode_any_split(openai_backend(),
                       hello + sse_data(R"({"error":{"message":"model overloaded","type":"server_error"}})")),
      (std::vector<std::string>{
          "text Hi", "error[upstream_error] model overloaded",
          "error[upstream_error] the upstream closed the stream before the answer was complete"}));
  EXPECT_EQ(
      decode_any_split(
          openai_backend(),
          sse_data(R"({"choices":[{"delta":{"tool_calls":[{"index":256,"function":{"name":"f"}}]}}]})") +
              stop),
      (std::vector<std::string>{
          "error[upstream_error] upstream sent a tool call index out of range (0 to 255)", "finish stop"}));
  EXPECT_EQ(decode_any_split(openai_backend(), ""),
            (std::vector<std::string>{
                "error[upstream_error] the upstream closed the stream before the answer was complete"}));
}

const std::string anthropic_stream =
    "event: message_start\n"
    R"(data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_read_input_tokens":5,"cache_creation_input_tokens":0,"output_tokens":1}}})"
    "\n\n"
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"
    "\n\n"
    "event: ping\n"
    R"(data: {"type":"ping"})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"check \u00e9."}})"
    "\n\n"
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":0})"
    "\n\n"
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}})"
    "\n\n"
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":1})"
    "\n\n"
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_2","name":"get_time","input":{}}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}})"
    "\n\n"
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":2})"
    "\n\n"
    "event: message_delta\n"
    R"(data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":17}})"
    "\n\n"
    "event: message_stop\n"
    R"(data: {"type":"message_stop"})"
    "\n\n";

TEST(AnthropicBackend, DecodesAStreamTheSameWhateverTheSplit) {
  const std::vector<std::string> expected = {
      "text Let me ",
      "text check \u00e9.",
      "call #0 id=toolu_1 name=get_weather args=",
      "call #0 id= name= args={\"city\":",
      "call #0 id= name= args=\"Paris\"}",
      "call #1 id=toolu_2 name=get_time args=",
      "call #1 id= name= args={}",
      "usage 30/17", // the prompt counts its cached tokens too
      "finish tool_calls",
  };
  EXPECT_EQ(decode_any_split(anthropic_backend(), anthropic_stream), expected);
  EXPECT_EQ(decode_any_split(anthropic_backend(), crlf(anthropic_stream)), expected) << "CRLF lines";
  const ChatResult res = fold(decode(anthropic_backend(), {anthropic_stream}));
  EXPECT_EQ(res.text, "Let me check \u00e9.");
  ASSERT_EQ(res.tool_calls.size(), 2u);
  EXPECT_EQ(res.tool_calls[0].id, "toolu_1");
  EXPECT_EQ(res.tool_calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(res.tool_calls[1].name, "get_time");
  EXPECT_EQ(res.finish_reason, "tool_calls");
}

TEST(AnthropicBackend, MalformedOrCutStreamsGiveACleanErrorEvent) {
  const std::string start = "event: message_start\ndata: "
                            "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n";
  const std::string hi = "event: content_block_delta\ndata: "
                         "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
                         "\"text\":\"Hi\"}}\n\n";
  const std::string stop = "event: message_delta\ndata: "
                           "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":"
                           "{\"output_tokens\":1}}\n\n"
                           "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  const std::string cut =
      "error[upstream_error] the upstream closed the stream before the answer was complete";
  EXPECT_EQ(decode_any_split(anthropic_backend(), start + hi + stop),
            (std::vector<std::string>{"text Hi", "usage 3/1", "finish length"}));
  EXPECT_EQ(decode_any_split(anthropic_backend(), start + hi), (std::vector<std::string>{"text Hi", cut}));
  EXPECT_EQ(decode_any_split(anthropic_backend(),
                             start + "event: content_block_delta\ndata: {\"type\":\n\n" + hi + stop),
            (std::vector<std::string>{
                "error[upstream_error] upstream sent a malformed stream event: {\"type\":", "text Hi",
                "usage 3/1", "finish length"}));
  EXPECT_EQ(
      decode_any_split(
          anthropic_backend(),
          start + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":\"x\"}\n\n"),
      (std::vector<std::string>{"error[upstream_error] upstream sent a stream event tinyroute cannot read: "
                                "{\"type\":\"content_block_delta\",\"delta\":\"x\"}",
                                cut}));
  EXPECT_EQ(decode_any_split(anthropic_backend(), start + hi +
                                                      "event: error\ndata: "
                                                      "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_"
                                                      "error\",\"message\":\"Overloaded\"}}\n\n"),
            (std::vector<std::string>{"text Hi", "error[upstream_error] Overloaded", cut}));
}

const std::string ollama_stream =
    R"({"model":"llama3.2","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"Let me "},"done":false})"
    "\n"
    R"({"model":"llama3.2","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"check \u00e9."},"done":false})"
    "\n"
    R"({"model":"llama3.2","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}},{"function":{"name":"get_time","arguments":{}}}]},"done":false})"
    "\n"
    R"({"model":"llama3.2","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":123456,"load_duration":1,"prompt_eval_count":42,"prompt_eval_duration":2,"eval_count":17,"eval_duration":3})"
    "\n";

TEST(OllamaBackend, DecodesAStreamTheSameWhateverTheSplit) {
  const std::vector<std::string> expected = {
      "text Let me ",
      "text check \u00e9.",
      "call #0 id=call_0 name=get_weather args={\"city\":\"Paris\"}",
      "call #1 id=call_1 name=get_time args={}",
      "usage 42/17",
      "finish tool_calls", // Ollama says stop; the calls say why it stopped
  };
  EXPECT_EQ(decode_any_split(ollama_backend(), ollama_stream), expected);
  EXPECT_EQ(decode_any_split(ollama_backend(), crlf(ollama_stream)), expected) << "CRLF lines";
  // The last line without its newline is still read when the body ends.
  EXPECT_EQ(decode_any_split(ollama_backend(), ollama_stream.substr(0, ollama_stream.size() - 1)), expected);

  // /api/generate's shape too; done_reason length is the length limit.
  EXPECT_EQ(decode_any_split(ollama_backend(),
                             "{\"response\":\"Ray\",\"done\":false}\n{\"response\":\"leigh\",\"done\":true,"
                             "\"done_reason\":\"length\",\"prompt_eval_count\":5,\"eval_count\":2}\n"),
            (std::vector<std::string>{"text Ray", "text leigh", "usage 5/2", "finish length"}));
}

TEST(OllamaBackend, MalformedOrCutStreamsGiveACleanErrorEvent) {
  const std::string hi = "{\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n";
  const std::string done =
      "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"eval_count\":1}\n";
  const std::string cut =
      "error[upstream_error] the upstream closed the stream before the answer was complete";
  EXPECT_EQ(decode_any_split(ollama_backend(), hi + "\n  \n" + done),
            (std::vector<std::string>{"text Hi", "usage 0/1", "finish stop"}))
      << "blank lines are skipped";
  EXPECT_EQ(decode_any_split(ollama_backend(), hi), (std::vector<std::string>{"text Hi", cut}));
  EXPECT_EQ(decode_any_split(ollama_backend(), hi + "{\"message\":\n" + done),
            (std::vector<std::string>{
                "text Hi", "error[upstream_error] upstream sent a malformed stream line: {\"message\":",
                "usage 0/1", "finish stop"}));
  EXPECT_EQ(decode_any_split(ollama_backend(), hi + "{\"done\":\"yes\"}\n"),
            (std::vector<std::string>{
                "text Hi",
                "error[upstream_error] upstream sent a stream line tinyroute cannot read: {\"done\":\"yes\"}",
                cut}));
  EXPECT_EQ(decode_any_split(ollama_backend(), hi + "{\"error\":\"out of memory\"}\n"),
            (std::vector<std::string>{"text Hi", "error[upstream_error] out of memory", cut}));
}

// ---- round trip: each front's request through each backend -------------------------------------

// One conversation (a system prompt, a tool call and its result, an answer, a follow-up) and its
// sampling parameters, as each front's clients write it.
struct FrontCase {
  std::string name;
  const FrontAdapter* front;
  json body;
  bool tools; // the protocol carries tool calls
  bool stop;  // the protocol carries stop sequences
};

std::vector<FrontCase> front_cases() {
  return {
      {"openai", &openai_front(), json::parse(R"({"model": "auto", "temperature": 0.5, "top_p": 0.9,
        "max_tokens": 64, "stop": ["END"],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "messages": [
          {"role": "system", "content": "Be brief."},
          {"role": "user", "content": "Weather in Paris?"},
          {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
          {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
          {"role": "assistant", "content": "Sunny."},
          {"role": "user", "content": "Thanks!"}]})"),
       true, true},
      {"anthropic", &anthropic_front(), json::parse(R"({"model": "auto", "temperature": 0.5, "top_p": 0.9,
        "max_tokens": 64, "stop_sequences": ["END"], "system": "Be brief.",
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "messages": [
          {"role": "user", "content": "Weather in Paris?"},
          {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                             "input": {"city": "Paris"}}]},
          {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
          {"role": "assistant", "content": "Sunny."},
          {"role": "user", "content": "Thanks!"}]})"),
       true, true},
      {"ollama-chat", &ollama_chat_front(), json::parse(R"({"model": "auto",
        "options": {"temperature": 0.5, "top_p": 0.9, "num_predict": 64, "stop": ["END"]},
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "messages": [
          {"role": "system", "content": "Be brief."},
          {"role": "user", "content": "Weather in Paris?"},
          {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
          {"role": "tool", "tool_name": "get_weather", "content": "sunny"},
          {"role": "assistant", "content": "Sunny."},
          {"role": "user", "content": "Thanks!"}]})"),
       true, true},
      {"ollama-generate", &ollama_generate_front(), json::parse(R"({"model": "auto", "system": "Be brief.",
        "prompt": "Weather in Paris?", "options": {"temperature": 0.5, "top_p": 0.9, "num_predict": 64,
        "stop": ["END"]}})"),
       false, true},
      {"responses", &responses_front(), json::parse(R"({"model": "auto", "instructions": "Be brief.",
        "temperature": 0.5, "top_p": 0.9, "max_output_tokens": 64,
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        "input": [
          {"role": "user", "content": "Weather in Paris?"},
          {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
          {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
          {"role": "assistant", "content": [{"type": "output_text", "text": "Sunny."}]},
          {"role": "user", "content": "Thanks!"}]})"),
       true, false},
  };
}

// A conversation as [{role, text, calls: [{name, args}], ids: [...], answers}] where `ids` are the call
// ids and `answers` the tool_call_id; both only where the backend carries ids.
json view_message(const std::string& role, const std::string& text, const json& calls, const json& ids,
                  const std::string& answers, bool with_ids) {
  json m = {{"role", role}, {"text", text}, {"calls", calls}};
  if (with_ids) {
    m["ids"] = ids;
    m["answers"] = answers;
  }
  return m;
}

// What the canonical request says, as the backend of `provider` can say it: Anthropic has one system
// prompt, Ollama no call ids.
json request_view(const ChatRequest& r, Provider provider) {
  const bool ids = provider != Provider::ollama;
  json out = json::array();
  std::string system;
  for (const auto& m : r.messages) {
    if (provider == Provider::anthropic && m.role == "system") {
      system += (system.empty() ? "" : "\n\n") + text_of(m);
      continue;
    }
    json calls = json::array(), call_ids = json::array();
    for (const auto& c : m.tool_calls) {
      calls.push_back({{"name", c.name}, {"args", json::parse(c.arguments)}});
      call_ids.push_back(c.id);
    }
    out.push_back(view_message(m.role, text_of(m), calls, call_ids, m.tool_call_id, ids));
  }
  if (!system.empty())
    out.insert(out.begin(), view_message("system", system, json::array(), json::array(), "", ids));
  return out;
}

// The same read back from the body the backend sends.
json body_view(const json& b, Provider provider) {
  json out = json::array();
  switch (provider) {
  case Provider::openai:
    for (const auto& m : b["messages"]) {
      json calls = json::array(), ids = json::array();
      for (const auto& c : m.value("tool_calls", json::array())) {
        calls.push_back({{"name", c["function"]["name"]},
                         {"args", json::parse(c["function"]["arguments"].get<std::string>())}});
        ids.push_back(c["id"]);
      }
      out.push_back(view_message(m["role"], m["content"].is_string() ? m["content"].get<std::string>() : "",
                                 calls, ids, m.value("tool_call_id", ""), true));
    }
    break;
  case Provider::anthropic:
    if (b.contains("system"))
      out.push_back(view_message("system", b["system"], json::array(), json::array(), "", true));
    for (const auto& m : b["messages"]) {
      std::string text;
      json calls = json::array(), ids = json::array();
      for (const auto& block : m["content"]) {
        if (block["type"] == "text") text += block["text"].get<std::string>();
        if (block["type"] == "tool_use") {
          calls.push_back({{"name", block["name"]}, {"args", block["input"]}});
          ids.push_back(block["id"]);
        }
        if (block["type"] == "tool_result") // each result is a tool message of its own
          out.push_back(view_message("tool", block["content"], json::array(), json::array(),
                                     block["tool_use_id"], true));
      }
      if (!text.empty() || !calls.empty() || m["content"].empty())
        out.push_back(view_message(m["role"], text, calls, ids, "", true));
    }
    break;
  case Provider::ollama:
    for (const auto& m : b["messages"]) {
      json calls = json::array();
      for (const auto& c : m.value("tool_calls", json::array()))
        calls.push_back({{"name", c["function"]["name"]}, {"args", c["function"]["arguments"]}});
      out.push_back(view_message(m["role"], m["content"], calls, json::array(), "", false));
    }
    break;
  }
  return out;
}

// Sampling as the backend spells it: {temperature, top_p, max_tokens, stop}.
json body_params(const json& b, Provider provider) {
  const json p = provider == Provider::ollama ? b.value("options", json::object()) : b;
  const char* max = provider == Provider::ollama ? "num_predict" : "max_tokens";
  const char* stop = provider == Provider::anthropic ? "stop_sequences" : "stop";
  return {{"temperature", p.value("temperature", json())},
          {"top_p", p.value("top_p", json())},
          {"max_tokens", p.value(max, json())},
          {"stop", p.value(stop, json())}};
}

TEST(RoundTrip, EachFrontsConversationReachesEachBackendWithItsMessagesAndParameters) {
  const std::vector<std::pair<std::string, Provider>> backends = {
      {"openai", Provider::openai}, {"anthropic", Provider::anthropic}, {"ollama", Provider::ollama}};
  int pairs = 0;
  for (const auto& fc : front_cases()) {
    const ChatRequest r = fc.front->parse(fc.body);
    // The front understood the conversation (else the matrix would compare nothing with nothing).
    ASSERT_GE(r.messages.size(), 2u) << fc.name;
    EXPECT_EQ(r.messages.front().role, "system") << fc.name;
    EXPECT_EQ(text_of(r.messages.front()), "Be brief.") << fc.name;
    EXPECT_EQ(text_of(r.messages[1]), "Weather in Paris?") << fc.name;
    EXPECT_EQ(r.sampling.temperature, 0.5) << fc.name;
    EXPECT_EQ(r.sampling.top_p, 0.9) << fc.name;
    EXPECT_EQ(r.sampling.max_tokens, 64) << fc.name;
    EXPECT_EQ(r.sampling.stop, fc.stop ? std::vector<std::string>{"END"} : std::vector<std::string>{})
        << fc.name;
    if (fc.tools) {
      ASSERT_EQ(r.messages.size(), 6u) << fc.name;
      ASSERT_EQ(r.messages[2].tool_calls.size(), 1u) << fc.name;
      EXPECT_EQ(json::parse(r.messages[2].tool_calls[0].arguments), json({{"city", "Paris"}})) << fc.name;
      EXPECT_EQ(r.messages[3].role, "tool") << fc.name;
      EXPECT_EQ(r.messages[3].tool_call_id, r.messages[2].tool_calls[0].id)
          << fc.name << ": the tool result names the call it answers";
      EXPECT_EQ(text_of(r.messages[5]), "Thanks!") << fc.name;
      ASSERT_EQ(r.tools.size(), 1u) << fc.name;
    }

    for (const auto& [backend_name, provider] : backends) {
      SCOPED_TRACE(fc.name + " -> " + backend_name);
      ++pairs;
      const BackendAdapter& backend = backend_for(provider);
      EXPECT_TRUE(backend.unsupported(r).empty()) << "the gateway would refuse this pair";
      const json b = json::parse(backend.request(model_config(provider, "http://127.0.0.1:1"), r).body);
      EXPECT_EQ(b["model"], "upstream-name");
      EXPECT_EQ(b["stream"], true);
      EXPECT_EQ(body_view(b, provider), request_view(r, provider));
      EXPECT_EQ(body_params(b, provider), json({{"temperature", 0.5},
                                                {"top_p", 0.9},
                                                {"max_tokens", 64},
                                                {"stop", fc.stop ? json({"END"}) : json()}}));
      if (provider == Provider::anthropic) {
        for (const auto& m : b["messages"]) {
          for (const auto& block : m["content"]) {
            const bool empty_text =
                block.value("type", std::string()) == "text" && block.value("text", std::string("-")).empty();
            EXPECT_FALSE(empty_text) << "the Messages API refuses an empty text block: " << m.dump();
          }
        }
      }
      if (fc.tools) {
        ASSERT_TRUE(b.contains("tools"));
        EXPECT_EQ(b["tools"].size(), 1u);
        const std::string tool_name =
            provider == Provider::anthropic ? b["tools"][0]["name"] : b["tools"][0]["function"]["name"];
        EXPECT_EQ(tool_name, "get_weather");
      }
    }
  }
  EXPECT_EQ(pairs, 15);
}

} // namespace
