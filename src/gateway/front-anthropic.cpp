#include "gateway/front-anthropic.h"

#include <set>

namespace tinyroute::gateway {

namespace {

// Fields with a canonical meaning; every other field (thinking, service_tier, mcp_servers, ...) is an
// extra: it reaches Anthropic backends unchanged and is refused on the others.
const std::set<std::string> known_fields = {"model",          "messages", "system",      "max_tokens",
                                            "temperature",    "top_p",    "top_k",       "stream",
                                            "stop_sequences", "tools",    "tool_choice", "metadata"};

// {"type": "auto" | "any" | "tool" | "none", "name", "disable_parallel_tool_use"}.
void parse_tool_choice(const json& body, ChatRequest& r) {
  const json* tc = opt_object(body, "tool_choice", "");
  if (!tc) return;
  const std::string type = opt_string(*tc, "type", "tool_choice").value_or("");
  if (type == "auto" || type == "none") {
    r.tool_choice = {type, ""};
  } else if (type == "any") {
    r.tool_choice = {"required", ""};
  } else if (type == "tool") {
    auto name = opt_string(*tc, "name", "tool_choice");
    if (!name || name->empty()) bad_request("'tool_choice.name' is required for type tool");
    r.tool_choice = {"function", *name};
  } else {
    bad_request("'tool_choice.type' must be auto, any, tool or none (got \"" + type + "\")");
  }
  if (opt_bool(*tc, "disable_parallel_tool_use", "tool_choice").value_or(false))
    r.parallel_tool_calls = false;
}

// Anthropic's metadata has one field, user_id.
void parse_metadata(const json& body, ChatRequest& r) {
  const json* m = opt_object(body, "metadata", "");
  if (!m) return;
  for (auto it = m->begin(); it != m->end(); ++it) {
    if (it.key() != "user_id")
      bad_request("'metadata." + it.key() + "' is not supported (metadata has user_id)");
  }
  r.user = opt_string(*m, "user_id", "metadata").value_or("");
}

std::string stop_reason(const std::string& finish) {
  if (finish == "length") return "max_tokens";
  if (finish == "tool_calls") return "tool_use";
  return "end_turn";
}

ContentPart text_part(const std::string& text) {
  return {ContentPart::Kind::text, text, "", "", ""};
}

// Blocks of one message; tool_result blocks become separate canonical "tool" messages.
void parse_blocks(const json& content, const std::string& where, ChatMessage& msg,
                  std::vector<ChatMessage>& tool_results) {
  if (content.is_string()) {
    msg.content.push_back(text_part(content.get<std::string>()));
    return;
  }
  if (!content.is_array()) bad_request("'" + where + "' must be a string or an array of content blocks");
  for (std::size_t i = 0; i < content.size(); ++i) {
    const auto& b = content[i];
    std::string bw = where + "[" + std::to_string(i) + "]";
    if (!b.is_object()) bad_request("'" + bw + "' must be an object");
    auto type = opt_string(b, "type", bw).value_or("");
    if (type == "text") {
      auto text = opt_string(b, "text", bw);
      if (!text) bad_request("'" + bw + ".text' is required");
      msg.content.push_back(text_part(*text));
    } else if (type == "image") {
      const json* src = opt_object(b, "source", bw);
      if (!src) bad_request("'" + bw + ".source' is required");
      ContentPart p;
      p.kind = ContentPart::Kind::image;
      auto st = opt_string(*src, "type", bw + ".source").value_or("");
      if (st == "base64") {
        p.media_type = opt_string(*src, "media_type", bw + ".source").value_or("image/png");
        p.data = opt_string(*src, "data", bw + ".source").value_or("");
      } else if (st == "url") {
        p.url = opt_string(*src, "url", bw + ".source").value_or("");
      } else {
        bad_request("'" + bw + ".source.type' must be base64 or url");
      }
      msg.content.push_back(std::move(p));
    } else if (type == "tool_use") {
      json input = b.contains("input") ? b["input"] : json::object();
      msg.tool_calls.push_back(
          {opt_string(b, "id", bw).value_or(""), opt_string(b, "name", bw).value_or(""), input.dump()});
    } else if (type == "tool_result") {
      ChatMessage tr;
      tr.role = "tool";
      tr.tool_call_id = opt_string(b, "tool_use_id", bw).value_or("");
      std::vector<ChatMessage> nested;
      if (b.contains("content")) parse_blocks(b["content"], bw + ".content", tr, nested);
      tool_results.push_back(std::move(tr));
    } else if (type == "thinking" || type == "redacted_thinking") {
      continue; // not portable across backends
    } else {
      bad_request("'" + bw + ".type' \"" + type + "\" is not supported (text, image, tool_use, tool_result)");
    }
  }
}

class AnthropicStream final : public FrontStream {
public:
  explicit AnthropicStream(std::string model) : model_(std::move(model)), id_(random_id("msg_")) {}

