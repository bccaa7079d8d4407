#include "gateway/front-ollama.h"

#include <algorithm>
#include <set>

#include "gateway/request-json.h"

namespace tinyroute::gateway {

namespace {

// The options with a canonical meaning; the others (num_ctx, repeat_penalty, mirostat, ...) stay in
// extras["options"]: they reach Ollama backends and are refused on the others.
const std::set<std::string> canonical_options = {
    "temperature", "top_p", "top_k", "num_predict", "stop", "seed", "presence_penalty", "frequency_penalty"};

void parse_options(const json& body, SamplingParams& s) {
  const json* o = opt_object(body, "options", "");
  if (!o) return;
  s.temperature = opt_number(*o, "temperature", "options");
  s.top_p = opt_number(*o, "top_p", "options");
  s.top_k = opt_int(*o, "top_k", "options");
  s.max_tokens = opt_int(*o, "num_predict", "options");
  if (s.max_tokens && *s.max_tokens < 0) s.max_tokens.reset(); // -1 = unlimited in Ollama
  s.stop = string_or_array(*o, "stop", "options");
  s.seed = opt_int64(*o, "seed", "options");
  s.presence_penalty = opt_number(*o, "presence_penalty", "options");
  s.frequency_penalty = opt_number(*o, "frequency_penalty", "options");
}

void parse_images(const json& object, const std::string& where, std::vector<ContentPart>& parts) {
  if (const json* images = opt_array(object, "images", where)) {
    for (const auto& img : *images) {
      if (!img.is_string()) bad_request("'" + where + ".images' must contain base64 strings");
      ContentPart p;
      p.kind = ContentPart::Kind::image;
      p.media_type = "image/png";
      p.data = img.get<std::string>();
      parts.push_back(std::move(p));
    }
  }
}

// "json" or a JSON Schema object; anything else is a 400.
json parse_format(const json& body) {
  auto it = body.find("format");
  if (it == body.end() || it->is_null()) return nullptr;
  if (it->is_object() || (it->is_string() && *it == "json")) return *it;
  if (it->is_string() && it->get<std::string>().empty()) return nullptr;
  bad_request("'format' must be \"json\" or a JSON Schema object");
}

void parse_common(const json& body, ChatRequest& r, std::set<std::string> known, bool model_optional) {
  auto model = opt_string(body, "model", "");
  if (!model_optional && (!model || model->empty()))
    bad_request("'model' is required (a model name, or \"auto\" to let tinyroute pick)");
  r.model = model.value_or("");
  r.protocol = "ollama";
  r.stream = opt_bool(body, "stream", "").value_or(true);
  parse_options(body, r.sampling);
  r.format = parse_format(body);
  if (auto it = body.find("think");
      it != body.end() && !it->is_null() && !it->is_boolean() && !it->is_string())
    bad_request("'think' must be true, false or \"high\", \"medium\", \"low\"");
  if (const json* o = opt_object(body, "options", "")) {
    json rest = json::object(), runner = json::object();
    for (auto it = o->begin(); it != o->end(); ++it) {
      if (canonical_options.count(it.key()) || it->is_null()) continue;
      (runner_option(it.key()) ? runner : rest)[it.key()] = it.value();
    }
    if (!rest.empty()) r.extras["options"] = std::move(rest);
    if (!runner.empty()) r.hints["options"] = std::move(runner);
  }
  if (auto it = body.find("keep_alive"); it != body.end() && !it->is_null()) r.hints["keep_alive"] = *it;
  // What tinyroute's one answer stream cannot carry is refused, never dropped.
  refuse_unless(body, "logprobs", false, "tinyroute's answers carry no log probabilities");
  refuse_unless(body, "top_logprobs", 0, "tinyroute's answers carry no log probabilities");
  known.insert({"options", "format", "keep_alive", "logprobs", "top_logprobs"});
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (!known.count(it.key())) r.extras[it.key()] = it.value();
  }
}

std::string ollama_finish(const std::string& reason) {
  return reason == "length" ? "length" : "stop";
}

json tool_calls_json(const std::vector<ToolCall>& calls) {
  json out = json::array();
  for (const auto& c : calls) {
    out.push_back({{"function", {{"name", c.name}, {"arguments", parse_arguments(c.arguments)}}}});
  }
  return out;
}

class OllamaStream final : public FrontStream {
public:
  OllamaStream(std::string model, bool generate) : model_(std::move(model)), generate_(generate) {}
  std::string start() override { return {}; }
  std::string event(const ChatEvent& e) override {
    ChatResult tmp;
    switch (e.kind) {
    case ChatEvent::Kind::text:
      return line(e.text, false);
    case ChatEvent::Kind::tool_call:
      accumulate(calls_, e);
      return {}; // Ollama sends whole calls
    case ChatEvent::Kind::finish:
      calls_.finish_reason = e.finish_reason;
      return {};
    case ChatEvent::Kind::usage:
      accumulate(calls_, e);
      return {};
    case ChatEvent::Kind::error:
      return dump_for_client(json{{"error", e.text}}) + "\n";
    }
    return {};
  }
  std::string finish() override {
    std::string out;
    if (!calls_.tool_calls.empty() && !generate_) {
      json msg = {
          {"model", model_},
          {"created_at", iso_time()},
          {"message",
           {{"role", "assistant"}, {"content", ""}, {"tool_calls", tool_calls_json(calls_.tool_calls)}}},
          {"done", false}};
      out += dump_for_client(msg) + "\n";
    }
    json last = base("", true);
    last["done_reason"] = ollama_finish(calls_.finish_reason);
    last["total_duration"] = 0;
    last["prompt_eval_count"] = calls_.prompt_tokens;
    last["eval_count"] = calls_.completion_tokens;
    return out + dump_for_client(last) + "\n";
  }

private:
  json base(const std::string& text, bool done) const {
    json j = {{"model", model_}, {"created_at", iso_time()}};
    if (generate_)
      j["response"] = text;
    else
      j["message"] = {{"role", "assistant"}, {"content", text}};
    j["done"] = done;
    return j;
  }
  std::string line(const std::string& text, bool done) const {
    return dump_for_client(base(text, done)) + "\n";
  }
  std::string model_;
  bool generate_;
  ChatResult calls_;
};

class OllamaFront : public FrontAdapter {
public:
  explicit OllamaFront(bool generate) : generate_(generate) {}
  std::string protocol() const override { return "ollama"; }

