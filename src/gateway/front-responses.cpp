#include "gateway/front-responses.h"

#include <map>
#include <set>

namespace tinyroute::gateway {

namespace {

// Every field of the Responses API's create request: the ones tinyroute honours and the ones it
// refuses by value below. Any other field is refused as OpenAI itself does.
const std::set<std::string> known_fields = {"model",
                                            "input",
                                            "instructions",
                                            "tools",
                                            "tool_choice",
                                            "parallel_tool_calls",
                                            "max_output_tokens",
                                            "temperature",
                                            "top_p",
                                            "metadata",
                                            "stream",
                                            "stream_options",
                                            "text",
                                            "user",
                                            "store",
                                            "previous_response_id",
                                            "include",
                                            "reasoning",
                                            "truncation",
                                            "top_logprobs",
                                            "background",
                                            "max_tool_calls",
                                            "prompt",
                                            "conversation",
                                            "service_tier",
                                            "safety_identifier",
                                            "prompt_cache_key"};

// Chat Completions fields of the same name and meaning: they reach OpenAI-compatible backends.
const std::set<std::string> openai_extras = {"service_tier", "safety_identifier", "prompt_cache_key"};

const std::string no_store =
    "tinyroute keeps no responses; send the whole conversation in 'input' (and store: false or nothing)";

std::string at(const std::string& where, std::size_t i) {
  return where + "[" + std::to_string(i) + "]";
}

// A message item's content: a string or input_text / output_text / refusal / input_image parts.
std::vector<ContentPart> parse_content(const json& content, const std::string& where) {
  std::vector<ContentPart> parts;
  if (content.is_string()) {
    parts.push_back({ContentPart::Kind::text, content.get<std::string>(), "", "", ""});
    return parts;
  }
  if (!content.is_array()) bad_request("'" + where + "' must be a string or an array of content parts");
  for (std::size_t i = 0; i < content.size(); ++i) {
    const json& p = content[i];
    const std::string pw = at(where, i);
    if (!p.is_object()) bad_request("'" + pw + "' must be an object");
    const std::string type = opt_string(p, "type", pw).value_or("");
    if (type == "input_text" || type == "output_text" || type == "refusal") {
      const char* field = type == "refusal" ? "refusal" : "text";
      auto text = opt_string(p, field, pw);
      if (!text) bad_request("'" + pw + "." + field + "' is required");
      parts.push_back({ContentPart::Kind::text, *text, "", "", ""});
    } else if (type == "input_image") {
      auto url = opt_string(p, "image_url", pw);
      if (!url) bad_request("'" + pw + ".image_url' is required (file_id images are not supported)");
      parts.push_back(image_from_url(*url));
    } else {
      bad_request("'" + pw + ".type' must be input_text, output_text, refusal or input_image (got \"" + type +
                  "\")");
    }
  }
  return parts;
}

// `input`: a string (one user message) or items. Consecutive function_call items join the assistant
// turn before them; a function_call_output becomes a tool message naming its call.
void parse_input(const json& input, ChatRequest& r) {
  if (input.is_string()) {
    r.messages.push_back(
        {"user", {{ContentPart::Kind::text, input.get<std::string>(), "", "", ""}}, {}, "", ""});
    return;
  }
  if (!input.is_array() || input.empty())
    bad_request("'input' is required: a string or a non-empty array of items");
  std::map<std::string, std::string> call_names; // call_id -> function name
  for (std::size_t i = 0; i < input.size(); ++i) {
    const json& item = input[i];
    const std::string w = at("input", i);
    if (!item.is_object()) bad_request("'" + w + "' must be an object");
    const std::string type = opt_string(item, "type", w).value_or("message");
    if (type == "message") {
      auto role = opt_string(item, "role", w);
      if (!role) bad_request("'" + w + ".role' is required");
      if (*role != "user" && *role != "assistant" && *role != "system" && *role != "developer")
        bad_request("'" + w + ".role' must be user, assistant, system or developer (got \"" + *role + "\")");
      if (!item.contains("content")) bad_request("'" + w + ".content' is required");
      ChatMessage m;
      m.role = *role == "developer" ? "system" : *role;
      m.content = parse_content(item["content"], w + ".content");
      r.messages.push_back(std::move(m));
    } else if (type == "function_call") {
      auto call_id = opt_string(item, "call_id", w);
      auto name = opt_string(item, "name", w);
      if (!call_id || call_id->empty()) bad_request("'" + w + ".call_id' is required");
      if (!name || name->empty()) bad_request("'" + w + ".name' is required");
      call_names[*call_id] = *name;
      if (r.messages.empty() || r.messages.back().role != "assistant")
        r.messages.push_back({"assistant", {}, {}, "", ""});
      r.messages.back().tool_calls.push_back(
          {*call_id, *name, opt_string(item, "arguments", w).value_or("{}")});
    } else if (type == "function_call_output") {
      auto call_id = opt_string(item, "call_id", w);
      if (!call_id || call_id->empty()) bad_request("'" + w + ".call_id' is required");
      if (!item.contains("output")) bad_request("'" + w + ".output' is required");
      ChatMessage m;
      m.role = "tool";
      m.tool_call_id = *call_id;
      m.name = call_names.count(*call_id) ? call_names[*call_id] : "";
      for (auto& part : parse_content(item["output"], w + ".output")) {
        if (part.kind != ContentPart::Kind::text)
          bad_request("'" + w +
                      ".output' may hold text only (tool results are text in every backend protocol)");
        m.content.push_back(std::move(part));
      }
      r.messages.push_back(std::move(m));
    } else if (type == "reasoning") {
      continue; // tinyroute never returns reasoning items; another server's are not portable
    } else {
      bad_request("'" + w + ".type' \"" + type +
                  "\" is not supported (message, function_call, function_call_output)");
    }
  }
}

// Flat function tools: {type: function, name, description, parameters, strict}.
void parse_tools(const json& body, ChatRequest& r) {
  const json* tools = opt_array(body, "tools", "");
  if (!tools) return;
  for (std::size_t i = 0; i < tools->size(); ++i) {
    const json& t = (*tools)[i];
    const std::string w = at("tools", i);
    if (!t.is_object()) bad_request("'" + w + "' must be an object");
    const std::string type = opt_string(t, "type", w).value_or("");
    if (type != "function")
      bad_request("'" + w + ".type' \"" + type +
                  "\" is not supported: tinyroute forwards function tools, which every backend can run");
    auto name = opt_string(t, "name", w);
    if (!name || name->empty()) bad_request("'" + w + ".name' is required");
    ToolSpec spec{*name, opt_string(t, "description", w).value_or(""), json::object(), std::nullopt};
    if (const json* p = opt_object(t, "parameters", w)) spec.parameters = *p;
    spec.strict = opt_bool(t, "strict", w);
    r.tools.push_back(std::move(spec));
  }
}

// "auto" | "none" | "required" | {"type": "function", "name"}.
ToolChoice parse_tool_choice(const json& body) {
  auto it = body.find("tool_choice");
  if (it == body.end() || it->is_null()) return {};
  if (it->is_string() && (*it == "auto" || *it == "none" || *it == "required"))
    return {it->get<std::string>(), ""};
  if (it->is_object() && it->value("type", "") == "function") {
    auto name = opt_string(*it, "name", "tool_choice");
    if (!name || name->empty()) bad_request("'tool_choice.name' is required");
    return {"function", *name};
  }
  bad_request(
      "'tool_choice' must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...}");
}

// text: {format: {type: text | json_object | json_schema (name, schema, strict)}}.
void parse_text(const json& body, ChatRequest& r) {
  const json* text = opt_object(body, "text", "");
  if (!text) return;
  refuse_unless(*text, "verbosity", "medium", "no backend protocol takes a verbosity setting from tinyroute",
                "text");
  const json* format = opt_object(*text, "format", "text");
  if (!format) return;
  const std::string type = opt_string(*format, "type", "text.format").value_or("");
  if (type == "text") return;
  if (type == "json_object") {
    r.format = "json";
  } else if (type == "json_schema") {
    const json* schema = opt_object(*format, "schema", "text.format");
    if (!schema) bad_request("'text.format.schema' is required for type json_schema");
    r.format = *schema;
    r.format_name = opt_string(*format, "name", "text.format").value_or("");
    r.format_strict = opt_bool(*format, "strict", "text.format");
  } else {
    bad_request("'text.format.type' must be text, json_object or json_schema (got \"" + type + "\")");
  }
}

// metadata: up to 16 string values, echoed in the response.
json parse_metadata(const json& body) {
  const json* m = opt_object(body, "metadata", "");
  if (!m) return json::object();
  if (m->size() > 16) bad_request("'metadata' may hold at most 16 keys");
  for (auto it = m->begin(); it != m->end(); ++it) {
    if (!it->is_string()) bad_request("'metadata." + it.key() + "' must be a string");
  }
  return *m;
}

json usage_json(int input, int output) {
  return {{"input_tokens", input},
          {"input_tokens_details", {{"cached_tokens", 0}}},
          {"output_tokens", output},
          {"output_tokens_details", {{"reasoning_tokens", 0}}},
          {"total_tokens", input + output}};
}

json text_part(const std::string& text) {
  return {
      {"type", "output_text"}, {"text", text}, {"annotations", json::array()}, {"logprobs", json::array()}};
}

json message_item(const std::string& id, const std::string& status, json content) {
  return {{"id", id},
          {"type", "message"},
          {"status", status},
          {"role", "assistant"},
          {"content", std::move(content)}};
}

json call_item(const std::string& id, const std::string& status, const std::string& call_id,
               const std::string& name, const std::string& arguments) {
  return {{"id", id},     {"type", "function_call"}, {"status", status}, {"call_id", call_id},
          {"name", name}, {"arguments", arguments}};
}

// A Response object: what the request set (front_state), then this answer's state.
json response_json(const json& echo, const std::string& id, long long created, const std::string& model,
                   const std::string& status, json output, json usage) {
  json r = echo;
  r["id"] = id;
  r["object"] = "response";
  r["created_at"] = created;
  r["status"] = status;
  r["model"] = model;
  r["output"] = std::move(output);
  r["usage"] = std::move(usage);
  r["error"] = nullptr;
  r["incomplete_details"] = nullptr;
  return r;
}

// The status a finished answer has: completed, or incomplete with its reason.
void set_outcome(json& response, const std::string& finish_reason) {
  if (finish_reason == "length" || finish_reason == "content_filter") {
    response["status"] = "incomplete";
    response["incomplete_details"] = {
        {"reason", finish_reason == "length" ? "max_output_tokens" : "content_filter"}};
  } else {
    response["status"] = "completed";
  }
}

class ResponsesStream final : public FrontStream {
public:
  ResponsesStream(json echo, std::string model)
      : echo_(std::move(echo)), model_(std::move(model)), id_(random_id("resp_")), created_(unix_time()) {}

