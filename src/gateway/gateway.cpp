// The Gateway: owns the io_context, the transport and the metrics; dispatches each HTTP request to
// its endpoint, resolves the model (Router for "auto", the internal-model guard) and streams the
// forwarded answer back through the request's front adapter.
#include "tinyroute/gateway.h"

#include "gateway/gateway-impl.h"

namespace tinyroute {

namespace gateway {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Where a library Error lands on the HTTP status scale (for added JSON endpoints).
int http_status_for(ErrorCode code) {
  switch (code) {
  case ErrorCode::invalid_argument:
  case ErrorCode::config_invalid:
  case ErrorCode::grammar_invalid:
    return 400;
  case ErrorCode::internal_model_forbidden:
    return 403;
  case ErrorCode::model_not_found:
  case ErrorCode::unknown_prefix:
    return 404;
  case ErrorCode::context_overflow:
    return 413;
  case ErrorCode::no_candidate:
  case ErrorCode::engine_stopped:
  case ErrorCode::cancelled: // only the gateway's stop() cancels a request's engine work
    return 503;
  case ErrorCode::deadline_exceeded:
    return 504;
  default:
    return 500;
  }
}

// Every endpoint's body goes through here (and so every endpoint added later): strict JSON under the
// limits in request-json.h.
json parse_body(const std::string& body) {
  return parse_request_json(body);
}

// A JSON value of the wrong type that a handler touched without checking first (the checked accessors
// in chat.h name the field). The library's text names no field either, so it is not passed on.
FrontError wrong_type(const json::exception& e) {
  spdlog::debug("gateway: a request field had an unexpected type: {}", e.what());
  return FrontError(400, "invalid_request_error",
                    "a field of the request body has the wrong JSON type (for example a number where text "
                    "belongs); check the field types against the API's reference");
}

std::string header_value(const HttpRequest& req, const std::string& name) {
  const auto it = req.headers.find(name);
  return it == req.headers.end() ? std::string() : it->second;
}

// The native endpoints' "priority" field; the header's value when the body has none.
Priority body_priority(const json& body, const JsonRequestContext& context) {
  if (!body.is_object() || !body.contains("priority") || body["priority"].is_null()) return context.priority;
  const json& field = body["priority"];
  std::optional<Priority> p = field.is_string() ? parse_priority(field.get<std::string>()) : std::nullopt;
  if (!p) bad_request("'priority' must be \"high\", \"medium\" or \"low\"");
  return *p;
}

FrontError shutting_down_error() {
  return FrontError(
      503, "shutting_down",
      "tinyroute is shutting down and cancelled this request before it was answered; send it again");
}

} // namespace gateway

namespace {

// A path no endpoint serves still gets its errors in the shape its prefix suggests: an Ollama client
// that asks for an unknown /api/ path reads an Ollama error.
Protocol protocol_of_path(const std::string& path) {
  if (path.rfind("/api/", 0) == 0 || path == "/") return Protocol::ollama;
  if (path == "/v1/messages" || path == "/v1/messages/count_tokens") return Protocol::anthropic;
  if (path == "/v1/responses") return Protocol::responses;
  return Protocol::openai;
}

std::string fmt_double(double v, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", precision, v);
  return buf;
}

// A routing failure as the client sees it: its own fault (an unknown category, a text longer than
// every candidate's context) is a 4xx naming the problem; only no capacity is a 503.
FrontError routing_error(const Error& e) {
  switch (e.code()) {
  case ErrorCode::context_overflow:
    return FrontError(413, "context_length_exceeded", e.what());
  case ErrorCode::no_candidate:
  case ErrorCode::engine_stopped:
    return FrontError(503, "routing_failed", std::string("routing failed: ") + e.what());
  case ErrorCode::cancelled:
    return shutting_down_error();
  default:
    break;
  }
  const int status = http_status_for(e.code());
  if (status >= 500) {
    spdlog::error("gateway: routing failed: {}", e.what());
    return FrontError(status, "routing_failed",
                      "routing failed inside tinyroute; the server log has the details");
  }
  return FrontError(status, "invalid_request_error", e.what());
}

} // namespace

awaitable<RouteDecision> Gateway::Impl::call_router(const ChatRequest& request) {
  if (!router)
    throw FrontError(503, "no_router",
                     "this gateway has no router, so \"auto\" cannot be resolved; name a model");
  auto started = std::chrono::steady_clock::now();
  RouteDecision d;
  try {
    d = co_await asio::co_spawn(
        router_pool, [this, &request]() -> awaitable<RouteDecision> { co_return router(request); },
        use_awaitable);
  } catch (const Error& e) {
    throw routing_error(e);
  } catch (const std::exception& e) {
    // A bug, not the client's fault: the details go to the log, never to the client.
    spdlog::error("gateway: routing failed: {}", e.what());
    throw FrontError(500, "routing_failed",
                     "routing failed inside tinyroute; the server log has the details");
  }
  if (d.route_ms == 0) {
    d.route_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  }
  if (d.source.empty()) d.source = "model";
  metrics.routing_latency(d.source, d.route_ms / 1000);
  co_return d;
}

awaitable<void> Gateway::Impl::handle(HttpRequest& req, ResponseWriter& out) {
  const auto started = std::chrono::steady_clock::now();
  metrics.request_started();
  const std::string& path = req.target;
  const Endpoint* ep = find_endpoint(path);
  const FrontAdapter& front = front_for(ep != nullptr ? ep->errors : protocol_of_path(path));
  std::string model_label = "-";
  std::string category_label = "-";
  // Labels only take values from a fixed set (served paths, configured models and categories): a
  // client must not be able to grow the metrics without bound by inventing paths or model names.
  const bool served = req.malformed_status == 0 && ep != nullptr;
  const std::string endpoint_label = served ? path : "other";
  int status = 500;
  std::optional<std::string> failure; // co_await is not allowed inside a catch block
  try {
    const bool method_ok =
        ep != nullptr && (req.method == ep->method || (req.method == "HEAD" && ep->method == "GET"));
    const bool open_path = method_ok && ep->open;
    const Grant* grant = nullptr;
    JsonRequestContext context; // its headers are filled only for the handlers that read them
    context.cancel = shutdown;
    std::string priority_error;
    if (auto it = req.headers.find("x-request-priority"); it != req.headers.end()) {
      if (auto p = parse_priority(it->second)) {
        context.priority = *p;
        context.priority_given = true;
      } else {
        priority_error =
            "X-Request-Priority must be high, medium or low (got \"" + quote_input(it->second, 40) + "\")";
      }
    }
    if (req.malformed_status != 0) {
      status = co_await send_error(out, front, req.malformed_status, "invalid_request_error", req.malformed);
    } else if (api_keys.enabled() && !open_path && (grant = api_keys.find(req.headers)) == nullptr) {
      // The message never repeats what was sent: keys must not end up in logs or error trackers.
      Headers challenge = {{"www-authenticate", "Bearer"}};
      const bool presented = req.headers.contains("authorization") || req.headers.contains("x-api-key");
      status = co_await send_error(
          out, front, 401, "authentication_error",
          presented
              ? "the API key is not valid for this gateway"
              : "this gateway needs an API key: send \"Authorization: Bearer KEY\" (or \"x-api-key: KEY\")",
          challenge);
    } else if (req.body_too_large) {
      status = co_await send_error(out, front, 413, "request_too_large",
                                   "the request body is larger than the limit of " +
                                       std::to_string(options.max_body_bytes) + " bytes");
    } else if (!priority_error.empty()) {
      status = co_await send_error(out, front, 400, "invalid_request_error", priority_error);
    } else if (ep == nullptr) {
      status = co_await send_error(out, front, 404, "not_found",
                                   "no endpoint " + quote_input(req.method, 20) + " " + quote_input(path) +
                                       "; tinyroute serves " + served_paths());
    } else if (!method_ok) {
      Headers allow = {{"allow", ep->method}};
      status = co_await send_error(out, front, 405, "method_not_allowed",
                                   path + " accepts " + ep->method + ", not " + quote_input(req.method, 20),
                                   allow);
    } else {
      Call call{req, out, *ep, grant, context, category_label, model_label};
      status = co_await (this->*(ep->handler))(call);
    }
  } catch (const boost::system::system_error&) {
    // The client went away mid-answer: nothing left to tell it.
    metrics.request_finished(endpoint_label, category_label, model_label, 499, seconds_since(started));
    throw;
  } catch (const std::exception& e) {
    spdlog::error("gateway: {} {} failed: {}", req.method, path, e.what());
    if (out.started()) {
      metrics.request_finished(endpoint_label, category_label, model_label, 500, seconds_since(started));
      throw;
    }
    // The exception's text stays in the log: it is for whoever fixes the bug, not for the client.
    failure =
        "tinyroute failed while answering this request (an internal error; the server log has the details)";
  }
  if (failure) status = co_await send_error(out, front, 500, "internal_error", *failure);
  metrics.request_finished(endpoint_label, category_label, model_label, status, seconds_since(started));
}

// ---- the endpoint table and its handlers ---------------------------------------------------------

std::vector<Gateway::Impl::Endpoint> Gateway::Impl::builtin_endpoints() {
  constexpr bool open = true;
  using P = Protocol;
  return {
      {"POST", "/v1/chat/completions", P::openai, !open, &Impl::on_chat},
      {"POST", "/v1/responses", P::responses, !open, &Impl::on_chat},
      {"POST", "/v1/messages", P::anthropic, !open, &Impl::on_chat},
      {"POST", "/v1/messages/count_tokens", P::anthropic, !open, &Impl::on_count_tokens},
      {"POST", "/v1/embeddings", P::openai, !open, &Impl::on_embed},
      {"POST", "/api/chat", P::ollama, !open, &Impl::on_chat},
      {"POST", "/api/generate", P::ollama, !open, &Impl::on_chat},
      {"POST", "/v1/route", P::openai, !open, &Impl::on_route},
      {"GET", "/v1/models", P::openai, !open, &Impl::on_models},
      {"GET", "/api/tags", P::ollama, !open, &Impl::on_tags},
      {"POST", "/api/show", P::ollama, !open, &Impl::on_show},
      {"GET", "/api/ps", P::ollama, !open, &Impl::on_tags},
      {"GET", "/api/version", P::ollama, open, &Impl::on_version},
      {"POST", "/api/embed", P::ollama, !open, &Impl::on_embed},
      {"POST", "/api/embeddings", P::ollama, !open, &Impl::on_embed},
      {"GET", "/", P::ollama, open, &Impl::on_root},
      {"GET", "/queue/stats", P::openai, !open, &Impl::on_queue_stats},
      {"GET", "/health", P::openai, open, &Impl::on_health},
      {"GET", "/metrics", P::openai, !open, &Impl::on_metrics},
  };
}

// A chat in the endpoint's protocol; /api/generate answers in its own shape (a prompt, not messages).
awaitable<int> Gateway::Impl::on_chat(Call& c) {
  const FrontAdapter& front =
      c.endpoint.path == "/api/generate" ? *ollama_generate : front_for(c.endpoint.errors);
  co_return co_await chat(c.req, c.out, front, c.grant, c.context.priority, c.category_label, c.model_label);
}

awaitable<int> Gateway::Impl::on_count_tokens(Call& c) {
  co_return co_await count_tokens(c.req, c.out, c.grant, c.context.priority, c.category_label, c.model_label);
}

awaitable<int> Gateway::Impl::on_embed(Call& c) {
  co_return co_await embed(c.req, c.out, c.grant, c.context.priority, c.model_label);
}

namespace {

std::string model_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// A category named by an MLX-dialect request: its models, no classification. Selection sees the same
// availability as routed requests: models a backend lacks (polled) and backends whose breaker is open.
RouteDecision category_decision(const Config& cfg, const ChatRequest& request,
                                const std::map<std::string, BackendModels>& polled,
                                const Breakers& breakers) {
  const auto started = std::chrono::steady_clock::now();
  if (cfg.find_category(request.category) == nullptr) {
    std::vector<std::string> names;
    for (const auto& c : cfg.categories) names.push_back(c.name);
    bad_request("unknown category '" + request.category + "'; configured categories: " + model_list(names));
  }
  RequestFacts facts;
  facts.needs_tools = !request.tools.empty();
  std::size_t bytes = 0;
  for (const auto& m : request.messages) {
    for (const auto& part : m.content) {
      if (part.kind == ContentPart::Kind::image) facts.needs_vision = true;
      bytes += part.text.size();
    }
  }
  // About four bytes a token: selection only needs to know whether the context window can hold it.
  const long long estimate =
      static_cast<long long>(bytes / 4) + std::max(0, request.sampling.max_tokens.value_or(0));
  facts.estimated_tokens = static_cast<int>(std::min<long long>(estimate, std::numeric_limits<int>::max()));
  const Availability availability = availability_of(cfg, polled, breakers);
  Selection selection;
  try {
    selection = select_model(cfg, request.category, facts, availability);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::no_candidate) throw FrontError(503, "no_candidate", e.what());
    if (e.code() == ErrorCode::context_overflow) throw FrontError(413, "context_length_exceeded", e.what());
    bad_request(e.what());
  }
  RouteDecision d;
  d.category = request.category;
  d.confidence = 1;
  d.model = selection.model;
  d.fallbacks = selection.fallbacks;
  d.reason = "the request named category '" + request.category + "'; " + selection.reason;
  d.source = "explicit";
  d.route_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return d;
}

// An /api/embed ({"input"}) or /api/embeddings ({"prompt"}) body; sets `name` to the model asked for.
EmbedRequest parse_embed_request(const json& body, bool legacy, std::string& name) {
  if (!body.is_object()) bad_request("the request body must be a JSON object");
  name = opt_string(body, "model", "").value_or("");
  if (name.empty()) bad_request("'model' is required (an embedding model, or \"auto\")");
  EmbedRequest request;
  if (legacy) {
    auto prompt = opt_string(body, "prompt", "");
    if (!prompt) bad_request("'prompt' is required and must be a string");
    request.inputs = {*prompt};
  } else {
    request.inputs = string_or_array(body, "input", "");
    if (request.inputs.empty()) bad_request("'input' is required: a string or a non-empty array of strings");
  }
  for (const char* key : {"truncate", "dimensions"}) {
    if (body.contains(key) && !body[key].is_null()) request.passthrough[key] = body[key];
  }
  // keep_alive and the runner options say how an Ollama server runs the model: hints. Other options
  // must reach the backend.
  if (body.contains("keep_alive") && !body["keep_alive"].is_null())
    request.hints["keep_alive"] = body["keep_alive"];
  if (const json* options = opt_object(body, "options", "")) {
    for (auto it = options->begin(); it != options->end(); ++it) {
      if (!it->is_null())
        (runner_option(it.key()) ? request.hints : request.passthrough)["options"][it.key()] = *it;
    }
  }
  return request;
}

} // namespace

