// The canonical middle: helpers around ChatRequest / ChatEvent and the two adapter interfaces.
// A front adapter parses one client protocol into ChatRequest and renders ChatEvents back into it; a
// backend adapter turns ChatRequest into an upstream HTTP request and the upstream's (streamed)
// answer into ChatEvents. Neither side knows the other.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/http-client.h"
#include "tinyroute/gateway.h"

namespace tinyroute::gateway {

using nlohmann::json;

// A request the client got wrong (or a refusal): becomes `status` with the protocol's error body.
struct FrontError : std::runtime_error {
  FrontError(int status_, std::string type_, const std::string& message)
      : std::runtime_error(message), status(status_), type(std::move(type_)) {}
  int status;
  std::string type; // e.g. invalid_request_error, internal_model_forbidden, model_not_found
};

// A whole answer, folded from the event stream (for clients that did not ask to stream).
struct ChatResult {
  std::string text;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  bool failed = false;
  std::string error;
};
void accumulate(ChatResult& result, const ChatEvent& event);

// Renders one answer stream in a front protocol: start() once, event() per ChatEvent, finish() once
// (unless an error event ended it). Each returns the bytes to write (possibly empty).
class FrontStream {
public:
  virtual ~FrontStream() = default;
  virtual std::string start() = 0;
  virtual std::string event(const ChatEvent& event) = 0;
  virtual std::string finish() = 0;
};

class FrontAdapter {
public:
  virtual ~FrontAdapter() = default;
  virtual std::string protocol() const = 0; // openai | anthropic | ollama
  // Throws FrontError(400, ...) with a message naming the bad field.
  virtual ChatRequest parse(const json& body) const = 0;
  virtual json render(const ChatResult& result, const ChatRequest& request,
                      const std::string& model) const = 0;
  virtual std::unique_ptr<FrontStream> stream(const ChatRequest& request, const std::string& model) const = 0;
  virtual std::string stream_content_type() const = 0;
  virtual json error(int status, const std::string& type, const std::string& message) const = 0;
  // A canonical parameter's name as this protocol spells it, for errors: "seed" is Ollama's
  // "options.seed", "stop" Anthropic's "stop_sequences", "format" OpenAI's "response_format".
  virtual std::string param_name(const std::string& canonical) const { return canonical; }
};

// An OpenAI-shaped error body. `code` is tinyroute's error code; `type` is the same, except where
// OpenAI files the code under invalid_request_error (context_length_exceeded), so SDKs read it as
// OpenAI's own.
json openai_error(const std::string& code, const std::string& message);

std::unique_ptr<FrontAdapter> make_openai_front();
std::unique_ptr<FrontAdapter> make_anthropic_front();
std::unique_ptr<FrontAdapter> make_ollama_chat_front();
std::unique_ptr<FrontAdapter> make_ollama_generate_front();
std::unique_ptr<FrontAdapter> make_responses_front(); // front-responses.cpp

// Turns upstream body bytes into events, chunk by chunk. end() is called when the body ended; it
// reports an error event if the upstream never said it was finished.
class BackendDecoder {
public:
  virtual ~BackendDecoder() = default;
  virtual std::vector<ChatEvent> feed(std::string_view bytes) = 0;
  virtual std::vector<ChatEvent> end() = 0;
};

class BackendAdapter {
public:
  virtual ~BackendAdapter() = default;
  // Always asks the upstream to stream. Reads the API key from the environment (never logged).
  virtual ClientRequest request(const ModelConfig& model, const ChatRequest& request) const = 0;
  virtual std::unique_ptr<BackendDecoder> decoder() const = 0;
  // What of `request` this backend's protocol cannot carry: canonical parameter names (seed, format,
  // tool_choice, user, ...) and the names of extras from another protocol (see extras_names); empty
  // when it carries everything. Such a request is never sent here with those dropped.
  virtual std::vector<std::string> unsupported(const ChatRequest& request) const = 0;
  // The human message inside an upstream error body (falls back to the raw body, truncated).
  virtual std::string error_message(const std::string& body) const;
};

const BackendAdapter& backend_for(Provider provider);

// ---- small shared helpers ----

// Splits a byte stream into lines (\n or \r\n), keeping a partial tail for the next feed.
class LineSplitter {
public:
  std::vector<std::string> feed(std::string_view bytes);
  std::string take_rest();

private:
  std::string pending_;
};

// Incremental SSE parser: yields (event name, data) per blank-line-terminated event.
struct SseEvent {
  std::string event;
  std::string data;
};
class SseParser {
public:
  std::vector<SseEvent> feed(std::string_view bytes);

private:
  LineSplitter lines_;
  SseEvent current_;
  bool has_data_ = false;
};

std::string sse(const json& data, const std::string& event = "");
std::string random_id(const std::string& prefix);
long long unix_time();
std::string iso_time();
std::string text_of(const ChatMessage& message); // concatenated text parts
std::string join_url(const std::string& base, const std::string& path);
std::string api_key(const ModelConfig& model); // empty when none configured; throws if env var unset

// Typed access to optional JSON fields; a present field of the wrong type throws FrontError(400)
// naming it ("messages[2].content must be a string or an array").
std::optional<std::string> opt_string(const json& object, const char* name, const std::string& where);
std::optional<double> opt_number(const json& object, const char* name, const std::string& where);
std::optional<int> opt_int(const json& object, const char* name, const std::string& where); // int range
std::optional<std::int64_t> opt_int64(const json& object, const char* name, const std::string& where);
std::optional<bool> opt_bool(const json& object, const char* name, const std::string& where);
const json* opt_array(const json& object, const char* name, const std::string& where);
const json* opt_object(const json& object, const char* name, const std::string& where);
[[noreturn]] void bad_request(const std::string& message);
// Stop sequences given as a string or an array of strings.
std::vector<std::string> string_or_array(const json& object, const char* name, const std::string& where);
std::string truncate(std::string s, std::size_t n); // at most n bytes, cut between characters
// An error event of type upstream_error: the upstream failed or sent something unreadable.
ChatEvent upstream_error(std::string message);
// "data:image/png;base64,AAAA" -> image part with media_type + data; anything else -> url part.
ContentPart image_from_url(const std::string& url);
std::string data_url(const ContentPart& image);
json parse_arguments(const std::string& arguments); // tool-call JSON text -> object ({} if not JSON)
// The names of an extras-shaped object's fields, as the client spelled them: each top-level key, and
// each entry of an Ollama "options" object as "options.<name>".
std::vector<std::string> field_names(const json& fields);
std::vector<std::string> extras_names(const ChatRequest& request); // field_names(request.extras)
// Ollama's options that say how its server runs the model (memory, threads, context size), not what
// the model answers: num_ctx, num_batch, num_gpu, main_gpu, num_thread, numa, low_vram, f16_kv,
// vocab_only, use_mmap, use_mlock.
bool runner_option(const std::string& name);
// The x-tinyroute-unapplied header's value for `hints` (ChatRequest::hints) sent to a backend of
// `provider`: their names, comma-separated; empty when there are none or the backend is Ollama's.
std::string unapplied(const json& hints, Provider provider);
// A tool_choice that asks for a call (required, or a named function) needs `tools`, and a named one must
// be among them: else a 400 naming `field` (the front's spelling of tool_choice).
void check_tool_choice(const ChatRequest& request, const std::string& field = "tool_choice");
// Whether a tool asks for strict schema adherence (OpenAI's strict: true).
bool strict_tools(const ChatRequest& request);
// A field a request may only give as `allowed` (n: 1, logprobs: false): absent, null or equal passes; any
// other value is a 400 naming the field ("'n' is not supported: " + why).
void refuse_unless(const json& object, const char* name, const json& allowed, const std::string& why,
                   const std::string& where = "");

// Reading what an upstream sent, which may be anything: `object[key]` as an int when it is a number
// an int can hold (a fraction is cut), else `fallback`. Never throws, never converts out of range.
int upstream_int(const json& object, const char* key, int fallback = 0);
// The most tool calls one answer may carry; an upstream's call index outside [0, this) is refused.
inline constexpr int kMaxToolCalls = 256;

} // namespace tinyroute::gateway