  std::string start() override {
    json r = response_json(echo_, id_, created_, model_, "in_progress", json::array(), nullptr);
    std::string out = emit("response.created", {{"response", r}}); // emit() numbers them: one at a time
    return out + emit("response.in_progress", {{"response", r}});
  }

  std::string event(const ChatEvent& e) override {
    std::string out;
    switch (e.kind) {
    case ChatEvent::Kind::text:
      if (open_ != Open::text) {
        out += close();
        open_ = Open::text;
        item_id_ = random_id("msg_");
        text_.clear();
        out +=
            emit("response.output_item.added",
                 {{"output_index", index()}, {"item", message_item(item_id_, "in_progress", json::array())}});
        out += emit("response.content_part.added", {{"item_id", item_id_},
                                                    {"output_index", index()},
                                                    {"content_index", 0},
                                                    {"part", text_part("")}});
      }
      text_ += e.text;
      out += emit("response.output_text.delta", {{"item_id", item_id_},
                                                 {"output_index", index()},
                                                 {"content_index", 0},
                                                 {"delta", e.text},
                                                 {"logprobs", json::array()}});
      return out;
    case ChatEvent::Kind::tool_call:
      if (open_ != Open::call || e.tool_index != tool_index_) {
        out += close();
        open_ = Open::call;
        tool_index_ = e.tool_index;
        item_id_ = random_id("fc_");
        call_id_ = e.tool_id.empty() ? random_id("call_") : e.tool_id;
        name_ = e.tool_name;
        text_.clear();
        out += emit(
            "response.output_item.added",
            {{"output_index", index()}, {"item", call_item(item_id_, "in_progress", call_id_, name_, "")}});
      }
      if (!e.tool_arguments.empty()) {
        text_ += e.tool_arguments;
        out += emit("response.function_call_arguments.delta",
                    {{"item_id", item_id_}, {"output_index", index()}, {"delta", e.tool_arguments}});
      }
      return out;
    case ChatEvent::Kind::finish:
      finish_ = e.finish_reason;
      return {};
    case ChatEvent::Kind::usage:
      if (e.prompt_tokens) input_ = e.prompt_tokens;
      if (e.completion_tokens) output_tokens_ = e.completion_tokens;
      return {};
    case ChatEvent::Kind::error: {
      out += close();
      const std::string code = e.error_type.empty() ? "upstream_error" : e.error_type;
      out += emit("error", {{"code", code}, {"message", e.text}, {"param", nullptr}});
      json r =
          response_json(echo_, id_, created_, model_, "failed", output_, usage_json(input_, output_tokens_));
      r["error"] = {{"code", "server_error"}, {"message", e.text}};
      out += emit("response.failed", {{"response", r}});
      return out;
    }
    }
    return {};
  }