awaitable<int> Gateway::Impl::embed(HttpRequest& req, ResponseWriter& out, const Grant* grant,
                                    Priority priority, std::string& model_label) {
  const bool legacy = req.target == "/api/embeddings"; // {"prompt"} in, {"embedding"} out
  const bool openai_shape = req.target == "/v1/embeddings";
  const FrontAdapter& front = openai_shape ? *openai : *ollama_chat;
  std::optional<FrontError> failure;
  try {
    std::string name;
    bool base64 = false;
    EmbedRequest request;
    if (openai_shape) {
      OpenAIEmbeddings parsed = parse_openai_embeddings(parse_body(req.body));
      name = std::move(parsed.model);
      request = std::move(parsed.request);
      base64 = parsed.base64;
    } else {
      request = parse_embed_request(parse_body(req.body), legacy, name);
    }
    request.priority = priority;
    auto cfg = current_config();
    const ModelConfig& model = embedding_model(*cfg, options, name);
    model_label = model.name;
    if (grant != nullptr && !grant->allows(model.name))
      throw FrontError(403, "permission_error", "this API key may not use model '" + model.name + "'");
    ForwardOptions fopts;
    fopts.timeouts = {options.connect_timeout_s, options.first_byte_timeout_s, options.idle_timeout_s};
    fopts.tls = tls;
    fopts.queues = &queues;
    fopts.pool = options.upstream_keepalive > 0 ? &pool : nullptr;
    const auto started = std::chrono::steady_clock::now();
    EmbedResult result = co_await forward_embed(*cfg, model, request, fopts);
    metrics.backend_latency(model.name, seconds_since(started));
    json answer;
    if (openai_shape) {
      answer = render_openai_embeddings(result, model.name, base64);
    } else if (legacy) {
      answer = {{"embedding", result.embeddings.front()}};
    } else {
      answer = {{"model", name},
                {"embeddings", result.embeddings},
                {"total_duration", static_cast<long long>(seconds_since(started) * 1e9)},
                {"load_duration", 0},
                {"prompt_eval_count", result.prompt_tokens}};
    }
    Headers headers = {{"x-tinyroute-model", model.name}};
    if (std::string names = unapplied(request.hints, model.provider); !names.empty())
      headers.emplace_back("x-tinyroute-unapplied", std::move(names));
    co_return co_await send_json(out, 200, answer, std::move(headers));
  } catch (const FrontError& e) {
    failure = e;
  } catch (const json::exception& e) {
    failure = wrong_type(e);
  }
  co_return co_await send_error(out, front, failure->status, failure->type, failure->what());
}

