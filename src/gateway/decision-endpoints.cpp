// The native decision endpoint /v1/route, and the JSON endpoints serve adds (add_json_endpoint).
#include "gateway/gateway-impl.h"

namespace tinyroute {

awaitable<int> Gateway::Impl::on_route(Call& c) {
  c.context.headers = c.req.headers;
  co_return co_await route(c.req, c.out, c.context);
}

awaitable<int> Gateway::Impl::on_json(Call& c) {
  c.context.headers = c.req.headers;
  co_return co_await call_json(c.req, c.out, c.endpoint, c.context);
}

awaitable<int> Gateway::Impl::route(HttpRequest& req, ResponseWriter& out,
                                    const JsonRequestContext& context) {
  std::optional<FrontError> failure;
  try {
    json body = parse_body(req.body);
    const Priority priority = body_priority(body, context);
    if (body.is_object()) body.erase("priority");
    if (body.is_object() && !body.contains("model")) body["model"] = "auto";
    std::string conversation = header_value(req, "x-tinyroute-conversation");
    if (body.is_object() && body.contains("conversation")) {
      if (!body["conversation"].is_string()) bad_request("\"conversation\" must be a string");
      conversation = body["conversation"].get<std::string>();
      body.erase("conversation");
    }
    ChatRequest request = openai->parse(body);
    request.priority = priority;
    request.cancel = context.cancel;
    request.conversation = std::move(conversation);
    RouteDecision d = co_await call_router(request);
    co_return co_await send_json(out, 200, to_json(d));
  } catch (const FrontError& e) {
    failure = e;
  } catch (const json::exception& e) {
    failure = wrong_type(e);
  }
  co_return co_await send_error(out, *openai, failure->status, failure->type, failure->what());
}

awaitable<int> Gateway::Impl::call_json(HttpRequest& req, ResponseWriter& out, const Endpoint& endpoint,
                                        const JsonRequestContext& context) {
  std::optional<FrontError> failure; // co_await is not allowed inside a catch block
  try {
    json body;
    if (!req.body.empty() && req.method != "GET" && req.method != "HEAD") body = parse_body(req.body);
    json answer = co_await asio::co_spawn(
        router_pool,
        [&endpoint, &body, &context]() -> awaitable<json> { co_return endpoint.json(body, context); },
        use_awaitable);
    co_return co_await send_json(out, 200, answer);
  } catch (const FrontError& e) {
    failure = e;
  } catch (const json::exception& e) {
    failure = wrong_type(e);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::cancelled) {
      failure = shutting_down_error();
    } else {
      const int status = http_status_for(e.code());
      if (status >= 500) spdlog::error("gateway: {} failed: {}", endpoint.path, e.what());
      failure = FrontError(status,
                           e.code() == ErrorCode::context_overflow ? "context_length_exceeded"
                           : status < 500                          ? "invalid_request_error"
                                                                   : std::string(error_code_name(e.code())),
                           e.what());
    }
  } catch (const std::exception& e) {
    // A bug: the exception's text goes to the log, not to the client.
    spdlog::error("gateway: {} failed: {}", endpoint.path, e.what());
    failure = FrontError(
        500, "internal_error",
        "tinyroute failed while answering this request (an internal error; the server log has the details)");
  }
  co_return co_await send_error(out, *openai, failure->status, failure->type, failure->what());
}

} // namespace tinyroute
