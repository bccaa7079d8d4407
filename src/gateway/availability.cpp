#include "gateway/availability.h"

#include <cstdlib>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/chat.h"

namespace tinyroute::gateway {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

// "moondream" and "moondream:latest" are the same Ollama model.
std::string without_latest(const std::string& name) {
  constexpr std::string_view suffix = ":latest";
  if (name.size() > suffix.size() && name.ends_with(suffix))
    return name.substr(0, name.size() - suffix.size());
  return name;
}

std::string seconds_ago(std::chrono::system_clock::time_point t) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - t);
  return std::to_string(s.count()) + " s ago";
}

} // namespace

std::map<std::string, Provider> backends_of(const Config& config) {
  std::map<std::string, Provider> out;
  for (const auto& m : config.models) out.emplace(m.base_url, m.provider);
  return out;
}

std::set<std::string> parse_model_list(Provider provider, const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  const char* list_key = provider == Provider::ollama ? "models" : "data";
  const char* name_key = provider == Provider::ollama ? "name" : "id";
  if (!j.is_object() || !j.contains(list_key) || !j[list_key].is_array())
    throw std::runtime_error(std::string("the answer is not a model list (no \"") + list_key + "\" array)");
  std::set<std::string> names;
  for (const auto& m : j[list_key]) {
    if (!m.is_object()) continue;
    // Ollama lists "name" and (newer versions) "model"; either is how clients ask for it.
    for (const char* key : {name_key, "model"}) {
      if (m.contains(key) && m[key].is_string()) names.insert(m[key].get<std::string>());
    }
  }
  return names;
}

bool has_model(const BackendModels& b, const std::string& name) {
  if (b.models.contains(name)) return true;
  const std::string bare = without_latest(name);
  for (const auto& m : b.models) {
    if (without_latest(m) == bare) return true;
  }
  return false;
}

std::string poll_api_key(const Config& config, const std::string& base_url) {
  for (const auto& m : config.models) {
    if (m.base_url != base_url || m.api_key_env.empty()) continue;
    const char* v = std::getenv(m.api_key_env.c_str());
    return v == nullptr ? "" : v;
  }
  return "";
}

asio::awaitable<BackendModels> poll_backend(const std::string& base_url, Provider provider,
                                            const std::string& api_key, const ClientTimeouts& timeouts,
                                            const std::shared_ptr<asio::ssl::context>& tls) {
  BackendModels b;
  b.base_url = base_url;
  b.provider = provider;
  b.polled = true;
  b.at = std::chrono::system_clock::now();
  ClientRequest req;
  req.method = "GET";
  req.url = join_url(base_url, provider == Provider::ollama ? "/api/tags" : "/v1/models");
  if (!api_key.empty()) req.headers.emplace_back("authorization", "Bearer " + api_key);
  std::string failure;
  try {
    HttpClientCall call(co_await asio::this_coro::executor, timeouts, tls);
    const int status = co_await call.open(req);
    std::string body = co_await call.read_rest(4 << 20);
    if (status != 200) {
      failure = "GET " + req.url + " answered " + std::to_string(status);
    } else {
      b.models = parse_model_list(provider, body);
      b.reachable = true;
    }
  } catch (const std::exception& e) {
    failure = "GET " + req.url + ": " + e.what();
  }
  b.error = failure;
  co_return b;
}

void ModelLists::put(BackendModels backend) {
  std::lock_guard lock(mu_);
  by_url_[backend.base_url] = std::move(backend);
}

std::map<std::string, BackendModels> ModelLists::snapshot() const {
  std::lock_guard lock(mu_);
  return by_url_;
}

Availability availability_of(const Config& config, const std::map<std::string, BackendModels>& polled,
                             const Breakers& breakers) {
  Availability a;
  const auto now = Breakers::Clock::now();
  for (const auto& m : config.models) {
    std::string why;
    if (breakers.refusing(m.base_url, now)) {
      why = "circuit breaker open for " + m.base_url;
    } else if (const auto it = polled.find(m.base_url);
               it != polled.end() && it->second.polled && m.provider != Provider::anthropic) {
      const BackendModels& b = it->second;
      if (!b.reachable) {
        why = m.base_url + " did not answer its model list at the last poll";
      } else if (!has_model(b, m.upstream_model)) {
        why = "not installed on " + m.base_url;
      }
    }
    if (!why.empty()) {
      a.unavailable_models.insert(m.name);
      a.why[m.name] = std::move(why);
    }
  }
  return a;
}

json backends_json(const Config& config, const std::map<std::string, BackendModels>& polled,
                   const Breakers& breakers, double poll_period_s) {
  const Availability a = availability_of(config, polled, breakers);
  json out = json::object();
  for (const auto& [url, provider] : backends_of(config)) {
    json b = {{"provider", provider_name(provider)},
              {"breaker", breaker_state_name(breakers.state(url))},
              {"polled", false},
              {"poll_period_s", poll_period_s}};
    if (const auto it = polled.find(url); it != polled.end() && it->second.polled) {
      const BackendModels& p = it->second;
      b["polled"] = true;
      b["reachable"] = p.reachable;
      b["last_poll"] = seconds_ago(p.at);
      if (!p.error.empty()) b["error"] = p.error;
      b["installed"] = p.models;
    }
    json models = json::array();
    for (const auto& m : config.models) {
      if (m.base_url != url) continue;
      json entry = {{"name", m.name},
                    {"upstream_model", m.upstream_model},
                    {"available", !a.unavailable_models.contains(m.name)}};
      if (const auto why = a.why.find(m.name); why != a.why.end()) entry["why"] = why->second;
      models.push_back(std::move(entry));
    }
    b["models"] = std::move(models);
    out[url] = std::move(b);
  }
  return out;
}

} // namespace tinyroute::gateway