// The model a request names, or the one routing picks for "auto", with the guards: the internal model
// is refused (403), an unknown model is a 404 listing the available ones, a model the API key may not
// use a 403. Throws FrontError.
awaitable<RouteDecision> Gateway::Impl::resolve(const Config& cfg, const ChatRequest& request,
                                                const Grant* grant, std::string& category_label,
                                                std::string& model_label) {
  RouteDecision decision;
  if (is_internal_model(cfg, request.model)) {
    throw FrontError(403, "internal_model_forbidden",
                     "'" + request.model +
                         "' is tinyroute's internal routing model; it is internal-only and never answers "
                         "requests. Use \"auto\" or one of: " +
                         model_list(listed_models(cfg, options)));
  }
  if (!request.category.empty() && is_auto_alias(options, request.model)) {
    decision = category_decision(cfg, request, model_lists.snapshot(), breakers);
    metrics.routing_latency(decision.source, decision.route_ms / 1000);
  } else if (is_auto_alias(options, request.model)) {
    decision = co_await call_router(request);
    if (is_internal_model(cfg, decision.model)) {
      // A router bug must still never make the internal model answer.
      throw FrontError(500, "internal_model_forbidden",
                       "the router chose the internal model '" + decision.model + "', which never answers");
    }
  } else {
    const ModelConfig* m = find_answer_model(cfg, request.model);
    if (m == nullptr) {
      throw FrontError(404, "model_not_found",
                       "model '" + request.model +
                           "' is not configured; available: " + model_list(listed_models(cfg, options)));
    }
    decision.model = m->name;
    decision.category = m->categories.empty() ? "" : m->categories.front();
    decision.source = "explicit";
    decision.reason = "the request named the model";
    metrics.decision(decision.source);
  }
  category_label = decision.category.empty() ? "-" : decision.category;
  model_label = decision.model;
  if (grant != nullptr && !grant->allows(decision.model)) {
    throw FrontError(403, "permission_error",
                     is_auto_alias(options, request.model)
                         ? "routing chose '" + decision.model +
                               "' for this request, which this API key may not use"
                         : "this API key may not use model '" + decision.model + "'");
  }
  co_return decision;
}

