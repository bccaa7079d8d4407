// What serve decides with, swapped whole on a reload: requests in flight keep the set they started with.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>

#include "agent-endpoints.h"
#include "tinyroute/analyze.h"
#include "tinyroute/classify.h"
#include "tinyroute/decision-cache.h"

namespace tinyroute::serve {

// Everything built from one config over one engine: the TaskRouter, the analyzer and the agent policies.
struct Served {
  std::shared_ptr<const TaskRouter> tasks;
  std::shared_ptr<const Analyzer> analyzer;
  std::shared_ptr<const AgentServices> agents;
};

// Builds the set; the analyzer decodes its instruction prefix (blocking). The stores outlive reloads.
Served make_served(std::shared_ptr<Engine> engine, const Config& config, std::shared_ptr<DecisionCache> cache,
                   std::shared_ptr<ConversationStore> conversations);

// The internal model can be kept across a reload when nothing that shapes the engine changed.
bool same_engine(const InternalModelConfig& a, const InternalModelConfig& b);

// The set in use; empty while the first one warms up in the background (internal_model.deadline_ms > 0).
class LiveRouter {
public:
  Served get() const;
  // get(), after waiting for the warm-up: the native endpoints need the model, so they wait for it.
  // Error(engine_stopped) when the warm-up failed.
  Served ready() const;
  void set(Served next);
  void fail(); // the warm-up failed: ready() stops waiting
  bool failed() const;

private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  Served current_;
  bool failed_ = false;
};

} // namespace tinyroute::serve
