// Holding an engine's request slots on purpose, so that a test can queue work behind them whatever the
// machine's speed (deadlines missed, priorities, cancellation).
#pragma once

#include <future>

#include "tinyroute/engine.h"

namespace tinyroute::test {

// A generation forced by its grammar to `tokens` tokens (" x" each): it decodes until it has them all
// or `cancel` fires. On a one-request engine, anything sent meanwhile queues behind it.
std::future<GenerateResult> keep_engine_busy(Engine& engine, int tokens, CancelToken cancel = {},
                                             Priority priority = Priority::normal);

} // namespace tinyroute::test