awaitable<int> Gateway::Impl::chat(HttpRequest& req, ResponseWriter& out, const FrontAdapter& front,
                                   const Grant* grant, Priority priority, std::string& category_label,
                                   std::string& model_label) {
  auto config_ptr = current_config();
  const Config& cfg = *config_ptr;
  ChatRequest request;
  RouteDecision decision;
  std::vector<std::string> models;
  std::optional<FrontError> failure;
  try {
    request = front.parse(parse_body(req.body));
    request.priority = priority;
    request.cancel = shutdown;
    request.conversation = header_value(req, "x-tinyroute-conversation");
    decision = co_await resolve(cfg, request, grant, category_label, model_label);
    models = candidates(cfg, decision);
    if (grant != nullptr) // a fallback the key may not use is skipped, never silently substituted
      std::erase_if(models, [&](const std::string& m) { return !grant->allows(m); });
    // Nor is a parameter dropped: only candidates whose backend takes everything the request asked for.
    if (std::string refusal = drop_unable(cfg, models, request, front); !refusal.empty())
      bad_request(refusal);
  } catch (const FrontError& e) {
    failure = e;
  } catch (const json::exception& e) {
    failure = wrong_type(e);
  }
  if (failure) co_return co_await send_error(out, front, failure->status, failure->type, failure->what());

  auto headers_for = [&](const std::string& model) {
    Headers headers{{"x-tinyroute-category", decision.category},
                    {"x-tinyroute-model", model},
                    {"x-tinyroute-confidence", fmt_double(decision.confidence, 3)},
                    {"x-tinyroute-route-ms", fmt_double(decision.route_ms, 2)},
                    {"x-tinyroute-decision-source", decision.source}};
    // Ollama's runner settings, which a backend of another kind does not take: said, not dropped.
    const ModelConfig* m = find_answer_model(cfg, model);
    if (std::string names = m ? unapplied(request.hints, m->provider) : ""; !names.empty())
      headers.emplace_back("x-tinyroute-unapplied", std::move(names));
    return headers;
  };

  ForwardOptions fopts;
  fopts.timeouts = {options.connect_timeout_s, options.first_byte_timeout_s, options.idle_timeout_s};
  fopts.retries = options.retries;
  fopts.backoff_s = options.retry_backoff_s;
  fopts.tls = tls;
  fopts.pool = options.upstream_keepalive > 0 ? &pool : nullptr;
  fopts.queues = &queues;

  std::string answering;
  ForwardSink sink;
  sink.begin = [&](const std::string& model) { answering = model; };
  ChatResult result;
  std::unique_ptr<FrontStream> stream;
  bool ended_with_error = false;
  if (request.stream) {
    sink.committed = [&] { return out.started(); };
    sink.event = [&](const ChatEvent& e) -> awaitable<void> {
      if (!out.started()) {
        auto headers = headers_for(answering);
        headers.emplace_back("content-type", front.stream_content_type());
        headers.emplace_back("cache-control", "no-cache");
        co_await out.begin_stream(200, headers);
        stream = front.stream(request, answering);
        co_await out.write_chunk(stream->start());
      }
      if (e.kind == ChatEvent::Kind::error) ended_with_error = true;
      co_await out.write_chunk(stream->event(e));
    };
  } else {
    sink.committed = [] { return false; };
    sink.begin = [&](const std::string& model) {
      answering = model;
      result = {};
    };
    sink.event = [&](const ChatEvent& e) -> awaitable<void> {
      accumulate(result, e);
      co_return;
    };
  }

  ForwardResult fr = co_await forward(cfg, models, request, fopts, metrics, breakers, sink);
  model_label = fr.ok ? fr.model : decision.model;
  if (!fr.ok) {
    co_return co_await send_error(out, front, fr.status, fr.error_type, fr.message,
                                  headers_for(decision.model));
  }
  if (request.stream) {
    if (!out.started()) { // the upstream finished without a single event
      ChatEvent finish;
      finish.kind = ChatEvent::Kind::finish;
      finish.finish_reason = "stop";
      co_await sink.event(finish);
    }
    if (!ended_with_error) co_await out.write_chunk(stream->finish());
    co_await out.end_stream();
    co_return 200;
  }
  co_return co_await send_json(out, 200, front.render(result, request, fr.model), headers_for(fr.model));
}

