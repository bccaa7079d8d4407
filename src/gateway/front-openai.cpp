#include "gateway/front-openai.h"

#include <set>

namespace tinyroute::gateway {

namespace {

// Fields with a canonical meaning (or refused below); every other field is an extra: it reaches
// OpenAI-compatible backends unchanged and is refused on the others.
const std::set<std::string> known_fields = {"model",
                                            "messages",
                                            "temperature",
                                            "top_p",
                                            "max_tokens",
                                            "max_completion_tokens",
                                            "stop",
                                            "seed",
                                            "presence_penalty",
                                            "frequency_penalty",
                                            "tools",
                                            "tool_choice",
                                            "parallel_tool_calls",
                                            "response_format",
                                            "user",
                                            "stream",
                                            "stream_options",
                                            "top_k",
                                            "n",
                                            "logprobs",
                                            "top_logprobs",
                                            "functions",
                                            "function_call",
                                            "audio",
                                            "modalities"};

std::vector<ContentPart> parse_content(const json& content, const std::string& where) {
  std::vector<ContentPart> parts;
  if (content.is_null()) return parts;
  if (content.is_string()) {
    parts.push_back({ContentPart::Kind::text, content.get<std::string>(), "", "", ""});
    return parts;
  }
  if (!content.is_array()) bad_request("'" + where + "' must be a string or an array of content parts");
  for (std::size_t i = 0; i < content.size(); ++i) {
    const auto& p = content[i];
    std::string pw = where + "[" + std::to_string(i) + "]";
    if (!p.is_object()) bad_request("'" + pw + "' must be an object");
    auto type = opt_string(p, "type", pw).value_or("");
    if (type == "text") {
      auto text = opt_string(p, "text", pw);
      if (!text) bad_request("'" + pw + ".text' is required");
      parts.push_back({ContentPart::Kind::text, *text, "", "", ""});
    } else if (type == "image_url") {
      const json* iu = opt_object(p, "image_url", pw);
      std::optional<std::string> url;
      if (iu)
        url = opt_string(*iu, "url", pw + ".image_url");
      else
        url = opt_string(p, "image_url", pw);
      if (!url) bad_request("'" + pw + ".image_url.url' is required");
      parts.push_back(image_from_url(*url));
    } else {
      bad_request("'" + pw + ".type' must be \"text\" or \"image_url\" (got \"" + type + "\")");
    }
  }
  return parts;
}

// "auto" | "none" | "required" | {"type": "function", "function": {"name"}}.
ToolChoice parse_tool_choice(const json& body) {
  auto it = body.find("tool_choice");
  if (it == body.end() || it->is_null()) return {};
  if (it->is_string()) {
    const std::string mode = *it;
    if (mode == "auto" || mode == "none" || mode == "required") return {mode, ""};
  } else if (it->is_object() && it->value("type", "") == "function") {
    const json* fn = opt_object(*it, "function", "tool_choice");
    auto name = fn ? opt_string(*fn, "name", "tool_choice.function") : std::nullopt;
    if (!name || name->empty()) bad_request("'tool_choice.function.name' is required");
    return {"function", *name};
  }
  bad_request("'tool_choice' must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", "
              "\"function\": {\"name\": ...}}");
}

// {"type": "text"} | {"type": "json_object"} | {"type": "json_schema", "json_schema": {name, schema,
// strict}}.
void parse_response_format(const json& body, ChatRequest& r) {
  const json* rf = opt_object(body, "response_format", "");
  if (!rf) return;
  const std::string type = opt_string(*rf, "type", "response_format").value_or("");
  if (type == "text") return;
  if (type == "json_object") {
    r.format = "json";
    return;
  }
  if (type != "json_schema")
    bad_request("'response_format.type' must be text, json_object or json_schema (got \"" + type + "\")");
  const json* js = opt_object(*rf, "json_schema", "response_format");
  if (!js) bad_request("'response_format.json_schema' is required for type json_schema");
  const json* schema = opt_object(*js, "schema", "response_format.json_schema");
  r.format = schema ? *schema : json::object();
  r.format_name = opt_string(*js, "name", "response_format.json_schema").value_or("");
  r.format_strict = opt_bool(*js, "strict", "response_format.json_schema");
}

std::string openai_finish(const std::string& reason) {
  return reason.empty() ? "stop" : reason;
}

json tool_calls_json(const std::vector<ToolCall>& calls) {
  json out = json::array();
  for (const auto& c : calls) {
    out.push_back(
        {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  }
  return out;
}

class OpenAIStream final : public FrontStream {
public:
  OpenAIStream(std::string model, bool include_usage)
      : model_(std::move(model)), include_usage_(include_usage), id_(random_id("chatcmpl-")),
        created_(unix_time()) {}

  std::string start() override { return chunk({{"role", "assistant"}, {"content", ""}}, nullptr); }

  std::string event(const ChatEvent& e) override {
    switch (e.kind) {
    case ChatEvent::Kind::text:
      return chunk({{"content", e.text}}, nullptr);
    case ChatEvent::Kind::tool_call: {
      json fn = {{"arguments", e.tool_arguments}};
      json call = {{"index", e.tool_index}};
      if (!e.tool_id.empty()) {
        call["id"] = e.tool_id;
        call["type"] = "function";
      }
      if (!e.tool_name.empty()) fn["name"] = e.tool_name;
      call["function"] = fn;
      return chunk({{"tool_calls", json::array({call})}}, nullptr);
    }
    case ChatEvent::Kind::finish:
      return chunk(json::object(), openai_finish(e.finish_reason));
    case ChatEvent::Kind::usage:
      if (e.prompt_tokens) prompt_ = e.prompt_tokens;
      if (e.completion_tokens) completion_ = e.completion_tokens;
      return {};
    case ChatEvent::Kind::error:
      return sse({{"error",
                   {{"message", e.text},
                    {"type", e.error_type.empty() ? "upstream_error" : e.error_type},
                    {"param", nullptr},
                    {"code", nullptr}}}});
    }
    return {};
  }

  std::string finish() override {
    std::string out;
    if (include_usage_) {
      out += sse({{"id", id_},
                  {"object", "chat.completion.chunk"},
                  {"created", created_},
                  {"model", model_},
                  {"choices", json::array()},
                  {"usage",
                   {{"prompt_tokens", prompt_},
                    {"completion_tokens", completion_},
                    {"total_tokens", prompt_ + completion_}}}});
    }
    return out + "data: [DONE]\n\n";
  }

private:
  std::string chunk(json delta, json finish_reason) {
    return sse(
        {{"id", id_},
         {"object", "chat.completion.chunk"},
         {"created", created_},
         {"model", model_},
         {"choices",
          json::array({{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", finish_reason}}})}});
  }

  std::string model_;
  bool include_usage_;
  std::string id_;
  long long created_;
  int prompt_ = 0, completion_ = 0;
};

class OpenAIFront final : public FrontAdapter {
public:
  std::string protocol() const override { return "openai"; }

  ChatRequest parse(const json& body) const override {
    if (!body.is_object()) bad_request("the request body must be a JSON object");
    ChatRequest r;
    r.protocol = "openai";
    auto model = opt_string(body, "model", "");
    if (!model || model->empty())
      bad_request("'model' is required (a model name, or \"auto\" to let tinyroute pick)");
    r.model = *model;
    const json* messages = opt_array(body, "messages", "");
    if (!messages || messages->empty()) bad_request("'messages' is required and must be a non-empty array");
    for (std::size_t i = 0; i < messages->size(); ++i) {
      const auto& m = (*messages)[i];
      std::string w = "messages[" + std::to_string(i) + "]";
      if (!m.is_object()) bad_request("'" + w + "' must be an object");
      ChatMessage msg;
      auto role = opt_string(m, "role", w);
      if (!role) bad_request("'" + w + ".role' is required");
      msg.role = *role == "developer" ? "system" : *role;
      if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "tool") {
        bad_request("'" + w + ".role' must be system, developer, user, assistant or tool (got \"" + *role +
                    "\")");
      }
      msg.content = parse_content(m.contains("content") ? m["content"] : json(), w + ".content");
      msg.name = opt_string(m, "name", w).value_or("");
      msg.tool_call_id = opt_string(m, "tool_call_id", w).value_or("");
      if (const json* calls = opt_array(m, "tool_calls", w)) {
        for (std::size_t k = 0; k < calls->size(); ++k) {
          const auto& c = (*calls)[k];
          std::string cw = w + ".tool_calls[" + std::to_string(k) + "]";
          if (!c.is_object()) bad_request("'" + cw + "' must be an object");
          const json* fn = opt_object(c, "function", cw);
          if (!fn) bad_request("'" + cw + ".function' is required");
          msg.tool_calls.push_back({opt_string(c, "id", cw).value_or(""),
                                    opt_string(*fn, "name", cw + ".function").value_or(""),
                                    opt_string(*fn, "arguments", cw + ".function").value_or("{}")});
        }
      }
      r.messages.push_back(std::move(msg));
    }
    auto& s = r.sampling;
    s.temperature = opt_number(body, "temperature", "");
    s.top_p = opt_number(body, "top_p", "");
    s.top_k = opt_int(body, "top_k", "");
    s.max_tokens = opt_int(body, "max_completion_tokens", "");
    if (!s.max_tokens) s.max_tokens = opt_int(body, "max_tokens", "");
    s.stop = string_or_array(body, "stop", "");
    s.seed = opt_int64(body, "seed", "");
    s.presence_penalty = opt_number(body, "presence_penalty", "");
    s.frequency_penalty = opt_number(body, "frequency_penalty", "");
    if (const json* tools = opt_array(body, "tools", "")) {
      for (std::size_t i = 0; i < tools->size(); ++i) {
        std::string w = "tools[" + std::to_string(i) + "]";
        const auto& t = (*tools)[i];
        if (!t.is_object()) bad_request("'" + w + "' must be an object");
        if (auto type = opt_string(t, "type", w); type && *type != "function")
          bad_request("'" + w + ".type' must be \"function\" (got \"" + *type + "\")");
        const json* fn = opt_object(t, "function", w);
        if (!fn) bad_request("'" + w + ".function' is required");
        auto name = opt_string(*fn, "name", w + ".function");
        if (!name) bad_request("'" + w + ".function.name' is required");
        ToolSpec spec{*name, opt_string(*fn, "description", w + ".function").value_or(""), json::object(),
                      std::nullopt};
        if (const json* p = opt_object(*fn, "parameters", w + ".function")) spec.parameters = *p;
        spec.strict = opt_bool(*fn, "strict", w + ".function");
        r.tools.push_back(std::move(spec));
      }
    }
    r.tool_choice = parse_tool_choice(body);
    check_tool_choice(r);
    r.parallel_tool_calls = opt_bool(body, "parallel_tool_calls", "");
    parse_response_format(body, r);
    r.user = opt_string(body, "user", "").value_or("");
    r.stream = opt_bool(body, "stream", "").value_or(false);
    if (const json* so = opt_object(body, "stream_options", "")) {
      // Read by the stream renderer; the backend is always asked for usage.
      r.front_state["include_usage"] = opt_bool(*so, "include_usage", "stream_options").value_or(false);
    }
    // What tinyroute's one answer stream cannot carry is refused, never dropped.
    refuse_unless(body, "n", 1,
                  "tinyroute returns one choice per request; send the request again for another");
    refuse_unless(body, "logprobs", false, "tinyroute's answers carry no log probabilities");
    refuse_unless(body, "top_logprobs", 0, "tinyroute's answers carry no log probabilities");
    refuse_unless(body, "functions", json::array(),
                  "use 'tools' (the deprecated functions API is not served)");
    refuse_unless(body, "function_call", "auto",
                  "use 'tool_choice' (the deprecated functions API is not served)");
    refuse_unless(body, "audio", json::object(), "tinyroute answers with text only");
    refuse_unless(body, "modalities", json::array({"text"}), "tinyroute answers with text only");
    for (auto it = body.begin(); it != body.end(); ++it) {
      if (!known_fields.count(it.key())) r.extras[it.key()] = it.value();
    }
    return r;
  }

  json render(const ChatResult& res, const ChatRequest&, const std::string& model) const override {
    json message = {{"role", "assistant"},
                    {"content", res.text.empty() && !res.tool_calls.empty() ? json() : json(res.text)}};
    if (!res.tool_calls.empty()) message["tool_calls"] = tool_calls_json(res.tool_calls);
    return {{"id", random_id("chatcmpl-")},
            {"object", "chat.completion"},
            {"created", unix_time()},
            {"model", model},
            {"choices", json::array({{{"index", 0},
                                      {"message", message},
                                      {"finish_reason", openai_finish(res.finish_reason)}}})},
            {"usage",
             {{"prompt_tokens", res.prompt_tokens},
              {"completion_tokens", res.completion_tokens},
              {"total_tokens", res.prompt_tokens + res.completion_tokens}}}};
  }

  std::unique_ptr<FrontStream> stream(const ChatRequest& request, const std::string& model) const override {
    return std::make_unique<OpenAIStream>(model, request.front_state.value("include_usage", false));
  }

  std::string stream_content_type() const override { return "text/event-stream"; }

  json error(int, const std::string& type, const std::string& message) const override {
    return openai_error(type, message);
  }

  std::string param_name(const std::string& canonical) const override {
    if (canonical == "format") return "response_format";
    if (canonical == "tools.strict") return "tools[].function.strict";
    return canonical;
  }
};

} // namespace

std::unique_ptr<FrontAdapter> make_openai_front() {
  return std::make_unique<OpenAIFront>();
}

} // namespace tinyroute::gateway
