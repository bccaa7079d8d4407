// The model listings: OpenAI's /v1/models, and Ollama's /api/tags, /api/ps, /api/show, /api/version
// and "/" (what Ollama clients probe).
#include "gateway/gateway-impl.h"

namespace tinyroute {

awaitable<int> Gateway::Impl::on_models(Call& c) {
  json data = json::array();
  for (const auto& name : listed_models(*current_config(), options)) {
    if (c.grant != nullptr && !c.grant->all && !is_auto_alias(options, name) && !c.grant->allows(name))
      continue;
    data.push_back({{"id", name}, {"object", "model"}, {"created", 0}, {"owned_by", "tinyroute"}});
  }
  json body = {{"object", "list"}, {"data", data}};
  co_return co_await send_json(c.out, 200, body);
}

// /api/tags and /api/ps: the same listing; remote models are always "loaded" and never expire.
awaitable<int> Gateway::Impl::on_tags(Call& c) {
  const bool ps = c.endpoint.path == "/api/ps";
  auto cfg = current_config();
  const std::string loaded = config_loaded_at();
  json models = json::array();
  for (const auto& name : listed_models(*cfg, options)) {
    if (c.grant != nullptr && !c.grant->all && !is_auto_alias(options, name) && !c.grant->allows(name))
      continue;
    json entry = ollama_tag(*cfg, options, name, loaded);
    if (ps) {
      entry["expires_at"] = "9999-12-31T23:59:59Z";
      entry["size_vram"] = 0;
    }
    models.push_back(std::move(entry));
  }
  json body = {{"models", models}};
  co_return co_await send_json(c.out, 200, body);
}

awaitable<int> Gateway::Impl::on_show(Call& c) {
  co_return co_await show(c.req, c.out, c.grant);
}

awaitable<int> Gateway::Impl::on_version(Call& c) {
  json body = {{"version", kOllamaApiVersion}};
  co_return co_await send_json(c.out, 200, body);
}

awaitable<int> Gateway::Impl::on_root(Call& c) {
  Headers headers = {{"content-type", "text/plain; charset=utf-8"}};
  co_await c.out.send(200, headers, "Ollama is running");
  co_return 200;
}

awaitable<int> Gateway::Impl::show(HttpRequest& req, ResponseWriter& out, const Grant* grant) {
  std::optional<FrontError> failure;
  try {
    json body = parse_body(req.body);
    if (!body.is_object()) bad_request("the request body must be a JSON object");
    // "model" today; older clients send "name".
    auto name = opt_string(body, "model", "");
    if (!name || name->empty()) name = opt_string(body, "name", "");
    if (!name || name->empty()) bad_request("'model' is required");
    auto cfg = current_config();
    json answer = ollama_show(*cfg, options, *name, config_loaded_at());
    if (grant != nullptr && !is_auto_alias(options, *name) && !grant->allows(*name))
      throw FrontError(403, "permission_error", "this API key may not use model '" + *name + "'");
    co_return co_await send_json(out, 200, answer);
  } catch (const FrontError& e) {
    failure = e;
  } catch (const json::exception& e) {
    failure = wrong_type(e);
  }
  co_return co_await send_error(out, *ollama_chat, failure->status, failure->type, failure->what());
}

} // namespace tinyroute