// POST /v1/messages/count_tokens: the model is resolved as for /v1/messages (routing for "auto"); its
// backend counts when it can, else the internal model's tokenizer estimates (see count-tokens.h).
awaitable<int> Gateway::Impl::count_tokens(HttpRequest& req, ResponseWriter& out, const Grant* grant,
                                           Priority priority, std::string& category_label,
                                           std::string& model_label) {
  auto config_ptr = current_config();
  const Config& cfg = *config_ptr;
  std::optional<FrontError> failure;
  try {
    ChatRequest request = parse_count_tokens(*anthropic, parse_body(req.body));
    request.priority = priority;
    request.cancel = shutdown;
    request.conversation = header_value(req, "x-tinyroute-conversation");
    const RouteDecision decision = co_await resolve(cfg, request, grant, category_label, model_label);
    const ModelConfig* model = find_answer_model(cfg, decision.model);
    if (model == nullptr) throw FrontError(500, "internal_error", "routing chose an unknown model");
    ForwardOptions fopts;
    fopts.timeouts = {options.connect_timeout_s, options.first_byte_timeout_s, options.idle_timeout_s};
    fopts.tls = tls;
    fopts.pool = options.upstream_keepalive > 0 ? &pool : nullptr;
    std::optional<TokenCount> counted = co_await count_upstream(*model, request, fopts);
    if (!counted) {
      const std::function<int(const std::string&)>& tokenizer = options.count_tokens;
      counted = co_await asio::co_spawn(
          router_pool,
          [&tokenizer, &request]() -> awaitable<TokenCount> {
            const std::string text = estimate_text(request);
            if (tokenizer) {
              try {
                co_return TokenCount{tokenizer(text), "internal-estimate"};
              } catch (const std::exception& e) { // e.g. the engine is being replaced by a reload
                spdlog::warn("count_tokens: the internal tokenizer failed ({}); estimating by bytes",
                             e.what());
              }
            }
            co_return TokenCount{static_cast<int>((text.size() + 3) / 4), "byte-estimate"};
          },
          use_awaitable);
    }
    Headers headers = {{"x-tinyroute-token-count", counted->source},
                       {"x-tinyroute-model", model->name},
                       {"x-tinyroute-category", decision.category},
                       {"x-tinyroute-decision-source", decision.source}};
    const json body = {{"input_tokens", counted->input_tokens}};
    co_return co_await send_json(out, 200, body, std::move(headers));
  } catch (const FrontError& e) {
    failure = e;
  }
  co_return co_await send_error(out, *anthropic, failure->status, failure->type, failure->what());
}

