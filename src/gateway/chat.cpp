#include "gateway/chat.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <random>
#include <set>

#include "gateway/request-json.h"
#include "tinyroute/error.h"

namespace tinyroute {

std::string last_user_text(const ChatRequest& request) {
  for (auto it = request.messages.rbegin(); it != request.messages.rend(); ++it) {
    if (it->role == "user") return gateway::text_of(*it);
  }
  return {};
}

nlohmann::json to_json(const RouteDecision& d) {
  return {{"category", d.category},   {"confidence", d.confidence}, {"model", d.model},
          {"fallbacks", d.fallbacks}, {"reason", d.reason},         {"source", d.source},
          {"route_ms", d.route_ms}};
}

} // namespace tinyroute

namespace tinyroute::gateway {

void accumulate(ChatResult& r, const ChatEvent& e) {
  switch (e.kind) {
  case ChatEvent::Kind::text:
    r.text += e.text;
    break;
  case ChatEvent::Kind::tool_call: {
    if (e.tool_index < 0 || e.tool_index >= kMaxToolCalls)
      break; // decoders refuse these; never index by them
    if (static_cast<std::size_t>(e.tool_index) >= r.tool_calls.size()) r.tool_calls.resize(e.tool_index + 1);
    auto& call = r.tool_calls[e.tool_index];
    if (!e.tool_id.empty()) call.id = e.tool_id;
    if (!e.tool_name.empty()) call.name = e.tool_name;
    call.arguments += e.tool_arguments;
    break;
  }
  case ChatEvent::Kind::finish:
    r.finish_reason = e.finish_reason;
    break;
  case ChatEvent::Kind::usage:
    if (e.prompt_tokens) r.prompt_tokens = e.prompt_tokens;
    if (e.completion_tokens) r.completion_tokens = e.completion_tokens;
    break;
  case ChatEvent::Kind::error:
    r.failed = true;
    r.error = e.text;
    break;
  }
}

std::string BackendAdapter::error_message(const std::string& body) const {
  try {
    auto j = json::parse(body);
    if (j.contains("error")) {
      const auto& e = j["error"];
      if (e.is_string()) return e.get<std::string>();
      if (e.is_object() && e.contains("message") && e["message"].is_string())
        return e["message"].get<std::string>();
    }
    if (j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  } catch (const json::exception&) {
  }
  return truncate(body, 300);
}

std::vector<std::string> LineSplitter::feed(std::string_view bytes) {
  pending_.append(bytes);
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto nl = pending_.find('\n', start);
    if (nl == std::string::npos) break;
    std::size_t end = nl;
    if (end > start && pending_[end - 1] == '\r') --end;
    out.emplace_back(pending_, start, end - start);
    start = nl + 1;
  }
  pending_.erase(0, start);
  return out;
}

std::string LineSplitter::take_rest() {
  return std::exchange(pending_, {});
}

std::vector<SseEvent> SseParser::feed(std::string_view bytes) {
  std::vector<SseEvent> out;
  for (auto& line : lines_.feed(bytes)) {
    if (line.empty()) {
      if (has_data_) out.push_back(std::move(current_));
      current_ = {};
      has_data_ = false;
      continue;
    }
    if (line[0] == ':') continue; // comment / keep-alive
    auto colon = line.find(':');
    std::string name = line.substr(0, colon);
    std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    if (name == "event") {
      current_.event = value;
    } else if (name == "data") {
      if (has_data_) current_.data += '\n';
      current_.data += value;
      has_data_ = true;
    }
  }
  return out;
}

std::string sse(const json& data, const std::string& event) {
  std::string out;
  if (!event.empty()) out += "event: " + event + "\n";
  out += "data: " + dump_for_client(data) + "\n\n";
  return out;
}

std::string random_id(const std::string& prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += alphabet[rng() % (sizeof(alphabet) - 1)];
  return id;
}

long long unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string iso_time() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string text_of(const ChatMessage& message) {
  std::string out;
  for (const auto& part : message.content) {
    if (part.kind == ContentPart::Kind::text) out += part.text;
  }
  return out;
}

std::string join_url(const std::string& base, const std::string& path) {
  std::string b = base;
  while (!b.empty() && b.back() == '/') b.pop_back();
  return b + path;
}

std::string api_key(const ModelConfig& model) {
  if (model.api_key_env.empty()) return {};
  const char* value = std::getenv(model.api_key_env.c_str());
  if (value == nullptr || *value == 0) {
    // Names the variable, never a value.
    throw Error(ErrorCode::invalid_argument, "model '" + model.name + "' needs the API key in $" +
                                                 model.api_key_env + ", which is not set");
  }
  return value;
}

void bad_request(const std::string& message) {
  throw FrontError(400, "invalid_request_error", message);
}

namespace {
const json* get(const json& o, const char* name) {
  auto it = o.find(name);
  if (it == o.end() || it->is_null()) return nullptr;
  return &*it;
}
std::string path(const std::string& where, const char* name) {
  return where.empty() ? name : where + "." + name;
}
} // namespace

std::optional<std::string> opt_string(const json& o, const char* name, const std::string& where) {
  const json* v = get(o, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) bad_request("'" + path(where, name) + "' must be a string");
  return v->get<std::string>();
}

std::optional<double> opt_number(const json& o, const char* name, const std::string& where) {
  const json* v = get(o, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad_request("'" + path(where, name) + "' must be a number");
  return v->get<double>();
}

std::optional<int> opt_int(const json& o, const char* name, const std::string& where) {
  const json* v = get(o, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) bad_request("'" + path(where, name) + "' must be an integer");
  // Checked before the conversion: 1e10 must be refused, not wrapped into some other number.
  const bool fits = v->is_number_unsigned() ? v->get<std::uint64_t>() <=
                                                  static_cast<std::uint64_t>(std::numeric_limits<int>::max())
                                            : v->get<std::int64_t>() >= std::numeric_limits<int>::min() &&
                                                  v->get<std::int64_t>() <= std::numeric_limits<int>::max();
  if (!fits)
    bad_request("'" + path(where, name) + "' is out of range (an integer from " +
                std::to_string(std::numeric_limits<int>::min()) + " to " +
                std::to_string(std::numeric_limits<int>::max()) + ")");
  return v->get<int>();
}

std::optional<std::int64_t> opt_int64(const json& o, const char* name, const std::string& where) {
  const json* v = get(o, name);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
    bad_request("'" + path(where, name) + "' is out of range (a 64-bit signed integer)");
  if (v->is_number_integer()) return v->get<std::int64_t>();
  // A whole number written as 42.0 is accepted; anything a 64-bit integer cannot hold is not.
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::trunc(d) == d && d >= -9.2e18 && d <= 9.2e18) return static_cast<std::int64_t>(d);
    bad_request("'" + path(where, name) + "' must be an integer (a 64-bit signed integer)");
  }
  bad_request("'" + path(where, name) + "' must be an integer");
}

