#include "gateway/backend-anthropic.h"

#include <algorithm>
#include <limits>
#include <map>

namespace tinyroute::gateway {

namespace {

json blocks_of(const ChatMessage& m) {
  json blocks = json::array();
  for (const auto& p : m.content) {
    if (p.kind == ContentPart::Kind::text) {
      blocks.push_back({{"type", "text"}, {"text", p.text}});
    } else if (!p.url.empty()) {
      blocks.push_back({{"type", "image"}, {"source", {{"type", "url"}, {"url", p.url}}}});
    } else {
      blocks.push_back({{"type", "image"},
                        {"source",
                         {{"type", "base64"},
                          {"media_type", p.media_type.empty() ? "image/png" : p.media_type},
                          {"data", p.data}}}});
    }
  }
  return blocks;
}

// The prompt's whole size: Anthropic counts the tokens read from its prompt cache apart from input_tokens.
int input_tokens(const json& usage) {
  long long total = 0; // each part is range-checked (upstream_int); their sum is capped
  for (const char* key : {"input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"})
    total += upstream_int(usage, key);
  return static_cast<int>(std::min<long long>(total, std::numeric_limits<int>::max()));
}

class AnthropicDecoder final : public BackendDecoder {
public:
  std::vector<ChatEvent> feed(std::string_view bytes) override {
    std::vector<ChatEvent> out;
    for (auto& ev : sse_.feed(bytes)) {
      json j;
      try {
        j = json::parse(ev.data);
      } catch (const json::exception&) {
        out.push_back(upstream_error("upstream sent a malformed stream event: " + truncate(ev.data, 200)));
        continue;
      }
      try {
        decode_event(j, ev.event, out);
      } catch (const json::exception&) { // valid JSON of a shape Anthropic never sends
        out.push_back(
            upstream_error("upstream sent a stream event tinyroute cannot read: " + truncate(ev.data, 200)));
      }
    }
    return out;
  }

  std::vector<ChatEvent> end() override {
    if (!done_) return {upstream_error("the upstream closed the stream before the answer was complete")};
    return {};
  }

private:
  void decode_event(const json& j, const std::string& event, std::vector<ChatEvent>& out) {
    {
      const std::string type = j.is_object() ? j.value("type", event) : event;
      if (type == "message_start" && j.contains("message")) {
        const auto& m = j["message"];
        if (m.contains("usage") && m["usage"].is_object()) input_ = input_tokens(m["usage"]);
      } else if (type == "content_block_start" && j.contains("content_block")) {
        const auto& b = j["content_block"];
        if (b.value("type", "") == "tool_use") {
          ChatEvent e;
          e.kind = ChatEvent::Kind::tool_call;
          if (tools_.size() >= static_cast<std::size_t>(kMaxToolCalls)) {
            out.push_back(upstream_error("upstream sent more than " + std::to_string(kMaxToolCalls) +
                                         " tool calls in one answer"));
            return;
          }
          const int index = upstream_int(j, "index");
          const int dense = static_cast<int>(tools_.size());
          e.tool_index = tools_[index] = dense;
          e.tool_id = b.value("id", "");
          e.tool_name = b.value("name", "");
          out.push_back(std::move(e));
        } else if (b.value("type", "") == "text" && !b.value("text", "").empty()) {
          ChatEvent e;
          e.text = b.value("text", "");
          out.push_back(std::move(e));
        }
      } else if (type == "content_block_delta" && j.contains("delta")) {
        const auto& d = j["delta"];
        const std::string dt = d.value("type", "");
        if (dt == "text_delta") {
          ChatEvent e;
          e.text = d.value("text", "");
          if (!e.text.empty()) out.push_back(std::move(e));
        } else if (dt == "input_json_delta") {
          ChatEvent e;
          e.kind = ChatEvent::Kind::tool_call;
          const int index = upstream_int(j, "index");
          e.tool_index = tools_.count(index) ? tools_[index] : 0;
          e.tool_arguments = d.value("partial_json", "");
          out.push_back(std::move(e));
        }
      } else if (type == "message_delta") {
        if (j.contains("delta") && j["delta"].contains("stop_reason") &&
            j["delta"]["stop_reason"].is_string()) {
          const std::string r = j["delta"]["stop_reason"];
          finish_ = r == "max_tokens" ? "length" : r == "tool_use" ? "tool_calls" : "stop";
        }
        if (j.contains("usage") && j["usage"].is_object()) {
          output_ = upstream_int(j["usage"], "output_tokens");
          if (j["usage"].contains("input_tokens")) input_ = input_tokens(j["usage"]); // cumulative usage
        }
      } else if (type == "message_stop") {
        done_ = true;
        ChatEvent u;
        u.kind = ChatEvent::Kind::usage;
        u.prompt_tokens = input_;
        u.completion_tokens = output_;
        out.push_back(u);
        ChatEvent f;
        f.kind = ChatEvent::Kind::finish;
        f.finish_reason = finish_.empty() ? "stop" : finish_;
        out.push_back(f);
      } else if (type == "error") {
        const auto& e = j.contains("error") ? j["error"] : j;
        out.push_back(upstream_error(e.is_object() ? e.value("message", e.dump()) : e.dump()));
      }
    }
  }