  ChatRequest parse(const json& body) const override {
    if (!body.is_object()) bad_request("the request body must be a JSON object");
    ChatRequest r;
    if (generate_) {
      // MLX-server dialect: "category" instead of a model, and a top-level "max_tokens".
      auto category = opt_string(body, "category", "");
      parse_common(body, r, {"model", "prompt", "system", "images", "stream", "category", "max_tokens"},
                   category.has_value());
      // A generate request is forwarded as a chat turn: what only a raw completion can do is refused.
      const std::string why = "tinyroute forwards /api/generate as a chat request";
      refuse_unless(body, "suffix", "", why);
      refuse_unless(body, "raw", false, why);
      refuse_unless(body, "template", "", why);
      refuse_unless(body, "context", json::array(), why);
      for (const char* key : {"suffix", "raw", "template", "context"}) r.extras.erase(key);
      r.category = category.value_or("");
      if (r.model.empty()) r.model = "auto";
      if (auto max_tokens = opt_int(body, "max_tokens", "")) {
        if (*max_tokens <= 0) bad_request("'max_tokens' must be a positive integer");
        if (!r.sampling.max_tokens) r.sampling.max_tokens = *max_tokens; // options.num_predict wins
      }
      auto prompt = opt_string(body, "prompt", "");
      if (!prompt) bad_request("'prompt' is required and must be a string");
      if (auto system = opt_string(body, "system", "")) {
        r.messages.push_back({"system", {{ContentPart::Kind::text, *system, "", "", ""}}, {}, "", ""});
      }
      ChatMessage user{"user", {{ContentPart::Kind::text, *prompt, "", "", ""}}, {}, "", ""};
      parse_images(body, "", user.content);
      r.messages.push_back(std::move(user));
      return r;
    }
    parse_common(body, r, {"model", "messages", "stream", "tools"}, false);
    const json* messages = opt_array(body, "messages", "");
    if (!messages || messages->empty()) bad_request("'messages' is required and must be a non-empty array");
    // Ollama's tool calls have no ids and its tool results name no call: the calls get ids unique in the
    // conversation, and each result the id of the latest assistant turn's first unanswered call (of its
    // tool_name, when given), as OpenAI and Anthropic backends need to pair them.
    int calls_seen = 0;
    std::vector<ToolCall> unanswered;
    for (std::size_t i = 0; i < messages->size(); ++i) {
      const auto& m = (*messages)[i];
      std::string w = "messages[" + std::to_string(i) + "]";
      if (!m.is_object()) bad_request("'" + w + "' must be an object");
      ChatMessage msg;
      auto role = opt_string(m, "role", w);
      if (!role) bad_request("'" + w + ".role' is required");
      if (*role != "system" && *role != "user" && *role != "assistant" && *role != "tool") {
        bad_request("'" + w + ".role' must be system, user, assistant or tool (got \"" + *role + "\")");
      }
      msg.role = *role;
      if (auto content = opt_string(m, "content", w))
        msg.content.push_back({ContentPart::Kind::text, *content, "", "", ""});
      parse_images(m, w, msg.content);
      msg.name = opt_string(m, "tool_name", w).value_or("");
      if (const json* calls = opt_array(m, "tool_calls", w)) {
        for (std::size_t k = 0; k < calls->size(); ++k) {
          const auto& c = (*calls)[k];
          std::string cw = w + ".tool_calls[" + std::to_string(k) + "]";
          const json* fn = c.is_object() ? opt_object(c, "function", cw) : nullptr;
          if (!fn) bad_request("'" + cw + ".function' is required");
          json args = fn->contains("arguments") ? (*fn)["arguments"] : json::object();
          msg.tool_calls.push_back({"call_" + std::to_string(calls_seen++),
                                    opt_string(*fn, "name", cw + ".function").value_or(""),
                                    args.is_string() ? args.get<std::string>() : args.dump()});
        }
      }
      if (msg.role == "assistant") {
        unanswered = msg.tool_calls;
      } else if (msg.role == "tool") {
        auto call = std::find_if(unanswered.begin(), unanswered.end(),
                                 [&](const ToolCall& c) { return msg.name.empty() || c.name == msg.name; });
        if (call != unanswered.end()) {
          msg.tool_call_id = call->id;
          unanswered.erase(call);
        }
      }
      r.messages.push_back(std::move(msg));
    }
    if (const json* tools = opt_array(body, "tools", "")) {
      for (std::size_t i = 0; i < tools->size(); ++i) {
        std::string w = "tools[" + std::to_string(i) + "]";
        const auto& t = (*tools)[i];
        const json* fn = t.is_object() ? opt_object(t, "function", w) : nullptr;
        if (!fn) bad_request("'" + w + ".function' is required");
        auto name = opt_string(*fn, "name", w + ".function");
        if (!name) bad_request("'" + w + ".function.name' is required");
        ToolSpec spec{*name, opt_string(*fn, "description", w + ".function").value_or(""), json::object(),
                      std::nullopt};
        if (const json* p = opt_object(*fn, "parameters", w + ".function")) spec.parameters = *p;
        r.tools.push_back(std::move(spec));
      }
    }
    return r;
  }

