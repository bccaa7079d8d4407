#include "gateway/embed.h"

#include <algorithm>
#include <set>

#include <boost/asio/this_coro.hpp>

#include "gateway/routing.h"

namespace tinyroute::gateway {

namespace asio = boost::asio;
using asio::awaitable;

namespace {

std::string names(const std::vector<std::string>& list) {
  std::string out;
  for (const auto& n : list) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

std::string upstream_name(const ModelConfig& m) {
  return m.upstream_model.empty() ? m.name : m.upstream_model;
}

// The passthrough fields each backend's embeddings API takes.
const std::set<std::string> openai_fields = {"dimensions", "user"};
const std::set<std::string> ollama_fields = {"dimensions", "truncate", "options"};

ClientRequest upstream_request(const ModelConfig& m, const EmbedRequest& r) {
  const auto& takes = m.provider == Provider::ollama ? ollama_fields : openai_fields;
  for (auto it = r.passthrough.begin(); it != r.passthrough.end(); ++it) {
    if (!takes.count(it.key())) {
      bad_request("'" + field_names(json{{it.key(), it.value()}}).front() +
                  "' cannot be sent to embedding model '" + m.name + "': its backend's " +
                  (m.provider == Provider::ollama ? "/api/embed" : "/v1/embeddings") + " has no such field");
    }
  }
  ClientRequest req;
  req.headers = {{"content-type", "application/json"}};
  if (auto key = api_key(m); !key.empty()) req.headers.emplace_back("authorization", "Bearer " + key);
  json body = {{"model", upstream_name(m)}, {"input", r.inputs}};
  for (auto it = r.passthrough.begin(); it != r.passthrough.end(); ++it) body[it.key()] = it.value();
  if (m.provider == Provider::ollama) {
    if (r.hints.contains("keep_alive")) body["keep_alive"] = r.hints["keep_alive"];
    if (r.hints.contains("options")) body["options"].update(r.hints["options"]);
    req.url = join_url(m.base_url, "/api/embed");
  } else {
    std::string base = m.base_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    req.url = base.size() >= 3 && base.compare(base.size() - 3, 3, "/v1") == 0 ? base + "/embeddings"
                                                                               : base + "/v1/embeddings";
  }
  req.body = body.dump();
  return req;
}

// The upstream's answer as one vector per input; throws FrontError(502) when it is not that.
EmbedResult parse_answer(const ModelConfig& m, const std::string& text, std::size_t expected) {
  auto fail = [&](const std::string& why) -> EmbedResult {
    throw FrontError(502, "upstream_error",
                     "model '" + m.name + "' did not answer with embeddings: " + why + " (" +
                         truncate(text, 200) + ")");
  };
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return fail("the body is not a JSON object");
  EmbedResult out;
  if (m.provider == Provider::ollama) {
    if (!j.contains("embeddings") || !j["embeddings"].is_array()) return fail("no 'embeddings' array");
    for (const auto& e : j["embeddings"]) out.embeddings.push_back(e);
    out.prompt_tokens = j.value("prompt_eval_count", 0);
  } else {
    if (!j.contains("data") || !j["data"].is_array()) return fail("no 'data' array");
    std::vector<std::pair<int, json>> items;
    for (const auto& d : j["data"]) {
      if (!d.is_object() || !d.contains("embedding")) return fail("a 'data' item has no 'embedding'");
      items.emplace_back(d.value("index", static_cast<int>(items.size())), d["embedding"]);
    }
    std::stable_sort(items.begin(), items.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [index, e] : items) out.embeddings.push_back(std::move(e));
    if (j.contains("usage") && j["usage"].is_object())
      out.prompt_tokens = j["usage"].value("prompt_tokens", 0);
  }
  if (out.embeddings.size() != expected) {
    return fail(std::to_string(out.embeddings.size()) + " embeddings for " + std::to_string(expected) +
                " inputs");
  }
  for (const auto& e : out.embeddings) {
    if (!e.is_array() || e.empty() ||
        !std::all_of(e.begin(), e.end(), [](const json& v) { return v.is_number(); }))
      return fail("an embedding is not an array of numbers");
  }
  return out;
}

} // namespace

const ModelConfig& embedding_model(const Config& config, const GatewayOptions& options,
                                   const std::string& name) {
  std::vector<std::string> capable;
  for (const auto& m : config.models) {
    if (m.capabilities.embedding && !is_internal_model(config, m.name)) capable.push_back(m.name);
  }
  if (is_internal_model(config, name)) {
    throw FrontError(403, "internal_model_forbidden",
                     "'" + name +
                         "' is tinyroute's internal routing model; it is internal-only. Embedding "
                         "models: " +
                         names(capable));
  }
  if (is_auto_alias(options, name)) {
    if (capable.empty())
      bad_request("no configured model can embed; set capabilities: {embedding: true} on one");
    return *find_answer_model(config, capable.front());
  }
  const ModelConfig* m = find_answer_model(config, name);
  if (m == nullptr) throw FrontError(404, "model_not_found", "model '" + name + "' not found");
  if (!m->capabilities.embedding) {
    bad_request("model '" + m->name +
                "' does not embed (capabilities.embedding is not set); embedding models: " + names(capable));
  }
  return *m;
}

awaitable<EmbedResult> forward_embed(const Config& config, const ModelConfig& model,
                                     const EmbedRequest& request, const ForwardOptions& options) {
  if (model.provider == Provider::anthropic) {
    bad_request("model '" + model.name + "' is an Anthropic model; Anthropic has no embeddings API");
  }
  ClientRequest upstream;
  try {
    upstream = upstream_request(model, request);
  } catch (const Error& e) {
    throw FrontError(502, "upstream_unavailable", e.what());
  }
  BackendQueues::Permit permit;
  if (options.queues != nullptr)
    permit = co_await options.queues->acquire(model.base_url, backend_limit(config, model.base_url),
                                              request.priority);
  HttpClientCall call(co_await asio::this_coro::executor, options.timeouts, options.tls, options.pool);
  int status = 0;
  std::string failure;
  int failure_status = 502;
  try {
    status = co_await call.open(upstream);
  } catch (const ConnectError& e) {
    failure = e.what();
    failure_status = e.kind == ConnectError::Kind::timed_out ? 504 : 503;
  }
  if (!failure.empty()) {
    throw FrontError(failure_status, "upstream_unavailable",
                     "embedding model '" + model.name + "' is unreachable: " + failure);
  }
  std::string body;
  constexpr std::size_t limit = 64 << 20;
  for (;;) {
    auto piece = co_await call.read_some();
    if (!piece) break;
    body += *piece;
    if (body.size() > limit) throw FrontError(502, "upstream_error", "the embeddings answer is over 64 MiB");
  }
  if (status < 200 || status >= 300) {
    throw FrontError(status == 429 || status >= 500 ? 502 : status, "upstream_rejected",
                     "embedding model '" + model.name + "' answered HTTP " + std::to_string(status) + ": " +
                         backend_for(model.provider).error_message(body));
  }
  co_return parse_answer(model, body, request.inputs.size());
}

} // namespace tinyroute::gateway