  std::string finish() override {
    std::string out = close();
    json r =
        response_json(echo_, id_, created_, model_, "completed", output_, usage_json(input_, output_tokens_));
    set_outcome(r, finish_);
    return out + emit("response." + r["status"].get<std::string>(), {{"response", r}});
  }

private:
  enum class Open { none, text, call };

  std::string emit(const std::string& type, json data) {
    data["type"] = type;
    data["sequence_number"] = sequence_++;
    return sse(data, type);
  }
  int index() const { return static_cast<int>(output_.size()); } // the open item's place in `output`

  // Ends the open item: its .done events, then output_item.done.
  std::string close() {
    std::string out;
    if (open_ == Open::text) {
      out += emit("response.output_text.done", {{"item_id", item_id_},
                                                {"output_index", index()},
                                                {"content_index", 0},
                                                {"text", text_},
                                                {"logprobs", json::array()}});
      out += emit("response.content_part.done", {{"item_id", item_id_},
                                                 {"output_index", index()},
                                                 {"content_index", 0},
                                                 {"part", text_part(text_)}});
      json item = message_item(item_id_, "completed", json::array({text_part(text_)}));
      out += emit("response.output_item.done", {{"output_index", index()}, {"item", item}});
      output_.push_back(std::move(item));
    } else if (open_ == Open::call) {
      out += emit("response.function_call_arguments.done",
                  {{"item_id", item_id_}, {"output_index", index()}, {"name", name_}, {"arguments", text_}});
      json item = call_item(item_id_, "completed", call_id_, name_, text_);
      out += emit("response.output_item.done", {{"output_index", index()}, {"item", item}});
      output_.push_back(std::move(item));
    }
    open_ = Open::none;
    return out;
  }

