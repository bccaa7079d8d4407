#include "gateway/backend-openai.h"

#include <limits>
#include <optional>
#include <type_traits>

namespace tinyroute::gateway {

namespace {

json message_json(const ChatMessage& m) {
  json out = {{"role", m.role}};
  bool only_text = true;
  for (const auto& p : m.content) only_text = only_text && p.kind == ContentPart::Kind::text;
  if (only_text) {
    out["content"] = text_of(m);
  } else {
    json parts = json::array();
    for (const auto& p : m.content) {
      if (p.kind == ContentPart::Kind::text)
        parts.push_back({{"type", "text"}, {"text", p.text}});
      else
        parts.push_back({{"type", "image_url"}, {"image_url", {{"url", data_url(p)}}}});
    }
    out["content"] = parts;
  }
  if (!m.tool_calls.empty()) {
    json calls = json::array();
    for (const auto& c : m.tool_calls) {
      calls.push_back(
          {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
    out["tool_calls"] = calls;
    if (m.content.empty()) out["content"] = nullptr;
  }
  if (!m.tool_call_id.empty()) out["tool_call_id"] = m.tool_call_id;
  if (!m.name.empty() && m.role != "tool") out["name"] = m.name; // a tool message has no name in this API
  return out;
}

void decode_chunk_json(const json& j, std::vector<ChatEvent>& out, std::string& finish);

// One chunk through the DOM: every shape an OpenAI-compatible server sends. Appends its events and
// updates the finish reason.
void decode_chunk_dom(const std::string& data, std::vector<ChatEvent>& out, std::string& finish) {
  json j;
  try {
    j = json::parse(data);
  } catch (const json::exception&) {
    out.push_back(upstream_error("upstream sent a malformed stream chunk: " + truncate(data, 200)));
    return;
  }
  try {
    decode_chunk_json(j, out, finish);
  } catch (const json::exception&) { // valid JSON of a shape no OpenAI-compatible server sends
    out.push_back(
        upstream_error("upstream sent a stream chunk tinyroute cannot read: " + truncate(data, 200)));
  }
}

void decode_chunk_json(const json& j, std::vector<ChatEvent>& out, std::string& finish) {
  if (j.contains("error")) {
    const auto& e = j["error"];
    out.push_back(
        upstream_error(e.is_object() && e.contains("message") ? e["message"].get<std::string>() : e.dump()));
    return;
  }
  if (j.contains("choices") && j["choices"].is_array()) {
    for (const auto& choice : j["choices"]) {
      if (!choice.is_object()) continue;
      if (choice.contains("delta") && choice["delta"].is_object()) {
        const auto& d = choice["delta"];
        if (d.contains("content") && d["content"].is_string() && !d["content"].get<std::string>().empty()) {
          ChatEvent e;
          e.text = d["content"].get<std::string>();
          out.push_back(std::move(e));
        }
        if (d.contains("tool_calls") && d["tool_calls"].is_array()) {
          for (const auto& c : d["tool_calls"]) {
            ChatEvent e;
            e.kind = ChatEvent::Kind::tool_call;
            e.tool_index = upstream_int(c, "index", 0);
            if (e.tool_index < 0 || e.tool_index >= kMaxToolCalls) {
              out.push_back(upstream_error("upstream sent a tool call index out of range (0 to " +
                                           std::to_string(kMaxToolCalls - 1) + ")"));
              continue;
            }
            e.tool_id = c.contains("id") && c["id"].is_string() ? c["id"].get<std::string>() : "";
            if (c.contains("function") && c["function"].is_object()) {
              const auto& f = c["function"];
              if (f.contains("name") && f["name"].is_string()) e.tool_name = f["name"];
              if (f.contains("arguments") && f["arguments"].is_string()) e.tool_arguments = f["arguments"];
            }
            out.push_back(std::move(e));
          }
        }
      }
      if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
        finish = choice["finish_reason"].get<std::string>();
      }
    }
  }
  if (j.contains("usage") && j["usage"].is_object()) {
    ChatEvent e;
    e.kind = ChatEvent::Kind::usage;
    e.prompt_tokens = upstream_int(j["usage"], "prompt_tokens");
    e.completion_tokens = upstream_int(j["usage"], "completion_tokens");
    out.push_back(e);
  }
}

// The common chunk (a text delta, a finish reason, usage) read in one pass, without building a DOM:
// the gateway decodes every chunk of every answer, and the DOM was most of that cost. It gives up
// (returns false) on anything else: an error, tool calls, a repeated key, a usage count that is not an
// integer, a malformed chunk; decode_chunk_dom() then reads the chunk, so both always agree (tested).
class ChunkReader final : public nlohmann::json_sax<json> {
public:
  bool read(const std::string& data) { return json::sax_parse(data, this) && stack_.empty(); }

  std::vector<ChatEvent> events;
  std::optional<std::string> finish; // the chunk's finish_reason, when it has one
  bool usage = false;
  int prompt_tokens = 0, completion_tokens = 0;

  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t v) override { return count(v); }
  bool number_unsigned(number_unsigned_t v) override { return count(v); }
  bool number_float(number_float_t, const string_t&) override { return scalar(); }
  bool binary(binary_t&) override { return false; }
  bool string(string_t& v) override {
    if (!skipping() && slot_ == Slot::content && !v.empty()) {
      ChatEvent e;
      e.text = std::move(v);
      events.push_back(std::move(e));
    } else if (!skipping() && slot_ == Slot::finish) {
      finish = std::move(v);
    }
    return scalar();
  }

  bool start_object(std::size_t) override {
    Ctx ctx = Ctx::skip;
    if (stack_.empty())
      ctx = Ctx::root;
    else if (skipping())
      ctx = Ctx::skip;
    else if (stack_.back().ctx == Ctx::choices)
      ctx = Ctx::choice;
    else if (slot_ == Slot::delta)
      ctx = Ctx::delta;
    else if (slot_ == Slot::usage)
      ctx = Ctx::usage;
    if (ctx == Ctx::usage) usage = true;
    stack_.push_back({ctx, 0});
    slot_ = Slot::none;
    return true;
  }
  bool start_array(std::size_t) override {
    if (stack_.empty()) return false; // not a chunk object: the DOM path decides
    const Ctx ctx = !skipping() && slot_ == Slot::choices ? Ctx::choices : Ctx::skip;
    stack_.push_back({ctx, 0});
    slot_ = Slot::none;
    return true;
  }
  bool end_object() override { return end(); }
  bool end_array() override { return end(); }

  bool key(string_t& k) override {
    slot_ = Slot::other;
    if (skipping()) return true;
    switch (stack_.back().ctx) {
    case Ctx::root:
      if (k == "error") return false;
      if (k == "choices") return claim(Slot::choices, 1);
      if (k == "usage") return claim(Slot::usage, 2);
      return true;
    case Ctx::choice:
      if (k == "delta") return claim(Slot::delta, 1);
      if (k == "finish_reason") return claim(Slot::finish, 2);
      return true;
    case Ctx::delta:
      if (k == "tool_calls") return false;
      if (k == "content") return claim(Slot::content, 1);
      return true;
    case Ctx::usage:
      if (k == "prompt_tokens") return claim(Slot::prompt_tokens, 1);
      if (k == "completion_tokens") return claim(Slot::completion_tokens, 2);
      return true;
    case Ctx::choices:
    case Ctx::skip:
      return true;
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

private:
  enum class Ctx { root, choices, choice, delta, usage, skip };
  enum class Slot { none, other, choices, usage, delta, finish, content, prompt_tokens, completion_tokens };
  struct Frame {
    Ctx ctx;
    unsigned seen; // keys of interest already met in this object: a repeat gives up
  };

  bool skipping() const { return !stack_.empty() && stack_.back().ctx == Ctx::skip; }
  bool claim(Slot slot, unsigned bit) {
    if ((stack_.back().seen & bit) != 0) return false; // a repeated key: the DOM keeps the last one
    stack_.back().seen |= bit;
    slot_ = slot;
    return true;
  }
  bool scalar() {
    if (stack_.empty()) return false; // a bare value, not a chunk object
    // A usage count the DOM's value() would refuse (a string, null, a fraction): let it do so.
    const bool bad_count = !skipping() && (slot_ == Slot::prompt_tokens || slot_ == Slot::completion_tokens);
    slot_ = Slot::none;
    return !bad_count;
  }
  template <class N> bool count(N v) {
    if (stack_.empty()) return false;
    if (!skipping() && (slot_ == Slot::prompt_tokens || slot_ == Slot::completion_tokens)) {
      if (v > static_cast<N>(std::numeric_limits<int>::max())) return false;
      if constexpr (std::is_signed_v<N>) {
        if (v < static_cast<N>(std::numeric_limits<int>::min())) return false;
      }
      (slot_ == Slot::prompt_tokens ? prompt_tokens : completion_tokens) = static_cast<int>(v);
    }
    slot_ = Slot::none;
    return true;
  }
  bool end() {
    stack_.pop_back();
    slot_ = Slot::none;
    return true;
  }

  std::vector<Frame> stack_;
  Slot slot_ = Slot::none;
};

class OpenAIDecoder final : public BackendDecoder {
public:
  explicit OpenAIDecoder(bool one_pass) : one_pass_(one_pass) {}

  std::vector<ChatEvent> feed(std::string_view bytes) override {
    std::vector<ChatEvent> out;
    for (auto& ev : sse_.feed(bytes)) {
      if (ev.data == "[DONE]") {
        done_ = true;
        continue;
      }
      if (one_pass_) {
        ChunkReader reader;
        if (reader.read(ev.data)) {
          for (auto& e : reader.events) out.push_back(std::move(e));
          if (reader.finish) finish_ = std::move(*reader.finish);
          if (reader.usage) {
            ChatEvent e;
            e.kind = ChatEvent::Kind::usage;
            e.prompt_tokens = reader.prompt_tokens;
            e.completion_tokens = reader.completion_tokens;
            out.push_back(std::move(e));
          }
          continue;
        }
      }
      decode_chunk_dom(ev.data, out, finish_);
    }
    return out;
  }

  std::vector<ChatEvent> end() override {
    // Usage may follow the finish chunk, so the finish event is emitted only when the stream ends.
    if (finish_.empty() && !done_)
      return {upstream_error("the upstream closed the stream before the answer was complete")};
    ChatEvent e;
    e.kind = ChatEvent::Kind::finish;
    e.finish_reason = finish_.empty() ? "stop" : finish_;
    return {e};
  }

private:
  bool one_pass_;
  SseParser sse_;
  std::string finish_;
  bool done_ = false;
};

class OpenAIBackend final : public BackendAdapter {
public:
  ClientRequest request(const ModelConfig& model, const ChatRequest& r) const override {
    json body = {{"model", model.upstream_model.empty() ? model.name : model.upstream_model},
                 {"stream", true},
                 {"stream_options", {{"include_usage", true}}}};
    if (r.protocol == "openai") {
      for (auto it = r.extras.begin(); it != r.extras.end(); ++it) body[it.key()] = it.value();
    }
    json messages = json::array();
    for (const auto& m : r.messages) messages.push_back(message_json(m));
    body["messages"] = messages;
    const auto& s = r.sampling;
    if (s.temperature) body["temperature"] = *s.temperature;
    if (s.top_p) body["top_p"] = *s.top_p;
    if (s.top_k) body["top_k"] = *s.top_k;
    if (s.max_tokens) body["max_tokens"] = *s.max_tokens;
    if (!s.stop.empty()) body["stop"] = s.stop;
    if (s.seed) body["seed"] = *s.seed;
    if (s.presence_penalty) body["presence_penalty"] = *s.presence_penalty;
    if (s.frequency_penalty) body["frequency_penalty"] = *s.frequency_penalty;
    if (r.format.is_string()) { // Ollama's "format": "json"
      body["response_format"] = {{"type", "json_object"}};
    } else if (r.format.is_object()) { // Ollama's "format": {JSON Schema}
      json schema = {{"name", r.format_name.empty() ? "response" : r.format_name}, {"schema", r.format}};
      if (r.format_strict) schema["strict"] = *r.format_strict;
      body["response_format"] = {{"type", "json_schema"}, {"json_schema", schema}};
    }
    if (!r.user.empty()) body["user"] = r.user;
    if (!r.tools.empty()) {
      json tools = json::array();
      for (const auto& t : r.tools) {
        json fn = {{"name", t.name}, {"description", t.description}, {"parameters", t.parameters}};
        if (t.strict) fn["strict"] = *t.strict;
        tools.push_back({{"type", "function"}, {"function", fn}});
      }
      body["tools"] = tools;
      const ToolChoice& tc = r.tool_choice;
      if (tc.mode == "function")
        body["tool_choice"] = {{"type", "function"}, {"function", {{"name", tc.name}}}};
      else if (!tc.mode.empty())
        body["tool_choice"] = tc.mode;
      if (r.parallel_tool_calls) body["parallel_tool_calls"] = *r.parallel_tool_calls;
    }
    ClientRequest req;
    // base_url may or may not carry the /v1 (https://api.openai.com/v1 vs http://127.0.0.1:8080).
    std::string base = model.base_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    req.url = base.size() >= 3 && base.compare(base.size() - 3, 3, "/v1") == 0
                  ? base + "/chat/completions"
                  : base + "/v1/chat/completions";
    req.headers = {{"content-type", "application/json"}, {"accept", "text/event-stream"}};
    if (auto key = api_key(model); !key.empty()) req.headers.emplace_back("authorization", "Bearer " + key);
    req.body = body.dump();
    return req;
  }

  std::unique_ptr<BackendDecoder> decoder() const override { return std::make_unique<OpenAIDecoder>(true); }

  // Every canonical parameter has its Chat Completions field; extras only when they are OpenAI's.
  std::vector<std::string> unsupported(const ChatRequest& r) const override {
    return r.protocol == "openai" ? std::vector<std::string>{} : extras_names(r);
  }
};

} // namespace

bool openai_chunk_read_in_one_pass(const std::string& data) {
  ChunkReader reader;
  return reader.read(data);
}

std::unique_ptr<BackendDecoder> openai_reference_decoder() {
  return std::make_unique<OpenAIDecoder>(false);
}

const BackendAdapter& openai_backend() {
  static const OpenAIBackend backend; // stateless
  return backend;
}

} // namespace tinyroute::gateway
