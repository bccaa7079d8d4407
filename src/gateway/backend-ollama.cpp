#include "gateway/backend-ollama.h"

namespace tinyroute::gateway {

namespace {

class OllamaDecoder final : public BackendDecoder {
public:
  std::vector<ChatEvent> feed(std::string_view bytes) override {
    std::vector<ChatEvent> out;
    for (auto& line : lines_.feed(bytes)) parse_line(line, out);
    return out;
  }

  std::vector<ChatEvent> end() override {
    std::vector<ChatEvent> out;
    if (auto rest = lines_.take_rest(); !rest.empty()) parse_line(rest, out);
    if (!done_)
      out.push_back(upstream_error("the upstream closed the stream before the answer was complete"));
    return out;
  }

private:
  void parse_line(const std::string& line, std::vector<ChatEvent>& out) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception&) {
      out.push_back(upstream_error("upstream sent a malformed stream line: " + truncate(line, 200)));
      return;
    }
    try {
      decode_line(j, out);
    } catch (const json::exception&) { // valid JSON of a shape Ollama never sends
      out.push_back(
          upstream_error("upstream sent a stream line tinyroute cannot read: " + truncate(line, 200)));
    }
  }

  void decode_line(const json& j, std::vector<ChatEvent>& out) {
    if (j.contains("error")) {
      out.push_back(
          upstream_error(j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump()));
      return;
    }
    std::string text;
    if (j.contains("message") && j["message"].is_object()) {
      const auto& m = j["message"];
      if (m.contains("content") && m["content"].is_string()) text = m["content"];
      if (m.contains("tool_calls") && m["tool_calls"].is_array()) {
        for (const auto& c : m["tool_calls"]) {
          if (tools_ >= kMaxToolCalls) {
            out.push_back(upstream_error("upstream sent more than " + std::to_string(kMaxToolCalls) +
                                         " tool calls in one answer"));
            return;
          }
          ChatEvent e;
          e.kind = ChatEvent::Kind::tool_call;
          e.tool_index = tools_++;
          e.tool_id = "call_" + std::to_string(e.tool_index);
          if (c.contains("function") && c["function"].is_object()) {
            const auto& f = c["function"];
            if (f.contains("name") && f["name"].is_string()) e.tool_name = f["name"];
            if (f.contains("arguments"))
              e.tool_arguments =
                  f["arguments"].is_string() ? f["arguments"].get<std::string>() : f["arguments"].dump();
          }
          out.push_back(std::move(e));
        }
      }
    } else if (j.contains("response") && j["response"].is_string()) {
      text = j["response"];
    }
    if (!text.empty()) {
      ChatEvent e;
      e.text = std::move(text);
      out.push_back(std::move(e));
    }
    if (j.value("done", false)) {
      done_ = true;
      ChatEvent u;
      u.kind = ChatEvent::Kind::usage;
      u.prompt_tokens = upstream_int(j, "prompt_eval_count");
      u.completion_tokens = upstream_int(j, "eval_count");
      out.push_back(u);
      ChatEvent f;
      f.kind = ChatEvent::Kind::finish;
      std::string reason = j.contains("done_reason") && j["done_reason"].is_string()
                               ? j["done_reason"].get<std::string>()
                               : "stop";
      f.finish_reason = tools_ > 0 ? "tool_calls" : reason == "length" ? "length" : "stop";
      out.push_back(f);
    }
  }

  LineSplitter lines_;
  bool done_ = false;
  int tools_ = 0;
};

class OllamaBackend final : public BackendAdapter {
public:
  ClientRequest request(const ModelConfig& model, const ChatRequest& r) const override {
    json body = {{"model", model.upstream_model.empty() ? model.name : model.upstream_model},
                 {"stream", true}};
    if (r.protocol == "ollama") {
      for (auto it = r.extras.begin(); it != r.extras.end(); ++it) body[it.key()] = it.value();
    }
    if (r.hints.contains("keep_alive")) body["keep_alive"] = r.hints["keep_alive"];
    json messages = json::array();
    for (const auto& m : r.messages) {
      json jm = {{"role", m.role}, {"content", text_of(m)}};
      json images = json::array();
      for (const auto& p : m.content) {
        if (p.kind == ContentPart::Kind::image && p.url.empty()) images.push_back(p.data);
      }
      if (!images.empty()) jm["images"] = images;
      if (!m.tool_calls.empty()) {
        json calls = json::array();
        for (const auto& c : m.tool_calls) {
          calls.push_back({{"function", {{"name", c.name}, {"arguments", parse_arguments(c.arguments)}}}});
        }
        jm["tool_calls"] = calls;
      }
      if (m.role == "tool" && !m.name.empty()) jm["tool_name"] = m.name;
      messages.push_back(jm);
    }
    body["messages"] = messages;
    // The client's own options first (num_ctx, repeat_penalty, ...), then what tinyroute understood.
    json options = r.protocol == "ollama" && r.extras.contains("options") && r.extras["options"].is_object()
                       ? r.extras["options"]
                       : json::object();
    if (r.hints.contains("options")) options.update(r.hints["options"]); // the runner options
    if (!r.format.is_null()) body["format"] = r.format;
    const auto& s = r.sampling;
    if (s.temperature) options["temperature"] = *s.temperature;
    if (s.top_p) options["top_p"] = *s.top_p;
    if (s.top_k) options["top_k"] = *s.top_k;
    if (s.max_tokens) options["num_predict"] = *s.max_tokens;
    if (!s.stop.empty()) options["stop"] = s.stop;
    if (s.seed) options["seed"] = *s.seed;
    if (s.presence_penalty) options["presence_penalty"] = *s.presence_penalty;
    if (s.frequency_penalty) options["frequency_penalty"] = *s.frequency_penalty;
    if (!options.empty()) body["options"] = options;
    if (!r.tools.empty() && r.tool_choice.mode != "none") { // "none": the tools are not offered
      json tools = json::array();
      for (const auto& t : r.tools) {
        tools.push_back(
            {{"type", "function"},
             {"function", {{"name", t.name}, {"description", t.description}, {"parameters", t.parameters}}}});
      }
      body["tools"] = tools;
    }
    ClientRequest req;
    req.url = join_url(model.base_url, "/api/chat");
    req.headers = {{"content-type", "application/json"}};
    if (auto key = api_key(model); !key.empty()) req.headers.emplace_back("authorization", "Bearer " + key);
    req.body = body.dump();
    return req;
  }

  std::unique_ptr<BackendDecoder> decoder() const override { return std::make_unique<OllamaDecoder>(); }

  // Ollama's chat API cannot force a tool call, limit calls to one or name the end user.
  std::vector<std::string> unsupported(const ChatRequest& r) const override {
    std::vector<std::string> out = r.protocol == "ollama" ? std::vector<std::string>{} : extras_names(r);
    if (r.tool_choice.mode == "required" || r.tool_choice.mode == "function") out.push_back("tool_choice");
    if (r.parallel_tool_calls == false) out.push_back("parallel_tool_calls");
    if (!r.user.empty()) out.push_back("user");
    if (strict_tools(r)) out.push_back("tools.strict");
    return out;
  }
};

} // namespace

const BackendAdapter& ollama_backend() {
  static const OllamaBackend backend; // stateless
  return backend;
}

} // namespace tinyroute::gateway