  SseParser sse_;
  std::map<int, int> tools_; // content block index -> tool call index
  std::string finish_;
  int input_ = 0, output_ = 0;
  bool done_ = false;
};

class AnthropicBackend final : public BackendAdapter {
public:
  ClientRequest request(const ModelConfig& model, const ChatRequest& r) const override {
    json body = {{"model", model.upstream_model.empty() ? model.name : model.upstream_model},
                 {"stream", true}};
    if (r.protocol == "anthropic") {
      for (auto it = r.extras.begin(); it != r.extras.end(); ++it) body[it.key()] = it.value();
    }
    std::string system;
    json messages = json::array();
    for (const auto& m : r.messages) {
      if (m.role == "system") {
        system += (system.empty() ? "" : "\n\n") + text_of(m);
        continue;
      }
      if (m.role == "tool") {
        json block = {{"type", "tool_result"}, {"tool_use_id", m.tool_call_id}, {"content", text_of(m)}};
        // Consecutive tool results belong in one user turn.
        if (!messages.empty() && messages.back()["role"] == "user" && messages.back()["content"].is_array() &&
            !messages.back()["content"].empty() &&
            messages.back()["content"].back().value("type", "") == "tool_result") {
          messages.back()["content"].push_back(block);
        } else {
          messages.push_back({{"role", "user"}, {"content", json::array({block})}});
        }
        continue;
      }
      json blocks = blocks_of(m);
      for (const auto& c : m.tool_calls) {
        blocks.push_back(
            {{"type", "tool_use"}, {"id", c.id}, {"name", c.name}, {"input", parse_arguments(c.arguments)}});
      }
      // The Messages API refuses an empty text block (400 "text content blocks must be non-empty"), and
      // Ollama's clients (some OpenAI ones too) send content "" beside tool calls: dropped where the turn
      // has other blocks.
      json kept = json::array();
      for (const auto& b : blocks) {
        if (b["type"] != "text" || !b["text"].get_ref<const std::string&>().empty()) kept.push_back(b);
      }
      if (!kept.empty()) blocks = std::move(kept);
      messages.push_back({{"role", m.role}, {"content", blocks}});
    }
    body["messages"] = messages;
    if (!system.empty()) body["system"] = system;
    const auto& s = r.sampling;
    body["max_tokens"] = s.max_tokens ? *s.max_tokens : 4096; // required by the Messages API
    if (s.temperature) body["temperature"] = *s.temperature;
    if (s.top_p) body["top_p"] = *s.top_p;
    if (s.top_k) body["top_k"] = *s.top_k;
    if (!s.stop.empty()) body["stop_sequences"] = s.stop;
    if (!r.tools.empty()) {
      json tools = json::array();
      for (const auto& t : r.tools) {
        tools.push_back({{"name", t.name}, {"description", t.description}, {"input_schema", t.parameters}});
      }
      body["tools"] = tools;
      const ToolChoice& tc = r.tool_choice;
      if (!tc.mode.empty() || r.parallel_tool_calls == false) {
        const std::string type = tc.mode == "required"   ? "any"
                                 : tc.mode == "function" ? "tool"
                                 : tc.mode.empty()       ? "auto"
                                                         : tc.mode;
        json choice = {{"type", type}};
        if (tc.mode == "function") choice["name"] = tc.name;
        if (r.parallel_tool_calls == false && tc.mode != "none") choice["disable_parallel_tool_use"] = true;
        body["tool_choice"] = choice;
      }
    }
    if (!r.user.empty()) body["metadata"] = {{"user_id", r.user}};
    ClientRequest req;
    std::string base = model.base_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    req.url = base.size() >= 3 && base.compare(base.size() - 3, 3, "/v1") == 0 ? base + "/messages"
                                                                               : base + "/v1/messages";
    req.headers = {{"content-type", "application/json"}, {"anthropic-version", "2023-06-01"}};
    if (auto key = api_key(model); !key.empty()) req.headers.emplace_back("x-api-key", key);
    req.body = body.dump();
    return req;
  }

  std::unique_ptr<BackendDecoder> decoder() const override { return std::make_unique<AnthropicDecoder>(); }

  // The Messages API has no seed, no penalties and no structured-output format.
  std::vector<std::string> unsupported(const ChatRequest& r) const override {
    std::vector<std::string> out = r.protocol == "anthropic" ? std::vector<std::string>{} : extras_names(r);
    const auto& s = r.sampling;
    if (s.seed) out.push_back("seed");
    if (s.presence_penalty) out.push_back("presence_penalty");
    if (s.frequency_penalty) out.push_back("frequency_penalty");
    if (!r.format.is_null()) out.push_back("format");
    if (strict_tools(r)) out.push_back("tools.strict");
    return out;
  }
};

} // namespace

const BackendAdapter& anthropic_backend() {
  static const AnthropicBackend backend; // stateless
  return backend;
}

} // namespace tinyroute::gateway