// Polls every backend's model list, then sleeps a period; ends with the io_context.
awaitable<void> Gateway::Impl::poll_models() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const ClientTimeouts timeouts{options.connect_timeout_s, std::min(options.first_byte_timeout_s, 30.0),
                                options.idle_timeout_s};
  for (;;) {
    const auto config_now = current_config();
    const std::map<std::string, Provider> backends = backends_of(*config_now);
    for (auto it = backends.begin(); it != backends.end(); ++it) {
      if (it->second == Provider::anthropic) continue; // no model list to ask: assumed available
      const std::string url = it->first;
      const Provider provider = it->second;
      const std::string key = poll_api_key(*config_now, url);
      const auto before = model_lists.snapshot();
      const auto prev = before.find(url);
      const bool was_up = prev == before.end() || !prev->second.polled || prev->second.reachable;
      BackendModels polled = co_await poll_backend(url, provider, key, timeouts, tls);
      // Logged on changes only: a server that stays down must not fill the log every period.
      if (!polled.reachable && was_up) spdlog::warn("availability: {}; its models are skipped", polled.error);
      if (polled.reachable && !was_up) spdlog::info("availability: {} answers again", url);
      model_lists.put(std::move(polled));
    }
    timer.expires_after(
        std::chrono::milliseconds(static_cast<long long>(options.availability_poll_s * 1000)));
    co_await timer.async_wait(use_awaitable);
  }
}

