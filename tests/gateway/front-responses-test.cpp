// The Responses front without a server: a Responses request parsed into the canonical ChatRequest and
// sent on in each backend protocol (items, function calls and their outputs, tools, tool choice,
// structured output), the answer rendered back as a Response object and as the Responses event stream
// (types, order, sequence numbers, ids, usage), and every field it cannot honour refused by name.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "chat-events.h"
#include "gateway/backend-anthropic.h"
#include "gateway/backend-ollama.h"
#include "gateway/backend-openai.h"
#include "gateway/chat.h"

namespace {

using namespace tinyroute;
using namespace tinyroute::gateway;
using namespace tinyroute::gateway::test;
using nlohmann::json;

const FrontAdapter& front() {
  static const auto f = make_responses_front();
  return *f;
}

ModelConfig model(Provider provider) {
  ModelConfig m;
  m.name = "m";
  m.provider = provider;
  m.base_url = "http://127.0.0.1:1";
  m.upstream_model = "up";
  return m;
}

json backend_body(Provider provider, const ChatRequest& r) {
  return json::parse(backend_for(provider).request(model(provider), r).body);
}

// A conversation with a function call round trip, as the openai SDK sends it on the second turn.
const json round_trip = json::parse(R"({
  "model": "auto",
  "instructions": "Be brief.",
  "input": [
    {"role": "developer", "content": "Use the tools."},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"},
                                                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
    {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
    {"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21 C"}
  ],
  "tools": [{"type": "function", "name": "get_weather", "description": "The weather.",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}],
  "tool_choice": {"type": "function", "name": "get_weather"},
  "max_output_tokens": 64, "temperature": 0.5, "top_p": 0.9,
  "metadata": {"ticket": "t-1"}, "user": "u-7", "store": false,
  "text": {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": true}}
})");

TEST(ResponsesFront, ParsesItemsIntoTheCanonicalRequest) {
  const ChatRequest r = front().parse(round_trip);
  ASSERT_EQ(r.messages.size(), 5u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(text_of(r.messages[0]), "Be brief.");
  EXPECT_EQ(r.messages[1].role, "system"); // developer
  EXPECT_EQ(r.messages[2].role, "user");
  ASSERT_EQ(r.messages[2].content.size(), 2u);
  EXPECT_EQ(r.messages[2].content[1].kind, ContentPart::Kind::image);
  EXPECT_EQ(r.messages[2].content[1].media_type, "image/png");
  EXPECT_EQ(r.messages[3].role, "assistant");
  ASSERT_EQ(r.messages[3].tool_calls.size(), 1u);
  EXPECT_EQ(r.messages[3].tool_calls[0].id, "call_1");
  EXPECT_EQ(r.messages[3].tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.messages[3].tool_calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(r.messages[4].role, "tool");
  EXPECT_EQ(r.messages[4].tool_call_id, "call_1");
  EXPECT_EQ(r.messages[4].name, "get_weather"); // found from its call: Ollama backends need it
  EXPECT_EQ(text_of(r.messages[4]), "sunny, 21 C");
  ASSERT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.tools[0].name, "get_weather");
  EXPECT_EQ(r.tools[0].strict, true);
  EXPECT_EQ(r.tool_choice.mode, "function");
  EXPECT_EQ(r.tool_choice.name, "get_weather");
  EXPECT_EQ(r.sampling.max_tokens, 64);
  EXPECT_EQ(r.sampling.temperature, 0.5);
  EXPECT_EQ(r.user, "u-7");
  EXPECT_EQ(r.format, json({{"type", "object"}}));
  EXPECT_EQ(r.format_name, "answer");
  EXPECT_EQ(r.protocol, "openai");
  EXPECT_TRUE(r.extras.empty());
  EXPECT_FALSE(r.stream);

  const ChatRequest s = front().parse({{"model", "m"}, {"input", "hi"}, {"stream", true}});
  ASSERT_EQ(s.messages.size(), 1u);
  EXPECT_EQ(s.messages[0].role, "user");
  EXPECT_EQ(text_of(s.messages[0]), "hi");
  EXPECT_TRUE(s.stream);
}

TEST(ResponsesFront, ReachesAnOpenAICompatibleBackendAsChatCompletions) {
  const json b = backend_body(Provider::openai, front().parse(round_trip));
  EXPECT_EQ(b["model"], "up");
  ASSERT_EQ(b["messages"].size(), 5u);
  EXPECT_EQ(
      b["messages"][3]["tool_calls"][0],
      json::parse(
          R"({"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}})"));
  EXPECT_EQ(b["messages"][4],
            json::parse(R"({"role":"tool","content":"sunny, 21 C","tool_call_id":"call_1"})"));
  EXPECT_EQ(b["tools"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(b["tools"][0]["function"]["strict"], true);
  EXPECT_EQ(b["tool_choice"], json::parse(R"({"type":"function","function":{"name":"get_weather"}})"));
  EXPECT_EQ(b["max_tokens"], 64);
  EXPECT_EQ(b["user"], "u-7");
  EXPECT_EQ(
      b["response_format"],
      json::parse(
          R"({"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"},"strict":true}})"));
  EXPECT_FALSE(b.contains("metadata")) << "metadata is echoed by tinyroute, not sent on";
  EXPECT_TRUE(backend_for(Provider::openai).unsupported(front().parse(round_trip)).empty());
}

TEST(ResponsesFront, ReachesAnAnthropicBackendAsMessages) {
  json body = round_trip;
  body.erase("text"); // Anthropic has no structured-output format: refused, see below
  for (auto& t : body["tools"]) t.erase("strict");
  const ChatRequest r = front().parse(body);
  EXPECT_TRUE(backend_for(Provider::anthropic).unsupported(r).empty());
  const json b = backend_body(Provider::anthropic, r);
  EXPECT_EQ(b["system"], "Be brief.\n\nUse the tools.");
  ASSERT_EQ(b["messages"].size(), 3u);
  EXPECT_EQ(
      b["messages"][1]["content"][0],
      json::parse(R"({"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}})"));
  EXPECT_EQ(b["messages"][2]["content"][0],
            json::parse(R"({"type":"tool_result","tool_use_id":"call_1","content":"sunny, 21 C"})"));
  EXPECT_EQ(b["tool_choice"], json::parse(R"({"type":"tool","name":"get_weather"})"));
  EXPECT_EQ(b["metadata"], json::parse(R"({"user_id":"u-7"})"));
  EXPECT_EQ(b["max_tokens"], 64);

  const auto missing = backend_for(Provider::anthropic).unsupported(front().parse(round_trip));
  EXPECT_EQ(missing, (std::vector<std::string>{"format", "tools.strict"}));
  EXPECT_EQ(front().param_name("format"), "text.format");
}

TEST(ResponsesFront, ReachesAnOllamaBackendAsChat) {
  json body = round_trip;
  body.erase("tool_choice");
  body.erase("user");
  for (auto& t : body["tools"]) t.erase("strict");
  const ChatRequest r = front().parse(body);
  EXPECT_TRUE(backend_for(Provider::ollama).unsupported(r).empty());
  const json b = backend_body(Provider::ollama, r);
  EXPECT_EQ(b["messages"][3]["tool_calls"][0]["function"],
            json::parse(R"({"name":"get_weather","arguments":{"city":"Paris"}})"));
  EXPECT_EQ(b["messages"][4],
            json::parse(R"({"role":"tool","content":"sunny, 21 C","tool_name":"get_weather"})"));
  EXPECT_EQ(b["options"]["num_predict"], 64);
  EXPECT_EQ(b["format"], json({{"type", "object"}}));

  // What Ollama's chat API cannot do, named.
  const auto missing = backend_for(Provider::ollama).unsupported(front().parse(round_trip));
  EXPECT_EQ(missing, (std::vector<std::string>{"tool_choice", "user", "tools.strict"}));
}

TEST(ResponsesFront, RefusesWhatItCannotHonourNamingTheField) {
  const json base = {{"model", "auto"}, {"input", "hi"}};
  const std::vector<std::pair<json, std::string>> table = {
      {{{"previous_response_id", "resp_1"}}, "'previous_response_id'"},
      {{{"store", true}}, "'store'"},
      {{{"conversation", "conv_1"}}, "'conversation'"},
      {{{"background", true}}, "'background'"},
      {{{"reasoning", {{"effort", "high"}}}}, "'reasoning'"},
      {{{"truncation", "auto"}}, "'truncation'"},
      {{{"top_logprobs", 3}}, "'top_logprobs'"},
      {{{"max_tool_calls", 2}}, "'max_tool_calls'"},
      {{{"prompt", {{"id", "pmpt_1"}}}}, "'prompt'"},
      {{{"include", {"message.output_text.logprobs"}}}, "'include[0]'"},
      {{{"text", {{"verbosity", "low"}}}}, "'text.verbosity'"},
      {{{"text", {{"format", {{"type", "xml"}}}}}}, "'text.format.type'"},
      {{{"tools", {{{"type", "web_search"}}}}}, "'tools[0].type'"},
      {{{"tool_choice", {{"type", "allowed_tools"}}}}, "'tool_choice'"},
      {{{"input", {{{"type", "item_reference"}, {"id", "msg_1"}}}}}, "'input[0].type'"},
      {{{"input", {{{"role", "user"}, {"content", {{{"type", "input_file"}, {"file_id", "f"}}}}}}}},
       "'input[0].content[0].type'"},
      {{{"input", {{{"type", "function_call_output"}, {"output", "x"}}}}}, "'input[0].call_id'"},
      {{{"input", json::array()}}, "'input'"},
      {{{"frequency_penalty", 1}}, "Unrecognized request argument supplied: frequency_penalty"},
      {{{"max_output_tokens", 0}}, "'max_output_tokens'"},
      {{{"metadata", {{"k", 1}}}}, "'metadata.k'"},
  };
  for (const auto& [patch, named] : table) {
    json body = base;
    body.update(patch);
    SCOPED_TRACE(body.dump());
    try {
      front().parse(body);
      ADD_FAILURE() << "accepted";
    } catch (const FrontError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_EQ(e.type, "invalid_request_error");
      EXPECT_NE(std::string(e.what()).find(named), std::string::npos) << e.what();
    }
  }
  // Their harmless values pass: nothing stored, nothing to include, no reasoning to return.
  json fine = base;
  fine.update({{"store", false},
               {"previous_response_id", nullptr},
               {"include", {"reasoning.encrypted_content"}},
               {"truncation", "disabled"},
               {"background", false},
               {"top_logprobs", 0},
               {"stream_options", {{"include_obfuscation", false}}}});
  EXPECT_NO_THROW(front().parse(fine));
}

// The SSE events of one answer, as (type, data).
std::vector<std::pair<std::string, json>> events_of(const std::string& sse_text) {
  SseParser parser;
  std::vector<std::pair<std::string, json>> out;
  for (auto& e : parser.feed(sse_text)) out.emplace_back(e.event, json::parse(e.data));
  return out;
}

TEST(ResponsesFront, StreamsTheResponsesEventsInOrder) {
  const ChatRequest r = front().parse(round_trip);
  auto stream = front().stream(r, "big");
  std::string sse_text = stream->start();
  for (const auto& e :
       {text_event("Hel"), text_event("lo"), call_event(0, "call_9", "get_weather", "{\"city\""),
        call_event(0, "", "", ":\"Rome\"}"), call_event(1, "call_10", "get_time", ""), usage_event(12, 7),
        finish_event("tool_calls")})
    sse_text += stream->event(e);
  sse_text += stream->finish();
  const auto events = events_of(sse_text);

  std::vector<std::string> types;
  for (const auto& [name, data] : events) {
    EXPECT_EQ(name, data["type"]) << "the SSE event name is the data's type";
    EXPECT_EQ(data["sequence_number"], static_cast<int>(types.size()));
    types.push_back(name);
  }
  const std::vector<std::string> expected = {"response.created",
                                             "response.in_progress",
                                             "response.output_item.added",
                                             "response.content_part.added",
                                             "response.output_text.delta",
                                             "response.output_text.delta",
                                             "response.output_text.done",
                                             "response.content_part.done",
                                             "response.output_item.done",
                                             "response.output_item.added",
                                             "response.function_call_arguments.delta",
                                             "response.function_call_arguments.delta",
                                             "response.function_call_arguments.done",
                                             "response.output_item.done",
                                             "response.output_item.added",
                                             "response.function_call_arguments.done",
                                             "response.output_item.done",
                                             "response.completed"};
  EXPECT_EQ(types, expected);

  const json& created = events[0].second["response"];
  EXPECT_EQ(created["status"], "in_progress");
  EXPECT_EQ(created["object"], "response");
  EXPECT_EQ(created["metadata"], json({{"ticket", "t-1"}}));
  EXPECT_EQ(created["instructions"], "Be brief.");
  const std::string message_id = events[2].second["item"]["id"];
  EXPECT_EQ(message_id.rfind("msg_", 0), 0u);
  EXPECT_EQ(events[4].second["item_id"], message_id);
  EXPECT_EQ(events[6].second["text"], "Hello");
  EXPECT_EQ(events[9].second["output_index"], 1);
  EXPECT_EQ(events[9].second["item"]["call_id"], "call_9");
  EXPECT_EQ(events[9].second["item"]["name"], "get_weather");
  EXPECT_EQ(events[12].second["arguments"], R"({"city":"Rome"})");
  EXPECT_EQ(events[14].second["output_index"], 2);

  const json& done = events.back().second["response"];
  EXPECT_EQ(done["id"], created["id"]) << "one response id throughout";
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(done["model"], "big");
  ASSERT_EQ(done["output"].size(), 3u);
  EXPECT_EQ(done["output"][0]["content"][0]["text"], "Hello");
  EXPECT_EQ(done["output"][1], json({{"id", events[9].second["item"]["id"]},
                                     {"type", "function_call"},
                                     {"status", "completed"},
                                     {"call_id", "call_9"},
                                     {"name", "get_weather"},
                                     {"arguments", R"({"city":"Rome"})"}}));
  EXPECT_EQ(done["output"][2]["name"], "get_time");
  EXPECT_EQ(done["usage"]["input_tokens"], 12);
  EXPECT_EQ(done["usage"]["output_tokens"], 7);
  EXPECT_EQ(done["usage"]["total_tokens"], 19);
}

TEST(ResponsesFront, AnAnswerCutShortIsIncompleteAndABrokenOneFails) {
  const ChatRequest r = front().parse({{"model", "m"}, {"input", "hi"}, {"stream", true}});
  auto cut = front().stream(r, "m");
  std::string sse_text = cut->start(); // one call at a time: each numbers its events
  sse_text += cut->event(text_event("a"));
  sse_text += cut->event(finish_event("length"));
  sse_text += cut->finish();
  auto events = events_of(sse_text);
  EXPECT_EQ(events.back().first, "response.incomplete");
  EXPECT_EQ(events.back().second["response"]["incomplete_details"]["reason"], "max_output_tokens");

  auto broken = front().stream(r, "m");
  sse_text = broken->start();
  sse_text += broken->event(text_event("a"));
  sse_text += broken->event(upstream_error("the upstream died"));
  events = events_of(sse_text);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[events.size() - 2].first, "error");
  EXPECT_EQ(events[events.size() - 2].second["message"], "the upstream died");
  EXPECT_EQ(events.back().first, "response.failed");
  EXPECT_EQ(events.back().second["response"]["status"], "failed");
  EXPECT_EQ(events.back().second["response"]["error"]["message"], "the upstream died");
  EXPECT_EQ(events.back().second["response"]["output"][0]["content"][0]["text"], "a") << "what came is kept";
}

TEST(ResponsesFront, RendersAWholeAnswerAsAResponseObject) {
  const ChatRequest r = front().parse(round_trip);
  ChatResult res;
  for (const auto& e :
       {text_event("It is "), text_event("sunny."), call_event(0, "call_3", "get_weather", "{}"),
        usage_event(30, 5), finish_event("length")})
    accumulate(res, e);
  const json out = front().render(res, r, "big");
  EXPECT_EQ(out["object"], "response");
  EXPECT_EQ(out["id"].get<std::string>().rfind("resp_", 0), 0u);
  EXPECT_EQ(out["status"], "incomplete");
  EXPECT_EQ(out["incomplete_details"]["reason"], "max_output_tokens");
  EXPECT_EQ(out["model"], "big");
  ASSERT_EQ(out["output"].size(), 2u);
  EXPECT_EQ(out["output"][0]["type"], "message");
  EXPECT_EQ(out["output"][0]["role"], "assistant");
  EXPECT_EQ(out["output"][0]["content"][0], json({{"type", "output_text"},
                                                  {"text", "It is sunny."},
                                                  {"annotations", json::array()},
                                                  {"logprobs", json::array()}}));
  EXPECT_EQ(out["output"][1]["type"], "function_call");
  EXPECT_EQ(out["output"][1]["call_id"], "call_3");
  EXPECT_EQ(out["usage"]["input_tokens"], 30);
  EXPECT_EQ(out["usage"]["output_tokens"], 5);
  // The request's settings come back, as OpenAI's do.
  EXPECT_EQ(out["metadata"], json({{"ticket", "t-1"}}));
  EXPECT_EQ(out["instructions"], "Be brief.");
  EXPECT_EQ(out["max_output_tokens"], 64);
  EXPECT_EQ(out["tool_choice"], round_trip["tool_choice"]);
  EXPECT_EQ(out["tools"], round_trip["tools"]);
  EXPECT_EQ(out["store"], false);
  EXPECT_EQ(out["previous_response_id"], nullptr);

  ChatResult failed;
  accumulate(failed, upstream_error("gone"));
  const json f = front().render(failed, r, "big");
  EXPECT_EQ(f["status"], "failed");
  EXPECT_EQ(f["error"]["message"], "gone");
}

} // namespace
