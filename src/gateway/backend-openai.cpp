#include "gateway/backend-openai.h"

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
  if (!m.name.empty()) out["name"] = m.name;
  return out;
}

class OpenAIDecoder final : public BackendDecoder {
public:
  std::vector<ChatEvent> feed(std::string_view bytes) override {
    std::vector<ChatEvent> out;
    for (auto& ev : sse_.feed(bytes)) {
      if (ev.data == "[DONE]") {
        done_ = true;
        continue;
      }
      json j;
      try {
        j = json::parse(ev.data);
      } catch (const json::exception&) {
        out.push_back(error("upstream sent a malformed stream chunk: " + truncate(ev.data, 200)));
        continue;
      }
      if (j.contains("error")) {
        const auto& e = j["error"];
        out.push_back(
            error(e.is_object() && e.contains("message") ? e["message"].get<std::string>() : e.dump()));
        continue;
      }
      if (j.contains("choices") && j["choices"].is_array()) {
        for (const auto& choice : j["choices"]) {
          if (!choice.is_object()) continue;
          if (choice.contains("delta") && choice["delta"].is_object()) {
            const auto& d = choice["delta"];
            if (d.contains("content") && d["content"].is_string() &&
                !d["content"].get<std::string>().empty()) {
              ChatEvent e;
              e.text = d["content"].get<std::string>();
              out.push_back(std::move(e));
            }
            if (d.contains("tool_calls") && d["tool_calls"].is_array()) {
              for (const auto& c : d["tool_calls"]) {
                ChatEvent e;
                e.kind = ChatEvent::Kind::tool_call;
                e.tool_index = c.value("index", 0);
                e.tool_id = c.contains("id") && c["id"].is_string() ? c["id"].get<std::string>() : "";
                if (c.contains("function") && c["function"].is_object()) {
                  const auto& f = c["function"];
                  if (f.contains("name") && f["name"].is_string()) e.tool_name = f["name"];
                  if (f.contains("arguments") && f["arguments"].is_string())
                    e.tool_arguments = f["arguments"];
                }
                out.push_back(std::move(e));
              }
            }
          }
          if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
            finish_ = choice["finish_reason"].get<std::string>();
          }
        }
      }
      if (j.contains("usage") && j["usage"].is_object()) {
        ChatEvent e;
        e.kind = ChatEvent::Kind::usage;
        e.prompt_tokens = j["usage"].value("prompt_tokens", 0);
        e.completion_tokens = j["usage"].value("completion_tokens", 0);
        out.push_back(e);
      }
    }
    return out;
  }

  std::vector<ChatEvent> end() override {
    // Usage may follow the finish chunk, so the finish event is emitted only when the stream ends.
    if (finish_.empty() && !done_)
      return {error("the upstream closed the stream before the answer was complete")};
    ChatEvent e;
    e.kind = ChatEvent::Kind::finish;
    e.finish_reason = finish_.empty() ? "stop" : finish_;
    return {e};
  }

private:
  static ChatEvent error(std::string message) {
    ChatEvent e;
    e.kind = ChatEvent::Kind::error;
    e.error_type = "upstream_error";
    e.text = std::move(message);
    return e;
  }
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
      for (auto it = r.extras.begin(); it != r.extras.end(); ++it) {
        if (it.key() != "stream_options") body[it.key()] = it.value();
      }
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
      body["response_format"] = {{"type", "json_schema"},
                                 {"json_schema", {{"name", "response"}, {"schema", r.format}}}};
    }
    if (!r.tools.empty()) {
      json tools = json::array();
      for (const auto& t : r.tools) {
        tools.push_back(
            {{"type", "function"},
             {"function", {{"name", t.name}, {"description", t.description}, {"parameters", t.parameters}}}});
      }
      body["tools"] = tools;
      if (!r.tool_choice.is_null() && r.protocol == "openai") body["tool_choice"] = r.tool_choice;
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

  std::unique_ptr<BackendDecoder> decoder() const override { return std::make_unique<OpenAIDecoder>(); }
};

} // namespace

const BackendAdapter& openai_backend() {
  static const OpenAIBackend backend; // stateless
  return backend;
}

} // namespace tinyroute::gateway
