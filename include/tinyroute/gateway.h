// tinyroute gateway: an HTTP server that speaks the OpenAI, Anthropic and Ollama APIs, asks a Router
// (the caller's classifier) which large model should answer, and forwards the request there.
//
// Every front protocol is parsed into one canonical ChatRequest; every backend answer is turned into a
// stream of ChatEvents; each front renders that stream back in its own protocol (N + M adapters, not
// N x M). The internal small model is never an answer model: naming it is refused with a 4xx.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tinyroute/config.h"
#include "tinyroute/engine.h"
#include "tinyroute/select.h"

namespace tinyroute {

// ---- canonical request -------------------------------------------------------------------------

struct ContentPart {
  enum class Kind { text, image };
  Kind kind = Kind::text;
  std::string text;       // Kind::text
  std::string url;        // Kind::image given by URL (http(s)://); empty when inline
  std::string media_type; // Kind::image inline: e.g. image/png
  std::string data;       // Kind::image inline: base64 bytes
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments; // JSON text, as the model produced it
};

struct ChatMessage {
  std::string role; // system | user | assistant | tool
  std::vector<ContentPart> content;
  std::vector<ToolCall> tool_calls; // assistant turns that called tools
  std::string tool_call_id;         // role == tool: which call this answers
  std::string name;                 // optional participant / tool name
};

struct ToolSpec {
  std::string name;
  std::string description;
  nlohmann::json parameters = nlohmann::json::object(); // JSON schema
  std::optional<bool> strict;                           // OpenAI's strict schema adherence for the arguments
};

struct SamplingParams {
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int> top_k;
  std::optional<int> max_tokens;
  std::vector<std::string> stop;
  std::optional<std::int64_t> seed;
  std::optional<double> presence_penalty;
  std::optional<double> frequency_penalty;
};

// Which tools the model may or must call, in every protocol's terms: OpenAI's "auto" | "none" |
// "required" | {function: {name}}, Anthropic's auto | none | any | tool, Responses' the same as OpenAI's.
struct ToolChoice {
  std::string mode; // "" (unspecified) | auto | none | required | function
  std::string name; // mode == function: the tool that must be called
};

struct ChatRequest {
  std::string model; // as the client named it
  std::vector<ChatMessage> messages;
  SamplingParams sampling;
  std::vector<ToolSpec> tools;
  ToolChoice tool_choice;
  std::optional<bool>
      parallel_tool_calls; // false: at most one tool call (Anthropic's disable_parallel_tool_use)
  std::string user;        // the end user's id: OpenAI's `user`, Anthropic's metadata.user_id
  bool stream = false;
  // The dialect of `extras`: openai | anthropic | ollama (the Responses front speaks OpenAI's).
  std::string protocol;
  // MLX-server dialect (/api/generate "category"): a configured category instead of a model; the
  // category's models are used and classification is skipped. Empty = none.
  std::string category;
  Priority priority = Priority::normal; // X-Request-Priority: high | medium | low
  // Cancelled when the gateway stops with this request still in flight (stop()'s drain is over): the
  // router's engine work carries it, so a shutdown does not wait for a decision nobody will read.
  CancelToken cancel;
  nlohmann::json format;             // structured output: "json" or a JSON Schema; null = free text
  std::string format_name;           // a JSON Schema format's name (OpenAI's json_schema.name)
  std::optional<bool> format_strict; // OpenAI's json_schema.strict
  // Fields tinyroute does not translate, as the client sent them: they reach backends of the same
  // protocol unchanged, and a backend of another protocol is refused (400 naming the field). An Ollama
  // request's "options" holds only the options without a canonical meaning (num_ctx, mirostat, ...).
  nlohmann::json extras = nlohmann::json::object();
  // How an Ollama server should run the model, not what it should answer: keep_alive and the runner
  // options (num_ctx, num_gpu, num_thread, use_mmap, ...), in extras' shape. They reach Ollama backends;
  // any other backend runs the model its own way, and the answer's x-tinyroute-unapplied header names
  // them instead.
  nlohmann::json hints = nlohmann::json::object();
  // What the front adapter keeps from the request to render its answer (Responses' metadata and echoed
  // fields, OpenAI's stream_options); never sent upstream.
  nlohmann::json front_state = nlohmann::json::object();
  // The x-tinyroute-conversation header (on /v1/route also a "conversation" field): routing sees the
  // conversation's earlier messages. Empty = a standalone request.
  std::string conversation;
};

// Concatenated text of all text parts of the last user message (what a router usually looks at).
std::string last_user_text(const ChatRequest& request);

// ---- canonical response stream -----------------------------------------------------------------

struct ChatEvent {
  enum class Kind { text, tool_call, finish, usage, error };
  Kind kind = Kind::text;
  std::string text;           // text: the delta; error: the message
  int tool_index = 0;         // tool_call: which call this delta extends
  std::string tool_id;        // tool_call: set on the first delta of a call
  std::string tool_name;      // tool_call: set on the first delta of a call
  std::string tool_arguments; // tool_call: a piece of the JSON arguments
  std::string finish_reason;  // finish: stop | length | tool_calls | content_filter
  int prompt_tokens = 0;      // usage
  int completion_tokens = 0;  // usage
  std::string error_type;     // error: e.g. upstream_error
};

// ---- routing hook --------------------------------------------------------------------------------

struct RouteDecision {
  std::string category;
  double confidence = 1;
  std::string model;                  // the answer model (a config.models name)
  std::vector<std::string> fallbacks; // tried in order when `model` fails before the first byte
  std::string reason;
  std::string source; // rule | model | cache | default | explicit
  double route_ms = 0;
};

nlohmann::json to_json(const RouteDecision& decision);

// Called for requests that name "auto" (or another of GatewayOptions::auto_aliases). It runs on a
// worker thread, never on the network threads, so it may take a while. May throw tinyroute::Error.
using Router = std::function<RouteDecision(const ChatRequest&)>;

// A JSON-in, JSON-out endpoint served next to the built-in ones (e.g. a native classify API). It runs
// on a worker thread, never on the network threads. The body is parsed for it (null for GET/HEAD or an
// empty body); a body that is not JSON is a 400. Errors become OpenAI-style error bodies: Error by code
// (invalid_argument 400, internal_model_forbidden 403, model_not_found 404, context_overflow 413,
// no_candidate / engine_stopped / cancelled 503, others 500), any other exception 500.
using JsonHandler = std::function<nlohmann::json(const nlohmann::json& body)>;

// What the gateway read from the request's headers for an added endpoint.
struct JsonRequestContext {
  Priority priority = Priority::normal;       // X-Request-Priority, medium when absent
  bool priority_given = false;                // the header was sent
  std::map<std::string, std::string> headers; // all of them, lower-case names
  // Cancelled when the gateway stops with the request still in flight: engine work the handler starts
  // should carry it (Error(cancelled) is then answered as a 503 "shutting down").
  CancelToken cancel;
};
using JsonContextHandler =
    std::function<nlohmann::json(const nlohmann::json& body, const JsonRequestContext& context)>;

// "high" | "medium" (also "normal") | "low", any case; nullopt for anything else.
std::optional<Priority> parse_priority(std::string_view text);
// "high" | "medium" | "low".
std::string_view priority_name(Priority priority);

// ---- the server ----------------------------------------------------------------------------------

struct GatewayOptions {
  std::string host = "127.0.0.1";
  int port = 8080; // 0 = let the OS pick; Gateway::port() says which
  std::size_t max_body_bytes = 8 << 20;
  std::size_t max_header_bytes = 16 * 1024; // larger request heads get a 431
  double request_read_timeout_s = 30;       // a client must send its whole request within this (slow clients)
  int threads = 1; // network threads, each with its own event loop; connections are spread over them
  std::vector<std::string> auto_aliases = {"auto"};
  double connect_timeout_s = 5;
  double first_byte_timeout_s = 120;
  double idle_timeout_s = 60;
  int retries = 1;              // extra tries per model on connect error / 429 / 5xx, with backoff
  double retry_backoff_s = 0.2; // first backoff; doubles per retry
  int breaker_failures = 5;     // consecutive failures that open a backend's circuit breaker
  double breaker_open_s = 30;   // how long an open breaker skips the backend before one probe
  // Idle keep-alive connections kept per http:// upstream (host:port) and network thread; 0 = a new
  // connection per forward.
  int upstream_keepalive = 64;
  // Gateway API keys: key -> the model names it may use ("*" = every model). Empty = no auth. When
  // set, every request but GET /health needs "Authorization: Bearer KEY" or "x-api-key: KEY": a
  // missing or unknown key is a 401, a model the key may not use (named, or chosen by routing) a 403.
  // Keys are never logged.
  std::map<std::string, std::vector<std::string>> api_keys;
  // CA bundle (PEM) for https:// upstreams; empty = $TINYROUTE_CA_FILE if set, else the system store.
  std::string ca_file;
  // Seconds between polls of every backend's model list (Ollama /api/tags, OpenAI /v1/models); 0 = off.
  // Models a backend lacks, or whose backend did not answer, are then unavailable (see availability()).
  double availability_poll_s = 0;
  // More Prometheus text appended to GET /metrics (e.g. the decision cache's counters); may be empty.
  std::function<std::string()> extra_metrics;
  // The internal model's state for GET /queue/stats and GET /health (e.g. loaded, engine queue depth,
  // in flight); may be empty.
  std::function<nlohmann::json()> internal_status;
  // The internal model's tokenizer: how many tokens `text` is. POST /v1/messages/count_tokens uses it
  // for a backend that cannot count (x-tinyroute-token-count: internal-estimate); empty = about four
  // bytes a token (byte-estimate). Called on a worker thread.
  std::function<int(const std::string& text)> count_tokens;
};

// The `gateway:` config section as options: listen address, body limit, and the API keys read from
// the environment variables it names. Throws Error(config_invalid) "FILE:LINE: ..." when a named
// variable is unset or empty.
GatewayOptions gateway_options_from(const Config& config);

class Gateway {
public:
  Gateway(Config config, Router router, GatewayOptions options = {});
  ~Gateway(); // stops with no drain if still running
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Adds METHOD PATH (before start()). Throws Error(invalid_argument) for a path that is already
  // served, built in or added.
  void add_json_endpoint(std::string method, std::string path, JsonHandler handler);
  // The same, for a handler that also reads the request's context (its priority header).
  void add_json_endpoint(std::string method, std::string path, JsonContextHandler handler);
  // Binds and starts serving on background threads; returns at once. Throws Error(io) if the
  // address cannot be bound.
  void start();
  int port() const;
  // Stops accepting and lets in-flight requests finish for up to `drain`. Then it cancels the engine work
  // of those still running (ChatRequest::cancel, JsonRequestContext::cancel), gives them up to a second
  // to answer with a 503, and closes everything.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(5));
  // Swaps in a new config (models, fallbacks, internal model names) for requests that start later.
  void reload(Config config);
  // What select_model must skip now: models their backend lacked (or did not answer) at the last poll,
  // and models whose backend's circuit breaker is open; each with the reason. Thread-safe.
  Availability availability() const;
  // The Prometheus text that GET /metrics serves.
  std::string metrics_text() const;

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

} // namespace tinyroute
