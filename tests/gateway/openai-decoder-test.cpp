// The OpenAI-compatible stream decoder reads common chunks in one pass, without a JSON DOM. Whatever a
// server sends, its events must equal those of the DOM decoder (openai_reference_decoder): the same
// events in the same order, the same finish, the same exceptions. Checked on chunks from real servers,
// on edge cases, and on seeded random mutations of both.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gateway/backend-openai.h"

namespace {

using namespace tinyroute;
using namespace tinyroute::gateway;

const std::vector<std::string> kChunks = {
    // llama-server / vLLM / OpenAI, in the order they come
    R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]})",
    R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}]})",
    R"({"choices":[{"index":0,"delta":{"content":"lo \u00e9\n\"q\" \ud83d\ude00"},"finish_reason":null}],"system_fingerprint":"fp"})",
    R"({"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})",
    R"({"id":"c1","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46,"prompt_tokens_details":{"cached_tokens":0}}})",
    R"({"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":2}})",
    R"({"choices":[{"delta":{"reasoning_content":"think","content":""}}]})",
    R"({"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"},"finish_reason":"stop"}]})",
    R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\""}}]}}]})",
    R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]})",
    R"({"error":{"message":"model overloaded","type":"server_error"}})",
    R"({"error":"plain"})",
    R"({"choices":[{"delta":{"content":"late"}}],"error":{"message":"after"}})",
    // shapes a careless server might send
    R"({"choices":{"delta":{"content":"not an array"}}})",
    R"({"choices":[1,"two",null,[3],{"delta":"str"},{"delta":[{"content":"in array"}]}]})",
    R"({"choices":[{"delta":{"content":5}}],"usage":null})",
    R"({"choices":[{"finish_reason":""}]})",
    R"({"choices":[{"finish_reason":7}]})",
    R"({"choices":[{"finish_reason":"stop","finish_reason":null}]})",
    R"({"choices":[{"delta":{"content":"one","content":"two"}}]})",
    R"({"choices":[{"delta":{"content":"first"}}],"choices":[{"delta":{"content":"second"}}]})",
    R"({"usage":{"prompt_tokens":1.5,"completion_tokens":2}})",
    R"({"usage":{"prompt_tokens":-3,"completion_tokens":4294967296}})",
    R"({"usage":{}})",
    R"({"usage":{"prompt_tokens":"12"}})",
    R"({"usage":{"completion_tokens":null}})",
    R"({"nested":{"choices":[{"delta":{"content":"hidden"}}],"usage":{"prompt_tokens":9}}})",
    R"({"choices":[{"delta":{"content":"x","extra":{"content":"y","tool_calls":[]}}}]})",
    R"([{"choices":[]}])",
    R"("a string")",
    R"(42)",
    R"(null)",
    R"({})",
    R"({"choices":[{"delta":{"content":"trailing"}}]} x)",
    R"({"choices":[{"delta":{"content":"cut)",
    R"(not json at all)",
    "",
};

void expect_same(const std::vector<ChatEvent>& fast, const std::vector<ChatEvent>& ref,
                 const std::string& what) {
  ASSERT_EQ(fast.size(), ref.size()) << what;
  for (std::size_t i = 0; i < fast.size(); ++i) {
    const ChatEvent& a = fast[i];
    const ChatEvent& b = ref[i];
    EXPECT_EQ(static_cast<int>(a.kind), static_cast<int>(b.kind)) << what << " event " << i;
    EXPECT_EQ(a.text, b.text) << what << " event " << i;
    EXPECT_EQ(a.tool_index, b.tool_index) << what << " event " << i;
    EXPECT_EQ(a.tool_id, b.tool_id) << what << " event " << i;
    EXPECT_EQ(a.tool_name, b.tool_name) << what << " event " << i;
    EXPECT_EQ(a.tool_arguments, b.tool_arguments) << what << " event " << i;
    EXPECT_EQ(a.finish_reason, b.finish_reason) << what << " event " << i;
    EXPECT_EQ(a.prompt_tokens, b.prompt_tokens) << what << " event " << i;
    EXPECT_EQ(a.completion_tokens, b.completion_tokens) << what << " event " << i;
    EXPECT_EQ(a.error_type, b.error_type) << what << " event " << i;
  }
}