Gateway::Gateway(Config config, Router router, GatewayOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(router), std::move(options))) {}

Gateway::~Gateway() {
  if (impl_ && impl_->running) stop(std::chrono::milliseconds(0));
  if (impl_) impl_->router_pool.join();
}

void Gateway::add_json_endpoint(std::string method, std::string path, JsonContextHandler handler) {
  auto& s = *impl_;
  if (s.running)
    throw Error(ErrorCode::invalid_argument, "add_json_endpoint: the gateway is already serving");
  if (path.empty() || path[0] != '/')
    throw Error(ErrorCode::invalid_argument, "add_json_endpoint: the path must start with '/': " + path);
  if (!handler) throw Error(ErrorCode::invalid_argument, "add_json_endpoint: no handler for " + path);
  if (s.find_endpoint(path) != nullptr)
    throw Error(ErrorCode::invalid_argument, "add_json_endpoint: " + path + " is already served");
  for (auto& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  s.endpoints.push_back(
      {std::move(method), std::move(path), Protocol::openai, false, &Impl::on_json, std::move(handler)});
}

void Gateway::add_json_endpoint(std::string method, std::string path, JsonHandler handler) {
  if (!handler) throw Error(ErrorCode::invalid_argument, "add_json_endpoint: no handler for " + path);
  add_json_endpoint(std::move(method), std::move(path),
                    JsonContextHandler([h = std::move(handler)](const json& body, const JsonRequestContext&) {
                      return h(body);
                    }));
}

void Gateway::start() {
  auto& s = *impl_;
  if (s.running) return;
  ServerLimits limits;
  limits.max_body_bytes = s.options.max_body_bytes;
  limits.max_header_bytes = s.options.max_header_bytes;
  limits.request_read_timeout_s = s.options.request_read_timeout_s;
  if (s.shutdown.cancelled()) s.shutdown = CancelToken(); // started again after stop()
  if (s.contexts.empty()) {
    for (int i = 0; i < std::max(1, s.options.threads); ++i)
      s.contexts.push_back(std::make_unique<Impl::NetworkContext>());
  } else {
    for (auto& context : s.contexts) context->restart(); // started again after stop()
  }
  std::vector<asio::io_context*> contexts;
  for (auto& context : s.contexts) contexts.push_back(context.get());
  s.server = std::make_unique<HttpServer>(
      contexts, s.options.host, s.options.port, limits,
      [impl = impl_.get()](HttpRequest& req, ResponseWriter& out) { return impl->handle(req, out); });
  s.server->start();
  s.bound_port = s.server->port();
  for (auto* context : contexts) s.work.push_back(asio::make_work_guard(*context));
  if (s.options.availability_poll_s > 0) asio::co_spawn(*contexts.front(), s.poll_models(), asio::detached);
  for (auto* context : contexts) s.threads.emplace_back([context] { context->run(); });
  s.running = true;
  spdlog::info("gateway: listening on {}:{}", s.options.host, port());
}

int Gateway::port() const {
  return impl_->server ? impl_->server->port() : 0;
}

void Gateway::stop(std::chrono::milliseconds drain) {
  auto& s = *impl_;
  if (!s.running) return;
  s.server->stop_accepting();
  const auto deadline = std::chrono::steady_clock::now() + drain;
  const auto wait_until = [&s](std::chrono::steady_clock::time_point until) {
    while (s.server->active_requests() > 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  wait_until(deadline);
  // The drain is over: the engine work of the requests still in flight is cancelled (it ends between two
  // decodes), and their handlers get a moment to answer 503 before the connections close.
  s.shutdown.cancel();
  if (const std::size_t left = s.server->active_requests(); left > 0) {
    spdlog::warn("gateway: {} request{} still in flight after the drain: internal-model work cancelled, "
                 "connections closing",
                 left, left == 1 ? "" : "s");
    wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(1));
  }
  s.work.clear();
  for (auto& context : s.contexts) context->stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  s.running = false;
}

void Gateway::reload(Config config) {
  auto next = std::make_shared<const Config>(std::move(config));
  std::lock_guard lock(impl_->config_mutex);
  impl_->config = std::move(next);
  impl_->loaded_at = iso_time();
}

std::optional<Priority> parse_priority(std::string_view text) {
  std::string t(text);
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  while (!t.empty() && t.front() == ' ') t.erase(0, 1);
  if (t == "high") return Priority::high;
  if (t == "medium" || t == "normal") return Priority::normal;
  if (t == "low") return Priority::low;
  return std::nullopt;
}

std::string_view priority_name(Priority priority) {
  switch (priority) {
  case Priority::high:
    return "high";
  case Priority::low:
    return "low";
  case Priority::normal:
    break;
  }
  return "medium";
}

Availability Gateway::availability() const {
  return availability_of(*impl_->current_config(), impl_->model_lists.snapshot(), impl_->breakers);
}

std::string Gateway::metrics_text() const {
  return impl_->metrics.render();
}

GatewayOptions gateway_options_from(const Config& config) {
  GatewayOptions options;
  options.host = config.gateway.host;
  options.port = config.gateway.port;
  options.max_body_bytes = config.gateway.max_body_bytes;
  options.availability_poll_s = config.gateway.availability_poll_s;
  std::string problems;
  for (const auto& key : config.gateway.api_keys) {
    const char* value = std::getenv(key.key_env.c_str());
    if (value == nullptr || *value == '\0') {
      problems += (problems.empty() ? "" : "\n") + config.source_path + ":" + std::to_string(key.line) +
                  ": gateway.api_keys: the environment variable " + key.key_env +
                  " is not set or empty; export the key there before starting the gateway";
      continue;
    }
    auto& models = options.api_keys[value];
    models.insert(models.end(), key.models.begin(), key.models.end());
  }
  if (!problems.empty()) throw Error(ErrorCode::config_invalid, problems);
  return options;
}

} // namespace tinyroute