  json render(const ChatResult& res, const ChatRequest&, const std::string& model) const override {
    json j = {{"model", model}, {"created_at", iso_time()}};
    if (generate_) {
      j["response"] = res.text;
    } else {
      j["message"] = {{"role", "assistant"}, {"content", res.text}};
      if (!res.tool_calls.empty()) j["message"]["tool_calls"] = tool_calls_json(res.tool_calls);
    }
    j["done"] = true;
    j["done_reason"] = ollama_finish(res.finish_reason);
    j["total_duration"] = 0;
    j["prompt_eval_count"] = res.prompt_tokens;
    j["eval_count"] = res.completion_tokens;
    return j;
  }

  std::unique_ptr<FrontStream> stream(const ChatRequest&, const std::string& model) const override {
    return std::make_unique<OllamaStream>(model, generate_);
  }
  std::string stream_content_type() const override { return "application/x-ndjson"; }
  json error(int, const std::string& type, const std::string& message) const override {
    // Ollama's shape is {"error": "..."}; the type rides along for clients that look.
    return {{"error", message}, {"type", type}};
  }
  std::string param_name(const std::string& canonical) const override {
    if (canonical == "top_k" || canonical == "stop" || canonical == "seed" ||
        canonical == "presence_penalty" || canonical == "frequency_penalty")
      return "options." + canonical;
    return canonical;
  }

private:
  bool generate_;
};

} // namespace

std::unique_ptr<FrontAdapter> make_ollama_chat_front() {
  return std::make_unique<OllamaFront>(false);
}
std::unique_ptr<FrontAdapter> make_ollama_generate_front() {
  return std::make_unique<OllamaFront>(true);
}

} // namespace tinyroute::gateway