  json echo_; // what every Response object repeats from the request
  std::string model_, id_;
  long long created_;
  int sequence_ = 0;
  json output_ = json::array(); // the finished items
  Open open_ = Open::none;
  std::string item_id_, call_id_, name_;
  std::string text_; // the open item's text, or its arguments
  int tool_index_ = -1;
  std::string finish_;
  int input_ = 0, output_tokens_ = 0;
};

class ResponsesFront final : public FrontAdapter {
public:
  std::string protocol() const override { return "responses"; }

  ChatRequest parse(const json& body) const override {
    if (!body.is_object()) bad_request("the request body must be a JSON object");
    for (auto it = body.begin(); it != body.end(); ++it) {
      if (!known_fields.count(it.key())) bad_request("Unrecognized request argument supplied: " + it.key());
    }
    ChatRequest r;
    r.protocol = "openai"; // its extras are Chat Completions fields
    auto model = opt_string(body, "model", "");
    if (!model || model->empty())
      bad_request("'model' is required (a model name, or \"auto\" to let tinyroute pick)");
    r.model = *model;
    auto instructions = opt_string(body, "instructions", "");
    if (instructions)
      r.messages.push_back({"system", {{ContentPart::Kind::text, *instructions, "", "", ""}}, {}, "", ""});
    if (!body.contains("input") || body["input"].is_null())
      bad_request("'input' is required: a string or an array of items");
    parse_input(body["input"], r);
    parse_tools(body, r);
    r.tool_choice = parse_tool_choice(body);
    check_tool_choice(r);
    r.parallel_tool_calls = opt_bool(body, "parallel_tool_calls", "");
    auto& s = r.sampling;
    s.max_tokens = opt_int(body, "max_output_tokens", "");
    if (s.max_tokens && *s.max_tokens <= 0) bad_request("'max_output_tokens' must be a positive integer");
    s.temperature = opt_number(body, "temperature", "");
    s.top_p = opt_number(body, "top_p", "");
    parse_text(body, r);
    r.user = opt_string(body, "user", "").value_or("");
    r.stream = opt_bool(body, "stream", "").value_or(false);
    if (const json* so = opt_object(body, "stream_options", "")) { // include_obfuscation: no padding is sent
      opt_bool(*so, "include_obfuscation", "stream_options");
    }
    const json metadata = parse_metadata(body);
    // Refused by value: what needs a stored response, a model feature no backend protocol carries, or
    // OpenAI's own hosted machinery.
    refuse_unless(body, "store", false, no_store);
    refuse_unless(body, "previous_response_id", "", no_store);
    refuse_unless(body, "conversation", "", no_store);
    refuse_unless(body, "background", false, "tinyroute answers while the request is open");
    refuse_unless(body, "prompt", json::object(),
                  "tinyroute has no stored prompts; send the text in 'input'");
    refuse_unless(body, "reasoning", json::object(),
                  "no backend protocol takes a reasoning setting from tinyroute");
    refuse_unless(body, "truncation", "disabled", "tinyroute never drops input to fit a context window");
    refuse_unless(body, "top_logprobs", 0, "tinyroute's answers carry no log probabilities");
    refuse_unless(body, "max_tool_calls", nullptr, "no backend protocol limits the number of tool calls");
    if (const json* include = opt_array(body, "include", "")) {
      for (std::size_t i = 0; i < include->size(); ++i) {
        // Encrypted reasoning: tinyroute returns no reasoning items, so there is nothing to include.
        if ((*include)[i] != "reasoning.encrypted_content")
          bad_request("'" + at("include", i) +
                      "' is not supported: tinyroute returns messages and function calls only");
      }
    }
    for (const auto& key : openai_extras) {
      if (body.contains(key) && !body[key].is_null()) r.extras[key] = body[key];
    }
    // Echoed in every Response object, as OpenAI does.
    r.front_state["echo"] = {
        {"instructions", instructions ? json(*instructions) : json(nullptr)},
        {"metadata", metadata},
        {"tools", body.contains("tools") && !body["tools"].is_null() ? body["tools"] : json::array()},
        {"tool_choice",
         body.contains("tool_choice") && !body["tool_choice"].is_null() ? body["tool_choice"] : json("auto")},
        {"parallel_tool_calls", r.parallel_tool_calls.value_or(true)},
        {"max_output_tokens", s.max_tokens ? json(*s.max_tokens) : json(nullptr)},
        {"temperature", s.temperature ? json(*s.temperature) : json(nullptr)},
        {"top_p", s.top_p ? json(*s.top_p) : json(nullptr)},
        {"text", body.contains("text") && !body["text"].is_null() ? body["text"]
                                                                  : json{{"format", {{"type", "text"}}}}},
        {"user", r.user.empty() ? json(nullptr) : json(r.user)},
        {"service_tier", body.value("service_tier", json(nullptr))},
        {"previous_response_id", nullptr},
        {"reasoning", {{"effort", nullptr}, {"summary", nullptr}}},
        {"store", false},
        {"background", false},
        {"truncation", "disabled"},
        {"top_logprobs", 0},
        {"max_tool_calls", nullptr}};
    return r;
  }

