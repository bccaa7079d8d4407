// serve's POST /v1/select: TaskRouter::select_model over HTTP, for clients that classify elsewhere (or
// already know the category) and only want the answer model. The body is checked here, so a malformed
// one is a 400 that says what is wrong.
#pragma once

#include <nlohmann/json.hpp>

#include "tinyroute/classify.h"

namespace tinyroute::serve {

// {"category", "needs_tools"?, "needs_vision"?, "needs_reasoning"?, "estimated_tokens"?} ->
// {"model", "fallbacks", "reason", "rejected": [{"model", "why"}]}. An unknown category is
// Error(invalid_argument) listing the configured ones (400); no usable model is Error(no_candidate) (503).
// `availability` is the gateway's view of its backends (breakers, polls): the same models are skipped as
// when it routes a request.
nlohmann::json select_endpoint(const TaskRouter& router, const nlohmann::json& body,
                               const Availability& availability = {});

} // namespace tinyroute::serve