// All events of one SSE body, or the exception's message when decoding threw.
struct Decoded {
  std::vector<ChatEvent> events;
  std::optional<std::string> threw;
};
Decoded decode(BackendDecoder& d, const std::string& body) {
  Decoded out;
  try {
    out.events = d.feed(body);
    for (auto& e : d.end()) out.events.push_back(std::move(e));
  } catch (const std::exception& e) {
    out.threw = e.what();
  }
  return out;
}

void expect_agree(const std::string& body, const std::string& what) {
  auto fast = openai_backend().decoder();
  auto ref = openai_reference_decoder();
  const Decoded a = decode(*fast, body);
  const Decoded b = decode(*ref, body);
  EXPECT_EQ(a.threw, b.threw) << what;
  expect_same(a.events, b.events, what);
}

std::string sse(const std::string& data) {
  return "data: " + data + "\n\n";
}

TEST(OpenAIDecoder, EachChunkGivesTheDomDecodersEvents) {
  for (const auto& c : kChunks) expect_agree(sse(c), c);
}

TEST(OpenAIDecoder, AWholeStreamGivesTheDomDecodersEvents) {
  std::string body;
  for (const auto& c : kChunks) body += sse(c);
  expect_agree(body, "all chunks");
  expect_agree(body + "data: [DONE]\n\n", "all chunks, then [DONE]");
}

TEST(OpenAIDecoder, TheCommonChunksAreReadAsExpected) {
  // Not only agreement: the common answer decodes to its text, finish and usage.
  auto d = openai_backend().decoder();
  const Decoded got = decode(*d, sse(kChunks[0]) + sse(kChunks[1]) + sse(kChunks[2]) + sse(kChunks[3]) +
                                     sse(kChunks[4]) + "data: [DONE]\n\n");
  ASSERT_FALSE(got.threw);
  ASSERT_EQ(got.events.size(), 4u);
  EXPECT_EQ(got.events[0].text, "Hel");
  EXPECT_EQ(got.events[1].text, "lo \u00e9\n\"q\" \U0001F600");
  EXPECT_EQ(got.events[2].kind, ChatEvent::Kind::usage);
  EXPECT_EQ(got.events[2].prompt_tokens, 12);
  EXPECT_EQ(got.events[2].completion_tokens, 34);
  EXPECT_EQ(got.events[3].kind, ChatEvent::Kind::finish);
  EXPECT_EQ(got.events[3].finish_reason, "stop");
}

TEST(OpenAIDecoder, TheOnePassReaderTakesTheCommonChunksAndGivesUpOnTheRest) {
  for (std::size_t i = 0; i <= 7; ++i) EXPECT_TRUE(openai_chunk_read_in_one_pass(kChunks[i])) << kChunks[i];
  for (const char* rest : {
           R"({"choices":[{"delta":{"tool_calls":[]}}]})",
           R"({"error":{"message":"x"}})",
           R"({"choices":[{"delta":{"content":"one","content":"two"}}]})",
           R"({"usage":{"prompt_tokens":"12"}})",
           R"({"usage":{"prompt_tokens":1.5}})",
           R"([{"choices":[]}])",
           R"({"choices":[{"delta":{"content":"cut)",
       })
    EXPECT_FALSE(openai_chunk_read_in_one_pass(rest)) << rest;
}

TEST(OpenAIDecoder, RandomMutationsGiveTheDomDecodersEvents) {
  std::mt19937 rng(20261129);
  const std::string alphabet = "{}[]\":,0123456789-.eE \\nulltruefalse\"content\"\"delta\"\"usage\"";
  int cases = 0;
  for (const auto& c : kChunks) {
    for (int round = 0; round < 60; ++round) {
      std::string m = c;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !m.empty(); ++e) {
        const std::size_t at = rng() % m.size();
        switch (rng() % 3) {
        case 0:
          m[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          m.erase(at, 1 + rng() % 3);
          break;
        default:
          m.insert(at, 1, alphabet[rng() % alphabet.size()]);
        }
      }
      // The SSE framing is not under test: keep the data on one line.
      for (auto& ch : m) {
        if (ch == '\n' || ch == '\r') ch = ' ';
      }
      expect_agree(sse(m), m);
      ++cases;
    }
  }
  EXPECT_EQ(cases, static_cast<int>(kChunks.size()) * 60);
}

} // namespace
