#include "gateway/forward.h"

#include <cctype>
#include <chrono>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "gateway/backend-anthropic.h"
#include "gateway/backend-ollama.h"
#include "gateway/backend-openai.h"
#include "gateway/routing.h"
#include "tinyroute/error.h"

namespace tinyroute::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

const BackendAdapter& backend_for(Provider provider) {
  switch (provider) {
  case Provider::openai:
    return openai_backend();
  case Provider::ollama:
    return ollama_backend();
  case Provider::anthropic:
    return anthropic_backend();
  }
  return openai_backend();
}

namespace {

enum class Outcome { answered, retry, next_model, client_error };

struct TryResult {
  Outcome outcome;
  Attempt attempt;
};

// One try against one model.
awaitable<TryResult> try_once(const ModelConfig& model, const ChatRequest& request,
                              const ForwardOptions& options, Metrics& metrics, ForwardSink& sink, int limit) {
  Attempt attempt{model.name, 0, ""};
  const BackendAdapter& backend = backend_for(model.provider);
  ClientRequest upstream;
  try {
    upstream = backend.request(model, request);
  } catch (const Error& e) { // e.g. the API key variable is not set: retrying will not help
    attempt.error = e.what();
    metrics.upstream_attempt(model.name, "config_error");
    co_return TryResult{Outcome::next_model, attempt};
  }
  // Held for the whole try: the backend counts this request until its answer is read.
  BackendQueues::Permit permit;
  if (options.queues != nullptr)
    permit = co_await options.queues->acquire(model.base_url, limit, request.priority);
  HttpClientCall call(co_await asio::this_coro::executor, options.timeouts, options.tls, options.pool);
  int status = 0;
  const auto sent = std::chrono::steady_clock::now();
  try {
    status = co_await call.open(upstream);
  } catch (const ConnectError& e) {
    attempt.error = e.what();
    if (e.kind == ConnectError::Kind::untrusted) { // the same certificate will be refused again
      metrics.upstream_attempt(model.name, "tls_untrusted");
      co_return TryResult{Outcome::next_model, attempt};
    }
    attempt.timed_out = e.kind == ConnectError::Kind::timed_out;
    metrics.upstream_attempt(model.name, attempt.timed_out ? "timeout" : "connect_error");
    co_return TryResult{Outcome::retry, attempt};
  } catch (const Error& e) {
    attempt.error = e.what();
    metrics.upstream_attempt(model.name, "config_error");
    co_return TryResult{Outcome::next_model, attempt};
  }
  attempt.status = status;
  metrics.backend_latency(model.name,
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count());
  if (status < 200 || status >= 300) {
    std::string body = co_await call.read_rest();
    attempt.error = "HTTP " + std::to_string(status) + ": " + backend.error_message(body);
    metrics.upstream_attempt(model.name, "status_" + std::to_string(status / 100) + "xx");
    if (status == 429 || status >= 500) co_return TryResult{Outcome::retry, attempt};
    co_return TryResult{Outcome::client_error, attempt};
  }

  sink.begin(model.name);
  auto decoder = backend.decoder();
  // Delivers events; an error event before anything reached the client makes this try a failure.
  auto deliver = [&](std::vector<ChatEvent> events) -> awaitable<std::string> {
    for (auto& e : events) {
      if (e.kind == ChatEvent::Kind::error && !sink.committed()) co_return e.text;
      co_await sink.event(e);
      if (e.kind == ChatEvent::Kind::error) co_return std::string();
    }
    co_return std::string();
  };
  std::string failure;
  std::string broke; // the upstream connection failed while reading (co_await is not allowed in catch)
  std::string head;  // the body's first bytes, to show what a garbled answer looked like
  try {
    for (;;) {
      auto piece = co_await call.read_some();
      if (!piece) break;
      if (piece->empty()) continue;
      if (head.size() < 80) head += piece->substr(0, 80 - head.size());
      failure = co_await deliver(decoder->feed(*piece));
      if (!failure.empty()) break;
    }
    if (failure.empty()) failure = co_await deliver(decoder->end());
  } catch (const boost::system::system_error&) {
    throw; // the client went away: stop, dropping the upstream connection cancels its generation
  } catch (const std::runtime_error& e) {
    broke = e.what();
  }
  if (!broke.empty()) {
    if (!sink.committed()) {
      failure = broke;
    } else {
      metrics.upstream_attempt(model.name, "broke_mid_stream");
      co_await sink.event(upstream_error("the upstream model '" + model.name +
                                         "' failed in the middle of the answer: " + broke));
      co_return TryResult{Outcome::answered, attempt};
    }
  }
  if (!failure.empty()) {
    attempt.error = failure;
    if (broke.empty() && !head.empty() && !sink.committed()) {
      // Nothing usable arrived: show what did (a proxy's HTML error page, ...).
      std::string shown;
      for (char c : head) shown += std::isprint(static_cast<unsigned char>(c)) != 0 ? c : '.';
      attempt.error += " (it answered " + std::to_string(status) + " with content-type '" +
                       call.header("content-type") + "', starting '" + shown + "')";
    }
    metrics.upstream_attempt(model.name, "broke_before_commit");
    co_return TryResult{Outcome::retry, attempt};
  }
  metrics.upstream_attempt(model.name, "ok");
  co_return TryResult{Outcome::answered, attempt};
}

} // namespace