std::optional<bool> opt_bool(const json& o, const char* name, const std::string& where) {
  const json* v = get(o, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad_request("'" + path(where, name) + "' must be true or false");
  return v->get<bool>();
}

const json* opt_array(const json& o, const char* name, const std::string& where) {
  const json* v = get(o, name);
  if (v && !v->is_array()) bad_request("'" + path(where, name) + "' must be an array");
  return v;
}

const json* opt_object(const json& o, const char* name, const std::string& where) {
  const json* v = get(o, name);
  if (v && !v->is_object()) bad_request("'" + path(where, name) + "' must be an object");
  return v;
}

std::vector<std::string> string_or_array(const json& o, const char* name, const std::string& where) {
  const json* v = get(o, name);
  if (!v) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (v->is_array()) {
    std::vector<std::string> out;
    for (const auto& s : *v) {
      if (!s.is_string()) bad_request("'" + path(where, name) + "' must contain only strings");
      out.push_back(s.get<std::string>());
    }
    return out;
  }
  bad_request("'" + path(where, name) + "' must be a string or an array of strings");
}

std::string truncate(std::string s, std::size_t n) {
  if (s.size() > n) {
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n; // never inside a character
    s.resize(n);
    s += "...";
  }
  return s;
}

ChatEvent upstream_error(std::string message) {
  ChatEvent e;
  e.kind = ChatEvent::Kind::error;
  e.error_type = "upstream_error";
  e.text = std::move(message);
  return e;
}

} // namespace tinyroute::gateway