  json render(const ChatResult& res, const ChatRequest& request, const std::string& model) const override {
    json output = json::array();
    if (!res.text.empty() || res.tool_calls.empty())
      output.push_back(message_item(random_id("msg_"), "completed", json::array({text_part(res.text)})));
    for (const auto& c : res.tool_calls) {
      output.push_back(call_item(random_id("fc_"), "completed", c.id.empty() ? random_id("call_") : c.id,
                                 c.name, c.arguments));
    }
    json r = response_json(request.front_state.value("echo", json::object()), random_id("resp_"), unix_time(),
                           model, "completed", std::move(output),
                           usage_json(res.prompt_tokens, res.completion_tokens));
    if (res.failed) {
      r["status"] = "failed";
      r["error"] = {{"code", "server_error"}, {"message", res.error}};
    } else {
      set_outcome(r, res.finish_reason);
    }
    return r;
  }

  std::unique_ptr<FrontStream> stream(const ChatRequest& request, const std::string& model) const override {
    return std::make_unique<ResponsesStream>(request.front_state.value("echo", json::object()), model);
  }

  std::string stream_content_type() const override { return "text/event-stream"; }

  json error(int, const std::string& type, const std::string& message) const override {
    return openai_error(type, message);
  }

  std::string param_name(const std::string& canonical) const override {
    if (canonical == "format") return "text.format";
    if (canonical == "tools.strict") return "tools[].strict";
    if (canonical == "max_tokens") return "max_output_tokens";
    return canonical;
  }
};

} // namespace

std::unique_ptr<FrontAdapter> make_responses_front() {
  return std::make_unique<ResponsesFront>();
}

} // namespace tinyroute::gateway