awaitable<ForwardResult> forward(const Config& config, const std::vector<std::string>& models,
                                 const ChatRequest& request, const ForwardOptions& options, Metrics& metrics,
                                 Breakers& breakers, ForwardSink& sink) {
  ForwardResult result;
  bool only_unavailable = true; // every failure was "could not reach / overloaded" -> 503, else 502
  bool only_timeouts = true;    // every try timed out -> 504
  for (std::size_t i = 0; i < models.size(); ++i) {
    const ModelConfig* model = find_answer_model(config, models[i]);
    if (model == nullptr) {
      result.attempts.push_back({models[i], 0, "not a configured model"});
      only_timeouts = false;
      only_unavailable = false;
      continue;
    }
    if (i > 0) metrics.fallback(models[i - 1], models[i]);
    if (!breakers.allow(model->base_url)) {
      result.attempts.push_back(
          {model->name, 0, "circuit open for " + model->base_url + " (recent failures)"});
      only_timeouts = false;
      metrics.upstream_attempt(model->name, "circuit_open");
      continue;
    }
    double backoff = options.backoff_s;
    for (int t = 0; t <= options.retries; ++t) {
      if (t > 0) {
        asio::steady_timer timer(co_await asio::this_coro::executor);
        timer.expires_after(std::chrono::milliseconds(static_cast<long long>(backoff * 1000)));
        co_await timer.async_wait(use_awaitable);
        backoff *= 2;
      }
      TryResult r =
          co_await try_once(*model, request, options, metrics, sink, backend_limit(config, model->base_url));
      // The server answered (even with a 4xx): it is up. Unreachable, overloaded or broken: it is not.
      if (r.outcome == Outcome::answered || r.outcome == Outcome::client_error) {
        breakers.success(model->base_url);
      } else if (r.outcome == Outcome::retry) {
        breakers.failure(model->base_url);
      } else {
        breakers.release(model->base_url);
      }
      if (r.outcome == Outcome::answered) {
        result.ok = true;
        result.model = model->name;
        result.attempts.push_back(r.attempt);
        co_return result;
      }
      spdlog::info("gateway: {} attempt {} failed: {}", model->name, t + 1, r.attempt.error);
      result.attempts.push_back(r.attempt);
      if (!r.attempt.timed_out) only_timeouts = false;
      if (r.outcome == Outcome::client_error) {
        // The upstream rejected the request itself; another model would most likely too.
        result.status = r.attempt.status;
        result.error_type = "upstream_rejected";
        result.message = "model '" + model->name + "' rejected the request: " + r.attempt.error;
        co_return result;
      }
      if (r.attempt.status != 0 && r.attempt.status != 429 && r.attempt.status != 503)
        only_unavailable = false;
      if (r.outcome == Outcome::next_model) {
        only_unavailable = false;
        break;
      }
      if (!breakers.allow(model->base_url)) break; // it just opened: stop retrying this server
    }
  }
  result.status = !result.attempts.empty() && only_timeouts ? 504 : only_unavailable ? 503 : 502;
  result.error_type = "upstream_unavailable";
  std::string list;
  for (const auto& a : result.attempts) {
    if (!list.empty()) list += "; ";
    list += a.model + ": " + a.error;
  }
  result.message = models.empty() ? "no model is available to answer this request"
                                  : "every model failed (" + std::to_string(result.attempts.size()) +
                                        " attempts): " + list;
  co_return result;
}

} // namespace tinyroute::gateway