  std::string start() override {
    return sse({{"type", "message_start"},
                {"message",
                 {{"id", id_},
                  {"type", "message"},
                  {"role", "assistant"},
                  {"model", model_},
                  {"content", json::array()},
                  {"stop_reason", nullptr},
                  {"stop_sequence", nullptr},
                  {"usage", {{"input_tokens", 0}, {"output_tokens", 0}}}}}},
               "message_start");
  }

  std::string event(const ChatEvent& e) override {
    std::string out;
    switch (e.kind) {
    case ChatEvent::Kind::text:
      if (open_ != Block::text) {
        out += close();
        out += sse({{"type", "content_block_start"},
                    {"index", index_},
                    {"content_block", {{"type", "text"}, {"text", ""}}}},
                   "content_block_start");
        open_ = Block::text;
      }
      out += sse({{"type", "content_block_delta"},
                  {"index", index_},
                  {"delta", {{"type", "text_delta"}, {"text", e.text}}}},
                 "content_block_delta");
      return out;
    case ChatEvent::Kind::tool_call:
      if (open_ != Block::tool || e.tool_index != tool_index_) {
        out += close();
        tool_index_ = e.tool_index;
        out += sse({{"type", "content_block_start"},
                    {"index", index_},
                    {"content_block",
                     {{"type", "tool_use"},
                      {"id", e.tool_id.empty() ? random_id("toolu_") : e.tool_id},
                      {"name", e.tool_name},
                      {"input", json::object()}}}},
                   "content_block_start");
        open_ = Block::tool;
      }
      if (!e.tool_arguments.empty()) {
        out += sse({{"type", "content_block_delta"},
                    {"index", index_},
                    {"delta", {{"type", "input_json_delta"}, {"partial_json", e.tool_arguments}}}},
                   "content_block_delta");
      }
      return out;
    case ChatEvent::Kind::finish:
      finish_ = e.finish_reason;
      return {};
    case ChatEvent::Kind::usage:
      if (e.prompt_tokens) input_ = e.prompt_tokens;
      if (e.completion_tokens) output_ = e.completion_tokens;
      return {};
    case ChatEvent::Kind::error:
      return sse({{"type", "error"}, {"error", {{"type", "api_error"}, {"message", e.text}}}}, "error");
    }
    return {};
  }

  std::string finish() override {
    std::string out = close();
    out += sse({{"type", "message_delta"},
                {"delta", {{"stop_reason", stop_reason(finish_)}, {"stop_sequence", nullptr}}},
                {"usage", {{"input_tokens", input_}, {"output_tokens", output_}}}},
               "message_delta");
    out += sse({{"type", "message_stop"}}, "message_stop");
    return out;
  }

private:
  enum class Block { none, text, tool };
  std::string close() {
    if (open_ == Block::none) return {};
    open_ = Block::none;
    return sse({{"type", "content_block_stop"}, {"index", index_++}}, "content_block_stop");
  }
  std::string model_, id_, finish_;
  Block open_ = Block::none;
  int index_ = 0;
  int tool_index_ = -1;
  int input_ = 0, output_ = 0;
};

class AnthropicFront final : public FrontAdapter {
public:
  std::string protocol() const override { return "anthropic"; }

