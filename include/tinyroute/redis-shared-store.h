// serve's shared state in Redis (the shared_state config section): the decision cache and the
// conversations' turns, under keys that start with the configured prefix. Calls run on a small pool of
// blocking connections, each bounded by timeout_ms; after a failure the store answers Error(io) at once
// for a back-off (100 ms doubling to 5 s) before it tries to connect again, so a Redis that is down
// costs a request nothing but the fallback.
#pragma once

#include <memory>

#include "tinyroute/config.h"
#include "tinyroute/shared-store.h"

namespace tinyroute {

// Throws Error(invalid_argument) for a bad URL; connects lazily (a Redis that is down at start is not
// an error: requests are decided without it until it answers).
std::shared_ptr<SharedStore> make_redis_shared_store(const SharedStateConfig& config);

} // namespace tinyroute