namespace tinyroute::gateway {

ContentPart image_from_url(const std::string& url) {
  ContentPart part;
  part.kind = ContentPart::Kind::image;
  if (url.rfind("data:", 0) == 0) {
    auto semi = url.find(";base64,");
    if (semi == std::string::npos) bad_request("image data URLs must be base64 (data:<type>;base64,...)");
    part.media_type = url.substr(5, semi - 5);
    part.data = url.substr(semi + 8);
  } else {
    part.url = url;
  }
  return part;
}

std::string data_url(const ContentPart& image) {
  if (!image.url.empty()) return image.url;
  return "data:" + (image.media_type.empty() ? std::string("image/png") : image.media_type) + ";base64," +
         image.data;
}

json openai_error(const std::string& code, const std::string& message) {
  const std::string type = code == "context_length_exceeded" ? "invalid_request_error" : code;
  return {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}};
}

int upstream_int(const json& object, const char* key, int fallback) {
  if (!object.is_object()) return fallback;
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return fallback;
  if (it->is_number_unsigned())
    return it->get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<int>::max())
               ? static_cast<int>(it->get<std::uint64_t>())
               : fallback;
  if (it->is_number_integer()) {
    const auto v = it->get<std::int64_t>();
    return v >= std::numeric_limits<int>::min() && v <= std::numeric_limits<int>::max() ? static_cast<int>(v)
                                                                                        : fallback;
  }
  const double d = it->get<double>();
  return d > -2147483648.0 && d < 2147483648.0 ? static_cast<int>(d) : fallback;
}

std::vector<std::string> field_names(const json& fields) {
  std::vector<std::string> names;
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    if (it.key() == "options" && it.value().is_object()) {
      for (auto o = it.value().begin(); o != it.value().end(); ++o) names.push_back("options." + o.key());
    } else {
      names.push_back(it.key());
    }
  }
  return names;
}

std::vector<std::string> extras_names(const ChatRequest& request) {
  return field_names(request.extras);
}

bool runner_option(const std::string& name) {
  static const std::set<std::string> runner = {"num_ctx",    "num_batch", "num_gpu",  "main_gpu",
                                               "num_thread", "numa",      "low_vram", "f16_kv",
                                               "vocab_only", "use_mmap",  "use_mlock"};
  return runner.count(name) != 0;
}

std::string unapplied(const json& hints, Provider provider) {
  if (provider == Provider::ollama) return {};
  std::string out;
  for (const auto& name : field_names(hints)) out += (out.empty() ? "" : ", ") + name;
  return out;
}

void check_tool_choice(const ChatRequest& request, const std::string& field) {
  const ToolChoice& tc = request.tool_choice;
  if (tc.mode != "required" && tc.mode != "function") return;
  if (request.tools.empty())
    bad_request("'" + field + "' asks for a tool call, but the request has no 'tools'");
  if (tc.mode == "function" && std::none_of(request.tools.begin(), request.tools.end(),
                                            [&](const ToolSpec& t) { return t.name == tc.name; }))
    bad_request("'" + field + "' names the tool '" + tc.name + "', which is not in 'tools'");
}

bool strict_tools(const ChatRequest& request) {
  return std::any_of(request.tools.begin(), request.tools.end(),
                     [](const ToolSpec& t) { return t.strict == true; });
}

void refuse_unless(const json& object, const char* name, const json& allowed, const std::string& why,
                   const std::string& where) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null() || *it == allowed) return;
  bad_request("'" + path(where, name) + "' is not supported: " + why);
}

json parse_arguments(const std::string& arguments) {
  if (arguments.empty()) return json::object();
  try {
    return json::parse(arguments);
  } catch (const json::exception&) {
    return json::object();
  }
}

} // namespace tinyroute::gateway