  ChatRequest parse(const json& body) const override {
    if (!body.is_object()) bad_request("the request body must be a JSON object");
    ChatRequest r;
    r.protocol = "anthropic";
    auto model = opt_string(body, "model", "");
    if (!model || model->empty())
      bad_request("'model' is required (a model name, or \"auto\" to let tinyroute pick)");
    r.model = *model;
    auto max_tokens = opt_int(body, "max_tokens", "");
    if (!max_tokens) bad_request("'max_tokens' is required and must be an integer");
    r.sampling.max_tokens = *max_tokens;
    if (body.contains("system") && !body["system"].is_null()) {
      ChatMessage sys;
      sys.role = "system";
      std::vector<ChatMessage> ignored;
      parse_blocks(body["system"], "system", sys, ignored);
      r.messages.push_back(std::move(sys));
    }
    const json* messages = opt_array(body, "messages", "");
    if (!messages || messages->empty()) bad_request("'messages' is required and must be a non-empty array");
    for (std::size_t i = 0; i < messages->size(); ++i) {
      const auto& m = (*messages)[i];
      std::string w = "messages[" + std::to_string(i) + "]";
      if (!m.is_object()) bad_request("'" + w + "' must be an object");
      auto role = opt_string(m, "role", w);
      if (!role || (*role != "user" && *role != "assistant"))
        bad_request("'" + w + ".role' must be user or assistant");
      if (!m.contains("content")) bad_request("'" + w + ".content' is required");
      ChatMessage msg;
      msg.role = *role;
      std::vector<ChatMessage> tool_results;
      parse_blocks(m["content"], w + ".content", msg, tool_results);
      for (auto& tr : tool_results) r.messages.push_back(std::move(tr));
      if (!msg.content.empty() || !msg.tool_calls.empty()) r.messages.push_back(std::move(msg));
    }
    auto& s = r.sampling;
    s.temperature = opt_number(body, "temperature", "");
    s.top_p = opt_number(body, "top_p", "");
    s.top_k = opt_int(body, "top_k", "");
    if (opt_array(body, "stop_sequences", "")) s.stop = string_or_array(body, "stop_sequences", "");
    if (const json* tools = opt_array(body, "tools", "")) {
      for (std::size_t i = 0; i < tools->size(); ++i) {
        std::string w = "tools[" + std::to_string(i) + "]";
        const auto& t = (*tools)[i];
        if (!t.is_object()) bad_request("'" + w + "' must be an object");
        // Server tools (web_search_..., bash_..., ...) are run by Anthropic itself: no other backend can.
        if (auto type = opt_string(t, "type", w); type && *type != "custom")
          bad_request("'" + w + ".type' \"" + *type +
                      "\" is not supported: tinyroute forwards client tools (type custom, or no type)");
        auto name = opt_string(t, "name", w);
        if (!name) bad_request("'" + w + ".name' is required");
        ToolSpec spec{*name, opt_string(t, "description", w).value_or(""), json::object(), std::nullopt};
        if (const json* p = opt_object(t, "input_schema", w)) spec.parameters = *p;
        r.tools.push_back(std::move(spec));
      }
    }
    parse_tool_choice(body, r);
    check_tool_choice(r);
    parse_metadata(body, r);
    r.stream = opt_bool(body, "stream", "").value_or(false);
    for (auto it = body.begin(); it != body.end(); ++it) {
      if (!known_fields.count(it.key())) r.extras[it.key()] = it.value();
    }
    return r;
  }

  json render(const ChatResult& res, const ChatRequest&, const std::string& model) const override {
    json content = json::array();
    if (!res.text.empty() || res.tool_calls.empty())
      content.push_back({{"type", "text"}, {"text", res.text}});
    for (const auto& c : res.tool_calls) {
      content.push_back({{"type", "tool_use"},
                         {"id", c.id.empty() ? random_id("toolu_") : c.id},
                         {"name", c.name},
                         {"input", parse_arguments(c.arguments)}});
    }
    return {{"id", random_id("msg_")},
            {"type", "message"},
            {"role", "assistant"},
            {"model", model},
            {"content", content},
            {"stop_reason", stop_reason(res.finish_reason)},
            {"stop_sequence", nullptr},
            {"usage", {{"input_tokens", res.prompt_tokens}, {"output_tokens", res.completion_tokens}}}};
  }

  std::unique_ptr<FrontStream> stream(const ChatRequest&, const std::string& model) const override {
    return std::make_unique<AnthropicStream>(model);
  }
  std::string stream_content_type() const override { return "text/event-stream"; }
  json error(int, const std::string& type, const std::string& message) const override {
    return {{"type", "error"}, {"error", {{"type", type}, {"message", message}}}};
  }
  std::string param_name(const std::string& canonical) const override {
    if (canonical == "stop") return "stop_sequences";
    if (canonical == "user") return "metadata.user_id";
    if (canonical == "parallel_tool_calls") return "tool_choice.disable_parallel_tool_use";
    return canonical;
  }
};

} // namespace

std::unique_ptr<FrontAdapter> make_anthropic_front() {
  return std::make_unique<AnthropicFront>();
}

} // namespace tinyroute::gateway
