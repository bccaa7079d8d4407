// Waiting for the engine within a caller's deadline: LabelScorer and Analyzer wait the same way.
#pragma once

#include <chrono>
#include <future>
#include <optional>
#include <string>

#include "tinyroute/engine.h"
#include "tinyroute/error.h"

namespace tinyroute {

using Deadline = std::optional<std::chrono::steady_clock::time_point>;

// Throws Error(deadline_exceeded) unless `future` is ready by `deadline`; without one it returns at once
// (the caller's get() waits).
template <typename Future> void wait_in_time(const Future& future, const Deadline& deadline) {
  if (deadline && future.wait_until(*deadline) != std::future_status::ready)
    throw Error(ErrorCode::deadline_exceeded, "the internal model did not decide in time");
}

// The result of `pending`, sent as `request`, within `deadline`. A request whose prefix other prefixes
// evicted meanwhile (the engine keeps a bounded number) makes it resident again and is sent once more,
// within the same deadline.
inline ScoreResult await_score(Engine& engine, std::future<ScoreResult>& pending, const ScoreRequest& request,
                               const std::string& prefix_id, const std::string& prefix_text,
                               const Deadline& deadline) {
  try {
    wait_in_time(pending, deadline);
    return pending.get();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::unknown_prefix) throw;
  }
  auto added = engine.add_prefix(prefix_id, prefix_text);
  wait_in_time(added, deadline);
  added.get();
  auto again = engine.score(request);
  wait_in_time(again, deadline);
  return again.get();
}

} // namespace tinyroute
