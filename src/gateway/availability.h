// Availability ("first installed model wins"): each backend server's model list, polled on a period
// (Ollama's /api/tags, OpenAI-compatible /v1/models; Anthropic is assumed to have what it is asked
// for), combined with the circuit breakers into the snapshot select_model reads. select_model stays
// pure: it is handed the snapshot, it never polls.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <nlohmann/json.hpp>

#include "gateway/breaker.h"
#include "gateway/http-client.h"
#include "tinyroute/config.h"
#include "tinyroute/select.h"

namespace tinyroute::gateway {

// One backend server (a base URL) as the last poll saw it.
struct BackendModels {
  std::string base_url;
  Provider provider = Provider::ollama;
  bool polled = false;          // a poll finished; until then the backend is assumed to have everything
  bool reachable = false;       // the last poll got the list
  std::string error;            // why the last poll failed
  std::set<std::string> models; // the names the backend lists
  std::chrono::system_clock::time_point at{};
};

// The config's backends: base URL -> the provider of the first model that names it.
std::map<std::string, Provider> backends_of(const Config& config);

// The model names in an Ollama /api/tags or OpenAI /v1/models body. Throws std::runtime_error when the
// body is not such a list.
std::set<std::string> parse_model_list(Provider provider, const std::string& body);

// Whether `b` lists `name`; Ollama's implicit ":latest" counts on either side.
bool has_model(const BackendModels& b, const std::string& name);

// Polls one backend's model list; never throws (a failure is recorded in the result). `api_key` is
// sent as a bearer token when not empty. The arguments are references: co_await it at once (named
// lvalues only: GCC 12 mishandles temporaries inside co_await expressions).
boost::asio::awaitable<BackendModels> poll_backend(const std::string& base_url, Provider provider,
                                                   const std::string& api_key, const ClientTimeouts& timeouts,
                                                   const std::shared_ptr<boost::asio::ssl::context>& tls);

// The API key to send when polling `base_url`: that of the first model there that names one; empty
// when none does or its variable is unset.
std::string poll_api_key(const Config& config, const std::string& base_url);

// The last poll of every backend; thread-safe.
class ModelLists {
public:
  void put(BackendModels backend);
  std::map<std::string, BackendModels> snapshot() const;

private:
  mutable std::mutex mu_;
  std::map<std::string, BackendModels> by_url_;
};

// What select_model must skip: models whose backend lacked them or was unreachable at the last poll,
// and models whose backend's breaker is open and cooling down; each with the reason.
Availability availability_of(const Config& config, const std::map<std::string, BackendModels>& polled,
                             const Breakers& breakers);

// /health's "backends": per base URL the provider, breaker state, last poll (reachable, error, the
// installed models) and per configured model whether it can be selected and why not.
nlohmann::json backends_json(const Config& config, const std::map<std::string, BackendModels>& polled,
                             const Breakers& breakers, double poll_period_s);

} // namespace tinyroute::gateway
