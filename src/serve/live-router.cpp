#include "live-router.h"

#include "tinyroute/error.h"

namespace tinyroute::serve {

Served make_served(std::shared_ptr<Engine> engine, const Config& config, std::shared_ptr<DecisionCache> cache,
                   std::shared_ptr<ConversationStore> conversations) {
  Served s;
  s.tasks = std::make_shared<const TaskRouter>(engine, config);
  s.analyzer = std::make_shared<const Analyzer>(*engine, config, std::move(cache), std::move(conversations));
  s.agents = std::make_shared<const AgentServices>(std::move(engine), config);
  return s;
}

bool same_engine(const InternalModelConfig& a, const InternalModelConfig& b) {
  return a.model == b.model && a.threads == b.threads && a.context == b.context && a.batch == b.batch &&
         a.ubatch == b.ubatch && a.repack == b.repack && a.mmap == b.mmap && a.flash_attn == b.flash_attn &&
         a.hidden_layer == b.hidden_layer && a.parallel == b.parallel && a.state_dir == b.state_dir &&
         a.conversations == b.conversations && a.contexts == b.contexts;
}

Served LiveRouter::get() const {
  std::lock_guard lock(mutex_);
  return current_;
}

Served LiveRouter::ready() const {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return current_.analyzer != nullptr || failed_; });
  if (!current_.analyzer)
    throw Error(ErrorCode::engine_stopped, "the internal model failed to warm up; the server is stopping");
  return current_;
}

void LiveRouter::set(Served next) {
  {
    std::lock_guard lock(mutex_);
    current_ = std::move(next);
  }
  changed_.notify_all();
}

void LiveRouter::fail() {
  {
    std::lock_guard lock(mutex_);
    failed_ = true;
  }
  changed_.notify_all();
}

bool LiveRouter::failed() const {
  std::lock_guard lock(mutex_);
  return failed_;
}

} // namespace tinyroute::serve
